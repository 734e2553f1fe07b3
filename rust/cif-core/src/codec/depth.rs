//! The depth levels of a book entry: JSON `[[price, qty], ...]`, best level first.
//!
//! Python reads them as `[float(level[1]) for level in json.loads(text)]`, so:
//!
//! - the whole text must be valid JSON as Python's `json` reads it (which also takes `NaN`,
//!   `Infinity` and `-Infinity`), and a syntax error anywhere wins over a bad level;
//! - every level, kept or not, must have a qty: levels beyond the kept ones are checked too;
//! - the qty is a JSON number (an integer literal converts like Python's `float(int)`, so
//!   `-0` is `0.0`) or a string read like Python's `float(text)`; the price and any further
//!   elements may be any JSON value.
//!
//! Python's duck typing also lets a few other shapes through (a top-level string or object
//! iterated as levels, a string level indexed by character, `true` / `false` as 1.0 / 0.0,
//! and `bytes` in UTF-16 / UTF-32, whose encoding `json` detects); those are refused here:
//! the text is UTF-8, a level is a JSON list and its qty a number or a string.

use std::fmt;

use super::text::parse_py_float;
use crate::ingest::decimal::parse_decimal;

/// Containers nested deeper than this are refused (Python's decoder hits its recursion
/// limit well before the stack would).
const MAX_NESTING: usize = 128;

/// The text is not JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonError {
    /// Byte offset of the problem.
    pub pos: usize,
    /// What was expected there.
    pub expected: &'static str,
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "expecting {} at char {}", self.expected, self.pos)
    }
}

/// What is wrong with one level of valid JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LevelProblem {
    /// The document is not a list of levels (its JSON type).
    NotAList(&'static str),
    /// The level is not a list (its JSON type).
    LevelNotAList(&'static str),
    /// The level list has fewer than two elements.
    NoQty,
    /// The qty is neither a number nor a numeric string (the JSON text of it).
    QtyNotNumber(String),
    /// The qty is an integer literal too large for a double (Python: `OverflowError`).
    QtyTooLarge,
}

/// A level problem and the level (0 = best) it is at; for [`LevelProblem::NotAList`], 0.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LevelError {
    /// 0-based index of the level.
    pub level: usize,
    /// What is wrong.
    pub problem: LevelProblem,
}

impl fmt::Display for LevelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = self.level;
        match &self.problem {
            LevelProblem::NotAList(t) => write!(f, "is a JSON {t}, not a list of levels"),
            LevelProblem::LevelNotAList(t) => {
                write!(f, "level {level} is a JSON {t}, not a [price, qty] list")
            }
            LevelProblem::NoQty => write!(f, "level {level} has no qty"),
            LevelProblem::QtyNotNumber(v) => write!(f, "level {level} qty is not a number: {v}"),
            LevelProblem::QtyTooLarge => write!(f, "level {level} qty is too large for a float"),
        }
    }
}

