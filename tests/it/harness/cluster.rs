//! A throwaway PostgreSQL cluster: created, started, queried, stopped and removed by a test.
//!
//! [`PgCluster::start`] runs `initdb` (data checksums, superuser `postgres`, trust auth, C
//! locale, UTF8) in a private directory under `/tmp`, configures it for replication and starts
//! it with `pg_ctl` on a free TCP port of 127.0.0.1 and a private Unix socket directory.
//! [`PgCluster::start_existing`] starts a data directory made elsewhere, such as one rebuilt by
//! our `recover` command. Dropping a cluster stops its server and removes its files; when the test
//! is panicking it first prints the server log to stderr, which the test runner shows.
//!
//! Layout of the private directory (owned by the server user, mode 0700):
//!
//! ```text
//! /tmp/barman-pg-XXXXXX/
//!   data/        the data directory (start only; start_existing uses the caller's)
//!   socket/      unix_socket_directories
//!   server.log   the server's log, written through `pg_ctl -l`
//! ```
//!
//! The port, socket directory and listen address are not written into the data directory: they
//! are passed on the server's command line (`pg_ctl -o "-p PORT -k DIR -h 127.0.0.1"`), so a
//! copied or restored data directory starts anywhere without edits, and a port collision is
//! retried with another port.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use super::install::PgInstall;
use super::os::{
    free_port, give_to_server_user, give_tree_to_server_user, open_path_to_server_user, pg_command,
    run_ok, server_command, set_mode,
};

/// How many ports to try before giving up when the chosen one is taken meanwhile.
const PORT_ATTEMPTS: usize = 5;

/// Seconds `pg_ctl` waits for the server to start or stop (recovery may take a while).
const PG_CTL_TIMEOUT_SECS: u32 = 120;

/// Settings appended to `postgresql.conf` of every cluster made by [`PgCluster::start`].
const BASE_SETTINGS: &[&str] = &[
    "wal_level = replica",
    "max_wal_senders = 10",
    "max_replication_slots = 10",
    "fsync = off",
    "logging_collector = off",
    "log_destination = 'stderr'",
    "log_line_prefix = '%m [%p] %q%u@%d '",
    "max_connections = 30",
    "shared_buffers = 32MB",
];

/// The `pg_hba.conf` rules of every cluster made by [`PgCluster::start`], after the extra ones.
const BASE_HBA: &[&str] = &[
    "local all all trust",
    "local replication all trust",
    "host all all 127.0.0.1/32 trust",
    "host replication all 127.0.0.1/32 trust",
];

/// Extra configuration for [`PgCluster::start_with`].
#[derive(Debug, Clone, Default)]
pub struct ClusterOptions {
    conf: Vec<String>,
    hba: Vec<String>,
    initdb_args: Vec<String>,
}

impl ClusterOptions {
    /// No extras: what [`PgCluster::start`] uses.
    pub fn new() -> ClusterOptions {
        ClusterOptions::default()
    }

    /// Appends a line to `postgresql.conf`, after the harness's settings (so it wins).
    pub fn conf(mut self, line: impl Into<String>) -> ClusterOptions {
        self.conf.push(line.into());
        self
    }

    /// Adds a `pg_hba.conf` rule before the harness's trust rules (so it matches first).
    pub fn hba(mut self, line: impl Into<String>) -> ClusterOptions {
        self.hba.push(line.into());
        self
    }

    /// Adds an argument to `initdb` (e.g. `--wal-segsize=64`).
    pub fn initdb_arg(mut self, arg: impl Into<String>) -> ClusterOptions {
        self.initdb_args.push(arg.into());
        self
    }
}

/// A running (or stopped) PostgreSQL server owned by a test.
#[derive(Debug)]
pub struct PgCluster {
    install: PgInstall,
    /// The private directory; `None` once kept for debugging.
    root: Option<tempfile::TempDir>,
    root_path: PathBuf,
    data_dir: PathBuf,
    /// Whether `data_dir` was made by the harness (and goes away with the cluster).
    owns_data: bool,
    port: u16,
    running: bool,
}

impl PgCluster {
    /// Creates and starts a cluster of `install` with the default settings.
    pub fn start(install: &PgInstall) -> PgCluster {
        PgCluster::start_with(install, &ClusterOptions::new())
    }

    /// Creates and starts a cluster of `install` with extra settings.
    pub fn start_with(install: &PgInstall, options: &ClusterOptions) -> PgCluster {
        let mut cluster = PgCluster::new(install, None);
        cluster.initdb(options);
        cluster.start_server();
        cluster
    }

