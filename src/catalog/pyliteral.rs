//! Python literals, as Barman stores some `backup.info` values: it writes them with
//! `repr()` and reads them with `ast.literal_eval` (`backup_label`, `copy_stats`,
//! `tablespaces`, `included_files`, `snapshots_info`).
//!
//! [`PyValue::parse`] reads the subset Barman produces (None, booleans, integers,
//! floats, strings with escapes, lists, tuples, dicts); [`PyValue::repr`] writes
//! exactly what Python's `repr` would, so that files we write read back identically
//! in Barman and compare equal byte for byte.

use std::fmt::Write as _;

/// A Python literal value.
#[derive(Debug, Clone, PartialEq)]
pub enum PyValue {
    /// `None`.
    None,
    /// `True` / `False`.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A float.
    Float(f64),
    /// A string.
    Str(String),
    /// `[...]`.
    List(Vec<PyValue>),
    /// `(...)`.
    Tuple(Vec<PyValue>),
    /// `{...}`, in order.
    Dict(Vec<(PyValue, PyValue)>),
}

impl PyValue {
    /// Parse one literal; the whole text must be consumed (spaces aside).
    pub fn parse(text: &str) -> Result<PyValue, String> {
        let mut p = Parser {
            s: text.as_bytes(),
            text,
            i: 0,
        };
        let value = p.value(0)?;
        p.skip_spaces();
        if p.i != p.s.len() {
            return Err(format!(
                "unexpected text after the value at offset {}: {:?}",
                p.i,
                &text[p.i..text.len().min(p.i + 20)]
            ));
        }
        Ok(value)
    }

    /// Python's `repr` of the value.
    pub fn repr(&self) -> String {
        let mut out = String::new();
        self.write_repr(&mut out);
        out
    }

    fn write_repr(&self, out: &mut String) {
        match self {
            PyValue::None => out.push_str("None"),
            PyValue::Bool(true) => out.push_str("True"),
            PyValue::Bool(false) => out.push_str("False"),
            PyValue::Int(n) => {
                let _ = write!(out, "{n}");
            }
            PyValue::Float(f) => out.push_str(&float_repr(*f)),
            PyValue::Str(s) => out.push_str(&str_repr(s)),
            PyValue::List(items) => {
                out.push('[');
                write_items(out, items);
                out.push(']');
            }
            PyValue::Tuple(items) => {
                out.push('(');
                write_items(out, items);
                if items.len() == 1 {
                    out.push(',');
                }
                out.push(')');
            }
            PyValue::Dict(pairs) => {
                out.push('{');
                for (i, (k, v)) in pairs.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    k.write_repr(out);
                    out.push_str(": ");
                    v.write_repr(out);
                }
                out.push('}');
            }
        }
    }

    /// The string, if this is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            PyValue::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The integer, if this is one.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            PyValue::Int(n) => Some(*n),
            _ => None,
        }
    }

    /// The number as a float (ints too).
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            PyValue::Int(n) => Some(*n as f64),
            PyValue::Float(f) => Some(*f),
            _ => None,
        }
    }

    /// The items of a list or tuple.
    pub fn items(&self) -> Option<&[PyValue]> {
        match self {
            PyValue::List(items) | PyValue::Tuple(items) => Some(items),
            _ => None,
        }
    }

    /// A dict entry by string key.
    pub fn get(&self, key: &str) -> Option<&PyValue> {
        match self {
            PyValue::Dict(pairs) => pairs
                .iter()
                .find(|(k, _)| k.as_str() == Some(key))
                .map(|(_, v)| v),
            _ => None,
        }
    }

    /// The value as JSON (tuples become arrays, dict keys strings).
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match self {
            PyValue::None => J::Null,
            PyValue::Bool(b) => J::Bool(*b),
            PyValue::Int(n) => J::from(*n),
            PyValue::Float(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
            PyValue::Str(s) => J::String(s.clone()),
            PyValue::List(items) | PyValue::Tuple(items) => {
                J::Array(items.iter().map(PyValue::to_json).collect())
            }
            PyValue::Dict(pairs) => J::Object(
                pairs
                    .iter()
                    .map(|(k, v)| {
                        let key = match k {
                            PyValue::Str(s) => s.clone(),
                            other => other.repr(),
                        };
                        (key, v.to_json())
                    })
                    .collect(),
            ),
        }
    }
}

fn write_items(out: &mut String, items: &[PyValue]) {
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        item.write_repr(out);
    }
}

/// Python's `repr(float)`.
fn float_repr(f: f64) -> String {
    if f.is_nan() {
        return "nan".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "inf" } else { "-inf" }.into();
    }
    crate::output::json::python_float(f)
}

