//! What commands print: the console writer and the JSON writer (`-f json`), as
//! Barman's `barman/output.py` defines them.
//!
//! Console: results and info messages on stdout; `WARNING: `, `ERROR: `,
//! `EXCEPTION: ` and `DEBUG: ` lines on stderr; `-q` hides info. JSON: results are
//! collected under their key (usually the server name), messages under `_INFO`,
//! `_WARNING`, `_ERROR`, `_EXCEPTION`, `_DEBUG`, and one document is printed at the
//! end. Every message is also logged. Passwords in connection strings are redacted
//! from everything printed or logged. An error message marks the run as failed,
//! which decides the exit code.

pub mod json;

use std::io::Write;

use serde_json::Value;

/// The output format chosen with `-f`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Human-readable lines.
    Console,
    /// One JSON document.
    Json,
}

/// Where printed text goes; tests capture it, the binary uses the process streams.
pub trait Sink {
    /// Write a line (without its newline) to standard output.
    fn out(&mut self, line: &str);
    /// Write a line (without its newline) to standard error.
    fn err(&mut self, line: &str);
    /// Write text to standard output as it is, with no newline added: the JSON document,
    /// which Barman prints with `json.dump` and no trailing newline. Captures keep it as
    /// one line.
    fn out_raw(&mut self, text: &str) {
        self.out(text);
    }
}

/// The process's standard streams. A closed stdout (`barman list-servers | head`) is
/// not an error.
pub struct StdSink;

impl Sink for StdSink {
    fn out(&mut self, line: &str) {
        let mut stdout = std::io::stdout().lock();
        let _ = writeln!(stdout, "{line}").and_then(|()| stdout.flush());
    }
    fn err(&mut self, line: &str) {
        let mut stderr = std::io::stderr().lock();
        let _ = writeln!(stderr, "{line}").and_then(|()| stderr.flush());
    }
    fn out_raw(&mut self, text: &str) {
        let mut stdout = std::io::stdout().lock();
        let _ = write!(stdout, "{text}").and_then(|()| stdout.flush());
    }
}

/// Lines captured in memory (for tests).
#[derive(Default, Debug)]
pub struct MemorySink {
    /// Lines written to stdout.
    pub stdout: Vec<String>,
    /// Lines written to stderr.
    pub stderr: Vec<String>,
}

impl Sink for MemorySink {
    fn out(&mut self, line: &str) {
        self.stdout.push(line.to_string());
    }
    fn err(&mut self, line: &str) {
        self.stderr.push(line.to_string());
    }
}

/// The output of one run.
pub struct Output {
    format: Format,
    quiet: bool,
    debug: bool,
    color: bool,
    errored: bool,
    usage_error: bool,
    exit_code: Option<u8>,
    json: serde_json::Map<String, Value>,
    sink: Box<dyn Sink>,
}

impl Output {
    /// An output writing to `sink`.
    pub fn new(
        format: Format,
        quiet: bool,
        debug: bool,
        color: bool,
        sink: Box<dyn Sink>,
    ) -> Output {
        Output {
            format,
            quiet,
            debug,
            color,
            errored: false,
            usage_error: false,
            exit_code: None,
            json: serde_json::Map::new(),
            sink,
        }
    }

    /// The chosen format.
    pub fn format(&self) -> Format {
        self.format
    }

    /// Whether an error has been reported.
    pub fn errored(&self) -> bool {
        self.errored
    }

    /// Whether an error was about how barman was called or configured (exit code 2).
    pub fn usage_errored(&self) -> bool {
        self.usage_error
    }

    /// An error in how barman was called or configured (an unknown server): printed
    /// like any error, and the run exits with code 2.
    pub fn usage_error(&mut self, message: &str) {
        self.usage_error = true;
        self.error(message);
    }

    /// An error that ends the run with a specific exit code.
    pub fn error_with_code(&mut self, message: &str, code: u8) {
        self.exit_code = Some(code);
        self.error(message);
    }

    /// The exit code chosen by [`Output::error_with_code`], if any.
    pub fn exit_code(&self) -> Option<u8> {
        self.exit_code
    }

    /// Mark the run as failed (exit code 1) without printing anything: the failure was
    /// already shown in the command's own output (a failed check).
    pub fn mark_failed(&mut self) {
        self.errored = true;
    }

    /// Mark the run as failed with a specific exit code, without printing anything
    /// (`check --nagios` exits 2 on CRITICAL).
    pub fn mark_failed_with_code(&mut self, code: u8) {
        self.errored = true;
        self.exit_code = Some(code);
    }

    /// Whether colours are on.
    pub fn color(&self) -> bool {
        self.color
    }

    /// An informational message (hidden by `-q`).
    pub fn info(&mut self, message: &str) {
        log::info!(target: "barman.output", "{}", redact_passwords(message));
        self.info_unlogged(message);
    }

    /// An informational message that is not logged (large dumps such as `diagnose`).
    pub fn info_unlogged(&mut self, message: &str) {
        match self.format {
            Format::Console => {
                if !self.quiet {
                    self.sink.out(&redact_passwords(message));
                }
            }
            Format::Json => self.push_message("_INFO", message),
        }
    }

