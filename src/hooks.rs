//! Hook scripts, as Barman runs them (BARMAN.md §7): `pre_`/`post_` + `backup`,
//! `archive`, `delete`, `recovery`, `wal_delete` + `_script` or `_retry_script`,
//! run with `sh -c`, `path_prefix` prepended to `PATH`, and Barman's environment
//! (`BARMAN_VERSION`, `BARMAN_SERVER`, `BARMAN_CONFIGURATION`, `BARMAN_HOOK`,
//! `BARMAN_PHASE`, `BARMAN_RETRY`, `BARMAN_ERROR`, plus the event's variables).
//!
//! A standard script's exit code only produces a log line. A retry script runs again
//! until it exits 0 (success), 62 (abort, carry on) or 63 (abort, stop): 3 seconds
//! between tries, 60 seconds after every 5 failures. Exit 63 from a *pre* retry
//! script stops the operation; from a *post* one it is treated like 62. Order around
//! an operation: pre standard, pre retry, the operation, post retry, post standard.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::catalog::BackupInfo;
use crate::config::ServerConfig;

/// Retry scripts: exit code meaning "give up, but go on with the operation".
pub const EXIT_ABORT_CONTINUE: i32 = 62;
/// Retry scripts: exit code meaning "give up and stop the operation".
pub const EXIT_ABORT_STOP: i32 = 63;

/// When a hook runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Before the operation.
    Pre,
    /// After the operation.
    Post,
}

impl Phase {
    fn as_str(self) -> &'static str {
        match self {
            Phase::Pre => "pre",
            Phase::Post => "post",
        }
    }
}

/// A pre retry script asked to stop the operation (exit code 63).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Aborted {
    /// The script.
    pub script: String,
}

impl std::fmt::Display for Aborted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the hook script '{}' asked to stop (exit code {EXIT_ABORT_STOP})",
            self.script
        )
    }
}

impl std::error::Error for Aborted {}

/// One event's hook scripts: `<phase>_<event>_script` and `<phase>_<event>_retry_script`.
pub struct Hooks<'a> {
    server: &'a ServerConfig,
    config_file: &'a Path,
    event: &'static str,
    env: Vec<(String, String)>,
    /// Pause between retries (3 s) and after every 5 failures (60 s).
    pauses: (Duration, Duration),
}

