//! `barman list-files SERVER BACKUP_ID [--target standalone|data|wal|full]
//! [--list-empty-directories]`: the absolute paths of a backup's files (`data`), plus
//! the WAL it needs to be consistent (`standalone`, the default), or the WAL archived
//! after it up to the next backup (`wal`), or both (`full`).

use std::path::Path;

use anyhow::{Context as _, Result};

use super::{select_one_server_allowing_inactive, Context};
use crate::catalog::check::segment_names;
use crate::catalog::remove::{archived_path, BackupPaths};
use crate::catalog::{xlogdb, BackupInfo, BackupStatus};
use crate::cli::ListFilesTarget;

/// Run `list-files`.
pub fn run(
    ctx: &mut Context,
    server: &str,
    backup: &str,
    target: ListFilesTarget,
    empty_dirs: bool,
) -> Result<()> {
    let Some(server) = select_one_server_allowing_inactive(&ctx.config, &mut ctx.out, server)?
    else {
        return Ok(());
    };
    let Some((backups, id)) = super::resolve_backup(&mut ctx.out, server, backup)? else {
        return Ok(());
    };
    let info = &backups[&id];
    let wals = server.path("wals_directory").unwrap_or(Path::new("."));
    let mut lines = Vec::new();
    if matches!(
        target,
        ListFilesTarget::Data | ListFilesTarget::Standalone | ListFilesTarget::Full
    ) {
        walk(&BackupPaths::of(server, &id).base, empty_dirs, &mut lines)?;
    }
    if target == ListFilesTarget::Standalone {
        if let (Some(begin), Some(end)) = (&info.begin_wal, &info.end_wal) {
            let size = info.xlog_segment_size.unwrap_or(16 << 20);
            let Some(names) = segment_names(begin, end, size) else {
                ctx.out.error(&format!(
                    "invalid xlog segment name '{begin}' or '{end}'\nHINT: Please run \"barman rebuild-xlogdb {}\" to solve this issue",
                    server.name
                ));
                return Ok(());
            };
            lines.extend(
                names
                    .iter()
                    .map(|n| archived_path(wals, n).display().to_string()),
            );
        }
    }
    if matches!(target, ListFilesTarget::Wal | ListFilesTarget::Full) {
        let entries = xlogdb::read(server)?;
        if let Some(begin) = &info.begin_wal {
            let next_end = next_backup(&backups, &id).and_then(|b| b.end_wal.as_deref());
            for entry in xlogdb::wal_until_next(begin, next_end, &entries, true) {
                lines.push(archived_path(wals, &entry.name).display().to_string());
            }
        }
    }
    for line in lines {
        ctx.out.info_unlogged(&line);
    }
    Ok(())
}

fn next_backup<'b>(
    backups: &'b std::collections::BTreeMap<String, BackupInfo>,
    id: &str,
) -> Option<&'b BackupInfo> {
    backups
        .values()
        .filter(|b| b.backup_id.as_str() > id)
        .find(|b| {
            matches!(
                b.status,
                Some(BackupStatus::Done | BackupStatus::WaitingForWals)
            )
        })
}

/// Files under `dir`, top-down as Python's `os.walk`, which Barman uses: the files of a
/// directory in name order, then its subdirectories in the order the directory lists them
/// (readdir order, unsorted, as `os.walk` leaves them), so the output equals Barman's.
fn walk(dir: &Path, empty_dirs: bool, lines: &mut Vec<String>) -> Result<()> {
    let entries: Vec<_> = match std::fs::read_dir(dir) {
        Ok(it) => it
            .collect::<std::io::Result<Vec<_>>>()
            .with_context(|| format!("list {}", dir.display()))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("list {}", dir.display())),
    };
    if empty_dirs && entries.is_empty() {
        lines.push(dir.display().to_string());
    }
    let mut subdirs = Vec::new();
    let mut files = Vec::new();
    for entry in entries {
        if entry.file_type()?.is_dir() {
            subdirs.push(entry.path());
        } else {
            files.push(entry.path());
        }
    }
    files.sort();
    lines.extend(files.iter().map(|p| p.display().to_string()));
    for sub in subdirs {
        walk(&sub, empty_dirs, lines)?;
    }
    Ok(())
}
