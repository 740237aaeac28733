//! `barman backup SERVER...`: take a base backup of each server over BASE_BACKUP
//! (`crate::backup::executor` has the flow). Several servers are backed up in parallel,
//! up to [`MAX_PARALLEL`] at once; their messages are printed server by server in name
//! order, as Barman's sequential run prints them, and a progress line is drawn on a
//! terminal (never under `-q`, in JSON mode, or when stdout is not a terminal).

use std::collections::{BTreeMap, VecDeque};
use std::io::{IsTerminal, Write};
use std::sync::Mutex;

use anyhow::Result;

use super::{select_servers, Context};
use crate::backup::settings::{BackupSettings, Overrides};
use crate::backup::{backup_server, progress, Job, Report, Reporter};
use crate::catalog::is_backup_id;
use crate::error::UsageError;
use crate::output::{Format, Output};

/// Backups running at once when several servers are named.
pub const MAX_PARALLEL: usize = 4;

/// What `backup` was asked.
#[derive(Debug, Clone, Default)]
pub struct BackupArgs {
    /// The servers (`all` for every one).
    pub servers: Vec<String>,
    /// Values overriding the configuration.
    pub overrides: Overrides,
    /// `--wait`.
    pub wait: bool,
    /// `--wait-timeout`.
    pub wait_timeout: Option<u64>,
    /// `--name`.
    pub name: Option<String>,
}

impl crate::cli::BackupCli {
    /// The arguments of [`run`]; options this implementation cannot honour are refused.
    pub fn into_backup_args(self) -> Result<BackupArgs> {
        if self.incremental.is_some() {
            return Err(UsageError::new(
                "incremental backups (--incremental) are not supported yet",
                "take a full backup",
            )
            .into());
        }
        if self.reuse_backup.as_deref().is_some_and(|r| r != "off") {
            return Err(UsageError::new(
                "--reuse-backup is an rsync option and cannot be used with backup_method = postgres",
                "leave --reuse-backup out",
            )
            .into());
        }
        let immediate_checkpoint = if self.immediate_checkpoint {
            Some(true)
        } else if self.no_immediate_checkpoint {
            Some(false)
        } else {
            None
        };
        Ok(BackupArgs {
            servers: self.server_name,
            overrides: Overrides {
                immediate_checkpoint,
                bwlimit: self.bwlimit,
                retry_times: if self.no_retry {
                    Some(0)
                } else {
                    self.retry_times
                },
                retry_sleep: self.retry_sleep,
            },
            wait: self.wait,
            wait_timeout: self.wait_timeout,
            name: self.name,
        })
    }
}

/// Barman's `check_backup_name`: a name cannot look like an id or a shortcut.
pub fn check_backup_name(name: &str) -> Result<String, String> {
    if name.is_empty() {
        return Err("Backup name cannot be empty".into());
    }
    if is_backup_id(name) {
        return Err(format!("Backup name '{name}' is not allowed: backup ID"));
    }
    if [
        "latest",
        "last",
        "oldest",
        "first",
        "last-failed",
        "latest-full",
        "last-full",
    ]
    .contains(&name)
    {
        return Err(format!(
            "Backup name '{name}' is not allowed: reserved word"
        ));
    }
    Ok(name.to_string())
}