    /// Starts an existing data directory (e.g. one restored by `barman recover`) with `install`.
    ///
    /// The data directory is given to the server user (recursively, tablespaces included) with
    /// mode 0700, and its ancestors under `/tmp` get `o+x` if the server user cannot pass them.
    /// It gets its own port, socket directory and log like any cluster. Dropping the cluster
    /// stops the server (fast mode) and removes the harness's files, but leaves the data
    /// directory to its owner.
    pub fn start_existing(install: &PgInstall, data_dir: &Path) -> PgCluster {
        let data_dir = data_dir
            .canonicalize()
            .unwrap_or_else(|err| panic!("data directory {}: {err}", data_dir.display()));
        assert!(
            data_dir.join("PG_VERSION").is_file(),
            "{} is not a PostgreSQL data directory (no PG_VERSION)",
            data_dir.display()
        );
        open_path_to_server_user(&data_dir);
        give_tree_to_server_user(&data_dir);
        give_tablespaces_to_server_user(&data_dir);
        set_mode(&data_dir, 0o700);
        let mut cluster = PgCluster::new(install, Some(data_dir));
        cluster.start_server();
        cluster
    }

    /// Makes the private directory; `data_dir` is the caller's, or `None` for `<root>/data`.
    fn new(install: &PgInstall, data_dir: Option<PathBuf>) -> PgCluster {
        let root = tempfile::Builder::new()
            .prefix("barman-pg-")
            .tempdir_in("/tmp")
            .expect("create a temporary directory under /tmp");
        let root_path = root.path().to_path_buf();
        let socket_dir = root_path.join("socket");
        std::fs::create_dir(&socket_dir)
            .unwrap_or_else(|err| panic!("mkdir {}: {err}", socket_dir.display()));
        set_mode(&socket_dir, 0o700);
        give_to_server_user(&socket_dir);
        give_to_server_user(&root_path);
        let owns_data = data_dir.is_none();
        PgCluster {
            install: install.clone(),
            root: Some(root),
            data_dir: data_dir.unwrap_or_else(|| root_path.join("data")),
            root_path,
            owns_data,
            port: 0,
            running: false,
        }
    }

    fn initdb(&mut self, options: &ClusterOptions) {
        let mut command = server_command(&self.install.bin("initdb"));
        command
            .arg("-D")
            .arg(&self.data_dir)
            .args([
                "-U",
                "postgres",
                "--auth=trust",
                "--data-checksums",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            ])
            .args(&options.initdb_args);
        if self.install.major >= 14 {
            command.arg("--no-instructions");
        }
        run_ok(
            &mut command,
            &format!("initdb (PostgreSQL {})", self.install.major),
        );

        let conf = BASE_SETTINGS
            .iter()
            .copied()
            .chain(options.conf.iter().map(String::as_str));
        let mut text = String::from("\n# Added by the barman-rs test harness.\n");
        for line in conf {
            text.push_str(line);
            text.push('\n');
        }
        self.append_to("postgresql.conf", &text);

        let hba: Vec<&str> = options
            .hba
            .iter()
            .map(String::as_str)
            .chain(BASE_HBA.iter().copied())
            .collect();
        let hba_path = self.data_dir.join("pg_hba.conf");
        std::fs::write(&hba_path, hba.join("\n") + "\n")
            .unwrap_or_else(|err| panic!("write {}: {err}", hba_path.display()));
    }

    /// Appends text to a file of the data directory (e.g. `postgresql.auto.conf`); takes effect
    /// at the next (re)start or reload.
    pub fn append_to(&self, file: &str, text: &str) {
        let path = self.data_dir.join(file);
        let mut handle = std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(&path)
            .unwrap_or_else(|err| panic!("open {}: {err}", path.display()));
        handle
            .write_all(text.as_bytes())
            .unwrap_or_else(|err| panic!("write {}: {err}", path.display()));
        give_to_server_user(&path);
    }

    /// Starts the server (on its previous port if it had one), retrying on a new port when the
    /// port was taken meanwhile.
    fn start_server(&mut self) {
        for attempt in 1..=PORT_ATTEMPTS {
            // A restart keeps its port, so connection strings stay valid, unless it was taken.
            if self.port == 0 || attempt > 1 {
                self.port = free_port();
            }
            let log_len = std::fs::metadata(self.log_path()).map_or(0, |meta| meta.len());
            let output = self.pg_ctl_start();
            if output.status.success() {
                self.running = true;
                return;
            }
            let log = self.log();
            let new_log = log.get(log_len as usize..).unwrap_or(&log);
            let port_taken = new_log.contains("could not bind")
                || new_log.contains("could not create any TCP/IP sockets");
            if !(port_taken && attempt < PORT_ATTEMPTS) {
                // pg_ctl may give up while the server goes on starting: let drop stop it.
                self.running = self.postmaster_pid().is_some();
                panic!(
                    "PostgreSQL {} did not start ({}):\n--- pg_ctl\n{}{}\n--- server log\n{}",
                    self.install.major,
                    output.status,
                    String::from_utf8_lossy(&output.stdout),
                    String::from_utf8_lossy(&output.stderr),
                    log
                );
            }
        }
    }

