//! The OS side of running PostgreSQL in tests: which user runs the server, commands run as that
//! user, ownership and permissions of the files it must use, and free TCP ports.
//!
//! PostgreSQL refuses to run as root. When the tests run as root (as CI does), `initdb`,
//! `pg_ctl` and `postgres` run as the `postgres` OS user (created by Debian's `postgresql-common`)
//! and every directory they use is handed over to it; otherwise they run as the current user.

use std::collections::HashSet;
use std::net::{Ipv4Addr, TcpListener};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Mutex, OnceLock};

use nix::unistd::{Gid, Uid, User};

/// The OS user the servers run as.
#[derive(Debug, Clone)]
pub struct ServerUser {
    /// Its user id.
    pub uid: Uid,
    /// Its primary group id.
    pub gid: Gid,
    /// Its home directory, used as `HOME` for the commands run as it.
    pub home: PathBuf,
    /// Whether it differs from the user running the tests (i.e. the tests run as root).
    pub switched: bool,
}

/// The user that runs the servers: `postgres` when the tests run as root, else the current user.
pub fn server_user() -> &'static ServerUser {
    static USER: OnceLock<ServerUser> = OnceLock::new();
    USER.get_or_init(|| {
        if Uid::effective().is_root() {
            let user = User::from_name("postgres")
                .expect("look up the postgres OS user")
                .unwrap_or_else(|| {
                    panic!(
                        "the tests run as root, so PostgreSQL must run as the `postgres` OS user, \
                         which does not exist: run scripts/install-postgres"
                    )
                });
            ServerUser {
                uid: user.uid,
                gid: user.gid,
                home: user.dir,
                switched: true,
            }
        } else {
            ServerUser {
                uid: Uid::effective(),
                gid: Gid::effective(),
                home: std::env::var_os("HOME")
                    .unwrap_or_else(|| "/".into())
                    .into(),
                switched: false,
            }
        }
    })
}

/// A command for a PostgreSQL program (any of them, client or server), with the `PG*`
/// environment variables of the test process removed so that only explicit arguments count.
pub fn pg_command(program: &Path) -> Command {
    let mut command = Command::new(program);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("PG") {
            command.env_remove(name);
        }
    }
    command
}

/// A command that runs as the server user (see [`server_user`]), in directory `/`, with the
/// C locale and a clean `PG*` environment: the way to run `initdb`, `pg_ctl` and `postgres`.
pub fn server_command(program: &Path) -> Command {
    let mut command = pg_command(program);
    let user = server_user();
    if user.switched {
        // std drops the supplementary groups of root when it changes the uid.
        command
            .uid(user.uid.as_raw())
            .gid(user.gid.as_raw())
            .env("HOME", &user.home)
            .env("USER", "postgres")
            .env("LOGNAME", "postgres");
    }
    // Root's working directory (e.g. the repository) may be closed to the server user.
    command.current_dir("/").env("LC_ALL", "C");
    command
}

