//! One module per barman verb, and what they share: the run [`Context`] (resolved
//! configuration and output) and server selection with Barman's rules for unknown,
//! inactive and disabled servers.

pub mod archive_wal;
pub mod backup;
pub mod check;
pub mod check_backup;
pub mod check_wal_archive;
pub mod cron;
pub mod delete;
pub mod diagnose;
pub mod get_wal;
pub mod keep;
pub mod list_backups;
pub mod list_files;
pub mod list_servers;
pub mod metrics;
pub mod put_wal;
pub mod rebuild_xlogdb;
pub mod receive_wal;
pub mod recover;
pub mod remote_status;
pub mod replication_status;
pub mod show_backup;
pub mod show_servers;
pub mod status;
pub mod switch_wal;
pub mod terminate_process;
pub mod verify_backup;
pub mod verify_wal;

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Context as _, Result};

use crate::cli::Command;
use crate::config::{Config, ServerConfig};
use crate::error::UsageError;
use crate::output::Output;

/// What every command gets: the configuration and the output.
pub struct Context {
    /// The resolved configuration.
    pub config: Config,
    /// Where results and messages go.
    pub out: Output,
}

/// Run one command.
pub fn dispatch(ctx: &mut Context, command: Command) -> Result<()> {
    match command {
        Command::ListBackups {
            server_name,
            minimal,
        } => list_backups::run(ctx, &server_name, minimal),
        Command::ListFiles {
            server_name,
            backup_id,
            target,
            list_empty_directories,
        } => list_files::run(
            ctx,
            &server_name,
            &backup_id,
            target,
            list_empty_directories,
        ),
        Command::ListServers { minimal } => list_servers::run(ctx, minimal),
        Command::Keep {
            server_name,
            backup_id,
            release,
            status,
            target,
        } => {
            let action = match (release, status, target) {
                (true, _, _) => keep::KeepAction::Release,
                (_, true, _) => keep::KeepAction::Status,
                (_, _, Some(target)) => keep::KeepAction::Keep(target),
                _ => unreachable!("clap requires one of --release, --status, --target"),
            };
            keep::run(ctx, &server_name, &backup_id, action)
        }
        Command::RebuildXlogdb { server_name } => rebuild_xlogdb::run(ctx, &server_name),
        Command::ShowBackup {
            server_name,
            backup_id,
        } => show_backup::run(ctx, &server_name, &backup_id),
        Command::VerifyWal {
            server_name,
            wal_name,
        } => verify_wal::run(ctx, &server_name, &wal_name),
        Command::Status { server_name } => status::run(ctx, &server_name),
        Command::Metrics { server_name } => {
            let names = if server_name.is_empty() {
                vec!["all".to_string()]
            } else {
                server_name
            };
            metrics::run(ctx, &names)
        }
        Command::ShowServers { server_name } => show_servers::run(ctx, &server_name),
        Command::ArchiveWal { server_name } => archive_wal::run(ctx, &server_name),
        Command::Check {
            server_name,
            nagios,
        } => check::run(ctx, &server_name, nagios),
        Command::CheckBackup {
            server_name,
            backup_id,
        } => check_backup::run(ctx, &server_name, &backup_id),
        Command::CheckWalArchive {
            server_name,
            timeline,
        } => check_wal_archive::run(ctx, &server_name, timeline),
        Command::ReceiveWal {
            stop,
            reset,
            create_slot,
            if_not_exists,
            drop_slot,
            server_name,
        } => receive_wal::run(
            ctx,
            receive_wal::ReceiveWalArgs {
                server: server_name,
                stop,
                reset,
                create_slot,
                if_not_exists,
                drop_slot,
            },
        ),
        Command::ReplicationStatus {
            server_name,
            minimal,
            target,
            source,
        } => replication_status::run(ctx, &server_name, minimal, target, source),
        Command::SwitchWal {
            server_name,
            force,
            archive,
            archive_timeout,
        } => switch_wal::run(
            ctx,
            switch_wal::SwitchWalArgs {
                servers: server_name,
                force,
                archive,
                archive_timeout,
            },
        ),
        Command::PutWal { server_name, test } => {
            put_wal::run(ctx, &server_name, test, &mut std::io::stdin().lock())
        }
        Command::TerminateProcess { server_name, task } => {
            terminate_process::run(ctx, &server_name, &task)
        }
        Command::Cron { keep_descriptors } => cron::run(ctx, keep_descriptors),
        Command::LockDirectoryCleanup => {
            cron::clean_lock_directory(ctx.config.global.lock_directory())
        }
        Command::Delete {
            server_name,
            backup_id,
        } => delete::run(ctx, &server_name, &backup_id),
        Command::GetWal {
            server_name,
            wal_name,
            output_directory,
            partial,
            gzip,
            bzip2,
            keep_compression,
            peek,
            test,
        } => get_wal::run(
            ctx,
            get_wal::GetWalArgs {
                server: server_name,
                wal_name,
                output_directory,
                partial,
                output_compression: if gzip {
                    Some(crate::wal::compression::Compression::Gzip)
                } else if bzip2 {
                    Some(crate::wal::compression::Compression::Bzip2)
                } else {
                    None
                },
                keep_compression,
                peek,
                test,
            },
        ),
        Command::Diagnose { show_config_source } => diagnose::run(ctx, show_config_source),
        Command::Backup(args) => backup::run(ctx, args.into_backup_args()?),
        Command::VerifyBackup {
            server_name,
            backup_id,
        } => verify_backup::run(ctx, &server_name, &backup_id),
        Command::Restore(args) => recover::run(ctx, *args),
    }
}

