//! Python classes for the core's events: frozen, with properties, `to_dict`, `==` and hash.

use std::hash::{DefaultHasher, Hash, Hasher};

use cif_core::ingest::{
    AggTrade, BookTicker, DepthSnapshot, DepthUpdate, Event, Level, ServerShutdown, Trade,
};
use pyo3::prelude::*;
use pyo3::types::PyDict;

/// How a field reads inside `__repr__` (long level lists are summarised).
trait ReprPart {
    fn repr_part(&self) -> String;
}

impl ReprPart for i64 {
    fn repr_part(&self) -> String {
        self.to_string()
    }
}

impl ReprPart for f64 {
    fn repr_part(&self) -> String {
        format!("{self:?}")
    }
}

impl ReprPart for bool {
    fn repr_part(&self) -> String {
        if *self { "True" } else { "False" }.to_string()
    }
}

impl ReprPart for &str {
    fn repr_part(&self) -> String {
        format!("'{self}'")
    }
}

impl ReprPart for Option<i64> {
    fn repr_part(&self) -> String {
        self.map_or_else(|| "None".to_string(), |v| v.to_string())
    }
}

impl ReprPart for Vec<(f64, f64)> {
    fn repr_part(&self) -> String {
        format!("<{} levels>", self.len())
    }
}

fn level_tuples(levels: &[Level]) -> Vec<(f64, f64)> {
    levels.iter().map(|l| (l.price, l.qty)).collect()
}

/// A stable hash of an event: its debug form, which covers every field (floats by value).
fn stable_hash(debug: &str) -> u64 {
    let mut h = DefaultHasher::new();
    debug.hash(&mut h);
    h.finish()
}

