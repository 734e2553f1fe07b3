//! A strict, allocation-free JSON scanner specialised for Binance messages.
//!
//! Binance payloads are small objects whose keys are reused with different types across
//! event kinds (`a` is an id in aggTrade, an ask price in bookTicker and the ask levels in
//! depthUpdate). The scanner reads an object once, keeping each known key's value as a
//! typed-but-uninterpreted [`Val`] (numbers and strings stay as byte slices of the input),
//! parses level arrays straight into `Vec<Level>`, and validates everything it skips, so a
//! frame is either fully valid JSON or rejected. Nothing here panics on any input.

use std::borrow::Cow;

use super::decimal::{parse_decimal, DecimalError};
use super::error::{ErrorKind, ParseError};
use super::events::Level;

/// Nesting limit for skipped values: deep enough for any real payload, shallow enough that
/// hostile input cannot exhaust the stack.
const MAX_DEPTH: usize = 64;

pub(crate) type Result<T> = std::result::Result<T, ParseError>;

/// A JSON string's raw content (between the quotes) and whether it contains escapes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct JStr<'a> {
    raw: &'a [u8],
    escaped: bool,
}

impl<'a> JStr<'a> {
    /// The raw bytes between the quotes, when they need no unescaping.
    #[inline]
    pub(crate) fn plain(&self) -> Option<&'a [u8]> {
        (!self.escaped).then_some(self.raw)
    }

    /// The decoded text. Borrowed unless the string has escapes.
    pub(crate) fn text(&self) -> Result<Cow<'a, str>> {
        if !self.escaped {
            // The scanner checked strings with non-ASCII bytes to be UTF-8.
            return std::str::from_utf8(self.raw)
                .map(Cow::Borrowed)
                .map_err(|_| ParseError::malformed("string is not UTF-8"));
        }
        decode_escaped(self.raw).map(Cow::Owned)
    }
}

/// A value kept for later interpretation.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Val<'a> {
    Str(JStr<'a>),
    Num(&'a [u8]),
    Bool(bool),
    Null,
    Object,
    Array,
}

impl Val<'_> {
    pub(crate) fn type_name(&self) -> &'static str {
        match self {
            Val::Str(_) => "a string",
            Val::Num(_) => "a number",
            Val::Bool(_) => "a boolean",
            Val::Null => "null",
            Val::Object => "an object",
            Val::Array => "an array",
        }
    }
}

