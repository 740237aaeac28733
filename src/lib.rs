//! The `barman` application: a Barman-compatible backup and recovery manager for
//! PostgreSQL that speaks the replication protocol itself.
