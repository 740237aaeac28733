//! Where the PostgreSQL installs are: one bin directory per major version.
//!
//! `scripts/install-postgres` puts PostgreSQL 15 in `/usr/lib/postgresql/15/bin` (Debian's
//! packages, with every client tool) and the server builds of the other majors in a cache, then
//! lists them in `<cache>/bindirs`. This module reads, in order of precedence:
//!
//! 1. `BARMAN_TEST_PG_BINDIRS`, e.g. `13=/opt/pg13/bin,18=/opt/pg18/bin`;
//! 2. the `bindirs` file of the cache (`$BARMAN_PG_CACHE`, else `/var/cache/barman-rs/postgres`
//!    for root, `$HOME/.cache/barman-rs/postgres` for others: the script's defaults);
//! 3. `/usr/lib/postgresql/<major>/bin`.
//!
//! A source is used for a major only if its directory holds `postgres`, `initdb` and `pg_ctl`.
//! `BARMAN_TEST_PG_VERSIONS` (default `13 14 15 16 17 18`) names the majors the live tests must
//! run on; a required major that is not found fails its tests with an install hint.
//!
//! The server builds from the npm registry carry only `postgres`, `initdb` and `pg_ctl`, so the
//! client tools (`psql`, `pgbench`, `pg_waldump`, ...) fall back to Debian's PostgreSQL 15.
//! `psql`, `pgbench`, `pg_basebackup` and `pg_receivewal` 15 talk to servers 13 to 18; tools that
//! read files (`pg_waldump`, `pg_verifybackup`, `pg_controldata`) only understand the format of
//! their own major, so tests using them as oracles on another major must expect that.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// Every major version the project supports, oldest first.
pub const ALL_MAJORS: [u32; 6] = [13, 14, 15, 16, 17, 18];

/// The major whose Debian packages provide the reference client tools.
pub const CLIENT_TOOLS_MAJOR: u32 = 15;

/// The directory of Debian's PostgreSQL 15 binaries, client tools included.
pub const DEBIAN_CLIENT_BIN_DIR: &str = "/usr/lib/postgresql/15/bin";

/// The hint every "not found" failure carries.
pub const INSTALL_HINT: &str = "run scripts/install-postgres";

/// One installed major version of PostgreSQL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgInstall {
    /// The major version, e.g. 17.
    pub major: u32,
    /// The directory holding `postgres`, `initdb` and `pg_ctl` of that version.
    pub bin_dir: PathBuf,
}

impl PgInstall {
    /// The install of `major`, or `None` when no source lists a usable one.
    pub fn find(major: u32) -> Option<PgInstall> {
        discovered().found.get(&major).map(|bin_dir| PgInstall {
            major,
            bin_dir: bin_dir.clone(),
        })
    }

    /// The install of `major`; panics with the install hint when there is none.
    pub fn require(major: u32) -> PgInstall {
        PgInstall::find(major).unwrap_or_else(|| {
            let set_aside: Vec<&str> = discovered()
                .rejected
                .iter()
                .filter(|(candidate, _)| *candidate == major)
                .map(|(_, why)| why.as_str())
                .collect();
            panic!(
                "PostgreSQL {major} not found: {INSTALL_HINT} \
                 (looked in $BARMAN_TEST_PG_BINDIRS, {}, /usr/lib/postgresql/{major}/bin{}{})",
                cache_dir().join("bindirs").display(),
                if set_aside.is_empty() {
                    ""
                } else {
                    "; set aside: "
                },
                set_aside.join(", ")
            )
        })
    }

    /// Every install found, oldest major first.
    pub fn all_found() -> Vec<PgInstall> {
        discovered()
            .found
            .iter()
            .map(|(&major, bin_dir)| PgInstall {
                major,
                bin_dir: bin_dir.clone(),
            })
            .collect()
    }

    /// A program of this install's own bin directory (`postgres`, `initdb`, `pg_ctl`, ...);
    /// panics with the install hint when it is missing.
    pub fn bin(&self, name: &str) -> PathBuf {
        let path = self.bin_dir.join(name);
        assert!(
            is_executable(&path),
            "PostgreSQL {}: {} is missing: {INSTALL_HINT}",
            self.major,
            path.display()
        );
        path
    }

    /// A client tool for this install: its own when it has one, else Debian's PostgreSQL 15
    /// one (see the module documentation for which tools that is safe for).
    pub fn client_bin(&self, name: &str) -> PathBuf {
        let own = self.bin_dir.join(name);
        if is_executable(&own) {
            own
        } else {
            client_bin(name)
        }
    }
}

/// A client tool of Debian's PostgreSQL 15 (`psql`, `pgbench`, `pg_waldump`, `pg_verifybackup`,
/// `pg_basebackup`, `pg_receivewal`, ...); panics with the install hint when it is missing.
pub fn client_bin(name: &str) -> PathBuf {
    let path = Path::new(DEBIAN_CLIENT_BIN_DIR).join(name);
    assert!(
        is_executable(&path),
        "PostgreSQL {CLIENT_TOOLS_MAJOR} client tool {} not found: {INSTALL_HINT}",
        path.display()
    );
    path
}

/// [`client_bin`] as a ready [`std::process::Command`] with a clean `PG*` environment.
pub fn client_command(name: &str) -> std::process::Command {
    super::os::pg_command(&client_bin(name))
}

