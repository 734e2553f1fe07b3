//! Parse errors as a Python exception hierarchy under `ParseError(ValueError)`.

use cif_core::ingest::{ErrorKind, ParseError as CoreParseError};
use pyo3::create_exception;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyTuple;

create_exception!(
    cif._core,
    ParseError,
    PyValueError,
    "A frame or REST body could not be parsed; the subclass names the reason."
);
create_exception!(
    cif._core,
    MalformedFrame,
    ParseError,
    "Not valid JSON, not UTF-8, truncated, duplicate keys or an unexpected structure."
);
create_exception!(
    cif._core,
    MissingField,
    ParseError,
    "A required field is absent."
);
create_exception!(
    cif._core,
    WrongType,
    ParseError,
    "A field has the wrong JSON type (e.g. a number where Binance sends a decimal string)."
);
create_exception!(
    cif._core,
    InvalidValue,
    ParseError,
    "A value is out of range: negative, non-finite, too large, or not a plain decimal."
);
create_exception!(
    cif._core,
    UnknownEvent,
    ParseError,
    "Well-formed JSON whose event type cif does not know."
);

/// The Python exception for a core parse error.
pub(crate) fn to_pyerr(e: CoreParseError) -> PyErr {
    let msg = e.message.into_owned();
    match e.kind {
        ErrorKind::MalformedFrame => MalformedFrame::new_err(msg),
        ErrorKind::MissingField => MissingField::new_err(msg),
        ErrorKind::WrongType => WrongType::new_err(msg),
        ErrorKind::InvalidValue => InvalidValue::new_err(msg),
        ErrorKind::UnknownEvent => UnknownEvent::new_err(msg),
    }
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    m.add("ParseError", py.get_type::<ParseError>())?;
    m.add("MalformedFrame", py.get_type::<MalformedFrame>())?;
    m.add("MissingField", py.get_type::<MissingField>())?;
    m.add("WrongType", py.get_type::<WrongType>())?;
    m.add("InvalidValue", py.get_type::<InvalidValue>())?;
    m.add("UnknownEvent", py.get_type::<UnknownEvent>())?;
    let reasons = PyTuple::new(py, ErrorKind::ALL.iter().map(|k| k.reason()))?;
    m.add("ERROR_REASONS", reasons)?;
    Ok(())
}
