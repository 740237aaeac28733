//! The log: `log_file` at `log_level`, one line per record in Barman's format
//! (`log_format`, Python logging syntax; by default
//! `%(asctime)s [%(process)s] %(name)s %(levelname)s: %(message)s`).
//!
//! The file is reopened when it has been rotated away (like Python's
//! `WatchedFileHandler`), so a long-running `receive-wal` follows logrotate. Without
//! `log_file` (or when it cannot be opened) records go to standard error, as in
//! Barman, except those that the output layer has already shown to the user.
//! Passwords are redacted by the callers through the output layer; records logged
//! elsewhere must not contain secrets.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use log::{Level, LevelFilter, Log, Metadata, Record};

/// Python's numeric level for a level name (`DEBUG` = 10 … `CRITICAL` = 50).
pub fn python_level(name: &str) -> Option<u8> {
    match name.to_ascii_uppercase().as_str() {
        "NOTSET" => Some(0),
        "DEBUG" => Some(10),
        "INFO" => Some(20),
        "WARNING" | "WARN" => Some(30),
        "ERROR" => Some(40),
        "CRITICAL" | "FATAL" => Some(50),
        other => other.parse().ok(),
    }
}

fn level_filter(python: u8) -> LevelFilter {
    match python {
        0..=10 => LevelFilter::Debug,
        11..=20 => LevelFilter::Info,
        21..=30 => LevelFilter::Warn,
        _ => LevelFilter::Error,
    }
}

fn level_name(level: Level) -> &'static str {
    match level {
        Level::Error => "ERROR",
        Level::Warn => "WARNING",
        Level::Info => "INFO",
        Level::Debug | Level::Trace => "DEBUG",
    }
}

fn level_number(level: Level) -> u8 {
    match level {
        Level::Error => 40,
        Level::Warn => 30,
        Level::Info => 20,
        Level::Debug | Level::Trace => 10,
    }
}

enum Target {
    File {
        path: PathBuf,
        file: File,
        identity: (u64, u64),
    },
    Stderr,
}

struct Logger {
    format: String,
    target: Mutex<Target>,
    min_level: u8,
}

impl Logger {
    fn write_line(&self, line: &str, from_output: bool) {
        let Ok(mut target) = self.target.lock() else {
            return;
        };
        match &mut *target {
            Target::Stderr => {
                if !from_output {
                    let _ = writeln!(std::io::stderr(), "{line}");
                }
            }
            Target::File {
                path,
                file,
                identity,
            } => {
                // Reopen when the file was rotated away or removed.
                let current = std::fs::metadata(&*path).map(|m| (m.dev(), m.ino())).ok();
                if current != Some(*identity) {
                    if let Ok((f, id)) = open_log(path) {
                        *file = f;
                        *identity = id;
                    }
                }
                let _ = writeln!(file, "{line}");
            }
        }
    }
}

impl Log for Logger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        level_number(metadata.level()) >= self.min_level
    }

    fn log(&self, record: &Record<'_>) {
        if !self.enabled(record.metadata()) {
            return;
        }
        let name = logger_name(record.target());
        let line = format_line(
            &self.format,
            &name,
            record.level(),
            &record.args().to_string(),
        );
        self.write_line(&line, record.target() == "barman.output");
    }

    fn flush(&self) {
        if let Ok(mut target) = self.target.lock() {
            if let Target::File { file, .. } = &mut *target {
                let _ = file.flush();
            }
        }
    }
}

/// A Rust module path as a Python logger name: `barman::config` → `barman.config`.
fn logger_name(target: &str) -> String {
    if target == "barman.output" {
        return "barman.cli".into();
    }
    target.replace("::", ".")
}

