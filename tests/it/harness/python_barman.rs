//! Where the real Barman (Python, by EnterpriseDB) is, for the interop tests.
//!
//! `scripts/test` installs the newest Barman 3.x from PyPI into a venv cached outside the
//! repository; this module reads, in order:
//!
//! 1. `BARMAN_TEST_PYTHON_BARMAN`, the `barman` program itself;
//! 2. `$BARMAN_PY_VENV/bin/barman`;
//! 3. `barman-venv/bin/barman` next to the PostgreSQL cache (`/var/cache/barman-rs/barman-venv`
//!    for root, `$HOME/.cache/barman-rs/barman-venv` for others: the script's defaults).
//!
//! A missing Barman fails the test with [`PYTHON_BARMAN_HINT`]; it never passes silently.
//!
//! Barman 3.4 (the version Debian 12 packages, with the older catalogue layout:
//! `base/<id>/backup.info`, `wals/xlog.db` of four columns) comes from PyPI too, into
//! `barman34-venv` next to that venv (`BARMAN_TEST_PYTHON_BARMAN34` overrides): the same code as
//! Debian's package without its system user and cron file.

use std::path::PathBuf;
use std::process::Command;

use super::install::{cache_dir, DEBIAN_CLIENT_BIN_DIR};

/// The hint every "Barman not found" failure carries.
pub const PYTHON_BARMAN_HINT: &str = "run scripts/test (it installs Python Barman 3.x into a \
     venv: python3 -m venv /var/cache/barman-rs/barman-venv && \
     /var/cache/barman-rs/barman-venv/bin/pip install psycopg2-binary 'barman>=3,<4'; and rsync: \
     apt-get install rsync), or set BARMAN_TEST_PYTHON_BARMAN to a `barman` program";

/// The `barman` program of Python Barman; panics with the install hint when it is missing.
pub fn python_barman_bin() -> PathBuf {
    let path = if let Some(path) = std::env::var_os("BARMAN_TEST_PYTHON_BARMAN") {
        PathBuf::from(path)
    } else if let Some(venv) = std::env::var_os("BARMAN_PY_VENV").filter(|v| !v.is_empty()) {
        PathBuf::from(venv).join("bin/barman")
    } else {
        cache_dir()
            .parent()
            .expect("the PostgreSQL cache has a parent")
            .join("barman-venv/bin/barman")
    };
    assert!(
        path.is_file(),
        "Python Barman not found at {}: {PYTHON_BARMAN_HINT}",
        path.display()
    );
    require_rsync();
    path
}

/// Barman's `recover` copies with rsync: fail with the hint when it is missing.
fn require_rsync() {
    assert!(
        std::path::Path::new("/usr/bin/rsync").is_file()
            || std::env::var_os("PATH")
                .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join("rsync").is_file())),
        "rsync not found (Barman's recover needs it): {PYTHON_BARMAN_HINT}"
    );
}

/// The `barman` program of Python Barman 3.4; panics with the install hint when missing.
pub fn python_barman34_bin() -> PathBuf {
    let path = if let Some(path) = std::env::var_os("BARMAN_TEST_PYTHON_BARMAN34") {
        PathBuf::from(path)
    } else if let Some(venv) = std::env::var_os("BARMAN_PY_VENV").filter(|v| !v.is_empty()) {
        // scripts/test puts barman34-venv next to $BARMAN_PY_VENV.
        PathBuf::from(venv)
            .parent()
            .unwrap_or(std::path::Path::new("/"))
            .join("barman34-venv/bin/barman")
    } else {
        cache_dir()
            .parent()
            .expect("the PostgreSQL cache has a parent")
            .join("barman34-venv/bin/barman")
    };
    assert!(
        path.is_file(),
        "Python Barman 3.4 not found at {}: run scripts/test (it installs it: python3 -m venv \
         /var/cache/barman-rs/barman34-venv && /var/cache/barman-rs/barman34-venv/bin/pip \
         install psycopg2-binary barman==3.4.0), or set BARMAN_TEST_PYTHON_BARMAN34",
        path.display()
    );
    require_rsync();
    path
}

/// `barman -c CONFIG` of Python Barman 3.4, set up as [`python_barman`].
pub fn python_barman34(config: &std::path::Path) -> Command {
    command_for(&python_barman34_bin(), config)
}

/// `barman -c CONFIG` of Python Barman, with Debian's PostgreSQL 15 client tools
/// (`pg_basebackup`, `pg_receivewal`) first in `PATH` and a clean `PG*` environment.
pub fn python_barman(config: &std::path::Path) -> Command {
    command_for(&python_barman_bin(), config)
}

fn command_for(program: &std::path::Path, config: &std::path::Path) -> Command {
    let mut command = super::os::pg_command(program);
    let path = std::env::var("PATH").unwrap_or_default();
    command
        .env("PATH", format!("{DEBIAN_CLIENT_BIN_DIR}:{path}"))
        .env_remove("BARMAN_CONFIG_FILE")
        .arg("-c")
        .arg(config);
    command
}
