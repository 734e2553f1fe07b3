//! An exchange symbol stored inline (no heap allocation per event).

use std::fmt;

/// Longest symbol accepted, in UTF-8 bytes. Binance symbols are far shorter.
pub const MAX_SYMBOL_LEN: usize = 31;

/// A validated exchange symbol in Binance's canonical upper case (`BTCUSDT`).
///
/// Stream names carry symbols in lower case (`btcusdt@trade`); both forms normalize to
/// the same `Symbol`. `Copy`, so events stay allocation-free.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Symbol {
    len: u8,
    bytes: [u8; MAX_SYMBOL_LEN],
}

impl Symbol {
    /// Validate and normalize `raw`: 1..=31 bytes of UTF-8, no whitespace, control
    /// characters, `@` or `/` (which would corrupt stream names); ASCII letters upper-cased.
    #[inline]
    pub fn new(raw: &str) -> Result<Symbol, String> {
        let b = raw.as_bytes();
        if !b.is_empty() && b.len() <= MAX_SYMBOL_LEN && b.iter().all(u8::is_ascii_alphanumeric) {
            let mut bytes = [0u8; MAX_SYMBOL_LEN];
            for (dst, src) in bytes.iter_mut().zip(b) {
                *dst = src.to_ascii_uppercase();
            }
            return Ok(Symbol {
                len: b.len() as u8,
                bytes,
            });
        }
        Self::new_general(raw)
    }

    #[cold]
    fn new_general(raw: &str) -> Result<Symbol, String> {
        if raw.is_empty() {
            return Err("symbol is empty".to_string());
        }
        if raw.len() > MAX_SYMBOL_LEN {
            return Err(format!(
                "symbol is {} bytes long (max {MAX_SYMBOL_LEN})",
                raw.len()
            ));
        }
        if let Some(c) = raw
            .chars()
            .find(|c| c.is_whitespace() || c.is_control() || matches!(c, '@' | '/' | '"'))
        {
            return Err(format!("symbol {raw:?} contains {c:?}"));
        }
        let mut bytes = [0u8; MAX_SYMBOL_LEN];
        for (dst, src) in bytes.iter_mut().zip(raw.bytes()) {
            *dst = src.to_ascii_uppercase();
        }
        Ok(Symbol {
            len: raw.len() as u8,
            bytes,
        })
    }

    /// The canonical (upper-case) symbol text.
    pub fn as_str(&self) -> &str {
        // Only ASCII bytes were changed, so the bytes are still the UTF-8 they came in as.
        std::str::from_utf8(&self.bytes[..self.len as usize]).unwrap_or_default()
    }

    /// The canonical symbol's bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..self.len as usize]
    }

    /// The lower-case form used in stream names and Redis keys (`btcusdt`).
    pub fn to_lowercase(&self) -> String {
        self.as_str().to_ascii_lowercase()
    }
}

impl fmt::Debug for Symbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Symbol({})", self.as_str())
    }
}

impl fmt::Display for Symbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_and_exchange_forms_are_equal() {
        assert_eq!(
            Symbol::new("btcusdt").unwrap(),
            Symbol::new("BTCUSDT").unwrap()
        );
        assert_eq!(Symbol::new("btcusdt").unwrap().as_str(), "BTCUSDT");
        assert_eq!(Symbol::new("BTCUSDT").unwrap().to_lowercase(), "btcusdt");
    }

    #[test]
    fn rejects_bad_symbols() {
        assert!(Symbol::new("").is_err());
        assert!(Symbol::new("btc usdt").is_err());
        assert!(Symbol::new("btc@trade").is_err());
        assert!(Symbol::new(&"X".repeat(32)).is_err());
        assert!(Symbol::new("币安人生USDT").is_ok());
    }
}