/// Python 3's `repr(str)`: single quotes unless the text has a `'` and no `"`;
/// backslash escapes for `\\`, the quote, `\n`, `\r`, `\t` and non-printable
/// characters; printable non-ASCII characters as they are.
pub fn str_repr(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c if (0x80..0xa0).contains(&(c as u32)) => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

struct Parser<'a> {
    s: &'a [u8],
    text: &'a str,
    i: usize,
}

const MAX_DEPTH: usize = 32;

impl Parser<'_> {
    fn skip_spaces(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }

    fn value(&mut self, depth: usize) -> Result<PyValue, String> {
        if depth > MAX_DEPTH {
            return Err("literal nested too deeply".into());
        }
        self.skip_spaces();
        match self.peek() {
            None => Err("unexpected end of text".into()),
            Some(b'\'' | b'"') => self.string().map(PyValue::Str),
            Some(b'[') => self
                .sequence(b']', depth)
                .map(|(items, _)| PyValue::List(items)),
            Some(b'(') => {
                let (items, trailing_comma) = self.sequence(b')', depth)?;
                if items.len() == 1 && !trailing_comma {
                    // `(x)` is just x in Python.
                    Ok(items.into_iter().next().expect("one item"))
                } else {
                    Ok(PyValue::Tuple(items))
                }
            }
            Some(b'{') => self.dict(depth),
            Some(c) if c == b'-' || c == b'+' || c.is_ascii_digit() || c == b'.' => self.number(),
            Some(_) => self.word(),
        }
    }

    fn word(&mut self) -> Result<PyValue, String> {
        let start = self.i;
        while self.i < self.s.len()
            && (self.s[self.i].is_ascii_alphanumeric() || self.s[self.i] == b'_')
        {
            self.i += 1;
        }
        match &self.text[start..self.i] {
            "None" => Ok(PyValue::None),
            "True" => Ok(PyValue::Bool(true)),
            "False" => Ok(PyValue::Bool(false)),
            "" => Err(format!("unexpected character at offset {start}")),
            other => Err(format!("'{other}' is not a Python literal")),
        }
    }

    fn number(&mut self) -> Result<PyValue, String> {
        let start = self.i;
        if matches!(self.peek(), Some(b'-' | b'+')) {
            self.i += 1;
        }
        while self.i < self.s.len()
            && (self.s[self.i].is_ascii_alphanumeric()
                || matches!(self.s[self.i], b'.' | b'_' | b'+' | b'-'))
        {
            // A sign is part of the number only right after an exponent mark.
            if matches!(self.s[self.i], b'+' | b'-') && !matches!(self.s[self.i - 1], b'e' | b'E') {
                break;
            }
            self.i += 1;
        }
        let text = self.text[start..self.i].replace('_', "");
        if let Ok(n) = text.parse::<i64>() {
            return Ok(PyValue::Int(n));
        }
        match text.as_str() {
            "inf" | "+inf" => return Ok(PyValue::Float(f64::INFINITY)),
            "-inf" => return Ok(PyValue::Float(f64::NEG_INFINITY)),
            _ => {}
        }
        text.parse::<f64>()
            .map(PyValue::Float)
            .map_err(|_| format!("'{text}' is not a number"))
    }

    fn string(&mut self) -> Result<String, String> {
        let quote = self.s[self.i];
        self.i += 1;
        let mut out = String::new();
        loop {
            let Some(c) = self.text[self.i..].chars().next() else {
                return Err("unterminated string".into());
            };
            self.i += c.len_utf8();
            match c {
                c if c as u32 == quote as u32 => return Ok(out),
                '\\' => {
                    let Some(e) = self.text[self.i..].chars().next() else {
                        return Err("unterminated escape in string".into());
                    };
                    self.i += e.len_utf8();
                    match e {
                        '\\' => out.push('\\'),
                        '\'' => out.push('\''),
                        '"' => out.push('"'),
                        'n' => out.push('\n'),
                        'r' => out.push('\r'),
                        't' => out.push('\t'),
                        'a' => out.push('\u{07}'),
                        'b' => out.push('\u{08}'),
                        'f' => out.push('\u{0c}'),
                        'v' => out.push('\u{0b}'),
                        '0'..='7' => {
                            let mut value = e as u32 - '0' as u32;
                            for _ in 0..2 {
                                match self.peek() {
                                    Some(d @ b'0'..=b'7') => {
                                        value = value * 8 + (d - b'0') as u32;
                                        self.i += 1;
                                    }
                                    _ => break,
                                }
                            }
                            out.push(char::from_u32(value).ok_or("bad octal escape")?);
                        }
                        'x' => out.push(self.hex_escape(2)?),
                        'u' => out.push(self.hex_escape(4)?),
                        'U' => out.push(self.hex_escape(8)?),
                        '\n' => {}
                        other => {
                            // Unknown escapes keep the backslash, as in Python.
                            out.push('\\');
                            out.push(other);
                        }
                    }
                }
                c => out.push(c),
            }
        }
    }

    fn hex_escape(&mut self, digits: usize) -> Result<char, String> {
        let end = self.i + digits;
        let hex = self
            .text
            .get(self.i..end)
            .ok_or("truncated \\x, \\u or \\U escape")?;
        let value =
            u32::from_str_radix(hex, 16).map_err(|_| format!("bad escape digits '{hex}'"))?;
        self.i = end;
        char::from_u32(value).ok_or_else(|| format!("escape \\{hex} is not a character"))
    }

    /// Items up to `close`; also says whether a comma preceded the close.
    fn sequence(&mut self, close: u8, depth: usize) -> Result<(Vec<PyValue>, bool), String> {
        self.i += 1;
        let mut items = Vec::new();
        let mut trailing_comma = false;
        loop {
            self.skip_spaces();
            if self.peek() == Some(close) {
                self.i += 1;
                return Ok((items, trailing_comma));
            }
            items.push(self.value(depth + 1)?);
            self.skip_spaces();
            match self.peek() {
                Some(b',') => {
                    self.i += 1;
                    trailing_comma = true;
                }
                Some(c) if c == close => {
                    trailing_comma = false;
                }
                _ => return Err(format!("expected ',' or '{}'", close as char)),
            }
        }
    }

    fn dict(&mut self, depth: usize) -> Result<PyValue, String> {
        self.i += 1;
        let mut pairs = Vec::new();
        loop {
            self.skip_spaces();
            if self.peek() == Some(b'}') {
                self.i += 1;
                return Ok(PyValue::Dict(pairs));
            }
            let key = self.value(depth + 1)?;
            self.skip_spaces();
            if self.peek() != Some(b':') {
                return Err("expected ':' in a dict".into());
            }
            self.i += 1;
            let value = self.value(depth + 1)?;
            pairs.push((key, value));
            self.skip_spaces();
            match self.peek() {
                Some(b',') => self.i += 1,
                Some(b'}') => {}
                _ => return Err("expected ',' or '}' in a dict".into()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(text: &str) {
        let value = PyValue::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(value.repr(), text, "repr differs");
    }

    #[test]
    fn barman_values_round_trip_exactly() {
        round_trip("'START WAL LOCATION: 0/A000028 (file 00000001000000000000000A)\\nCHECKPOINT LOCATION: 0/A000060\\nBACKUP METHOD: streamed\\n'");
        round_trip("{'copy_time': 5.79283, 'total_time': 5.79283}");
        round_trip("[('tbs1', 16412, '/srv/pg/tbs1'), ('tbs2', 16413, '/srv/pg/tbs 2')]");
        round_trip("['/etc/postgresql/15/main/extra.conf']");
        round_trip("None");
        round_trip("{'a': [1, -2, 3.5e-07, True, False, None], 'b': ('x',)}");
        round_trip("\"it's\"");
        round_trip("'both \\' and \"'");
        round_trip("'tab\\there \\\\ and \\x00 é'");
    }

    #[test]
    fn parses_what_python_accepts_beyond_repr() {
        assert_eq!(PyValue::parse("(1)").unwrap(), PyValue::Int(1));
        assert_eq!(
            PyValue::parse("[1, 2,]").unwrap(),
            PyValue::List(vec![PyValue::Int(1), PyValue::Int(2)])
        );
        assert_eq!(
            PyValue::parse("'\\u00e9\\101'").unwrap(),
            PyValue::Str("éA".into())
        );
        assert_eq!(
            PyValue::parse("  {'k' : 'v'}  ").unwrap().get("k"),
            Some(&PyValue::Str("v".into()))
        );
        assert_eq!(PyValue::parse("1_000").unwrap(), PyValue::Int(1000));
    }

    #[test]
    fn malformed_literals_are_errors_not_panics() {
        for bad in [
            "",
            "'unterminated",
            "[1, 2",
            "{'a' 1}",
            "(1 2)",
            "os.system('x')",
            "'\\x4'",
            "1e",
            "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]",
            "'\\",
            "{",
            "-",
            "'é",
        ] {
            assert!(PyValue::parse(bad).is_err(), "{bad:?} should not parse");
        }
    }

    #[test]
    fn json_conversion_keeps_structure() {
        let v = PyValue::parse("[('tbs1', 16412, '/srv')]").unwrap();
        assert_eq!(v.to_json(), serde_json::json!([["tbs1", 16412, "/srv"]]));
    }
}