/// Runs a command to completion and returns its output; panics (with its stdout and stderr) if it
/// cannot start or exits with failure. `what` says what it was doing, for the message.
pub fn run_ok(command: &mut Command, what: &str) -> Output {
    let output = command
        .output()
        .unwrap_or_else(|err| panic!("{what}: cannot run {command:?}: {err}"));
    assert!(
        output.status.success(),
        "{what} failed ({}): {command:?}\n--- stdout\n{}\n--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

/// Gives `path` to the server user (when that is another user), not following symlinks.
pub fn give_to_server_user(path: &Path) {
    let user = server_user();
    if user.switched {
        std::os::unix::fs::lchown(path, Some(user.uid.as_raw()), Some(user.gid.as_raw()))
            .unwrap_or_else(|err| panic!("chown {} to postgres: {err}", path.display()));
    }
}

/// Gives a whole tree to the server user (when that is another user), not following symlinks.
pub fn give_tree_to_server_user(root: &Path) {
    if !server_user().switched {
        return;
    }
    give_to_server_user(root);
    let meta = root
        .symlink_metadata()
        .unwrap_or_else(|err| panic!("stat {}: {err}", root.display()));
    if meta.is_dir() {
        let entries =
            std::fs::read_dir(root).unwrap_or_else(|err| panic!("list {}: {err}", root.display()));
        for entry in entries {
            let entry = entry.unwrap_or_else(|err| panic!("list {}: {err}", root.display()));
            give_tree_to_server_user(&entry.path());
        }
    }
}

/// Makes sure the server user can reach `dir` through its ancestors: an ancestor it cannot
/// search gets the search bit for others (`o+x`, no read) when it is under `/tmp`; elsewhere the
/// test panics with an explanation, since the harness must not change such directories.
pub fn open_path_to_server_user(dir: &Path) {
    let user = server_user();
    if !user.switched {
        return;
    }
    let mut ancestor = dir.parent();
    while let Some(current) = ancestor {
        let meta = current
            .metadata()
            .unwrap_or_else(|err| panic!("stat {}: {err}", current.display()));
        let mode = meta.permissions().mode();
        let searchable = if meta.uid() == user.uid.as_raw() {
            mode & 0o100 != 0
        } else if meta.gid() == user.gid.as_raw() {
            mode & 0o010 != 0
        } else {
            mode & 0o001 != 0
        };
        if !searchable {
            assert!(
                current.starts_with("/tmp") && current != Path::new("/tmp"),
                "the postgres OS user cannot reach {} through {}: put it under /tmp",
                dir.display(),
                current.display()
            );
            std::fs::set_permissions(current, std::fs::Permissions::from_mode(mode | 0o001))
                .unwrap_or_else(|err| panic!("chmod o+x {}: {err}", current.display()));
        }
        ancestor = current.parent();
    }
}

/// Sets the mode of one file or directory.
pub fn set_mode(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .unwrap_or_else(|err| panic!("chmod {mode:o} {}: {err}", path.display()));
}

/// A TCP port of 127.0.0.1 that was free a moment ago and that this process has not handed out
/// before. Another process may still take it first: callers retry on "address in use".
pub fn free_port() -> u16 {
    static HANDED_OUT: Mutex<Option<HashSet<u16>>> = Mutex::new(None);
    let mut handed_out = HANDED_OUT
        .lock()
        .unwrap_or_else(|poison| poison.into_inner());
    let handed_out = handed_out.get_or_insert_with(HashSet::new);
    for _ in 0..100 {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind 127.0.0.1:0");
        let port = listener
            .local_addr()
            .expect("local address of a bound listener")
            .port();
        if handed_out.insert(port) {
            return port;
        }
    }
    panic!("no free TCP port on 127.0.0.1 after 100 tries");
}

/// Copies a directory tree (files, directories and symlinks as symlinks), like `cp -a` without
/// ownership. Handy to duplicate a stopped cluster's data directory.
pub fn copy_dir(src: &Path, dst: &Path) {
    std::fs::create_dir_all(dst).unwrap_or_else(|err| panic!("mkdir {}: {err}", dst.display()));
    let entries =
        std::fs::read_dir(src).unwrap_or_else(|err| panic!("list {}: {err}", src.display()));
    for entry in entries {
        let entry = entry.unwrap_or_else(|err| panic!("list {}: {err}", src.display()));
        let (from, to) = (entry.path(), dst.join(entry.file_name()));
        let kind = entry
            .file_type()
            .unwrap_or_else(|err| panic!("stat {}: {err}", from.display()));
        if kind.is_dir() {
            copy_dir(&from, &to);
        } else if kind.is_symlink() {
            let target = std::fs::read_link(&from)
                .unwrap_or_else(|err| panic!("readlink {}: {err}", from.display()));
            std::os::unix::fs::symlink(&target, &to)
                .unwrap_or_else(|err| panic!("symlink {}: {err}", to.display()));
        } else {
            std::fs::copy(&from, &to)
                .unwrap_or_else(|err| panic!("copy {} to {}: {err}", from.display(), to.display()));
        }
    }
    let mode = src
        .metadata()
        .unwrap_or_else(|err| panic!("stat {}: {err}", src.display()))
        .permissions()
        .mode();
    set_mode(dst, mode & 0o7777);
}