/// Run `backup`.
pub fn run(ctx: &mut Context, args: BackupArgs) -> Result<()> {
    if let Some(name) = &args.name {
        check_backup_name(name).map_err(|e| UsageError::new(&e, "choose another name"))?;
    }
    let Context { config, out } = ctx;
    let mut jobs = Vec::new();
    for server in select_servers(config, out, &args.servers)? {
        if !server.active() {
            out.info(&format!("Skipping inactive server '{}'", server.name));
            continue;
        }
        if server.passive_node() {
            out.info(&format!(
                "Skipping passive server '{}': backups are taken by the primary barman",
                server.name
            ));
            continue;
        }
        if server.disabled() {
            for message in &server.msg_list {
                out.error(message);
            }
            continue;
        }
        match BackupSettings::resolve(server, &args.overrides) {
            Ok(settings) => jobs.push(Job {
                server,
                config_file: &config.path,
                lock_dir: config.global.lock_directory(),
                settings,
                name: args.name.clone(),
                wait: args.wait,
                wait_timeout: args.wait_timeout,
            }),
            Err(e) => out.error(&format!(
                "Impossible to start the backup of server '{}': {e}",
                server.name
            )),
        }
    }
    if jobs.is_empty() {
        return Ok(());
    }
    let show_progress =
        out.format() == Format::Console && std::io::stdout().is_terminal() && !quiet_requested();
    let order: Vec<String> = jobs.iter().map(|j| j.server.name.clone()).collect();
    let queue = Mutex::new(jobs.iter().collect::<VecDeque<&Job<'_>>>());
    let (tx, rx) = std::sync::mpsc::channel::<(String, Report)>();
    std::thread::scope(|scope| {
        for _ in 0..jobs.len().min(MAX_PARALLEL) {
            let tx = tx.clone();
            let queue = &queue;
            scope.spawn(move || loop {
                let next = queue.lock().ok().and_then(|mut q| q.pop_front());
                let Some(job) = next else { break };
                let reporter = Reporter::new(&job.server.name, tx.clone());
                backup_server(job, &reporter);
                reporter.send(Report::Finished);
            });
        }
        drop(tx);
        let mut printer = Printer::new(order, show_progress);
        for (server, report) in rx {
            printer.receive(out, server, report);
        }
        printer.clear_progress();
    });
    Ok(())
}

/// Prints reports in server order: the first unfinished server's live, the others' held
/// until their turn.
struct Printer {
    order: Vec<String>,
    live: usize,
    held: BTreeMap<String, Vec<Report>>,
    finished: Vec<String>,
    show_progress: bool,
    progress_shown: bool,
}

impl Printer {
    fn new(order: Vec<String>, show_progress: bool) -> Printer {
        Printer {
            order,
            live: 0,
            held: BTreeMap::new(),
            finished: Vec::new(),
            show_progress,
            progress_shown: false,
        }
    }

    fn receive(&mut self, out: &mut Output, server: String, report: Report) {
        if let Report::Progress(p) = &report {
            if self.show_progress {
                let mut stdout = std::io::stdout().lock();
                let _ = write!(stdout, "\r{}\x1b[K", progress::line(&server, p));
                let _ = stdout.flush();
                self.progress_shown = true;
            }
            return;
        }
        if matches!(report, Report::Finished) {
            self.finished.push(server.clone());
        } else if self.order.get(self.live) == Some(&server) {
            self.print(out, &server, report);
        } else {
            self.held.entry(server).or_default().push(report);
        }
        // Hand over to the next server once the live one is finished.
        while let Some(live) = self.order.get(self.live).cloned() {
            for report in self.held.remove(&live).unwrap_or_default() {
                self.print(out, &live, report);
            }
            if !self.finished.contains(&live) {
                break;
            }
            self.live += 1;
        }
    }

    fn print(&mut self, out: &mut Output, server: &str, report: Report) {
        self.clear_progress();
        match report {
            Report::Info(m) => out.info(&m),
            Report::Warning(m) => out.warning(&m),
            Report::Error(m) => out.error(&m),
            Report::Debug(m) => out.debug(&m),
            Report::Result(json) => out.result(server, json, Vec::new),
            Report::Progress(_) | Report::Finished => {}
        }
    }

    fn clear_progress(&mut self) {
        if self.progress_shown {
            let mut stdout = std::io::stdout().lock();
            let _ = write!(stdout, "\r\x1b[K");
            let _ = stdout.flush();
            self.progress_shown = false;
        }
    }
}

/// Whether `-q` was given: the progress line obeys it (`Output` hides only messages).
fn quiet_requested() -> bool {
    use clap::Parser;
    crate::cli::Cli::try_parse_from(std::env::args_os())
        .map(|cli| cli.quiet)
        .unwrap_or(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backup_names_follow_barmans_rules() {
        assert!(check_backup_name("nightly").is_ok());
        assert!(check_backup_name("").is_err());
        assert!(check_backup_name("20260101T000000").is_err());
        assert!(check_backup_name("latest").is_err());
    }

    #[test]
    fn reports_are_printed_server_by_server() {
        let sink = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
        struct Shared(std::sync::Arc<std::sync::Mutex<Vec<String>>>);
        impl crate::output::Sink for Shared {
            fn out(&mut self, line: &str) {
                self.0.lock().unwrap().push(line.to_string());
            }
            fn err(&mut self, line: &str) {
                self.0.lock().unwrap().push(line.to_string());
            }
        }
        let mut out = Output::new(
            Format::Console,
            false,
            false,
            false,
            Box::new(Shared(sink.clone())),
        );
        let mut p = Printer::new(vec!["a".into(), "b".into()], false);
        p.receive(&mut out, "b".into(), Report::Info("b1".into()));
        p.receive(&mut out, "a".into(), Report::Info("a1".into()));
        p.receive(&mut out, "b".into(), Report::Finished);
        p.receive(&mut out, "a".into(), Report::Error("a2".into()));
        p.receive(&mut out, "a".into(), Report::Finished);
        assert_eq!(*sink.lock().unwrap(), ["a1", "ERROR: a2", "b1"]);
    }
}
