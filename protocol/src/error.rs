//! The crate's one error type, opaque so that new kinds never break callers.
//!
//! Shaped after `tokio-postgres/src/error/mod.rs` (STYLE.md rule 4): a boxed inner value,
//! `pub(crate)` constructors, and question methods ([`Error::kind`], [`Error::lsn`],
//! [`Error::is_corruption`]). Messages are written for a DBA: lowercase, no final period, and
//! they say where (the LSN) and what to conclude. The reader messages of PostgreSQL's
//! `src/backend/access/transam/xlogreader.c` are the model for the WAL kinds.

use std::fmt;

use crate::lsn::Lsn;
use crate::message::DbError;

/// Result alias used throughout the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong, as a category; the details are in the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Text that does not parse: an LSN, a WAL file name, a history file, a summary line.
    Syntax,
    /// A value outside its valid range (segment size, timeline 0, an LSN overflow).
    InvalidValue,
    /// A WAL page header is wrong: magic, info bits, page address, timeline, continuation.
    PageHeader,
    /// A WAL record header is wrong: length, resource manager, link to the previous record.
    RecordHeader,
    /// A WAL record's CRC-32C does not match its contents.
    Checksum,
    /// A record passed its CRC check but its contents could not be decoded.
    RecordData,
    /// The segment belongs to another cluster, WAL block size or segment size, or to a
    /// PostgreSQL version other than the expected one.
    ForeignSegment,
    /// WAL ends (zeroed or missing bytes) before the end of a segment that must be complete.
    UnexpectedEnd,
    /// The caller used an API out of order (for example fed bytes past the segment end).
    Usage,
    /// A connection string (conninfo, URI, environment variable, `.pgpass`) is invalid.
    Config,
    /// An I/O error on the connection (refused, reset, unreachable, a file that cannot be read).
    Io,
    /// The server closed the connection (end of stream where a message was expected).
    Closed,
    /// A connection or read did not complete within its time limit.
    Timeout,
    /// The TLS negotiation or handshake failed, or TLS was required and refused.
    Tls,
    /// Authentication failed on the client side (no password, unsupported method, a server
    /// proof that does not verify, channel binding refused). A server's rejection of the
    /// password is a [`ErrorKind::Db`] error with SQLSTATE 28P01 or 28000.
    Authentication,
    /// The server sent an ErrorResponse; see [`Error::as_db_error`].
    Db,
    /// The server sent bytes that break the protocol (unknown, truncated or oversized messages,
    /// a message out of sequence).
    Protocol,
}

/// The error type of this crate.
#[derive(Clone, PartialEq, Eq)]
pub struct Error(Box<Inner>);

#[derive(Debug, Clone, PartialEq, Eq)]
struct Inner {
    kind: ErrorKind,
    lsn: Option<Lsn>,
    message: String,
    db: Option<Box<DbError>>,
}