impl<'a> Hooks<'a> {
    /// The hooks of an event (`backup`, `archive`, `delete`, `recovery`, `wal_delete`).
    pub fn new(server: &'a ServerConfig, config_file: &'a Path, event: &'static str) -> Hooks<'a> {
        Hooks {
            server,
            config_file,
            event,
            env: Vec::new(),
            pauses: (Duration::from_secs(3), Duration::from_secs(60)),
        }
    }

    /// Add an environment variable.
    pub fn env(&mut self, key: &str, value: impl Into<String>) -> &mut Self {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.to_string(), value.into()));
        self
    }

    /// The variables describing a backup.
    pub fn env_backup(
        &mut self,
        info: &BackupInfo,
        backup_dir: &Path,
        info_path: &Path,
        previous: Option<&str>,
        next: Option<&str>,
    ) -> &mut Self {
        self.env("BARMAN_BACKUP_DIR", backup_dir.display().to_string())
            .env("BARMAN_BACKUP_INFO_PATH", info_path.display().to_string())
            .env("BARMAN_BACKUP_ID", info.backup_id.clone())
            .env("BARMAN_PREVIOUS_ID", previous.unwrap_or(""))
            .env("BARMAN_NEXT_ID", next.unwrap_or(""))
            .env(
                "BARMAN_STATUS",
                info.status.map(|s| s.as_str()).unwrap_or("EMPTY"),
            )
            .env("BARMAN_ERROR", info.error.clone().unwrap_or_default())
    }

    /// The variables describing a WAL file.
    pub fn env_wal(
        &mut self,
        name: &str,
        path: &Path,
        size: u64,
        time: f64,
        compression: Option<&str>,
    ) -> &mut Self {
        self.env("BARMAN_SEGMENT", name)
            .env("BARMAN_FILE", path.display().to_string())
            .env("BARMAN_SIZE", size.to_string())
            .env("BARMAN_TIMESTAMP", crate::output::json::python_float(time))
            .env("BARMAN_COMPRESSION", compression.unwrap_or(""))
    }

    #[cfg(test)]
    fn with_pauses(mut self, short: Duration, long: Duration) -> Self {
        self.pauses = (short, long);
        self
    }

    /// Run the standard then the retry script of the pre phase. `Err` when the
    /// retry script asked to stop: the operation must not run.
    pub fn pre(&self) -> Result<(), Aborted> {
        self.run_standard(Phase::Pre);
        self.run_retry(Phase::Pre)
    }

    /// Run the retry then the standard script of the post phase. A request to stop
    /// is logged and ignored: the operation has already happened.
    pub fn post(&self) {
        if let Err(aborted) = self.run_retry(Phase::Post) {
            log::warn!(
                "Ignoring stop request after receiving abort (exit code {EXIT_ABORT_STOP}) from post-{} retry hook script: {}",
                self.event,
                aborted.script
            );
        }
        self.run_standard(Phase::Post);
    }

    fn script(&self, phase: Phase, retry: bool) -> Option<(String, &'static str)> {
        let option = match (phase, retry) {
            (Phase::Pre, false) => format!("pre_{}_script", self.event),
            (Phase::Pre, true) => format!("pre_{}_retry_script", self.event),
            (Phase::Post, false) => format!("post_{}_script", self.event),
            (Phase::Post, true) => format!("post_{}_retry_script", self.event),
        };
        let hook = crate::config::options::find(&option)?.name;
        self.server.text(hook).map(|s| {
            (
                s.to_string(),
                hook.trim_start_matches("pre_").trim_start_matches("post_"),
            )
        })
    }

    /// Run a script once; its exit code, or `None` when it could not start.
    fn run_once(&self, script: &str, hook: &str, phase: Phase, retry: bool) -> Option<i32> {
        let mut path = std::env::var("PATH").unwrap_or_default();
        if let Some(prefix) = self.server.text("path_prefix") {
            path = format!("{prefix}:{path}");
        }
        let mut cmd = Command::new("sh");
        cmd.arg("-c").arg(script).env("PATH", path);
        cmd.env("BARMAN_VERSION", crate::BARMAN_COMPAT_VERSION)
            .env("BARMAN_SERVER", &self.server.name)
            .env("BARMAN_CONFIGURATION", self.config_file)
            .env("BARMAN_HOOK", hook)
            .env("BARMAN_PHASE", phase.as_str())
            .env("BARMAN_RETRY", if retry { "1" } else { "0" });
        for (key, value) in &self.env {
            cmd.env(key, value);
        }
        log::debug!("Attempt to run {hook}: {script}");
        match cmd.output() {
            Ok(output) => {
                let code = output.status.code().unwrap_or(-1);
                if code != 0 {
                    log::warn!(
                        "{script} returned {code}\nOutput details:\n{}{}",
                        String::from_utf8_lossy(&output.stdout),
                        String::from_utf8_lossy(&output.stderr)
                    );
                } else {
                    log::debug!("{script} returned 0");
                }
                Some(code)
            }
            Err(e) => {
                log::error!("Exception running {hook}: {e}");
                None
            }
        }
    }

    fn run_standard(&self, phase: Phase) {
        if let Some((script, hook)) = self.script(phase, false) {
            self.run_once(&script, hook, phase, false);
        }
    }

    fn run_retry(&self, phase: Phase) -> Result<(), Aborted> {
        let Some((script, hook)) = self.script(phase, true) else {
            return Ok(());
        };
        let mut failures = 0;
        loop {
            match self.run_once(&script, hook, phase, true) {
                Some(0) => return Ok(()),
                Some(EXIT_ABORT_CONTINUE) => {
                    log::warn!("{script} was aborted (got exit status {EXIT_ABORT_CONTINUE}, Barman resumes)");
                    return Ok(());
                }
                Some(EXIT_ABORT_STOP) => {
                    log::error!("{script} was aborted (got exit status {EXIT_ABORT_STOP}, Barman requested to stop)");
                    return Err(Aborted { script });
                }
                _ => {
                    failures += 1;
                    if failures % 5 == 0 {
                        std::thread::sleep(self.pauses.1);
                    } else {
                        std::thread::sleep(self.pauses.0);
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::MainConfig;

    fn server_with(dir: &Path, hooks: &str) -> crate::config::Config {
        let path = dir.join("barman.conf");
        std::fs::write(
            &path,
            format!(
                "[barman]\nbarman_home = {}\n[pg]\nconninfo = x\nbackup_method = postgres\narchiver = on\n{hooks}",
                dir.display()
            ),
        )
        .unwrap();
        MainConfig::load(&path).unwrap().complete().unwrap()
    }

    #[test]
    fn scripts_run_in_order_with_barmans_environment() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("log");
        let line = |tag: &str| {
            format!(
                "echo {tag} $BARMAN_HOOK $BARMAN_PHASE $BARMAN_RETRY $BARMAN_SERVER $BARMAN_SEGMENT $BARMAN_VERSION >> {}",
                log.display()
            )
        };
        let cfg = server_with(
            dir.path(),
            &format!(
                "pre_wal_delete_script = {}\npre_wal_delete_retry_script = {}\npost_wal_delete_retry_script = {}\npost_wal_delete_script = {}\n",
                line("a"),
                line("b"),
                line("c"),
                line("d")
            ),
        );
        let server = cfg.server("pg").unwrap();
        let mut hooks = Hooks::new(server, &cfg.path, "wal_delete");
        hooks.env_wal("000000010000000000000002", Path::new("/x"), 5, 1.5, None);
        hooks.pre().unwrap();
        hooks.post();
        assert_eq!(
            std::fs::read_to_string(&log).unwrap(),
            "a wal_delete_script pre 0 pg 000000010000000000000002 3.17.0\n\
             b wal_delete_retry_script pre 1 pg 000000010000000000000002 3.17.0\n\
             c wal_delete_retry_script post 1 pg 000000010000000000000002 3.17.0\n\
             d wal_delete_script post 0 pg 000000010000000000000002 3.17.0\n"
        );
    }

    #[test]
    fn a_pre_retry_script_can_stop_the_operation_and_failures_are_retried() {
        let dir = tempfile::tempdir().unwrap();
        let counter = dir.path().join("count");
        // Fails twice, then asks to stop.
        let script = format!(
            "n=$(cat {c} 2>/dev/null || echo 0); n=$((n+1)); echo $n > {c}; [ $n -ge 3 ] && exit 63; exit 1",
            c = counter.display()
        );
        let cfg = server_with(
            dir.path(),
            &format!("pre_delete_retry_script = {script}\npost_delete_retry_script = exit 63\n"),
        );
        let server = cfg.server("pg").unwrap();
        let hooks = Hooks::new(server, &cfg.path, "delete")
            .with_pauses(Duration::from_millis(1), Duration::from_millis(1));
        let err = hooks.pre().unwrap_err();
        assert!(err.to_string().contains("asked to stop (exit code 63)"));
        assert_eq!(std::fs::read_to_string(&counter).unwrap().trim(), "3");
        // A post retry script cannot stop anything: it returns normally.
        hooks.post();
    }

    #[test]
    fn exit_62_lets_the_operation_go_on_and_no_script_is_fine() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = server_with(dir.path(), "pre_archive_retry_script = exit 62\n");
        let server = cfg.server("pg").unwrap();
        assert!(Hooks::new(server, &cfg.path, "archive").pre().is_ok());
        assert!(Hooks::new(server, &cfg.path, "backup").pre().is_ok());
    }
}