/// A scalar or container just read, as far as the qty needs to know.
enum Val<'a> {
    /// A number literal; `integer`: no fraction, no exponent.
    Number { text: &'a [u8], integer: bool },
    /// A string's raw contents (between the quotes, escapes not decoded).
    Str { raw: &'a [u8], escaped: bool },
    /// `NaN`, `Infinity`, `-Infinity`.
    Special(f64),
    /// Anything else (its JSON type name).
    Other(&'static str),
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl<'a> Parser<'a> {
    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.s.get(self.i) {
            self.i += 1;
        }
    }

    fn err<T>(&self, expected: &'static str) -> Result<T, JsonError> {
        Err(JsonError {
            pos: self.i,
            expected,
        })
    }

    fn eat_word(&mut self, word: &[u8]) -> bool {
        if self.s[self.i..].starts_with(word) {
            self.i += word.len();
            true
        } else {
            false
        }
    }

    /// One value (after whitespace); containers are walked, their contents not kept.
    fn value(&mut self, depth: usize) -> Result<Val<'a>, JsonError> {
        self.ws();
        match self.s.get(self.i) {
            Some(b'[') => {
                self.array(depth + 1, |p, _| p.value(depth + 1).map(drop))?;
                Ok(Val::Other("list"))
            }
            Some(b'{') => {
                self.object(depth + 1)?;
                Ok(Val::Other("object"))
            }
            Some(b'"') => self.string(),
            Some(b'-' | b'0'..=b'9') => {
                if self.eat_word(b"-Infinity") {
                    return Ok(Val::Special(f64::NEG_INFINITY));
                }
                self.number()
            }
            _ => {
                if self.eat_word(b"NaN") {
                    Ok(Val::Special(f64::NAN))
                } else if self.eat_word(b"Infinity") {
                    Ok(Val::Special(f64::INFINITY))
                } else if self.eat_word(b"true") || self.eat_word(b"false") {
                    Ok(Val::Other("boolean"))
                } else if self.eat_word(b"null") {
                    Ok(Val::Other("null"))
                } else {
                    self.err("value")
                }
            }
        }
    }

    /// `[v, ...]` with `item(parser, index)` reading each element.
    fn array(
        &mut self,
        depth: usize,
        mut item: impl FnMut(&mut Self, usize) -> Result<(), JsonError>,
    ) -> Result<(), JsonError> {
        if depth > MAX_NESTING {
            return self.err("less nesting");
        }
        self.i += 1; // '['
        self.ws();
        if self.s.get(self.i) == Some(&b']') {
            self.i += 1;
            return Ok(());
        }
        let mut index = 0;
        loop {
            item(self, index)?;
            index += 1;
            self.ws();
            match self.s.get(self.i) {
                Some(b',') => self.i += 1,
                Some(b']') => {
                    self.i += 1;
                    return Ok(());
                }
                _ => return self.err("',' delimiter"),
            }
        }
    }

    fn object(&mut self, depth: usize) -> Result<(), JsonError> {
        if depth > MAX_NESTING {
            return self.err("less nesting");
        }
        self.i += 1; // '{'
        self.ws();
        if self.s.get(self.i) == Some(&b'}') {
            self.i += 1;
            return Ok(());
        }
        loop {
            self.ws();
            if self.s.get(self.i) != Some(&b'"') {
                return self.err("property name enclosed in double quotes");
            }
            self.string()?;
            self.ws();
            if self.s.get(self.i) != Some(&b':') {
                return self.err("':' delimiter");
            }
            self.i += 1;
            self.value(depth)?;
            self.ws();
            match self.s.get(self.i) {
                Some(b',') => self.i += 1,
                Some(b'}') => {
                    self.i += 1;
                    return Ok(());
                }
                _ => return self.err("',' delimiter"),
            }
        }
    }

    fn string(&mut self) -> Result<Val<'a>, JsonError> {
        self.i += 1; // '"'
        let start = self.i;
        let mut escaped = false;
        loop {
            match self.s.get(self.i) {
                None => return self.err("closing '\"'"),
                Some(b'"') => break,
                Some(b'\\') => {
                    escaped = true;
                    match self.s.get(self.i + 1) {
                        Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => self.i += 2,
                        Some(b'u') => {
                            let hex = self.s.get(self.i + 2..self.i + 6);
                            if !hex.is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) {
                                self.i += 1;
                                return self.err("4 hex digits after \\u");
                            }
                            self.i += 6;
                        }
                        _ => return self.err("a valid escape"),
                    }
                }
                // Python's json (strict) refuses raw control characters in strings.
                Some(&c) if c < 0x20 => return self.err("no control character"),
                Some(_) => self.i += 1,
            }
        }
        let raw = &self.s[start..self.i];
        // Outside strings any non-ASCII byte is a syntax error already; inside, the text
        // must be UTF-8 (Python decodes the whole document first).
        if !raw.is_ascii() {
            if let Err(e) = std::str::from_utf8(raw) {
                self.i = start + e.valid_up_to();
                return self.err("UTF-8 text");
            }
        }
        self.i += 1;
        Ok(Val::Str { raw, escaped })
    }

    fn digits(&mut self) -> usize {
        let start = self.i;
        while self.s.get(self.i).is_some_and(u8::is_ascii_digit) {
            self.i += 1;
        }
        self.i - start
    }

    /// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?`, as Python's scanner matches it: a
    /// fraction or exponent without digits ends the number before the `.` / `e`.
    fn number(&mut self) -> Result<Val<'a>, JsonError> {
        let start = self.i;
        if self.s.get(self.i) == Some(&b'-') {
            self.i += 1;
        }
        match self.s.get(self.i) {
            Some(b'0') => self.i += 1,
            Some(b'1'..=b'9') => {
                self.digits();
            }
            _ => {
                self.i = start;
                return self.err("value");
            }
        }
        let mut integer = true;
        if self.s.get(self.i) == Some(&b'.')
            && self.s.get(self.i + 1).is_some_and(u8::is_ascii_digit)
        {
            self.i += 1;
            self.digits();
            integer = false;
        }
        if let Some(b'e' | b'E') = self.s.get(self.i) {
            let mark = self.i;
            self.i += 1;
            if let Some(b'+' | b'-') = self.s.get(self.i) {
                self.i += 1;
            }
            if self.digits() == 0 {
                self.i = mark;
            } else {
                integer = false;
            }
        }
        Ok(Val::Number {
            text: &self.s[start..self.i],
            integer,
        })
    }
}

