//! Tests against real PostgreSQL servers, one test per major version (see `harness::live_test!`).
//!
//! Each needs the installs of `scripts/install-postgres` and fails with that hint without them.
pub(crate) mod archive;
mod backup;
mod check;
mod cluster;
mod cron_live;
mod interop;
mod receive_wal;
mod receive_wal_failures;
mod recover;
mod recover_fixture;
mod recover_ssh;
mod recover_timeline;
mod replication;
mod replication_incremental;
mod replication_streams;
mod replication_timeline;
mod transcripts;
mod wal_commands_live;
mod wal_validation;