/// Read position over one frame.
pub(crate) struct Cursor<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    /// A cursor over `buf`, which must already be known to be UTF-8.
    pub(crate) fn new(buf: &'a [u8]) -> Self {
        Cursor { buf, pos: 0 }
    }

    #[cold]
    #[inline(never)]
    pub(crate) fn error(&self, what: &str) -> ParseError {
        if self.pos >= self.buf.len() {
            ParseError::malformed(format!("truncated JSON: {what} expected at end of input"))
        } else {
            ParseError::malformed(format!(
                "invalid JSON at byte {}: {what} expected, found {:?}",
                self.pos, self.buf[self.pos] as char
            ))
        }
    }

    #[inline]
    pub(crate) fn skip_ws(&mut self) {
        while let Some(&c) = self.buf.get(self.pos) {
            if matches!(c, b' ' | b'\n' | b'\r' | b'\t') {
                self.pos += 1;
            } else {
                break;
            }
        }
    }

    #[inline]
    pub(crate) fn peek(&self) -> Option<u8> {
        self.buf.get(self.pos).copied()
    }

    #[inline]
    fn eat(&mut self, c: u8, what: &str) -> Result<()> {
        if self.peek() == Some(c) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.error(what))
        }
    }

    /// After the top-level value: only whitespace may follow.
    pub(crate) fn finish(&mut self) -> Result<()> {
        self.skip_ws();
        if self.pos == self.buf.len() {
            Ok(())
        } else {
            Err(ParseError::malformed(format!(
                "trailing data after JSON value at byte {}",
                self.pos
            )))
        }
    }

    /// A string token; the cursor is on its opening quote.
    ///
    /// Scans eight bytes at a time for the bytes that need attention (quote, backslash,
    /// control, non-ASCII); strings with non-ASCII bytes are checked to be UTF-8, so the
    /// frame needs no separate validation pass.
    #[inline]
    pub(crate) fn string(&mut self) -> Result<JStr<'a>> {
        self.eat(b'"', "string")?;
        let start = self.pos;
        // Short strings (keys, symbols) end within a few bytes: a plain loop is cheapest.
        let short_end = (start + 16).min(self.buf.len());
        while self.pos < short_end {
            let c = self.buf[self.pos];
            if c == b'"' {
                let raw = &self.buf[start..self.pos];
                self.pos += 1;
                return Ok(JStr {
                    raw,
                    escaped: false,
                });
            }
            if c == b'\\' || !(0x20..0x80).contains(&c) {
                break;
            }
            self.pos += 1;
        }
        self.string_rest(start)
    }

    /// The general string scan, resumed at `self.pos` for a string that began at `start`.
    fn string_rest(&mut self, start: usize) -> Result<JStr<'a>> {
        let mut escaped = false;
        let mut non_ascii = false;
        loop {
            while let Some(chunk) = self.buf.get(self.pos..self.pos + 8) {
                let word = u64::from_le_bytes(chunk.try_into().unwrap_or([0; 8]));
                let hits = special_bytes(word);
                if hits == 0 {
                    self.pos += 8;
                } else {
                    self.pos += (hits.trailing_zeros() / 8) as usize;
                    break;
                }
            }
            let Some(&c) = self.buf.get(self.pos) else {
                return Err(ParseError::malformed("truncated JSON: unterminated string"));
            };
            match c {
                b'"' => {
                    let raw = &self.buf[start..self.pos];
                    self.pos += 1;
                    if non_ascii && std::str::from_utf8(raw).is_err() {
                        return Err(ParseError::malformed("string is not valid UTF-8"));
                    }
                    return Ok(JStr { raw, escaped });
                }
                b'\\' => {
                    escaped = true;
                    self.pos += 1;
                    match self.peek() {
                        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => {
                            self.pos += 1
                        }
                        Some(b'u') => {
                            let hex = self.buf.get(self.pos + 1..self.pos + 5);
                            if !hex.is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) {
                                return Err(self.error("four hex digits after \\u"));
                            }
                            self.pos += 5;
                        }
                        _ => return Err(self.error("escape character")),
                    }
                }
                0x00..=0x1f => return Err(self.error("no control character in a string")),
                0x80..=0xff => {
                    non_ascii = true;
                    self.pos += 1;
                }
                _ => self.pos += 1,
            }
        }
    }

    /// A number token, validated against JSON's grammar, returned as its text.
    #[inline]
    fn number(&mut self) -> Result<&'a [u8]> {
        let start = self.pos;
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.peek() {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => {
                while matches!(self.peek(), Some(b'0'..=b'9')) {
                    self.pos += 1;
                }
            }
            _ => return Err(self.error("digit")),
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return Err(self.error("digit after decimal point"));
            }
            while matches!(self.peek(), Some(b'0'..=b'9')) {
                self.pos += 1;
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.pos += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            if !matches!(self.peek(), Some(b'0'..=b'9')) {
                return Err(self.error("digit in exponent"));
            }
            while matches!(self.peek(), Some(b'0'..=b'9')) {
                self.pos += 1;
            }
        }
        Ok(&self.buf[start..self.pos])
    }

    fn literal(&mut self, word: &'static [u8]) -> Result<()> {
        if self.buf.get(self.pos..self.pos + word.len()) == Some(word) {
            self.pos += word.len();
            Ok(())
        } else {
            Err(self.error("true, false or null"))
        }
    }

    /// Any value; containers are validated and skipped.
    pub(crate) fn value(&mut self, depth: usize) -> Result<Val<'a>> {
        match self.peek() {
            Some(b'"') => self.string().map(Val::Str),
            Some(b'-' | b'0'..=b'9') => self.number().map(Val::Num),
            Some(b't') => self.literal(b"true").map(|_| Val::Bool(true)),
            Some(b'f') => self.literal(b"false").map(|_| Val::Bool(false)),
            Some(b'n') => self.literal(b"null").map(|_| Val::Null),
            Some(b'{') => self.skip_object(depth).map(|_| Val::Object),
            Some(b'[') => self.skip_array(depth).map(|_| Val::Array),
            _ => Err(self.error("a JSON value")),
        }
    }

    fn check_depth(&self, depth: usize) -> Result<()> {
        if depth >= MAX_DEPTH {
            Err(ParseError::malformed(format!(
                "JSON nested deeper than {MAX_DEPTH} levels"
            )))
        } else {
            Ok(())
        }
    }

    fn skip_object(&mut self, depth: usize) -> Result<()> {
        self.check_depth(depth)?;
        self.object(|cur, _key| cur.value(depth + 1).map(|_| ()))
    }

    fn skip_array(&mut self, depth: usize) -> Result<()> {
        self.check_depth(depth)?;
        self.eat(b'[', "'['")?;
        self.skip_ws();
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(());
        }
        loop {
            self.skip_ws();
            self.value(depth + 1)?;
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    return Ok(());
                }
                _ => return Err(self.error("',' or ']'")),
            }
        }
    }

    /// Walk an object: `on_member` is called with each key and must consume its value.
    #[inline]
    pub(crate) fn object(
        &mut self,
        mut on_member: impl FnMut(&mut Self, JStr<'a>) -> Result<()>,
    ) -> Result<()> {
        self.eat(b'{', "'{'")?;
        self.skip_ws();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(());
        }
        loop {
            self.skip_ws();
            let key = self.string()?;
            self.skip_ws();
            self.eat(b':', "':'")?;
            self.skip_ws();
            on_member(self, key)?;
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(());
                }
                _ => return Err(self.error("',' or '}'")),
            }
        }
    }

    /// Walk an array: `on_item` is called for each element and must consume it.
    pub(crate) fn array(&mut self, mut on_item: impl FnMut(&mut Self) -> Result<()>) -> Result<()> {
        self.eat(b'[', "'['")?;
        self.skip_ws();
        if self.peek() == Some(b']') {
            self.pos += 1;
            return Ok(());
        }
        loop {
            self.skip_ws();
            on_item(self)?;
            self.skip_ws();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b']') => {
                    self.pos += 1;
                    return Ok(());
                }
                _ => return Err(self.error("',' or ']'")),
            }
        }
    }

    /// A level list `[["price","qty"], …]` appended to `out`. `field`/`what` name it in errors.
    pub(crate) fn levels(&mut self, out: &mut Vec<Level>, field: &str, what: &str) -> Result<()> {
        let level_err = |got: &str| {
            ParseError::wrong_type(
                field,
                what,
                "a list of [price, quantity] decimal-string pairs",
                got,
            )
        };
        self.array(|cur| {
            if cur.peek() != Some(b'[') {
                let v = cur.value(1)?;
                return Err(level_err(&format!("an element that is {}", v.type_name())));
            }
            cur.pos += 1;
            cur.skip_ws();
            let price = cur.level_decimal(field, what, &level_err)?;
            cur.skip_ws();
            match cur.peek() {
                Some(b',') => cur.pos += 1,
                Some(b']') => return Err(level_err("a level with fewer than 2 entries")),
                _ => return Err(cur.error("',' in a price level")),
            }
            cur.skip_ws();
            let qty = cur.level_decimal(field, what, &level_err)?;
            cur.skip_ws();
            match cur.peek() {
                Some(b']') => cur.pos += 1,
                Some(b',') => {
                    // Syntax first: a broken third element is a malformed frame.
                    cur.pos += 1;
                    cur.skip_ws();
                    cur.value(1)?;
                    return Err(level_err("a level with more than 2 entries"));
                }
                _ => return Err(cur.error("']' closing a price level")),
            }
            if price <= 0.0 {
                return Err(ParseError::invalid(format!(
                    "level price in `{field}` of {what} must be positive, got {price}"
                )));
            }
            out.push(Level { price, qty });
            Ok(())
        })
    }

    fn level_decimal(
        &mut self,
        field: &str,
        what: &str,
        level_err: &dyn Fn(&str) -> ParseError,
    ) -> Result<f64> {
        match self.value(1)? {
            Val::Str(s) => decimal_value(&s, field, what),
            other => Err(level_err(&format!(
                "a level entry that is {}",
                other.type_name()
            ))),
        }
    }
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// Bit 7 of each byte of the result is set where `word` has a zero byte (exact for the
/// lowest such byte, which is all the scanner uses).
#[inline]
fn zero_bytes(word: u64) -> u64 {
    word.wrapping_sub(ONES) & !word & HIGHS
}

