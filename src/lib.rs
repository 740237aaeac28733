//! The `barman` application: a Barman-compatible backup and recovery manager for
//! PostgreSQL that speaks the replication protocol itself.
//!
//! [`run`] is the whole program: parse the command line, find and read the
//! configuration, become `barman_user`, set up logging, run one command, and turn
//! the outcome into Barman's exit codes.

pub mod backup;
pub mod catalog;
pub mod cli;
pub mod commands;
pub mod config;
pub mod error;
pub mod fsutil;
pub mod hooks;
pub mod logging;
pub mod output;
pub mod postgres;
pub mod recovery;
pub mod retention;
pub mod user;
pub mod wal;

use std::io::IsTerminal;

use clap::Parser;

use crate::cli::{Cli, ColorChoice};
use crate::config::{Config, MainConfig};
use crate::error::{classify, ExitStatus};
use crate::output::{Output, Sink};

/// The Barman version whose commands, options and catalogue this program implements.
pub const BARMAN_COMPAT_VERSION: &str = "3.17.0";

/// Run barman with these arguments (the first is the program name).
pub fn run(args: Vec<std::ffi::OsString>, sink: Box<dyn Sink>) -> ExitStatus {
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return match e.exit_code() {
                0 => ExitStatus::Success,
                _ => ExitStatus::Usage,
            };
        }
    };
    if cli.version {
        println!(
            "{BARMAN_COMPAT_VERSION}\n\nbarman-rs {} (Barman-compatible, native PostgreSQL replication protocol)",
            env!("CARGO_PKG_VERSION")
        );
        return ExitStatus::Success;
    }
    let color = match cli.color {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => std::io::stdout().is_terminal() && std::io::stderr().is_terminal(),
    };
    let mut out = Output::new(cli.format, cli.quiet, cli.debug, color, sink);
    let Some(command) = cli.command else {
        let _ = <Cli as clap::CommandFactory>::command().print_help();
        return ExitStatus::Success;
    };
    let (result, mut out) = match load_config(&cli.config, cli.log_level.as_deref(), &mut out) {
        Ok(config) => {
            let mut ctx = commands::Context { config, out };
            let outcome = commands::dispatch(&mut ctx, command);
            (outcome, ctx.out)
        }
        Err(e) => (Err(e), out),
    };
    let status = match result {
        Ok(()) if out.exit_code().is_some() => ExitStatus::Code(out.exit_code().unwrap_or(1)),
        Ok(()) if out.usage_errored() => ExitStatus::Usage,
        Ok(()) if out.errored() => ExitStatus::Failure,
        Ok(()) => ExitStatus::Success,
        Err(e) => {
            let (status, hint) = classify(&e);
            out.error(&format!("{e:#}"));
            if let Some(hint) = hint {
                out.hint(&hint);
            }
            status
        }
    };
    out.close();
    log::logger().flush();
    status
}

/// Find and read the configuration, switching to `barman_user` and starting the log
/// between the main file and the others, as Barman does.
fn load_config(
    explicit: &Option<std::path::PathBuf>,
    log_level: Option<&str>,
    out: &mut Output,
) -> anyhow::Result<Config> {
    let path = config::locate(explicit.as_deref())?;
    let main = MainConfig::load(&path)?;
    user::switch_to(main.global.barman_user(), &path)?;
    let level = log_level.unwrap_or(main.global.log_level());
    let level = logging::python_level(level).unwrap_or(20);
    if let Some(warning) = logging::init(main.global.log_file(), level, main.global.log_format()) {
        out.warning(&warning);
    }
    let config = main.complete()?;
    for warning in &config.warnings {
        out.warning(warning);
    }
    log::debug!(
        "Initialised barman-rs {} (Barman {BARMAN_COMPAT_VERSION} compatible, config: {})",
        env!("CARGO_PKG_VERSION"),
        config.path.display()
    );
    Ok(config)
}
