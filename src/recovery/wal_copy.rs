//! Copying the WAL a recovery needs into the destination, decompressed: archived segments,
//! timeline history files and, when the target needs it, the streaming archiver's live
//! `.partial` under its segment name. Into `pg_wal/` with `archive_status/<name>.done`
//! (restore to the end of the backup: the server must not archive them again), or into
//! `barman_wal/` (PITR, fetched by `restore_command`).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::{Context, Result};

use super::archive::read_plain;
use super::dest::{Destination, EntryWriter};

/// One file to copy: its name in the destination and where it is stored.
#[derive(Debug, Clone)]
pub struct WalFile {
    /// The name to give it (a `.partial` is copied under its segment name).
    pub name: String,
    /// The stored file.
    pub source: PathBuf,
}

/// Copy `files` into `wal_dest` with `jobs` workers; with `done_files`, also write
/// `archive_status/<name>.done`. Returns the bytes written.
pub fn copy_wal(
    dest: &dyn Destination,
    wal_dest: &Path,
    files: &[WalFile],
    jobs: usize,
    done_files: bool,
) -> Result<u64> {
    let now = chrono::Utc::now().timestamp();
    {
        let mut w = dest.writer(wal_dest)?;
        w.dir(Path::new("archive_status"), 0o700)?;
        w.finish()?;
    }
    let next = AtomicUsize::new(0);
    let workers = jobs.max(1).min(files.len().max(1));
    let results: Vec<Result<u64>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                scope.spawn(|| -> Result<u64> {
                    let mut w: Option<Box<dyn EntryWriter>> = None;
                    let mut bytes = 0u64;
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(f) = files.get(i) else { break };
                        let plain = read_plain(&f.source)
                            .with_context(|| format!("read WAL file {}", f.name))?;
                        let writer = match &mut w {
                            Some(w) => w,
                            None => w.insert(dest.writer(wal_dest)?),
                        };
                        writer.file_from_reader(
                            Path::new(&f.name),
                            0o600,
                            plain.len() as u64,
                            now,
                            &mut plain.as_slice(),
                        )?;
                        if done_files {
                            writer.file_from_reader(
                                &Path::new("archive_status").join(format!("{}.done", f.name)),
                                0o600,
                                0,
                                now,
                                &mut std::io::empty(),
                            )?;
                        }
                        bytes += plain.len() as u64;
                    }
                    if let Some(w) = w {
                        w.finish()?;
                    }
                    Ok(bytes)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("a WAL copy worker panicked")))
            })
            .collect()
    });
    let mut total = 0;
    for r in results {
        total += r?;
    }
    Ok(total)
}