    /// A warning.
    pub fn warning(&mut self, message: &str) {
        log::warn!(target: "barman.output", "{}", redact_passwords(message));
        match self.format {
            Format::Console => {
                let line = self.yellow(&format!("WARNING: {message}"));
                self.sink.err(&redact_passwords(&line));
            }
            Format::Json => self.push_message("_WARNING", message),
        }
    }

    /// An error: printed, logged, and the run will exit non-zero.
    pub fn error(&mut self, message: &str) {
        self.errored = true;
        log::error!(target: "barman.output", "{}", redact_passwords(message));
        match self.format {
            Format::Console => {
                let line = self.red(&format!("ERROR: {message}"));
                self.sink.err(&redact_passwords(&line));
            }
            Format::Json => self.push_message("_ERROR", message),
        }
    }

    /// A hint that follows an error, on its own `HINT: ` line; logged too, so that a
    /// process started by cron (whose output goes nowhere) leaves it in the log.
    pub fn hint(&mut self, message: &str) {
        log::info!(target: "barman.output", "HINT: {}", redact_passwords(message));
        match self.format {
            Format::Console => self
                .sink
                .err(&redact_passwords(&format!("HINT: {message}"))),
            Format::Json => self.push_message("_HINT", message),
        }
    }

    /// An unexpected failure.
    pub fn exception(&mut self, message: &str) {
        self.errored = true;
        log::error!(target: "barman.output", "{}", redact_passwords(message));
        match self.format {
            Format::Console => {
                let line = self.red(&format!("EXCEPTION: {message}"));
                self.sink.err(&redact_passwords(&line));
            }
            Format::Json => self.push_message("_EXCEPTION", message),
        }
    }

    /// A debug message, shown with `-d`.
    pub fn debug(&mut self, message: &str) {
        log::debug!(target: "barman.output", "{}", redact_passwords(message));
        if !self.debug {
            return;
        }
        match self.format {
            Format::Console => self
                .sink
                .err(&redact_passwords(&format!("DEBUG: {message}"))),
            Format::Json => self.push_message("_DEBUG", message),
        }
    }

    /// A command result: `json` is stored under `key` in JSON mode; in console mode
    /// the lines are printed (hidden by `-q`, like every info line).
    pub fn result(&mut self, key: &str, json: Value, console: impl FnOnce() -> Vec<String>) {
        match self.format {
            Format::Console => {
                if !self.quiet {
                    for line in console() {
                        self.sink.out(&redact_passwords(&line));
                    }
                }
            }
            Format::Json => {
                self.json.insert(key.to_string(), json);
            }
        }
    }

    /// Print the JSON document (JSON mode); call once at the end of the run.
    pub fn close(&mut self) {
        if self.format == Format::Json && !self.quiet {
            let doc = Value::Object(std::mem::take(&mut self.json));
            let text = json::python_dumps(&doc, None);
            // No trailing newline, byte for byte as Barman's `json.dump`.
            self.sink.out_raw(&redact_passwords(&text));
        }
    }

    fn push_message(&mut self, field: &str, message: &str) {
        let entry = self
            .json
            .entry(field.to_string())
            .or_insert_with(|| Value::Array(Vec::new()));
        if let Value::Array(items) = entry {
            items.push(Value::String(message.to_string()));
        }
    }

    /// Colour `text` green when colours are on (`OK`).
    pub fn green(&self, text: &str) -> String {
        self.paint(text, "32")
    }

    /// Colour `text` red when colours are on (`FAILED`, errors).
    pub fn red(&self, text: &str) -> String {
        self.paint(text, "31")
    }

    /// Colour `text` yellow when colours are on (warnings).
    pub fn yellow(&self, text: &str) -> String {
        self.paint(text, "33")
    }

    fn paint(&self, text: &str, code: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }
}

/// Hide passwords in `password=...` conninfo pairs and `postgresql://user:pw@` URIs.
pub fn redact_passwords(text: &str) -> String {
    let mut out = redact_keyword_passwords(text);
    for scheme in ["postgresql://", "postgres://"] {
        out = redact_uri_passwords(&out, scheme);
    }
    out
}

fn redact_keyword_passwords(text: &str) -> String {
    const KEY: &str = "password";
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = find_password_key(rest, KEY) {
        let after_key = &rest[i + KEY.len()..];
        let spaces = after_key.len() - after_key.trim_start().len();
        let after_eq = after_key.trim_start();
        let Some(value) = after_eq.strip_prefix('=') else {
            out.push_str(&rest[..i + KEY.len()]);
            rest = after_key;
            continue;
        };
        out.push_str(&rest[..i + KEY.len() + spaces]);
        out.push_str("=*REDACTED*");
        let value_start = value.len() - value.trim_start().len();
        let value = &value[value_start..];
        let end = if let Some(quoted) = value.strip_prefix('\'') {
            // A quoted value ends at the first unescaped quote.
            let mut escaped = false;
            let mut end = value.len();
            for (j, c) in quoted.char_indices() {
                if escaped {
                    escaped = false;
                } else if c == '\\' {
                    escaped = true;
                } else if c == '\'' {
                    end = j + 2;
                    break;
                }
            }
            end
        } else {
            value
                .find(|c: char| c.is_whitespace() || c == '\'' || c == '"')
                .unwrap_or(value.len())
        };
        rest = &value[end..];
    }
    out.push_str(rest);
    out
}

