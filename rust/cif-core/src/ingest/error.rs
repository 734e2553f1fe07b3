//! The typed parse error: a reason kind plus a message that names the field and the problem.

use std::borrow::Cow;
use std::fmt;

/// Why a frame or body was rejected. The order is the `reason_code` used in batch tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum ErrorKind {
    /// Not valid JSON, not UTF-8, truncated, duplicate keys or an unexpected structure.
    MalformedFrame = 0,
    /// A required field is absent.
    MissingField = 1,
    /// A field has the wrong JSON type.
    WrongType = 2,
    /// A value is out of range: negative, non-finite, too large, or not a plain decimal.
    InvalidValue = 3,
    /// Well-formed JSON whose event type is not one cif knows.
    UnknownEvent = 4,
}

impl ErrorKind {
    /// All kinds, in `reason_code` order.
    pub const ALL: [ErrorKind; 5] = [
        ErrorKind::MalformedFrame,
        ErrorKind::MissingField,
        ErrorKind::WrongType,
        ErrorKind::InvalidValue,
        ErrorKind::UnknownEvent,
    ];

    /// The stable snake_case reason name used in logs and counters.
    pub fn reason(self) -> &'static str {
        match self {
            ErrorKind::MalformedFrame => "malformed_frame",
            ErrorKind::MissingField => "missing_field",
            ErrorKind::WrongType => "wrong_type",
            ErrorKind::InvalidValue => "invalid_value",
            ErrorKind::UnknownEvent => "unknown_event",
        }
    }
}

/// A rejected frame: what kind of problem and a human-readable message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    /// The reason class.
    pub kind: ErrorKind,
    /// What was wrong, naming the field or byte offset.
    pub message: Cow<'static, str>,
}

impl ParseError {
    /// A new error of `kind` with `message`.
    pub fn new(kind: ErrorKind, message: impl Into<Cow<'static, str>>) -> Self {
        ParseError {
            kind,
            message: message.into(),
        }
    }

    pub(crate) fn malformed(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorKind::MalformedFrame, message)
    }

    pub(crate) fn missing(field: &str, what: &str) -> Self {
        Self::new(
            ErrorKind::MissingField,
            format!("missing field `{field}` in {what}"),
        )
    }

    pub(crate) fn wrong_type(field: &str, what: &str, expected: &str, got: &str) -> Self {
        Self::new(
            ErrorKind::WrongType,
            format!("field `{field}` in {what} must be {expected}, got {got}"),
        )
    }

    pub(crate) fn invalid(message: impl Into<Cow<'static, str>>) -> Self {
        Self::new(ErrorKind::InvalidValue, message)
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind.reason(), self.message)
    }
}

impl std::error::Error for ParseError {}
