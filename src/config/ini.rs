//! An INI reader with the rules of Python's `ConfigParser`, which is what Barman uses
//! to read `barman.conf` (non-strict mode).
//!
//! - `[section]` headers; section names are case-sensitive, option names are not
//!   (they are lower-cased).
//! - `key = value` or `key: value`; the first `=` or `:` separates key and value.
//! - Whole-line comments start with `#` or `;` (after leading spaces). There are no
//!   inline comments: `gzip # fast` is the value `gzip # fast`.
//! - A line indented deeper than the option line that precedes it continues that
//!   option's value (joined with newlines).
//! - A `[DEFAULT]` section supplies values to every other section.
//!
//! Values are kept as raw text; interpolation (`%(name)s`), quote stripping and
//! type parsing happen in the resolver, which knows the context.

use std::fmt;
use std::path::{Path, PathBuf};

/// One `key = value` line (with its continuation lines).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// The option name, lower-cased.
    pub key: String,
    /// The raw value, continuation lines joined with `\n`.
    pub value: String,
    /// The 1-based line number of the option line.
    pub line: usize,
}

/// A `[section]` and its entries in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    /// The section name as written.
    pub name: String,
    /// The 1-based line number of the header.
    pub line: usize,
    /// The entries in file order; a repeated key appears twice (the last one wins).
    pub entries: Vec<Entry>,
}

impl Section {
    /// The last value given for `key` in this section.
    pub fn get(&self, key: &str) -> Option<&Entry> {
        self.entries.iter().rev().find(|e| e.key == key)
    }
}

/// A parsed INI file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IniFile {
    /// Where it was read from.
    pub path: PathBuf,
    /// Sections in file order. A section header repeated in the file gives two entries.
    pub sections: Vec<Section>,
}

/// A syntax error, with the file and line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    /// The file.
    pub path: PathBuf,
    /// The 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}, line {}: {}",
            self.path.display(),
            self.line,
            self.message
        )
    }
}

impl std::error::Error for SyntaxError {}

/// Parse the text of an INI file.
pub fn parse(path: &Path, text: &str) -> Result<IniFile, SyntaxError> {
    let mut sections: Vec<Section> = Vec::new();
    // The indentation of the current option line; deeper lines continue its value.
    let mut option_indent: Option<usize> = None;
    // Blank lines seen inside a value, added only if a continuation line follows.
    let mut pending_blank_lines = 0usize;
    let err = |line: usize, message: String| SyntaxError {
        path: path.to_path_buf(),
        line,
        message,
    };

    for (index, raw_line) in text.lines().enumerate() {
        let line_no = index + 1;
        let trimmed = raw_line.trim();
        if trimmed.starts_with('#') || trimmed.starts_with(';') {
            continue;
        }
        if trimmed.is_empty() {
            if option_indent.is_some() {
                pending_blank_lines += 1;
            }
            continue;
        }
        let indent = raw_line.len() - raw_line.trim_start().len();

        // A continuation line of the current option.
        if let (Some(base), Some(section)) = (option_indent, sections.last_mut()) {
            if indent > base {
                if let Some(entry) = section.entries.last_mut() {
                    for _ in 0..pending_blank_lines {
                        entry.value.push('\n');
                    }
                    pending_blank_lines = 0;
                    entry.value.push('\n');
                    entry.value.push_str(trimmed);
                    continue;
                }
            }
        }
        pending_blank_lines = 0;

        if let Some(header) = section_header(trimmed) {
            sections.push(Section {
                name: header.to_string(),
                line: line_no,
                entries: Vec::new(),
            });
            option_indent = None;
            continue;
        }
        let Some(section) = sections.last_mut() else {
            return Err(err(
                line_no,
                format!("'{trimmed}' appears before any [section] header"),
            ));
        };
        let Some(split) = trimmed.find(['=', ':']) else {
            return Err(err(
                line_no,
                format!("cannot parse '{trimmed}': expected 'option = value'"),
            ));
        };
        let key = trimmed[..split].trim_end();
        if key.is_empty() {
            return Err(err(
                line_no,
                format!("cannot parse '{trimmed}': the option name is missing"),
            ));
        }
        section.entries.push(Entry {
            key: key.to_lowercase(),
            value: trimmed[split + 1..].trim().to_string(),
            line: line_no,
        });
        option_indent = Some(indent);
    }
    Ok(IniFile {
        path: path.to_path_buf(),
        sections,
    })
}

