//! The option reference in `docs/configuration.md` and `barman.conf.example`,
//! generated from the options table.
//!
//! Each file has a hand-written part and a generated part between two marker lines.
//! A test regenerates the generated part and fails when the file differs; run the
//! tests with `BARMAN_BLESS=1` to rewrite it after changing the table.

use super::options::{OptionSpec, Scope, OPTIONS};

/// The line before the generated part.
pub const BEGIN: &str =
    "BEGIN GENERATED OPTION REFERENCE (do not edit: cargo test with BARMAN_BLESS=1 rewrites it)";
/// The line after the generated part.
pub const END: &str = "END GENERATED OPTION REFERENCE";

fn scope_words(scope: Scope) -> String {
    let mut words = Vec::new();
    if scope == Scope::GLOBAL {
        return "[barman] only".into();
    }
    if scope.server() {
        words.push("server");
    }
    if scope.model() {
        words.push("model");
    }
    if scope.inherited() {
        words.push("inherited from [barman]");
    }
    words.join(", ")
}

fn default_text(o: &OptionSpec) -> String {
    match o.default {
        Some("") => "empty".into(),
        Some(d) => format!("`{d}`"),
        None => "unset".into(),
    }
}

/// The Markdown reference: one section per option.
pub fn markdown() -> String {
    let mut out = String::new();
    for (title, global) in [
        ("Global options (`[barman]`)", true),
        ("Server options", false),
    ] {
        out.push_str(&format!("\n### {title}\n"));
        for o in OPTIONS
            .iter()
            .filter(|o| (o.scope == Scope::GLOBAL) == global)
        {
            out.push_str(&format!(
                "\n#### `{}`\n\n{}\n\n- Where: {} ({})\n- Value: {}\n- Default: {}\n",
                o.name,
                o.doc,
                scope_words(o.scope),
                o.scope.code(),
                o.kind.syntax(),
                default_text(o)
            ));
        }
    }
    out
}

/// The commented reference for `barman.conf.example`: every option with its default.
pub fn example() -> String {
    let mut out = String::new();
    for (title, global) in [("[barman] options", true), ("server options", false)] {
        out.push_str(&format!(";\n; ---- {title} ----\n"));
        for o in OPTIONS
            .iter()
            .filter(|o| (o.scope == Scope::GLOBAL) == global)
        {
            out.push_str(";\n");
            for line in wrap(o.doc, 76) {
                out.push_str(&format!("; {line}\n"));
            }
            out.push_str(&format!(
                "; ({}; {})\n",
                scope_words(o.scope),
                o.kind.syntax()
            ));
            match o.default {
                Some(d) => out.push_str(&format!(";{} = {}\n", o.name, d)),
                None => out.push_str(&format!(";{} =\n", o.name)),
            }
        }
    }
    out
}

fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = vec![String::new()];
    for word in text.split_whitespace() {
        let line = lines.last_mut().expect("lines is never empty");
        if !line.is_empty() && line.len() + 1 + word.len() > width {
            lines.push(word.to_string());
        } else {
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(word);
        }
    }
    lines
}

/// Replace the generated part of `text` (between the lines containing [`BEGIN`] and
/// [`END`]) with `generated`. `None` when the markers are missing.
pub fn splice(text: &str, generated: &str) -> Option<String> {
    let begin = text.find(BEGIN)?;
    let after_begin = begin + text[begin..].find('\n')? + 1;
    let end = text[after_begin..].find(END)? + after_begin;
    let end_line_start = text[..end].rfind('\n').map_or(0, |i| i + 1);
    Some(format!(
        "{}{}{}",
        &text[..after_begin],
        generated,
        &text[end_line_start..]
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn check(relative: &str, generated: &str) {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(relative);
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
        let expected = splice(&text, generated)
            .unwrap_or_else(|| panic!("{relative} lacks the generated-reference markers"));
        if expected != text {
            if std::env::var_os("BARMAN_BLESS").is_some() {
                std::fs::write(&path, expected).expect("rewrite the reference");
                return;
            }
            panic!("{relative} is out of date with the options table: run `BARMAN_BLESS=1 cargo test --lib docs` and commit the result");
        }
    }

    #[test]
    fn configuration_doc_is_generated_from_the_table() {
        check("docs/configuration.md", &markdown());
    }

    #[test]
    fn example_config_is_generated_from_the_table() {
        check("barman.conf.example", &example());
    }

    #[test]
    fn every_option_appears_in_both_documents() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let doc = std::fs::read_to_string(root.join("docs/configuration.md")).unwrap();
        let example = std::fs::read_to_string(root.join("barman.conf.example")).unwrap();
        for o in OPTIONS {
            assert!(
                doc.contains(&format!("#### `{}`", o.name)),
                "{} not in docs",
                o.name
            );
            assert!(
                example.contains(&format!(";{} =", o.name)),
                "{} not in barman.conf.example",
                o.name
            );
        }
    }

    #[test]
    fn splice_replaces_only_the_generated_part() {
        let text = format!("head\n<!-- {BEGIN} -->\nold\n<!-- {END} -->\ntail\n");
        assert_eq!(
            splice(&text, "new\n").unwrap(),
            format!("head\n<!-- {BEGIN} -->\nnew\n<!-- {END} -->\ntail\n")
        );
        assert!(splice("no markers", "x").is_none());
    }
}