    fn pg_ctl_start(&self) -> std::process::Output {
        let options = format!(
            "-p {} -k '{}' -h 127.0.0.1",
            self.port,
            self.socket_dir().display()
        );
        server_command(&self.install.bin("pg_ctl"))
            .arg("start")
            .arg("-D")
            .arg(&self.data_dir)
            .arg("-l")
            .arg(self.log_path())
            .arg("-o")
            .arg(options)
            .arg("-w")
            .arg("-t")
            .arg(PG_CTL_TIMEOUT_SECS.to_string())
            .stdin(Stdio::null())
            .output()
            .expect("run pg_ctl start")
    }

    /// Stops the server cleanly (`pg_ctl stop -m fast`); the files stay until drop.
    pub fn stop(&mut self) {
        self.stop_with_mode("fast");
    }

    /// Starts the server again after [`stop`](Self::stop), on the same port unless another
    /// process took it meanwhile.
    pub fn start_again(&mut self) {
        assert!(!self.running, "the server is already running");
        self.start_server();
    }

    /// Stops and starts the server (e.g. after changing settings that need a restart).
    pub fn restart(&mut self) {
        self.stop();
        self.start_again();
    }

    /// Stops the server with a `pg_ctl` shutdown mode (`smart`, `fast` or `immediate`).
    pub fn stop_with_mode(&mut self, mode: &str) {
        assert!(self.running, "the server is not running");
        let mut command = self.pg_ctl_stop_command(mode);
        run_ok(&mut command, &format!("pg_ctl stop -m {mode}"));
        self.running = false;
    }

    fn pg_ctl_stop_command(&self, mode: &str) -> std::process::Command {
        let mut command = server_command(&self.install.bin("pg_ctl"));
        command
            .arg("stop")
            .arg("-D")
            .arg(&self.data_dir)
            .args(["-m", mode, "-w", "-t"])
            .arg(PG_CTL_TIMEOUT_SECS.to_string())
            .stdin(Stdio::null());
        command
    }

    /// The PID of the postmaster, from `postmaster.pid`, while the server runs.
    pub fn postmaster_pid(&self) -> Option<i32> {
        let text = std::fs::read_to_string(self.data_dir.join("postmaster.pid")).ok()?;
        text.lines().next()?.trim().parse().ok()
    }

    /// The install this cluster runs.
    pub fn install(&self) -> &PgInstall {
        &self.install
    }

    /// The major version of the server.
    pub fn major(&self) -> u32 {
        self.install.major
    }

