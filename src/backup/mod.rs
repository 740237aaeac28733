//! Base backups over BASE_BACKUP (issue 6): the executor that takes one backup of one
//! server, the storage of the archives it streams, and the verification of stored backups
//! against their manifests.
//!
//! - [`executor`]: the backup flow of Barman's `backup` for `backup_method = postgres`
//!   (BARMAN.md §3.7): checks, `backup.info` as STARTED, hooks, BASE_BACKUP, end position
//!   from the protocol, `pg_switch_wal()`, restore point, WAITING_FOR_WALS, DONE once the
//!   WAL is archived, FAILED with Barman's error text otherwise.
//! - [`settings`]: what `barman.conf` and the command line ask for.
//! - [`store`]: the storing thread, fed through a bounded channel: plain data directory or
//!   tar files, manifest check, fsync of everything before success.
//! - [`archive`]: one tar archive, read as it streams, every entry checked.
//! - [`compress`]: gzip, lz4 and (multi-threaded) zstd for tar archives.
//! - [`manifest`]: the backup manifest, checksums, comparison with what is stored.
//! - [`verify`]: `verify-backup`, the manifest check of a stored backup.
//! - [`progress`]: the terminal progress line.
//!
//! Messages go through a [`Reporter`], so that several servers can be backed up in
//! parallel threads while one thread prints.

pub mod archive;
pub mod compress;
pub mod executor;
pub mod manifest;
pub mod progress;
pub mod settings;
pub mod store;
pub mod verify;
pub mod zstd_writer;

use std::sync::mpsc::Sender;

pub use executor::{backup_server, Job};
pub use progress::Progress;

/// A message from a backup thread.
#[derive(Debug, Clone)]
pub enum Report {
    /// An informational line.
    Info(String),
    /// A warning.
    Warning(String),
    /// An error.
    Error(String),
    /// A debug line.
    Debug(String),
    /// Copy progress (shown on a terminal only).
    Progress(Progress),
    /// The backup's final `backup.info`, as JSON (the JSON output's result).
    Result(serde_json::Value),
    /// The server's backup is over: no more reports follow.
    Finished,
}

/// Where a backup thread sends its messages: `(server, report)` pairs.
#[derive(Debug, Clone)]
pub struct Reporter {
    server: String,
    tx: Sender<(String, Report)>,
}

impl Reporter {
    /// A reporter for `server` sending to `tx`.
    pub fn new(server: &str, tx: Sender<(String, Report)>) -> Reporter {
        Reporter {
            server: server.to_string(),
            tx,
        }
    }

    /// Send a report (a closed receiver is ignored: nobody listens any more).
    pub fn send(&self, report: Report) {
        let _ = self.tx.send((self.server.clone(), report));
    }

    /// An informational line.
    pub fn info(&self, message: impl Into<String>) {
        self.send(Report::Info(message.into()));
    }

    /// A warning.
    pub fn warning(&self, message: impl Into<String>) {
        self.send(Report::Warning(message.into()));
    }

    /// An error.
    pub fn error(&self, message: impl Into<String>) {
        self.send(Report::Error(message.into()));
    }

    /// A debug line.
    pub fn debug(&self, message: impl Into<String>) {
        self.send(Report::Debug(message.into()));
    }
}

/// An [`Output`](crate::output::Output) sink that turns printed lines back into reports,
/// for the shared code (the WAL archiver) that prints through an `Output`.
pub struct ReportSink(pub Reporter);

impl crate::output::Sink for ReportSink {
    fn out(&mut self, line: &str) {
        self.0.info(line);
    }

    fn err(&mut self, line: &str) {
        if let Some(m) = line.strip_prefix("WARNING: ") {
            self.0.warning(m);
        } else if let Some(m) = line
            .strip_prefix("ERROR: ")
            .or_else(|| line.strip_prefix("EXCEPTION: "))
        {
            self.0.error(m);
        } else if let Some(m) = line.strip_prefix("DEBUG: ") {
            self.0.debug(m);
        } else {
            self.0.warning(line);
        }
    }
}
