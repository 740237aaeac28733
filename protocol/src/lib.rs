//! PostgreSQL's physical replication protocol and WAL format, for PostgreSQL 13 to 18.
//!
//! This crate holds format and wire knowledge only, no application policy: the `wal`
//! module decodes and validates WAL without doing any I/O, and the connection code
//! (added later) knows nothing of the WAL layout. Strings exchanged with the server are
//! assumed to be UTF-8 (`client_encoding = UTF8`).
//!
//! - [`lsn`]: WAL positions, timelines, segment numbers and segment sizes (the newtypes every
//!   other module speaks in), mirroring `xlogdefs.h` and the macros of `xlog_internal.h`.
//! - [`version`]: the one table of per-major-version differences (page magic and the few
//!   layout details that changed between 13 and 18).
//! - [`wal`]: WAL file names, timeline history files, page and record headers, the streaming
//!   segment validator (CRC-32C of every record) and the per-segment summary used for
//!   point-in-time recovery.
//! - [`conninfo`]: libpq-compatible connection strings and URIs, `PG*` variables, `.pgpass`.
//! - [`message`]: protocol messages decoded and encoded without I/O.
//! - [`command`]: replication commands as a typed enum rendered per server version.
//! - [`conn`]: the physical replication connection (TLS with rustls, authentication, simple
//!   commands) and a rustls connector for tokio-postgres.
//! - [`stream`]: BASE_BACKUP and START_REPLICATION as pull-based event streams.
//! - [`Error`]: the crate's one error type.
#![warn(missing_docs, rust_2018_idioms)]
#![deny(clippy::undocumented_unsafe_blocks)]

pub mod command;
pub mod conn;
pub mod conninfo;
mod error;
pub mod lsn;
pub mod message;
pub mod stream;
pub mod version;
pub mod wal;

pub use error::{Error, ErrorKind, Result};
pub use lsn::{Lsn, TimelineId, WalSegNo, WalSegmentSize};
pub use version::PgVersion;

pub use command::{BaseBackupOptions, ReplicationCommand, ServerVersion};
pub use conn::ReplicationConnection;
pub use conninfo::ConnInfo;
pub use message::DbError;