/// `[name]` at the start of a line, as ConfigParser's `\[(?P<header>.+)\]` matches it:
/// the name runs to the last `]`.
fn section_header(line: &str) -> Option<&str> {
    let rest = line.strip_prefix('[')?;
    let end = rest.rfind(']')?;
    let name = &rest[..end];
    (!name.is_empty()).then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_str(text: &str) -> IniFile {
        parse(Path::new("/etc/barman.conf"), text).expect("valid ini")
    }

    #[test]
    fn reads_sections_keys_and_values() {
        let ini = parse_str(
            "# comment\n[barman]\nbarman_home = /var/lib/barman\n; other\nLog_Level: DEBUG\n\n[pg]\nconninfo = host=pg user=barman\n",
        );
        assert_eq!(ini.sections.len(), 2);
        assert_eq!(ini.sections[0].name, "barman");
        assert_eq!(
            ini.sections[0].get("barman_home").unwrap().value,
            "/var/lib/barman"
        );
        assert_eq!(ini.sections[0].get("log_level").unwrap().value, "DEBUG");
        assert_eq!(ini.sections[0].get("log_level").unwrap().line, 5);
        assert_eq!(
            ini.sections[1].get("conninfo").unwrap().value,
            "host=pg user=barman"
        );
    }

    #[test]
    fn first_separator_splits_and_inline_comments_are_values() {
        let ini = parse_str(
            "[pg]\ntablespace_bandwidth_limit = tbs1:100\ncompression = gzip # fast\nempty =\n",
        );
        let s = &ini.sections[0];
        assert_eq!(
            s.get("tablespace_bandwidth_limit").unwrap().value,
            "tbs1:100"
        );
        assert_eq!(s.get("compression").unwrap().value, "gzip # fast");
        assert_eq!(s.get("empty").unwrap().value, "");
    }

    #[test]
    fn indented_lines_continue_the_value() {
        let ini = parse_str(
            "[pg]\nconninfo = host=pg\n   user=barman\n\n   dbname=postgres\nslot_name = x\n",
        );
        let s = &ini.sections[0];
        assert_eq!(
            s.get("conninfo").unwrap().value,
            "host=pg\nuser=barman\n\ndbname=postgres"
        );
        assert_eq!(s.get("slot_name").unwrap().value, "x");
    }

    #[test]
    fn repeated_keys_keep_the_last_value_and_repeated_headers_are_visible() {
        let ini = parse_str("[pg]\na = 1\na = 2\n[pg]\nb = 3\n");
        assert_eq!(ini.sections[0].get("a").unwrap().value, "2");
        assert_eq!(ini.sections.len(), 2);
        assert_eq!(ini.sections[1].line, 4);
    }

    #[test]
    fn text_before_a_section_is_an_error_with_its_line() {
        let e = parse(Path::new("/x.conf"), "\nbarman_home = /x\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert_eq!(
            e.to_string(),
            "/x.conf, line 2: 'barman_home = /x' appears before any [section] header"
        );
    }

    #[test]
    fn a_line_without_separator_is_an_error() {
        let e = parse(Path::new("/x.conf"), "[pg]\njust words\n").unwrap_err();
        assert_eq!(e.line, 2);
        assert!(e.message.contains("expected 'option = value'"));
        let e = parse(Path::new("/x.conf"), "[pg]\n = 3\n").unwrap_err();
        assert!(e.message.contains("option name is missing"));
    }

    #[test]
    fn section_names_keep_case_and_run_to_the_last_bracket() {
        let ini = parse_str("[PG-Main]\n[a[b]]\n");
        assert_eq!(ini.sections[0].name, "PG-Main");
        assert_eq!(ini.sections[1].name, "a[b]");
    }
}
