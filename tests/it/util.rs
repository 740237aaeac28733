//! Helpers for tests that run the `barman` binary: a scratch directory with a
//! configuration, and a command runner that captures output and exit code
//! (after ripgrep's `tests/util.rs`).

use std::path::{Path, PathBuf};
use std::process::Command;

use nix::unistd::{Uid, User};

/// The name of the user running the tests, to put in `barman_user`.
pub fn current_user() -> String {
    User::from_uid(Uid::current())
        .ok()
        .flatten()
        .map(|u| u.name)
        .expect("the current user has a name")
}

/// A scratch directory holding `barman.conf` and `barman_home`.
pub struct Scratch {
    /// The temporary directory (removed on drop).
    pub dir: tempfile::TempDir,
}

impl Scratch {
    /// A scratch directory with a `barman.conf` whose `[barman]` section sets
    /// `barman_home`, `barman_user` (the current user) and `log_file`, followed by
    /// `servers` (raw text).
    pub fn new(servers: &str) -> Scratch {
        let scratch = Scratch::empty();
        scratch.write_config(&format!(
            "[barman]\nbarman_home = {}\nbarman_user = {}\nlog_file = {}\n\n{servers}",
            scratch.home().display(),
            current_user(),
            scratch.log_file().display()
        ));
        scratch
    }

    /// A scratch directory with no configuration yet.
    pub fn empty() -> Scratch {
        let dir = tempfile::Builder::new()
            .prefix("barman-it-")
            .tempdir()
            .expect("create a scratch directory");
        std::fs::create_dir_all(dir.path().join("home")).expect("create barman_home");
        Scratch { dir }
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// `barman_home`.
    pub fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    /// `log_file`.
    pub fn log_file(&self) -> PathBuf {
        self.dir.path().join("barman.log")
    }

    /// The main configuration file.
    pub fn config(&self) -> PathBuf {
        self.dir.path().join("barman.conf")
    }

    /// Replace the main configuration file.
    pub fn write_config(&self, text: &str) {
        self.write("barman.conf", text);
    }

    /// Write a file relative to the scratch directory, creating parents.
    pub fn write(&self, relative: &str, text: &str) -> PathBuf {
        let path = self.dir.path().join(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create parent directory");
        }
        std::fs::write(&path, text).expect("write scratch file");
        path
    }

    /// `barman -c <config> ARGS...`.
    pub fn barman(&self, args: &[&str]) -> Run {
        self.barman_env(args, &[])
    }

    /// [`Scratch::barman`] with these environment variables set.
    pub fn barman_env(&self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut cmd = barman_command();
        cmd.arg("-c").arg(self.config()).args(args);
        cmd.envs(env.iter().copied());
        Run::of(cmd)
    }
}

/// The `barman` binary under test, with a clean environment for configuration.
pub fn barman_command() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_barman"));
    cmd.env_remove("BARMAN_CONFIG_FILE");
    cmd
}

/// The outcome of running the binary.
#[derive(Debug)]
pub struct Run {
    /// The exit code.
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Run {
    /// Run a command and capture its outcome.
    pub fn of(mut cmd: Command) -> Run {
        let output = cmd.output().expect("run the barman binary");
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Assert the exit code, showing the output when it differs.
    #[track_caller]
    pub fn code(&self, expected: i32) -> &Run {
        assert_eq!(
            self.code, expected,
            "unexpected exit code\n--- stdout\n{}\n--- stderr\n{}",
            self.stdout, self.stderr
        );
        self
    }

    /// Assert success and return stdout.
    #[track_caller]
    pub fn ok(&self) -> &str {
        self.code(0);
        &self.stdout
    }

    /// Assert that stderr contains `text`.
    #[track_caller]
    pub fn stderr_has(&self, text: &str) -> &Run {
        assert!(
            self.stderr.contains(text),
            "stderr lacks {text:?}\n--- stderr\n{}",
            self.stderr
        );
        self
    }
}

/// A line of the archiver's `<server>-xlog.db.summaries` for WAL file `name`, told apart
/// from others by its record count.
pub fn summary_line(name: &str, records: u32) -> String {
    format!(
        "{name}\twalsummary1 seg={name} size=16MB sysid=7710809521602424182 pg=15 blcksz=8192 \
         head=clean tail=switch records={records} first=0/3000028 last=0/3154B18 end=0/4000000 \
         commits=0 aborts=0\n"
    )
}