impl Error {
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error(Box::new(Inner {
            kind,
            lsn: None,
            message: message.into(),
            db: None,
        }))
    }

    pub(crate) fn at(kind: ErrorKind, lsn: Lsn, message: impl Into<String>) -> Self {
        Error(Box::new(Inner {
            kind,
            lsn: Some(lsn),
            message: message.into(),
            db: None,
        }))
    }

    pub(crate) fn config(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Config, message)
    }

    /// An I/O error, described by what was being done (`"connect to 127.0.0.1:5432"`).
    pub(crate) fn io(context: &str, err: &std::io::Error) -> Self {
        let kind = match err.kind() {
            std::io::ErrorKind::UnexpectedEof
            | std::io::ErrorKind::ConnectionReset
            | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::BrokenPipe => ErrorKind::Closed,
            std::io::ErrorKind::TimedOut => ErrorKind::Timeout,
            _ => ErrorKind::Io,
        };
        Error::new(kind, format!("{context}: {err}"))
    }

    pub(crate) fn closed(context: &str) -> Self {
        Error::new(
            ErrorKind::Closed,
            format!("server closed the connection unexpectedly {context}"),
        )
    }

    pub(crate) fn timeout(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Timeout, message)
    }

    pub(crate) fn tls(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Tls, message)
    }

    pub(crate) fn auth(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Authentication, message)
    }

    pub(crate) fn protocol(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Protocol, message)
    }

    /// The server's ErrorResponse, kept whole.
    pub(crate) fn db(db: DbError) -> Self {
        Error(Box::new(Inner {
            kind: ErrorKind::Db,
            lsn: None,
            message: db.to_string(),
            db: Some(Box::new(db)),
        }))
    }

    /// The same error with `prefix: ` before its message (kind and server error kept).
    pub(crate) fn context(mut self, prefix: impl std::fmt::Display) -> Self {
        self.0.message = format!("{prefix}: {}", self.0.message);
        self
    }

    /// The server's ErrorResponse when the server sent one ([`ErrorKind::Db`]).
    pub fn as_db_error(&self) -> Option<&DbError> {
        self.0.db.as_deref()
    }

    /// The SQLSTATE of the server's ErrorResponse (`28P01`, `42704`, ...), if any.
    pub fn code(&self) -> Option<&str> {
        self.0.db.as_deref().map(DbError::code)
    }

    /// True when the connection is gone: closed by the server, reset, or ended by a FATAL
    /// server error. The caller should reconnect rather than retry on this connection.
    pub fn is_closed(&self) -> bool {
        match self.0.kind {
            ErrorKind::Closed => true,
            ErrorKind::Db => self.0.db.as_deref().is_some_and(DbError::is_fatal),
            _ => false,
        }
    }

    /// True when a time limit expired (connect_timeout).
    pub fn is_timeout(&self) -> bool {
        self.0.kind == ErrorKind::Timeout
    }

    pub(crate) fn syntax(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Syntax, message)
    }

    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::InvalidValue, message)
    }

    pub(crate) fn usage(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::Usage, message)
    }

    /// The category of the error.
    pub fn kind(&self) -> ErrorKind {
        self.0.kind
    }

    /// The WAL position the error is about, when there is one (the record or page that failed).
    pub fn lsn(&self) -> Option<Lsn> {
        self.0.lsn
    }

    /// The human-readable message (the same text `Display` prints).
    pub fn message(&self) -> &str {
        &self.0.message
    }

    /// True when the bytes themselves are damaged or incomplete: the segment must not be
    /// archived as valid.
    pub fn is_corruption(&self) -> bool {
        matches!(
            self.0.kind,
            ErrorKind::PageHeader
                | ErrorKind::RecordHeader
                | ErrorKind::Checksum
                | ErrorKind::RecordData
                | ErrorKind::UnexpectedEnd
        )
    }

    /// True when the segment is sound but belongs elsewhere (another cluster, segment size,
    /// block size or major version).
    pub fn is_foreign(&self) -> bool {
        self.0.kind == ErrorKind::ForeignSegment
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.message)
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Error")
            .field("kind", &self.0.kind)
            .field("lsn", &self.0.lsn)
            .field("message", &self.0.message)
            .finish()
    }
}

impl std::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accessors_report_what_was_built() {
        let e = Error::at(ErrorKind::Checksum, Lsn::new(0x3000028), "bad crc");
        assert_eq!(e.kind(), ErrorKind::Checksum);
        assert_eq!(e.lsn(), Some(Lsn::new(0x3000028)));
        assert_eq!(e.to_string(), "bad crc");
        assert_eq!(e.message(), "bad crc");
        assert!(e.is_corruption());
        assert!(!e.is_foreign());
        assert!(format!("{e:?}").contains("Checksum"));

        let e = Error::new(ErrorKind::ForeignSegment, "other cluster");
        assert!(e.is_foreign());
        assert!(!e.is_corruption());
        assert_eq!(e.lsn(), None);
        assert_eq!(Error::syntax("x").kind(), ErrorKind::Syntax);
        assert_eq!(Error::invalid("x").kind(), ErrorKind::InvalidValue);
        assert_eq!(Error::usage("x").kind(), ErrorKind::Usage);
    }

    #[test]
    fn error_is_small() {
        assert_eq!(std::mem::size_of::<Error>(), std::mem::size_of::<usize>());
    }
}