/// The qty of a level, as Python's `float(level[1])` gets it.
fn qty(v: Val<'_>) -> Result<f64, LevelProblem> {
    match v {
        Val::Number { text, integer } => {
            // A plain decimal (the gateway's levels) has a fast exact path; the literal is
            // ASCII by construction, so the general parser sees the same text.
            let x: f64 = parse_decimal(text)
                .ok()
                .or_else(|| std::str::from_utf8(text).ok()?.parse().ok())
                .ok_or_else(|| LevelProblem::QtyNotNumber(show(text)))?;
            if integer {
                if x.is_infinite() {
                    return Err(LevelProblem::QtyTooLarge);
                }
                // float(int): an integer has no signed zero.
                return Ok(if x == 0.0 { 0.0 } else { x });
            }
            Ok(x)
        }
        Val::Str { raw, escaped } => {
            let text = if escaped {
                unescape(raw)
            } else {
                Some(raw.to_vec())
            };
            text.and_then(|t| parse_py_float(&t).ok())
                .ok_or_else(|| LevelProblem::QtyNotNumber(show_json_string(raw)))
        }
        Val::Special(x) => Ok(x),
        Val::Other(t) => Err(LevelProblem::QtyNotNumber(format!("a JSON {t}"))),
    }
}

/// A JSON string's contents with escapes decoded (None for lone surrogates: no number
/// contains one anyway).
fn unescape(raw: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        if raw[i] != b'\\' {
            out.push(raw[i]);
            i += 1;
            continue;
        }
        let c = raw[i + 1];
        i += 2;
        let simple = match c {
            b'b' => Some(0x08),
            b'f' => Some(0x0c),
            b'n' => Some(b'\n'),
            b'r' => Some(b'\r'),
            b't' => Some(b'\t'),
            b'u' => None,
            other => Some(other),
        };
        if let Some(b) = simple {
            out.push(b);
            continue;
        }
        let hex4 = |at: usize| -> Option<u32> {
            let h = std::str::from_utf8(raw.get(at..at + 4)?).ok()?;
            u32::from_str_radix(h, 16).ok()
        };
        let mut cp = hex4(i)?;
        i += 4;
        if (0xD800..0xDC00).contains(&cp) && raw.get(i..i + 2) == Some(b"\\u") {
            let low = hex4(i + 2)?;
            if (0xDC00..0xE000).contains(&low) {
                cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
                i += 6;
            }
        }
        let ch = char::from_u32(cp)?;
        let mut buf = [0u8; 4];
        out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
    }
    Some(out)
}