/// Marks bytes that end a fast string scan: `"`, `\\`, control (< 0x20) or non-ASCII.
#[inline]
fn special_bytes(word: u64) -> u64 {
    let quote = zero_bytes(word ^ (ONES * u64::from(b'"')));
    let backslash = zero_bytes(word ^ (ONES * u64::from(b'\\')));
    let control = word.wrapping_sub(ONES * 0x20) & !word & HIGHS;
    quote | backslash | control | (word & HIGHS)
}

/// Interpret a string value as a Binance decimal.
#[inline]
pub(crate) fn decimal_value(s: &JStr<'_>, field: &str, what: &str) -> Result<f64> {
    if let Some(raw) = s.plain() {
        if let Ok(v) = parse_decimal(raw) {
            return Ok(v);
        }
    }
    decimal_slow(s, field, what)
}

#[cold]
fn decimal_slow(s: &JStr<'_>, field: &str, what: &str) -> Result<f64> {
    let text = s.text()?;
    parse_decimal(text.as_bytes()).map_err(|e| {
        let shown: String = text.chars().take(40).collect();
        let why = match e {
            DecimalError::Negative => "is negative",
            DecimalError::NotPlainDecimal => "is not a plain decimal",
            DecimalError::Overflow => "is too large for a finite float",
        };
        ParseError::invalid(format!("field `{field}` in {what} {why}: {shown:?}"))
    })
}