/// Problems that involve several servers stop every command that works on servers.
pub fn refuse_on_global_errors(config: &Config, out: &mut Output) -> Result<()> {
    if config.global_errors.is_empty() {
        return Ok(());
    }
    for error in &config.global_errors {
        out.error(error);
    }
    Err(UsageError::new(
        "the configuration has conflicting paths between servers",
        "give every server its own directories in the configuration",
    )
    .into())
}

/// The servers named on the command line, sorted, each once; `all` means every
/// server. Unknown names are reported as errors and skipped. Each selected server's
/// configuration warnings are printed.
pub fn select_servers<'c>(
    config: &'c Config,
    out: &mut Output,
    names: &[String],
) -> Result<Vec<&'c ServerConfig>> {
    refuse_on_global_errors(config, out)?;
    let all = names.iter().any(|n| n == "all");
    if all && names.len() > 1 {
        return Err(UsageError::new(
            "You cannot use 'all' with other server names",
            "name the servers one by one, or use 'all' alone",
        )
        .into());
    }
    let mut selected = Vec::new();
    if all {
        selected.extend(config.servers.values());
    } else {
        let unique: BTreeSet<&String> = names.iter().collect();
        for name in unique {
            match config.server(name) {
                Some(server) => selected.push(server),
                None => out.usage_error(&format!("Unknown server '{name}'")),
            }
        }
    }
    for server in &selected {
        for warning in &server.warnings {
            out.warning(warning);
        }
    }
    Ok(selected)
}

/// The one server a single-server command works on, with Barman's rules: `all` is
/// refused, an unknown server is a usage error, an inactive server is skipped with a
/// message, and a disabled one is refused with its reasons. `None` means "stop".
pub fn select_one_server<'c>(
    config: &'c Config,
    out: &mut Output,
    name: &str,
) -> Result<Option<&'c ServerConfig>> {
    select_one(config, out, name, false)
}

/// Like [`select_one_server`], but an inactive server is worked on too (catalogue
/// commands such as `delete`).
pub fn select_one_server_allowing_inactive<'c>(
    config: &'c Config,
    out: &mut Output,
    name: &str,
) -> Result<Option<&'c ServerConfig>> {
    select_one(config, out, name, true)
}

fn select_one<'c>(
    config: &'c Config,
    out: &mut Output,
    name: &str,
    allow_inactive: bool,
) -> Result<Option<&'c ServerConfig>> {
    if name == "all" {
        return Err(UsageError::new(
            "You cannot use 'all' in a single server context",
            "name one server",
        )
        .into());
    }
    let Some(server) = select_servers(config, out, &[name.to_string()])?
        .into_iter()
        .next()
    else {
        return Ok(None);
    };
    if !server.active() && !allow_inactive {
        out.info(&format!("Skipping inactive server '{}'", server.name));
        return Ok(None);
    }
    if server.disabled() {
        for message in &server.msg_list {
            out.error(message);
        }
        return Ok(None);
    }
    Ok(Some(server))
}

/// Every configured server, sorted by name, with its warnings printed.
pub fn all_servers<'c>(config: &'c Config, out: &mut Output) -> Result<Vec<&'c ServerConfig>> {
    select_servers(config, out, &["all".to_string()])
}

/// `(inactive)`, `(WARNING: disabled)` or nothing, as Barman marks servers.
pub fn server_state_note(server: &ServerConfig) -> Option<&'static str> {
    if !server.active() {
        Some("(inactive)")
    } else if server.disabled() {
        Some("(WARNING: disabled)")
    } else {
        None
    }
}

/// The backup catalogue of `server` and the id that `wanted` names in it (an id, a
/// backup name, or a shortcut such as `latest`); `None` once Barman's message for a
/// backup that is not there has been printed.
pub fn resolve_backup(
    out: &mut Output,
    server: &ServerConfig,
    wanted: &str,
) -> Result<Option<(BTreeMap<String, crate::catalog::BackupInfo>, String)>> {
    let backups = crate::catalog::read_backups(server)
        .with_context(|| format!("read the backup catalogue of server '{}'", server.name))?;
    match crate::catalog::resolve_backup_id(&server.name, &backups, wanted) {
        Ok(id) => Ok(Some((backups, id))),
        Err(message) => {
            out.error(&message);
            Ok(None)
        }
    }
}

/// The lock of one backup (`.<server>-<id>.lock` in `lock_dir`, created if missing), or
/// the message to print when another process holds it.
pub fn lock_backup(
    lock_dir: &std::path::Path,
    server: &str,
    id: &str,
) -> Result<std::result::Result<crate::fsutil::LockFile, String>> {
    crate::fsutil::create_dir_all(lock_dir)?;
    match crate::fsutil::try_lock(&crate::fsutil::server_lock_path(lock_dir, server, id)) {
        Ok(lock) => Ok(Ok(lock)),
        Err(crate::fsutil::LockError::Busy { .. }) => Ok(Err(format!(
            "Another process is holding the lock for backup {id} of server {server}."
        ))),
        Err(e) => Err(e.into()),
    }
}
