//! Throwaway PostgreSQL clusters for tests.
//!
//! `install` finds the bin directory of each major version (put there by
//! `scripts/install-postgres`), `cluster` creates, starts and removes clusters, and `os` runs
//! PostgreSQL as the `postgres` OS user when the tests run as root. A live test is written once
//! with [`live_test!`] and runs on every major, 13 to 18, as separate tests:
//!
//! ```ignore
//! use crate::harness::{live_test, PgCluster, PgInstall};
//!
//! live_test!(server_starts, |pg: &PgInstall| {
//!     let cluster = PgCluster::start(pg);
//!     assert_eq!(cluster.psql("select 1"), "1");
//! });
//! ```
//!
//! A major listed in `BARMAN_TEST_PG_VERSIONS` (default: all) but not installed fails its tests
//! with `PostgreSQL N not found: run scripts/install-postgres`; a major left out of that list is
//! reported as skipped on stderr and passes.
#![allow(dead_code)] // Not every helper is used by every test yet.

mod cluster;
mod install;
mod os;
mod python_barman;

// Re-exported as the toolbox of the live tests; not all are used yet.
#[allow(unused_imports)]
pub use cluster::{ClusterOptions, PgCluster};
#[allow(unused_imports)]
pub use install::{
    cache_dir, client_bin, client_command, required_majors, PgInstall, ALL_MAJORS,
    CLIENT_TOOLS_MAJOR, DEBIAN_CLIENT_BIN_DIR, INSTALL_HINT,
};
#[allow(unused_imports)]
pub use os::{
    copy_dir, free_port, give_tree_to_server_user, pg_command, run_ok, server_command, server_user,
    ServerUser,
};
#[allow(unused_imports)]
pub use python_barman::{
    python_barman, python_barman34, python_barman34_bin, python_barman_bin, PYTHON_BARMAN_HINT,
};

/// Runs a live test body on one major version: resolves the install (panicking with the install
/// hint when it is missing) unless the major is left out of `BARMAN_TEST_PG_VERSIONS`.
pub fn run_live(major: u32, body: impl FnOnce(&PgInstall)) {
    if !required_majors().contains(&major) {
        eprintln!("skipped: PostgreSQL {major} is not in BARMAN_TEST_PG_VERSIONS");
        return;
    }
    body(&PgInstall::require(major));
}

/// `live_test!(name, |pg: &PgInstall| { ... })` defines a module `name` holding one test per
/// major version, `pg13` to `pg18`, each running the body with that version's install.
macro_rules! live_test {
    ($name:ident, $body:expr) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            fn body(pg: &$crate::harness::PgInstall) {
                let body: fn(&$crate::harness::PgInstall) = $body;
                body(pg)
            }

            #[test]
            fn pg13() {
                $crate::harness::run_live(13, body);
            }

            #[test]
            fn pg14() {
                $crate::harness::run_live(14, body);
            }

            #[test]
            fn pg15() {
                $crate::harness::run_live(15, body);
            }

            #[test]
            fn pg16() {
                $crate::harness::run_live(16, body);
            }

            #[test]
            fn pg17() {
                $crate::harness::run_live(17, body);
            }

            #[test]
            fn pg18() {
                $crate::harness::run_live(18, body);
            }
        }
    };
}
pub(crate) use live_test;