/// The next `password` that starts a conninfo key (not a suffix like `passwordx`
/// or part of `my_password`).
fn find_password_key(text: &str, key: &str) -> Option<usize> {
    let lower = text.to_ascii_lowercase();
    let mut from = 0;
    while let Some(pos) = lower[from..].find(key) {
        let i = from + pos;
        let before_ok = i == 0
            || !lower.as_bytes()[i - 1].is_ascii_alphanumeric() && lower.as_bytes()[i - 1] != b'_';
        if before_ok {
            return Some(i);
        }
        from = i + key.len();
    }
    None
}

fn redact_uri_passwords(text: &str, scheme: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find(scheme) {
        out.push_str(&rest[..i + scheme.len()]);
        rest = &rest[i + scheme.len()..];
        let end = rest
            .find(|c: char| c.is_whitespace() || c == '\'' || c == '"')
            .unwrap_or(rest.len());
        let authority = &rest[..end];
        let authority = authority.split('/').next().unwrap_or(authority);
        if let Some(at) = authority.rfind('@') {
            let userinfo = &authority[..at];
            if let Some(colon) = userinfo.find(':') {
                out.push_str(&userinfo[..colon + 1]);
                out.push_str("*REDACTED*");
                rest = &rest[at..];
                continue;
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<MemorySink>>);
    impl Sink for Shared {
        fn out(&mut self, line: &str) {
            self.0.lock().unwrap().out(line)
        }
        fn err(&mut self, line: &str) {
            self.0.lock().unwrap().err(line)
        }
    }

    #[test]
    fn console_routes_messages_to_the_right_stream() {
        let sink = Shared::default();
        let mut out = Output::new(Format::Console, false, false, false, Box::new(sink.clone()));
        out.info("hello");
        out.warning("careful");
        out.error("broken");
        out.debug("hidden without -d");
        out.result("pg", json!({}), || vec!["pg - main".into()]);
        out.close();
        let s = sink.0.lock().unwrap();
        assert_eq!(s.stdout, ["hello", "pg - main"]);
        assert_eq!(s.stderr, ["WARNING: careful", "ERROR: broken"]);
        assert!(out.errored());
    }

    #[test]
    fn quiet_hides_info_but_not_errors() {
        let sink = Shared::default();
        let mut out = Output::new(Format::Console, true, true, false, Box::new(sink.clone()));
        out.info("hello");
        out.error("broken");
        out.debug("shown with -d");
        let s = sink.0.lock().unwrap();
        assert!(s.stdout.is_empty());
        assert_eq!(s.stderr, ["ERROR: broken", "DEBUG: shown with -d"]);
    }

    #[test]
    fn json_collects_results_and_messages_into_one_document() {
        let sink = Shared::default();
        let mut out = Output::new(Format::Json, false, false, false, Box::new(sink.clone()));
        out.result("pg", json!({"description": "main"}), Vec::new);
        out.error("Unknown server 'x'");
        out.info("note");
        out.close();
        let s = sink.0.lock().unwrap();
        assert_eq!(
            s.stdout,
            [
                r#"{"_ERROR": ["Unknown server 'x'"], "_INFO": ["note"], "pg": {"description": "main"}}"#
            ]
        );
    }

    #[test]
    fn colours_wrap_levels() {
        let out = Output::new(
            Format::Console,
            false,
            false,
            true,
            Box::new(MemorySink::default()),
        );
        assert_eq!(out.red("FAILED"), "\x1b[31mFAILED\x1b[0m");
        assert_eq!(out.green("OK"), "\x1b[32mOK\x1b[0m");
    }

    #[test]
    fn passwords_are_redacted_in_conninfo_and_uris() {
        assert_eq!(
            redact_passwords("host=pg password=s3cret user=barman"),
            "host=pg password=*REDACTED* user=barman"
        );
        assert_eq!(
            redact_passwords(r"host=pg password = 'se cr\'et' user=x"),
            "host=pg password =*REDACTED* user=x"
        );
        assert_eq!(
            redact_passwords("conninfo: host=pg PASSWORD='a b c' dbname=x"),
            "conninfo: host=pg PASSWORD=*REDACTED* dbname=x"
        );
        assert_eq!(
            redact_passwords("postgresql://barman:topsecret@db:5432/postgres and more"),
            "postgresql://barman:*REDACTED*@db:5432/postgres and more"
        );
        assert_eq!(
            redact_passwords("postgresql://barman@db/postgres"),
            "postgresql://barman@db/postgres"
        );
        assert_eq!(
            redact_passwords("my_password=x passwordless"),
            "my_password=x passwordless"
        );
    }
}
