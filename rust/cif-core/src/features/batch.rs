//! The batch path: validate a whole batch, then run it through the streaming update into
//! preallocated columns.

use super::engine::FeatureEngine;
use super::error::InputError;
use super::input::{check_book, check_kind, check_seq, check_trade, EventColumns, KIND_TRADE};

/// Rows of a batch, column by column.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FeatureColumns {
    /// Seq of the event that emitted the row.
    pub seq: Vec<i64>,
    /// Engine clock after that event (ms).
    pub ts: Vec<i64>,
    /// Receive time of that event (ns), carried from the input.
    pub recv_ts_ns: Vec<i64>,
    /// Kind of that event (0 trade, 1 book).
    pub kind: Vec<u8>,
    /// One column per feature, in [`FeatureEngine::feature_names`] order.
    pub features: Vec<Vec<f64>>,
}

impl FeatureColumns {
    /// Number of rows.
    pub fn len(&self) -> usize {
        self.seq.len()
    }

    /// True if there are no rows.
    pub fn is_empty(&self) -> bool {
        self.seq.is_empty()
    }

    /// Empty columns (`n_features` feature columns) with room for `rows` rows, reusing the
    /// buffers already held.
    fn reset(&mut self, rows: usize, n_features: usize) {
        self.features.resize_with(n_features, Vec::new);
        for col in self.features.iter_mut() {
            col.clear();
            col.reserve_exact(rows);
        }
        self.seq.clear();
        self.seq.reserve_exact(rows);
        self.ts.clear();
        self.ts.reserve_exact(rows);
        self.recv_ts_ns.clear();
        self.recv_ts_ns.reserve_exact(rows);
        self.kind.clear();
        self.kind.reserve_exact(rows);
    }
}

impl FeatureEngine {
    /// Check a batch against the engine's state without changing anything; returns the
    /// number of rows it would emit.
    pub fn validate(&self, events: &EventColumns<'_>) -> Result<usize, InputError> {
        events.check_lengths()?;
        let mut prev = self.last_seq();
        let mut trades = 0usize;
        for i in 0..events.len() {
            let seq = events.seq[i];
            let kind = events.kind[i];
            check_kind(i, seq, kind)?;
            check_seq(i, seq, prev)?;
            if kind == KIND_TRADE {
                check_trade(i, &events.trade(i))?;
                trades += 1;
            } else {
                check_book(i, &events.book(i))?;
            }
            prev = Some(seq);
        }
        Ok(if self.config.emit_on_book() {
            events.len()
        } else {
            trades
        })
    }

    /// Feed a batch of events; returns the rows they emit. The whole batch is validated
    /// first: on error the engine is unchanged.
    pub fn process(&mut self, events: &EventColumns<'_>) -> Result<FeatureColumns, InputError> {
        let mut out = FeatureColumns::default();
        self.process_into(events, &mut out)?;
        Ok(out)
    }

    /// [`process`](FeatureEngine::process) into `out`, replacing its rows and reusing its
    /// buffers (no allocation once they are large enough). On error the engine and `out`
    /// are unchanged.
    pub fn process_into(
        &mut self,
        events: &EventColumns<'_>,
        out: &mut FeatureColumns,
    ) -> Result<(), InputError> {
        let rows = self.validate(events)?;
        let n_features = self.n_features();
        out.reset(rows, n_features);
        // Rows go to a row-major block first, then column by column into the output: the
        // column writes stay sequential.
        let mut block = vec![0.0; BLOCK_ROWS * n_features];
        let mut in_block = 0usize;
        let emit_on_book = self.config.emit_on_book();
        for i in 0..events.len() {
            let kind = events.kind[i];
            if kind == KIND_TRADE {
                self.apply_trade(&events.trade(i));
            } else {
                self.apply_book(&events.book(i));
                if !emit_on_book {
                    continue;
                }
            }
            let row = &mut block[in_block * n_features..(in_block + 1) * n_features];
            self.fill_row(row);
            out.seq.push(events.seq[i]);
            out.ts.push(self.state.clock.unwrap_or(events.ts[i]));
            out.recv_ts_ns.push(events.recv_ts_ns[i]);
            out.kind.push(kind);
            in_block += 1;
            if in_block == BLOCK_ROWS {
                flush(&block, in_block, &mut out.features);
                in_block = 0;
            }
        }
        flush(&block, in_block, &mut out.features);
        Ok(())
    }
}

/// Rows buffered before they are written out column by column.
const BLOCK_ROWS: usize = 64;

/// Append the first `rows` rows of the row-major `block` to the columns.
#[inline]
fn flush(block: &[f64], rows: usize, columns: &mut [Vec<f64>]) {
    let width = columns.len();
    if rows == 0 || width == 0 {
        return;
    }
    for (j, col) in columns.iter_mut().enumerate() {
        col.extend(block[..rows * width].chunks_exact(width).map(|row| row[j]));
    }
}