/// The majors the live tests must run on: `BARMAN_TEST_PG_VERSIONS`, else all of them.
pub fn required_majors() -> Vec<u32> {
    match std::env::var("BARMAN_TEST_PG_VERSIONS") {
        Ok(list) if !list.trim().is_empty() => list
            .split(|c: char| c.is_whitespace() || c == ',')
            .filter(|word| !word.is_empty())
            .map(|word| {
                word.parse().unwrap_or_else(|_| {
                    panic!("BARMAN_TEST_PG_VERSIONS: {word:?} is not a major version number")
                })
            })
            .collect(),
        _ => ALL_MAJORS.to_vec(),
    }
}

/// The cache directory of `scripts/install-postgres` (same defaults as the script).
pub fn cache_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("BARMAN_PG_CACHE").filter(|dir| !dir.is_empty()) {
        return PathBuf::from(dir);
    }
    if nix::unistd::Uid::effective().is_root() {
        PathBuf::from("/var/cache/barman-rs/postgres")
    } else {
        let home = std::env::var_os("HOME").unwrap_or_else(|| "/".into());
        PathBuf::from(home).join(".cache/barman-rs/postgres")
    }
}

/// What discovery found: major version -> bin directory, and why other candidates were set aside.
struct Discovery {
    found: BTreeMap<u32, PathBuf>,
    rejected: Vec<(u32, String)>,
}

/// Resolved once per test process.
fn discovered() -> &'static Discovery {
    static FOUND: OnceLock<Discovery> = OnceLock::new();
    FOUND.get_or_init(|| {
        let env_list = std::env::var("BARMAN_TEST_PG_BINDIRS").unwrap_or_default();
        let file_list = std::fs::read_to_string(cache_dir().join("bindirs")).unwrap_or_default();
        let debian = ALL_MAJORS.iter().map(|major| {
            (
                *major,
                PathBuf::from(format!("/usr/lib/postgresql/{major}/bin")),
            )
        });
        let candidates = parse_env_bindirs(&env_list)
            .into_iter()
            .chain(parse_bindirs_file(&file_list))
            .chain(debian);
        let mut discovery = Discovery {
            found: BTreeMap::new(),
            rejected: Vec::new(),
        };
        for (major, bin_dir) in candidates {
            if discovery.found.contains_key(&major) || !is_server_bin_dir(&bin_dir) {
                continue;
            }
            match server_version(&bin_dir) {
                Some(version) if version.starts_with(&format!("{major}.")) => {
                    discovery.found.insert(major, bin_dir);
                }
                other => discovery.rejected.push((
                    major,
                    format!(
                        "{} is version {}",
                        bin_dir.display(),
                        other.as_deref().unwrap_or("unknown")
                    ),
                )),
            }
        }
        discovery
    })
}

/// The version `postgres --version` reports, e.g. `17.10`.
fn server_version(bin_dir: &Path) -> Option<String> {
    let output = std::process::Command::new(bin_dir.join("postgres"))
        .arg("--version")
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&output.stdout);
    let (_, version) = text.split_once("(PostgreSQL) ")?;
    Some(version.split_whitespace().next()?.to_owned())
}

/// Parses `13=/path/bin,14=/path/bin`; panics on a malformed entry, since it was set by hand.
fn parse_env_bindirs(list: &str) -> Vec<(u32, PathBuf)> {
    list.split(',')
        .map(str::trim)
        .filter(|entry| !entry.is_empty())
        .map(|entry| {
            let parsed = entry
                .split_once('=')
                .and_then(|(major, dir)| Some((major.trim().parse().ok()?, PathBuf::from(dir))));
            parsed.unwrap_or_else(|| {
                panic!("BARMAN_TEST_PG_BINDIRS: {entry:?} is not MAJOR=/path/to/bin")
            })
        })
        .collect()
}

/// Parses the `MAJOR BINDIR` lines written by `scripts/install-postgres`, skipping bad lines.
fn parse_bindirs_file(text: &str) -> Vec<(u32, PathBuf)> {
    text.lines()
        .filter_map(|line| {
            let (major, dir) = line.trim().split_once(char::is_whitespace)?;
            Some((major.parse().ok()?, PathBuf::from(dir.trim())))
        })
        .collect()
}

fn is_server_bin_dir(dir: &Path) -> bool {
    ["postgres", "initdb", "pg_ctl"]
        .iter()
        .all(|name| is_executable(&dir.join(name)))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .map(|meta| meta.is_file() && meta.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_env_bindirs() {
        assert_eq!(
            parse_env_bindirs(" 13=/a/bin, 18=/b/bin ,"),
            vec![(13, PathBuf::from("/a/bin")), (18, PathBuf::from("/b/bin"))]
        );
        assert!(parse_env_bindirs("").is_empty());
    }

    #[test]
    #[should_panic(expected = "BARMAN_TEST_PG_BINDIRS")]
    fn rejects_malformed_env_bindirs() {
        parse_env_bindirs("13:/a/bin");
    }

    #[test]
    fn parses_bindirs_file_and_skips_junk() {
        let text = "13 /cache/13/native/bin\n\njunk\n15 /usr/lib/postgresql/15/bin\n";
        assert_eq!(
            parse_bindirs_file(text),
            vec![
                (13, PathBuf::from("/cache/13/native/bin")),
                (15, PathBuf::from("/usr/lib/postgresql/15/bin"))
            ]
        );
    }
}