/// At most this many bytes of a value are quoted in a message.
const SHOW_MAX: usize = 40;

/// A JSON string as it appears in the text, shortened.
fn show_json_string(raw: &[u8]) -> String {
    format!("\"{}\"", shorten(raw))
}

fn show(text: &[u8]) -> String {
    shorten(text)
}

fn shorten(text: &[u8]) -> String {
    let cut = &text[..text.len().min(SHOW_MAX)];
    let mut s = String::from_utf8_lossy(cut).into_owned();
    if cut.len() < text.len() {
        s.push_str("...");
    }
    s
}

/// Read `text` as the JSON list of depth levels, putting the qty of the first `keep`
/// levels into `out` (cleared first).
///
/// `Err` if the text is not JSON; `Ok(Some(..))` for valid JSON with a bad level (the
/// first one, in level order), `Ok(None)` when every level is good.
pub fn parse_depth_levels(
    text: &[u8],
    keep: usize,
    out: &mut Vec<f64>,
) -> Result<Option<LevelError>, JsonError> {
    out.clear();
    let mut p = Parser { s: text, i: 0 };
    p.ws();
    let mut first_bad: Option<LevelError> = None;
    if p.s.get(p.i) == Some(&b'[') {
        p.array(1, |p, level| {
            p.ws();
            if p.s.get(p.i) != Some(&b'[') {
                let v = p.value(1)?;
                if first_bad.is_none() {
                    let t = match v {
                        Val::Number { .. } | Val::Special(_) => "number",
                        Val::Str { .. } => "string",
                        Val::Other(t) => t,
                    };
                    first_bad = Some(LevelError {
                        level,
                        problem: LevelProblem::LevelNotAList(t),
                    });
                }
                return Ok(());
            }
            let mut got: Option<Result<f64, LevelProblem>> = None;
            p.array(2, |p, k| {
                let v = p.value(2)?;
                if k == 1 && first_bad.is_none() {
                    got = Some(qty(v));
                }
                Ok(())
            })?;
            if first_bad.is_none() {
                match got {
                    Some(Ok(q)) => {
                        if level < keep {
                            out.push(q);
                        }
                    }
                    Some(Err(problem)) => first_bad = Some(LevelError { level, problem }),
                    None => {
                        first_bad = Some(LevelError {
                            level,
                            problem: LevelProblem::NoQty,
                        })
                    }
                }
            }
            Ok(())
        })?;
    } else {
        let v = p.value(0)?;
        let t = match v {
            Val::Number { .. } | Val::Special(_) => "number",
            Val::Str { .. } => "string",
            Val::Other(t) => t,
        };
        first_bad = Some(LevelError {
            level: 0,
            problem: LevelProblem::NotAList(t),
        });
    }
    p.ws();
    if p.i != p.s.len() {
        // Python: "Extra data".
        return p.err("end of data");
    }
    if first_bad.is_some() {
        out.clear();
    }
    Ok(first_bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn levels(text: &str, keep: usize) -> Result<Result<Vec<u64>, LevelError>, JsonError> {
        let mut out = Vec::new();
        let bad = parse_depth_levels(text.as_bytes(), keep, &mut out)?;
        Ok(match bad {
            Some(e) => Err(e),
            None => Ok(out.iter().map(|x| x.to_bits()).collect()),
        })
    }

    fn bits(xs: &[f64]) -> Vec<u64> {
        xs.iter().map(|x| x.to_bits()).collect()
    }

    #[test]
    fn reads_the_qty_of_the_kept_levels() {
        let text = "[[61685.99,1.0087],[61685.98,0.10972],[61685.57,9e-05]]";
        assert_eq!(levels(text, 10), Ok(Ok(bits(&[1.0087, 0.10972, 9e-05]))));
        assert_eq!(levels(text, 2), Ok(Ok(bits(&[1.0087, 0.10972]))));
        assert_eq!(levels(text, 0), Ok(Ok(vec![])));
        assert_eq!(levels("[]", 5), Ok(Ok(vec![])));
        assert_eq!(levels(" [ ] \n", 5), Ok(Ok(vec![])));
        let strings = r#"[["61685.99", "1.0087"], ["1", " 2_0 "], [null, "\u0033", 7, {"a": []}]]"#;
        assert_eq!(levels(strings, 5), Ok(Ok(bits(&[1.0087, 20.0, 3.0]))));
        let special = "[[1,NaN],[1,Infinity],[1,-Infinity],[1,-0],[1,-0.0],[1,5],[1,1e400]]";
        let got = levels(special, 10).unwrap().unwrap();
        assert_eq!(got[0], f64::NAN.to_bits());
        assert_eq!(
            got[1..],
            bits(&[
                f64::INFINITY,
                f64::NEG_INFINITY,
                0.0,
                -0.0,
                5.0,
                f64::INFINITY
            ])
        );
    }

    #[test]
    fn levels_beyond_the_kept_ones_are_checked_too() {
        let e = levels("[[1,2],[1,2],[1]]", 1).unwrap().unwrap_err();
        assert_eq!(e.to_string(), "level 2 has no qty");
        let e = levels(r#"[[1,2],[1,"x"]]"#, 1).unwrap().unwrap_err();
        assert_eq!(e.to_string(), "level 1 qty is not a number: \"x\"");
        let e = levels("[[1,2],[1,null],[1]]", 5).unwrap().unwrap_err();
        assert_eq!(e.to_string(), "level 1 qty is not a number: a JSON null");
        let e = levels("[[1,true]]", 5).unwrap().unwrap_err();
        assert_eq!(e.to_string(), "level 0 qty is not a number: a JSON boolean");
        let e = levels("[5]", 5).unwrap().unwrap_err();
        assert_eq!(
            e.to_string(),
            "level 0 is a JSON number, not a [price, qty] list"
        );
        let e = levels(r#"{"a": 1}"#, 5).unwrap().unwrap_err();
        assert_eq!(e.to_string(), "is a JSON object, not a list of levels");
        let e = levels(&format!("[[1,1{}]]", "0".repeat(400)), 5)
            .unwrap()
            .unwrap_err();
        assert_eq!(e.problem, LevelProblem::QtyTooLarge);
    }

    #[test]
    fn a_syntax_error_anywhere_wins_over_a_bad_level() {
        for (text, pos) in [
            ("[[broken", 2),
            ("[[1,\"x\"],[1,2]", 14),
            ("[[1,2]] x", 8),
            ("[[1,2],]", 7),
            ("[[1,01]]", 5),
            ("[[1,2.]]", 5),
            ("[[1,-]]", 4),
            ("[[1,\"a\nb\"]]", 6),
            ("[[1,\"\\x\"]]", 5),
            ("[[1,\"\\u12\"]]", 6),
            ("", 0),
            ("[{1:2}]", 2),
            ("[nan]", 1),
        ] {
            let e = levels(text, 5).unwrap_err();
            assert_eq!(e.pos, pos, "{text:?}: {e}");
        }
        // The positions are the ones Python's json.loads reports.
        let deep = format!("[{}{}]", "[".repeat(200), "]".repeat(200));
        assert!(levels(&deep, 5).is_err());
        assert!(parse_depth_levels(b"[[1,\xff]]", 5, &mut Vec::new()).is_err());
        let e = parse_depth_levels(b"[[\"a\xff\",1]]", 5, &mut Vec::new()).unwrap_err();
        assert_eq!((e.pos, e.expected), (4, "UTF-8 text"));
        let utf8 = "[[\"é\",1]]";
        assert_eq!(levels(utf8, 5), Ok(Ok(bits(&[1.0]))));
    }
}
