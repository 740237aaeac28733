//! The one integration test binary.
//!
//! - `cli`, `config_errors`, `commands`: the `barman` binary on configurations and
//!   catalogues made by the tests (no PostgreSQL needed);
//! - `harness` starts throwaway PostgreSQL clusters; `live` holds the tests that
//!   need one, for every major version 13 to 18;
//! - `fake_server`: a scripted fake PostgreSQL server, and `hostile_backup`, what a hostile
//!   one (or a damaged stored backup) cannot do;
//! - `util`: scratch directories and the command runner.
mod archive_wal;
mod check;
mod cli;
mod commands;
mod config_errors;
mod cron;
mod fake_server;
mod harness;
mod hostile_backup;
mod live;
mod put_wal;
mod util;
mod wal_commands;