/// One log line from Python logging's `%(field)s` format.
pub fn format_line(format: &str, name: &str, level: Level, message: &str) -> String {
    let now = chrono::Local::now();
    let asctime = format!(
        "{},{:03}",
        now.format("%Y-%m-%d %H:%M:%S"),
        now.timestamp_subsec_millis()
    );
    let mut out = String::with_capacity(format.len() + message.len() + 32);
    let mut rest = format;
    while let Some(i) = rest.find("%(") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 2..];
        let Some(close) = after.find(')') else {
            out.push_str(&rest[i..]);
            rest = "";
            break;
        };
        let field = &after[..close];
        // Skip the conversion: `s`, `d`, or a width like `-8s`.
        let conv = &after[close + 1..];
        let conv_len = conv
            .find(|c: char| c.is_ascii_alphabetic())
            .map(|j| j + 1)
            .unwrap_or(0);
        let value = match field {
            "asctime" => asctime.clone(),
            "process" => std::process::id().to_string(),
            "name" => name.to_string(),
            "levelname" => level_name(level).to_string(),
            "levelno" => level_number(level).to_string(),
            "message" => message.to_string(),
            "processName" => "MainProcess".to_string(),
            "threadName" => std::thread::current()
                .name()
                .unwrap_or("MainThread")
                .to_string(),
            "module" | "funcName" | "filename" | "pathname" => name.to_string(),
            other => format!("%({other})"),
        };
        out.push_str(&value);
        rest = &conv[conv_len..];
    }
    out.push_str(rest);
    out.replace("%%", "%")
}

fn open_log(path: &Path) -> std::io::Result<(File, (u64, u64))> {
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o640)
        .open(path)?;
    let meta = file.metadata()?;
    Ok((file, (meta.dev(), meta.ino())))
}

/// Set up logging for this process. Returns a warning to show the user when the log
/// file could not be opened (records then go to standard error).
pub fn init(log_file: Option<&Path>, level: u8, format: &str) -> Option<String> {
    let mut warning = None;
    let target = match log_file {
        Some(path) => {
            let path = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
            let opened = path
                .parent()
                .map(std::fs::create_dir_all)
                .unwrap_or(Ok(()))
                .and_then(|()| open_log(&path));
            match opened {
                Ok((file, identity)) => Target::File {
                    path,
                    file,
                    identity,
                },
                Err(e) => {
                    warning = Some(format!(
                        "Failed opening the requested log file {} ({}). Using standard error instead.",
                        path.display(),
                        crate::config::io_reason(&e)
                    ));
                    Target::Stderr
                }
            }
        }
        None => Target::Stderr,
    };
    let logger = Logger {
        format: format.to_string(),
        target: Mutex::new(target),
        min_level: level.max(1),
    };
    if log::set_boxed_logger(Box::new(logger)).is_ok() {
        log::set_max_level(level_filter(level));
    }
    warning
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_follow_barmans_default_format() {
        let line = format_line(
            "%(asctime)s [%(process)s] %(name)s %(levelname)s: %(message)s",
            "barman.cli",
            Level::Warn,
            "disk almost full",
        );
        let (stamp, rest) = line.split_at(23);
        assert_eq!(stamp.as_bytes()[4], b'-');
        assert_eq!(stamp.as_bytes()[19], b',');
        assert_eq!(
            rest,
            format!(
                " [{}] barman.cli WARNING: disk almost full",
                std::process::id()
            )
        );
    }

    #[test]
    fn custom_formats_with_widths_and_unknown_fields() {
        let line = format_line(
            "%(levelname)-8s|%(levelno)d|%(bogus)s|100%%",
            "x",
            Level::Info,
            "m",
        );
        assert_eq!(line, "INFO|20|%(bogus)|100%");
    }

    #[test]
    fn python_level_names_and_numbers() {
        assert_eq!(python_level("debug"), Some(10));
        assert_eq!(python_level("CRITICAL"), Some(50));
        assert_eq!(python_level("25"), Some(25));
        assert_eq!(python_level("loud"), None);
        assert_eq!(logger_name("barman::config::ini"), "barman.config.ini");
    }
}