/// Interpret a number token as a non-negative integer that fits `i64`.
#[inline]
pub(crate) fn int_value(raw: &[u8], field: &str, what: &str) -> Result<i64> {
    // The scanner validated the token as a JSON number: digits only means an integer.
    if !raw.is_empty() && raw.len() <= 18 && raw.iter().all(u8::is_ascii_digit) {
        return Ok(raw
            .iter()
            .fold(0i64, |acc, &c| acc * 10 + i64::from(c - b'0')));
    }
    int_slow(raw, field, what)
}

#[cold]
fn int_slow(raw: &[u8], field: &str, what: &str) -> Result<i64> {
    let shown = String::from_utf8_lossy(&raw[..raw.len().min(40)]).into_owned();
    if raw.iter().any(|c| matches!(c, b'.' | b'e' | b'E')) {
        return Err(ParseError::wrong_type(
            field,
            what,
            "an integer",
            &format!("the number {shown}"),
        ));
    }
    if raw.first() == Some(&b'-') {
        return Err(ParseError::invalid(format!(
            "field `{field}` in {what} is negative: {shown}"
        )));
    }
    let mut v: i64 = 0;
    for &c in raw {
        v = v
            .checked_mul(10)
            .and_then(|v| v.checked_add(i64::from(c - b'0')))
            .ok_or_else(|| {
                ParseError::invalid(format!(
                    "field `{field}` in {what} is too large for a 64-bit integer: {shown}"
                ))
            })?;
    }
    Ok(v)
}

