//! JSON text exactly as Python's `json.dump(..., sort_keys=True)` writes it, so that
//! `-f json` output matches Barman's byte for byte: `", "` and `": "` separators
//! (or `","` with an indent), keys sorted, non-ASCII escaped as `\uXXXX`, floats in
//! Python's `repr` form.

use serde_json::Value;

/// Render `value` like `json.dumps(value, sort_keys=True, indent=indent)`.
pub fn python_dumps(value: &Value, indent: Option<usize>) -> String {
    let mut out = String::new();
    write_value(&mut out, value, indent, 0);
    out
}

fn write_value(out: &mut String, value: &Value, indent: Option<usize>, level: usize) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(true) => out.push_str("true"),
        Value::Bool(false) => out.push_str("false"),
        Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                out.push_str(&i.to_string());
            } else if let Some(u) = n.as_u64() {
                out.push_str(&u.to_string());
            } else {
                out.push_str(&python_float(n.as_f64().unwrap_or(f64::NAN)));
            }
        }
        Value::String(s) => write_string(out, s),
        Value::Array(items) => {
            if items.is_empty() {
                out.push_str("[]");
                return;
            }
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                separator(out, i, indent, level + 1);
                write_value(out, item, indent, level + 1);
            }
            close(out, indent, level);
            out.push(']');
        }
        Value::Object(map) => {
            if map.is_empty() {
                out.push_str("{}");
                return;
            }
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.iter().enumerate() {
                separator(out, i, indent, level + 1);
                write_string(out, key);
                out.push_str(": ");
                write_value(out, &map[key.as_str()], indent, level + 1);
            }
            close(out, indent, level);
            out.push('}');
        }
    }
}

fn separator(out: &mut String, index: usize, indent: Option<usize>, level: usize) {
    match indent {
        None => {
            if index > 0 {
                out.push_str(", ");
            }
        }
        Some(width) => {
            if index > 0 {
                out.push(',');
            }
            out.push('\n');
            out.push_str(&" ".repeat(width * level));
        }
    }
}

fn close(out: &mut String, indent: Option<usize>, level: usize) {
    if let Some(width) = indent {
        out.push('\n');
        out.push_str(&" ".repeat(width * level));
    }
}

fn write_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 || (c as u32) > 0x7e => {
                let mut buf = [0u16; 2];
                for unit in c.encode_utf16(&mut buf) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Python's `repr(float)`: the shortest round-trip digits, scientific notation when
/// the exponent is below -4 or at least 16, and always a decimal point or exponent.
pub fn python_float(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    if f == 0.0 {
        return if f.is_sign_negative() { "-0.0" } else { "0.0" }.into();
    }
    // `{:e}` gives the shortest round-trip mantissa and the exponent.
    let sci = format!("{f:e}");
    let (mantissa, exp) = sci.split_once('e').expect("{:e} always has an exponent");
    let exp: i32 = exp.parse().expect("{:e} exponent is an integer");
    if !(-4..16).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        return format!("{mantissa}e{sign}{:02}", exp.abs());
    }
    let plain = format!("{f}");
    if plain.contains('.') {
        plain
    } else {
        format!("{plain}.0")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn compact_form_matches_python_separators_and_sorting() {
        let v = json!({"b": [1, 2, {"z": null, "a": true}], "a": "x"});
        assert_eq!(
            python_dumps(&v, None),
            r#"{"a": "x", "b": [1, 2, {"a": true, "z": null}]}"#
        );
        assert_eq!(python_dumps(&json!({}), None), "{}");
    }

    #[test]
    fn indented_form_matches_python() {
        let v = json!({"global": {"k": [1, 2], "e": []}, "a": {}});
        assert_eq!(
            python_dumps(&v, Some(4)),
            "{\n    \"a\": {},\n    \"global\": {\n        \"e\": [],\n        \"k\": [\n            1,\n            2\n        ]\n    }\n}"
        );
    }

    #[test]
    fn strings_are_ascii_escaped() {
        assert_eq!(
            python_dumps(&json!("é\n\"\u{1F600}"), None),
            r#""\u00e9\n\"\ud83d\ude00""#
        );
    }

    #[test]
    fn floats_use_python_repr() {
        assert_eq!(python_float(5.79283), "5.79283");
        assert_eq!(python_float(1.0), "1.0");
        assert_eq!(python_float(1795312965.981544), "1795312965.981544");
        assert_eq!(python_float(1e16), "1e+16");
        assert_eq!(python_float(0.0001), "0.0001");
        assert_eq!(python_float(0.00001), "1e-05");
        assert_eq!(python_float(-2.5e-7), "-2.5e-07");
    }
}