    /// The TCP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The Unix socket directory.
    pub fn socket_dir(&self) -> PathBuf {
        self.root_path.join("socket")
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The harness's private directory of this cluster (removed on drop).
    pub fn root_dir(&self) -> &Path {
        &self.root_path
    }

    /// The server log file.
    pub fn log_path(&self) -> PathBuf {
        self.root_path.join("server.log")
    }

    /// The server log so far (empty if there is none yet).
    pub fn log(&self) -> String {
        std::fs::read(self.log_path())
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .unwrap_or_default()
    }

    /// A libpq key=value connection string for an ordinary connection over TCP.
    pub fn conninfo(&self) -> String {
        format!(
            "host=127.0.0.1 port={} user=postgres dbname=postgres",
            self.port
        )
    }

    /// The connection string for a physical replication connection.
    pub fn replication_conninfo(&self) -> String {
        format!("{} replication=true", self.conninfo())
    }

    /// Runs SQL (one or more statements, read from stdin) with `psql -XAtq -v ON_ERROR_STOP=1`
    /// and returns its output without the final newline: rows one per line, columns separated
    /// by `|`. Panics with psql's stderr and the server log excerpt on failure.
    pub fn psql(&self, sql: &str) -> String {
        let mut command = pg_command(&self.install.client_bin("psql"));
        command
            .args(["-XAtq", "-v", "ON_ERROR_STOP=1", "-d"])
            .arg(self.conninfo())
            .args(["-f", "-"]);
        run_with_stdin(&mut command, sql, "psql")
    }

    /// Runs one replication command (e.g. `IDENTIFY_SYSTEM`) over a `replication=true`
    /// connection and returns psql's unaligned, tuples-only output.
    pub fn psql_replication(&self, replication_command: &str) -> String {
        let mut command = pg_command(&self.install.client_bin("psql"));
        command
            .args(["-XAtq", "-v", "ON_ERROR_STOP=1", "-d"])
            .arg(self.replication_conninfo())
            .arg("-c")
            .arg(replication_command)
            .stdin(Stdio::null());
        let output = run_ok(&mut command, "psql (replication connection)");
        trim_newline(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// Runs `pgbench ARGS` against the `postgres` database and returns its stdout.
    pub fn pgbench(&self, args: &[&str]) -> String {
        let mut command = pg_command(&self.install.client_bin("pgbench"));
        command
            .args(["-h", "127.0.0.1", "-p"])
            .arg(self.port.to_string())
            .args(["-U", "postgres"])
            .args(args)
            .arg("postgres")
            .stdin(Stdio::null());
        let output = run_ok(&mut command, "pgbench");
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Keeps the private directory (and data) after the test, for debugging; prints where.
    pub fn keep_files(&mut self) {
        if let Some(root) = self.root.take() {
            eprintln!(
                "keeping the files of the cluster in {}",
                root.keep().display()
            );
        }
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        if std::thread::panicking() && self.log_path().exists() {
            eprintln!(
                "===== server log of PostgreSQL {} ({}) =====\n{}===== end of server log =====",
                self.install.major,
                self.log_path().display(),
                self.log()
            );
        }
        if self.running {
            let mode = if self.owns_data { "immediate" } else { "fast" };
            let stopped = self
                .pg_ctl_stop_command(mode)
                .output()
                .is_ok_and(|output| output.status.success());
            if !stopped {
                if let Some(pid) = self.postmaster_pid() {
                    // The server did not stop in time: make sure it does not outlive the test.
                    let _ = nix::sys::signal::kill(
                        nix::unistd::Pid::from_raw(pid),
                        nix::sys::signal::Signal::SIGKILL,
                    );
                    std::thread::sleep(Duration::from_millis(200));
                }
            }
            self.running = false;
        }
        // Dropping `root` removes the private directory, and the data with it when it is ours.
    }
}

/// Tablespaces live outside the data directory, behind the symlinks of `pg_tblspc/`.
fn give_tablespaces_to_server_user(data_dir: &Path) {
    let Ok(entries) = std::fs::read_dir(data_dir.join("pg_tblspc")) else {
        return;
    };
    for entry in entries.flatten() {
        if let Ok(target) = std::fs::read_link(entry.path()) {
            let target = data_dir.join("pg_tblspc").join(target);
            open_path_to_server_user(&target);
            give_tree_to_server_user(&target);
        }
    }
}

/// How long one psql run may take in a test.
const PSQL_TIMEOUT: Duration = Duration::from_secs(300);

fn run_with_stdin(command: &mut std::process::Command, input: &str, what: &str) -> String {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|err| panic!("{what}: cannot run {command:?}: {err}"));
    let mut stdin = child.stdin.take().expect("piped stdin");
    let owned_input = input.to_owned();
    // Write from another thread so a large output cannot deadlock against a large input.
    let writer = std::thread::spawn(move || stdin.write_all(owned_input.as_bytes()));
    // A watchdog: a stuck statement fails the test instead of hanging the suite.
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let (done, finished) = std::sync::mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        if finished.recv_timeout(PSQL_TIMEOUT).is_err() {
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            return true;
        }
        false
    });
    let output = child
        .wait_with_output()
        .unwrap_or_else(|err| panic!("{what}: wait for {command:?}: {err}"));
    let _ = done.send(());
    let timed_out = watchdog.join().unwrap_or(false);
    let written = writer.join().expect("the stdin writer thread panicked");
    assert!(
        !timed_out,
        "{what} did not finish within {PSQL_TIMEOUT:?} and was killed: {command:?}\n--- input\n{}",
        excerpt(input, 4000),
    );
    assert!(
        output.status.success(),
        "{what} failed ({}): {command:?}\n--- input\n{}\n--- stderr\n{}",
        output.status,
        excerpt(input, 4000),
        String::from_utf8_lossy(&output.stderr),
    );
    written.unwrap_or_else(|err| panic!("{what}: write stdin: {err}"));
    trim_newline(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// The first `max` bytes of `text` (cut at a character boundary), marked when cut.
fn excerpt(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}... ({} bytes in all)", &text[..end], text.len())
}

fn trim_newline(mut text: String) -> String {
    while text.ends_with('\n') {
        text.pop();
    }
    text
}