macro_rules! py_event {
    (
        $(#[$doc:meta])*
        $py_name:literal, $wrapper:ident, $inner:ty,
        { $($field:ident : $ty:ty = |$e:ident| $conv:expr),* $(,)? }
    ) => {
        $(#[$doc])*
        #[pyclass(frozen, name = $py_name, module = "cif._core")]
        pub(crate) struct $wrapper {
            pub(crate) inner: $inner,
        }

        #[pymethods]
        impl $wrapper {
            $(
                #[getter]
                fn $field(&self) -> $ty {
                    let $e = &self.inner;
                    $conv
                }
            )*

            /// The event as a plain dict (field name → value).
            fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
                let d = PyDict::new(py);
                $( d.set_item(stringify!($field), self.$field())?; )*
                Ok(d)
            }

            fn __repr__(&self) -> String {
                let parts: Vec<String> = vec![
                    $(format!("{}={}", stringify!($field), self.$field().repr_part())),*
                ];
                format!("{}({})", $py_name, parts.join(", "))
            }

            fn __eq__(&self, other: &Bound<'_, PyAny>) -> bool {
                other
                    .cast::<Self>()
                    .is_ok_and(|o| o.get().inner == self.inner)
            }

            fn __hash__(&self) -> u64 {
                stable_hash(&format!("{:?}", self.inner))
            }
        }
    };
}

py_event!(
    /// One trade; `side` is the aggressor (`is_buyer_maker` ⇒ "sell").
    "Trade", PyTrade, Trade, {
    symbol: &str = |e| e.symbol.as_str(),
    trade_id: i64 = |e| e.trade_id,
    event_time_ms: i64 = |e| e.event_time_ms,
    trade_time_ms: i64 = |e| e.trade_time_ms,
    price: f64 = |e| e.price,
    qty: f64 = |e| e.qty,
    side: &str = |e| e.side.as_str(),
    is_buyer_maker: bool = |e| e.is_buyer_maker,
    recv_time_ns: i64 = |e| e.recv_time_ns,
});

py_event!(
    /// An aggregate trade (`<symbol>@aggTrade`).
    "AggTrade", PyAggTrade, AggTrade, {
    symbol: &str = |e| e.symbol.as_str(),
    agg_trade_id: i64 = |e| e.agg_trade_id,
    first_trade_id: i64 = |e| e.first_trade_id,
    last_trade_id: i64 = |e| e.last_trade_id,
    event_time_ms: i64 = |e| e.event_time_ms,
    trade_time_ms: i64 = |e| e.trade_time_ms,
    price: f64 = |e| e.price,
    qty: f64 = |e| e.qty,
    side: &str = |e| e.side.as_str(),
    is_buyer_maker: bool = |e| e.is_buyer_maker,
    recv_time_ns: i64 = |e| e.recv_time_ns,
});

py_event!(
    /// A diff-depth event; qty 0 removes a level.
    "DepthUpdate", PyDepthUpdate, DepthUpdate, {
    symbol: &str = |e| e.symbol.as_str(),
    event_time_ms: i64 = |e| e.event_time_ms,
    first_update_id: i64 = |e| e.first_update_id,
    final_update_id: i64 = |e| e.final_update_id,
    bids: Vec<(f64, f64)> = |e| level_tuples(&e.bids),
    asks: Vec<(f64, f64)> = |e| level_tuples(&e.asks),
    recv_time_ns: i64 = |e| e.recv_time_ns,
});

py_event!(
    /// A full or partial book (REST depth or `<symbol>@depth<N>`).
    "DepthSnapshot", PyDepthSnapshot, DepthSnapshot, {
    symbol: &str = |e| e.symbol.as_str(),
    last_update_id: i64 = |e| e.last_update_id,
    bids: Vec<(f64, f64)> = |e| level_tuples(&e.bids),
    asks: Vec<(f64, f64)> = |e| level_tuples(&e.asks),
    event_time_ms: Option<i64> = |e| e.event_time_ms,
    recv_time_ns: i64 = |e| e.recv_time_ns,
});

py_event!(
    /// Best bid/ask (`<symbol>@bookTicker`).
    "BookTicker", PyBookTicker, BookTicker, {
    symbol: &str = |e| e.symbol.as_str(),
    update_id: i64 = |e| e.update_id,
    bid_price: f64 = |e| e.bid_price,
    bid_qty: f64 = |e| e.bid_qty,
    ask_price: f64 = |e| e.ask_price,
    ask_qty: f64 = |e| e.ask_qty,
    event_time_ms: Option<i64> = |e| e.event_time_ms,
    recv_time_ns: i64 = |e| e.recv_time_ns,
});

py_event!(
    /// The exchange announced it will close the connection soon.
    "ServerShutdown", PyServerShutdown, ServerShutdown, {
    event_time_ms: i64 = |e| e.event_time_ms,
    recv_time_ns: i64 = |e| e.recv_time_ns,
});

/// Wrap a core event in its Python class.
pub(crate) fn event_to_py(py: Python<'_>, event: Event) -> PyResult<Bound<'_, PyAny>> {
    Ok(match event {
        Event::Trade(inner) => Bound::new(py, PyTrade { inner })?.into_any(),
        Event::AggTrade(inner) => Bound::new(py, PyAggTrade { inner })?.into_any(),
        Event::DepthUpdate(inner) => Bound::new(py, PyDepthUpdate { inner })?.into_any(),
        Event::DepthSnapshot(inner) => Bound::new(py, PyDepthSnapshot { inner })?.into_any(),
        Event::BookTicker(inner) => Bound::new(py, PyBookTicker { inner })?.into_any(),
        Event::ServerShutdown(inner) => Bound::new(py, PyServerShutdown { inner })?.into_any(),
    })
}

pub(crate) fn register(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<PyTrade>()?;
    m.add_class::<PyAggTrade>()?;
    m.add_class::<PyDepthUpdate>()?;
    m.add_class::<PyDepthSnapshot>()?;
    m.add_class::<PyBookTicker>()?;
    m.add_class::<PyServerShutdown>()?;
    Ok(())
}