fn decode_escaped(raw: &[u8]) -> Result<String> {
    let bad = || ParseError::new(ErrorKind::MalformedFrame, "invalid escape in string");
    let mut out = String::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let c = raw[i];
        if c != b'\\' {
            // Copy the run up to the next escape; it is UTF-8 because the frame is.
            let end = raw[i..]
                .iter()
                .position(|&b| b == b'\\')
                .map_or(raw.len(), |p| i + p);
            out.push_str(std::str::from_utf8(&raw[i..end]).map_err(|_| bad())?);
            i = end;
            continue;
        }
        let esc = *raw.get(i + 1).ok_or_else(bad)?;
        i += 2;
        match esc {
            b'"' => out.push('"'),
            b'\\' => out.push('\\'),
            b'/' => out.push('/'),
            b'b' => out.push('\u{8}'),
            b'f' => out.push('\u{c}'),
            b'n' => out.push('\n'),
            b'r' => out.push('\r'),
            b't' => out.push('\t'),
            b'u' => {
                let hi = hex4(raw.get(i..i + 4)).ok_or_else(bad)?;
                i += 4;
                let code = if (0xD800..0xDC00).contains(&hi) {
                    // A high surrogate must be followed by an escaped low surrogate.
                    if raw.get(i..i + 2) != Some(b"\\u") {
                        return Err(bad());
                    }
                    let lo = hex4(raw.get(i + 2..i + 6)).ok_or_else(bad)?;
                    if !(0xDC00..0xE000).contains(&lo) {
                        return Err(bad());
                    }
                    i += 6;
                    0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
                } else {
                    hi
                };
                out.push(char::from_u32(code).ok_or_else(bad)?);
            }
            _ => return Err(bad()),
        }
    }
    Ok(out)
}

fn hex4(h: Option<&[u8]>) -> Option<u32> {
    let h = std::str::from_utf8(h?).ok()?;
    u32::from_str_radix(h, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scan(s: &str) -> Result<Val<'_>> {
        let mut c = Cursor::new(s.as_bytes());
        c.skip_ws();
        let v = c.value(0)?;
        c.finish()?;
        Ok(v)
    }

    #[test]
    fn accepts_valid_json() {
        for s in [
            r#"{"a":[1,2,{"b":null}],"c":"x\n\u00e9","d":-0.5e-3,"e":true}"#,
            "[]",
            "{}",
            " 0 ",
            r#""\ud83d\ude00""#,
        ] {
            scan(s).unwrap_or_else(|e| panic!("{s}: {e}"));
        }
    }

    #[test]
    fn rejects_invalid_json() {
        for s in [
            "{",
            "[1,]",
            "{\"a\":}",
            "01",
            "1.",
            "-",
            "tru",
            "{\"a\" 1}",
            "\"abc",
            "[1 2]",
            "{}x",
            "\"\\x\"",
            "\"\\u12\"",
            "NaN",
            "{\"a\":1,}",
            "",
        ] {
            assert!(scan(s).is_err(), "{s:?} should be rejected");
        }
    }

    #[test]
    fn depth_limit_stops_deep_nesting() {
        let deep = "[".repeat(10_000) + &"]".repeat(10_000);
        assert!(scan(&deep).is_err());
    }

    #[test]
    fn decodes_escapes() {
        let mut c = Cursor::new(br#""a\"b\u00e9\ud83d\ude00""#);
        let s = c.string().unwrap();
        assert_eq!(s.text().unwrap(), "a\"b\u{e9}\u{1F600}");
        let mut c = Cursor::new(br#""\ud83d""#);
        assert!(c.string().unwrap().text().is_err());
    }

    #[test]
    fn integers() {
        assert_eq!(int_value(b"3735683259", "t", "trade").unwrap(), 3735683259);
        assert_eq!(
            int_value(b"9223372036854775808", "t", "trade")
                .unwrap_err()
                .kind,
            ErrorKind::InvalidValue
        );
        assert_eq!(
            int_value(b"-1", "t", "trade").unwrap_err().kind,
            ErrorKind::InvalidValue
        );
        assert_eq!(
            int_value(b"1.5", "t", "trade").unwrap_err().kind,
            ErrorKind::WrongType
        );
    }
}
