//! PostgreSQL's physical replication protocol and WAL format, for PostgreSQL 13 to 18.
//!
//! This crate holds format and wire knowledge only, no application policy: the `wal`
//! module decodes and validates WAL without doing any I/O, and the connection code
//! (added later) knows nothing of the WAL layout. Strings exchanged with the server are
//! assumed to be UTF-8 (`client_encoding = UTF8`).
#![warn(missing_docs, rust_2018_idioms)]
#![deny(clippy::undocumented_unsafe_blocks)]
