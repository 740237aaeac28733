//! `archive-wal`: move WAL files from `streaming/` (receive-wal) and `incoming/`
//! (archive_command, put-wal) into the archive, as Barman does (BARMAN.md §3.5), with
//! one addition: every segment is validated (page headers and every record's CRC-32C,
//! and the cluster's system identifier from `identity.json`) before it is archived.
//! A segment that fails is moved to `errors/<name>.<stamp>.corrupt` and reported; it is
//! never archived.
//!
//! Per file, in this order, so that a crash at any point loses nothing: validate; pre
//! hooks; if the archive already has the file, drop the source when identical or move
//! it to `errors/` as a duplicate; compress into `<dst>.tmp`, fsync, rename, fsync the
//! directory; append its line to `xlog.db` (fsynced, under the xlogdb lock) and its
//! summary to `<server>-xlog.db.summaries`; only then remove the source; post hooks.
//!
//! The streaming directory keeps its newest `.partial` (older ones are archived under
//! their `.partial` name) and, when there is no `.partial`, its newest segment, so that
//! a WAL receiver can find where it stopped.

use std::fs::{self, File};
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use barman_protocol::wal::{validate_segment, TimelineHistory, ValidatorOptions};
use barman_protocol::WalSegmentSize;

use crate::catalog::remove::{archived_path, lock_xlogdb};
use crate::catalog::xlogdb::{self, XlogEntry};
use crate::catalog::{is_wal_file_name, WalFileInfo};
use crate::config::values::{CompressionLevel, Value};
use crate::config::ServerConfig;
use crate::fsutil;
use crate::hooks::Hooks;
use crate::output::Output;
use crate::wal::compression::{copy_decompressed, Compression};

/// Where files come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// `streaming/`, written by receive-wal.
    Streaming,
    /// `incoming/`, written by archive_command or put-wal.
    Incoming,
}

impl Source {
    /// The name in Barman's messages.
    pub fn label(self) -> &'static str {
        match self {
            Source::Streaming => "streaming",
            Source::Incoming => "file archival",
        }
    }

    fn directory_option(self) -> &'static str {
        match self {
            Source::Streaming => "streaming_wals_directory",
            Source::Incoming => "incoming_wals_directory",
        }
    }

    fn batch_option(self) -> &'static str {
        match self {
            Source::Streaming => "streaming_archiver_batch_size",
            Source::Incoming => "archiver_batch_size",
        }
    }
}

/// What one archiver run did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ArchiveReport {
    /// Files archived.
    pub archived: Vec<String>,
    /// Files that failed validation (moved to `errors/`).
    pub corrupt: Vec<String>,
}

/// What archiving needs besides the server.
pub struct ArchiveEnv<'a> {
    /// The server.
    pub server: &'a ServerConfig,
    /// `barman_lock_directory`.
    pub lock_dir: &'a Path,
    /// The configuration file (for hooks).
    pub config_file: &'a Path,
}

/// The batch of files to process from a source directory.
struct Batch {
    files: Vec<PathBuf>,
    unknown: Vec<PathBuf>,
    /// Temporary files untouched for `stale_age`: left by a writer that died.
    stale: Vec<PathBuf>,
    stale_age: std::time::Duration,
    total: usize,
    batch_size: usize,
}

/// How long a temporary file in `incoming/` or `streaming/` may stay untouched before
/// archive-wal takes it for the leftover of a writer that died.
const STALE_TEMP_AGE: std::time::Duration = std::time::Duration::from_secs(24 * 3600);

/// [`STALE_TEMP_AGE`], or the seconds in `BARMAN_STALE_TEMP_AGE` (for tests: the change
/// time it is measured from cannot be set back).
fn stale_temp_age() -> std::time::Duration {
    std::env::var("BARMAN_STALE_TEMP_AGE")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .map_or(STALE_TEMP_AGE, std::time::Duration::from_secs)
}

/// How long ago `path` was last changed: by its change time, which, unlike the
/// modification time, no writer can set (`cp -p` into `%f.tmp` copies an old mtime).
fn untouched_for(path: &Path) -> Option<std::time::Duration> {
    use std::os::unix::fs::MetadataExt;
    let meta = fs::symlink_metadata(path).ok()?;
    let changed = std::time::UNIX_EPOCH
        + std::time::Duration::new(
            u64::try_from(meta.ctime()).ok()?,
            u32::try_from(meta.ctime_nsec()).ok()?,
        );
    let touched = meta.modified().map_or(changed, |m| m.max(changed));
    touched.elapsed().ok()
}

fn next_batch(server: &ServerConfig, source: Source) -> Result<Batch> {
    let dir = server.path(source.directory_option()).ok_or_else(|| {
        anyhow::anyhow!(
            "server '{}' has no {}",
            server.name,
            source.directory_option()
        )
    })?;
    let mut names: Vec<String> = match fs::read_dir(dir) {
        Ok(it) => it
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(e).with_context(|| format!("list {}", dir.display())),
    };
    // Files still being written (`<name>.<pid>.tmp` of put-wal or of an archive_command
    // that renames into place) are not in the batch, nor counted in it. One untouched for
    // a day was left by a writer that died (a live one renames it within seconds, and one
    // that stalled a day fails its rename and is retried by PostgreSQL), so it goes to
    // errors/.
    let mut stale = Vec::new();
    let stale_age = stale_temp_age();
    names.retain(|name| {
        if !fsutil::is_temp_name(name) {
            return true;
        }
        let path = dir.join(name);
        if untouched_for(&path).is_some_and(|age| age >= stale_age) {
            stale.push(path);
        }
        false
    });
    names.sort();
    let total = names.len();
    let batch_size = server.int(source.batch_option()).unwrap_or(0).max(0) as usize;
    if batch_size > 0 {
        names.truncate(batch_size);
    }
    let mut files = Vec::new();
    let mut partials = Vec::new();
    let mut unknown = Vec::new();
    for name in names {
        let path = dir.join(&name);
        if !path.exists() {
            continue;
        }
        if !path.is_file() || !is_wal_file_name(&name) {
            unknown.push(path);
        } else if name.ends_with(".partial") {
            if source == Source::Streaming {
                partials.push(path);
            } else {
                files.push(path);
            }
        } else {
            files.push(path);
        }
    }
    if source == Source::Streaming {
        if partials.len() > 1 {
            // Older partial files (left by a timeline switch) are archived as they are;
            // the newest stays where the receiver writes.
            partials.pop();
            files.append(&mut partials);
            files.sort();
        } else if partials.is_empty() {
            // Keep the newest segment, so that a receiver can find its position.
            if let Some(pos) = files
                .iter()
                .rposition(|p| p.file_name().is_some_and(|n| n.len() == 24))
            {
                files.remove(pos);
            }
        }
    }
    Ok(Batch {
        files,
        unknown,
        stale,
        stale_age,
        total,
        batch_size,
    })
}

/// Archive what a source directory holds; messages as Barman prints them.
pub fn archive(
    env: &ArchiveEnv<'_>,
    source: Source,
    out: &mut Output,
    verbose: bool,
) -> Result<ArchiveReport> {
    let server = env.server;
    let mut report = ArchiveReport::default();
    let batch = next_batch(server, source)?;
    let mut header = format!(
        "Processing xlog segments from {} for {}",
        source.label(),
        server.name
    );
    if batch.batch_size > 0 && batch.total > batch.files.len() {
        header.push_str(&format!(" (batch size: {})", batch.files.len()));
    }
    log::info!(
        "Found {} xlog segments from {} for {}",
        batch.total,
        source.label(),
        server.name
    );
    if verbose {
        out.info_unlogged(&header);
    }
    if let Some(encryption) = server.encryption() {
        anyhow::bail!(
            "encryption = {encryption} is not supported by this barman: WAL files would be \
             stored unencrypted; remove encryption from the configuration of server '{}', or \
             keep Python Barman for this server",
            server.name
        );
    }
    let compression = match server.text("compression") {
        Some(name) => Some(Compression::from_name(name).map_err(|e| anyhow::anyhow!("{e}"))?),
        None => None,
    };
    let level = match server.get("compression_level") {
        Some(Value::Level(level)) => *level,
        _ => CompressionLevel::Medium,
    };
    let sysid = identity_system_id(server)?;
    for path in &batch.files {
        if report.archived.is_empty() && report.corrupt.is_empty() && !verbose {
            out.info_unlogged(&header);
        }
        let name = file_name(path);
        out.info_unlogged(&format!("\t{name}"));
        match archive_one(env, path, &name, compression, level, sysid)? {
            Outcome::Archived => report.archived.push(name),
            Outcome::Identical => {}
            Outcome::Duplicate => out.info_unlogged(&format!(
                "\tError: {name} is already present in server {}. File moved to errors directory.",
                server.name
            )),
            Outcome::Corrupt(reason) => {
                out.error(&format!(
                    "WAL file {name} from {} of server {} failed validation: {reason}; it was not archived and has been moved to the errors directory",
                    source.label(),
                    server.name
                ));
                report.corrupt.push(name);
            }
            Outcome::Vetoed => {
                log::warn!(
                    "Archiving of {}/{name} aborted by pre_archive_retry_script",
                    server.name
                );
                return Ok(report);
            }
        }
    }
    if batch.files.is_empty() && verbose {
        out.info_unlogged("\tno file found");
    }
    let unknown = format!(
        "Some unknown objects have been found while processing xlog segments for {}. Objects moved to errors directory:",
        server.name
    );
    let age = batch.stale_age.as_secs();
    let age = if age % 3600 == 0 {
        format!("{} hours", age / 3600)
    } else {
        format!("{age} seconds")
    };
    let stale = format!(
        "Some temporary files untouched for over {age} (left by an interrupted put-wal or archive_command) have been found while processing xlog segments for {}. Files moved to errors directory:",
        server.name
    );
    for (paths, header, what, suffix) in [
        (&batch.unknown, unknown, "unexpected file", "unknown"),
        (&batch.stale, stale, "stale temporary file", "stale"),
    ] {
        if paths.is_empty() {
            continue;
        }
        out.info_unlogged(&header);
        for path in paths {
            let name = file_name(path);
            out.info_unlogged(&format!("\t{name}"));
            log::warn!(
                "Moving {what} for {} from {}: {name}",
                server.name,
                source.label()
            );
            move_to_errors(server, path, &name, suffix)?;
        }
    }
    Ok(report)
}

enum Outcome {
    Archived,
    Identical,
    Duplicate,
    Corrupt(String),
    Vetoed,
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned()
}

/// The system identifier recorded in `<backup_directory>/identity.json`, if any.
pub fn identity_system_id(server: &ServerConfig) -> Result<Option<u64>> {
    Ok(crate::catalog::identity::read(server)?.and_then(|i| i.systemid_number()))
}

/// Check a file's content: segments and partial segments are validated, history
/// files parsed. Returns the plain bytes and the summary line of a segment.
fn validate(name: &str, plain: &[u8], sysid: Option<u64>) -> Result<Option<String>, String> {
    if name.ends_with(".history") {
        let tli = super::timeline_of(name).ok_or_else(|| "bad history file name".to_string())?;
        let text =
            std::str::from_utf8(plain).map_err(|_| "the history file is not text".to_string())?;
        TimelineHistory::parse(
            barman_protocol::TimelineId::new(tli).map_err(|e| e.to_string())?,
            text,
        )
        .map_err(|e| e.to_string())?;
        return Ok(None);
    }
    if name.ends_with(".backup") {
        return Ok(None);
    }
    let size = u32::try_from(plain.len())
        .ok()
        .and_then(|n| WalSegmentSize::new(n).ok())
        .ok_or_else(|| {
            format!(
            "its size ({} bytes) is not a WAL segment size (a power of two from 1 MiB to 1 GiB)",
            plain.len()
        )
        })?;
    // A `.partial` name makes the validator accept WAL that ends before the segment does.
    let options = ValidatorOptions::for_file_name(name, size)
        .map_err(|e| e.to_string())?
        .system_identifier(sysid);
    let summary = validate_segment(plain, options).map_err(|e| e.to_string())?;
    Ok(Some(summary.to_string()))
}

fn archive_one(
    env: &ArchiveEnv<'_>,
    path: &Path,
    name: &str,
    compression: Option<Compression>,
    level: CompressionLevel,
    sysid: Option<u64>,
) -> Result<Outcome> {
    let server = env.server;
    let wals = server
        .path("wals_directory")
        .ok_or_else(|| anyhow::anyhow!("server '{}' has no wals_directory", server.name))?;
    // 1. Read and validate (decompressing what archive_command may have compressed).
    let mut stored = Vec::new();
    File::open(path)
        .and_then(|mut f| f.read_to_end(&mut stored))
        .with_context(|| format!("read {}", path.display()))?;
    let source_compression = Compression::detect(&stored);
    let mut plain = Vec::with_capacity(16 << 20);
    if let Err(e) = copy_decompressed(&mut stored.as_slice(), &mut plain) {
        move_to_errors(server, path, name, "corrupt")?;
        return Ok(Outcome::Corrupt(format!("it does not decompress: {e}")));
    }
    let summary = match validate(name, &plain, sysid) {
        Ok(summary) => summary,
        Err(reason) => {
            move_to_errors(server, path, name, "corrupt")?;
            return Ok(Outcome::Corrupt(reason));
        }
    };
    let meta = fs::metadata(path).with_context(|| format!("stat {}", path.display()))?;
    let time = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0.0, |d| d.as_secs_f64());
    // 2. Pre hooks.
    let dst = archived_path(wals, name);
    let mut hooks = Hooks::new(server, env.config_file, "archive");
    hooks.env_wal(
        name,
        path,
        meta.len(),
        time,
        source_compression.map(|c| c.name()),
    );
    if hooks.pre().is_err() {
        return Ok(Outcome::Vetoed);
    }
    // 3. Duplicates.
    if dst.exists() {
        let mut existing = Vec::new();
        File::open(&dst)
            .map_err(anyhow::Error::from)
            .and_then(|mut f| copy_decompressed(&mut f, &mut existing).map_err(anyhow::Error::from))
            .with_context(|| format!("read {}", dst.display()))?;
        if existing == plain {
            fs::remove_file(path).with_context(|| format!("remove {}", path.display()))?;
            return Ok(Outcome::Identical);
        }
        move_to_errors(server, path, name, "duplicate")?;
        return Ok(Outcome::Duplicate);
    }
    // 4. Store: compressed (unless it already is) into a temp file, then renamed.
    let dir = dst.parent().unwrap_or(wals).to_path_buf();
    fsutil::create_dir_all(&dir)?;
    let tmp = fsutil::temp_path(&dst);
    let (final_compression, size) = {
        let file = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .open(&tmp)
            .with_context(|| format!("create {}", tmp.display()))?;
        let mut writer = BufWriter::with_capacity(1 << 20, file);
        let used = match (source_compression, compression) {
            (Some(already), _) => {
                writer.write_all(&stored)?;
                Some(already)
            }
            (None, Some(c)) => {
                c.compress(c.level(level), &mut plain.as_slice(), &mut writer)?;
                Some(c)
            }
            (None, None) => {
                writer.write_all(&plain)?;
                None
            }
        };
        let file = writer.into_inner().map_err(|e| e.into_error())?;
        // The stored file keeps the source's times and mode, as Barman's
        // `shutil.copystat(src, dst)` does: xlog.db records the source's mtime and
        // `rebuild-xlogdb` (ours or Barman's) reads it back from the stored file.
        let mut times = fs::FileTimes::new();
        if let Ok(modified) = meta.modified() {
            times = times.set_modified(modified);
        }
        if let Ok(accessed) = meta.accessed() {
            times = times.set_accessed(accessed);
        }
        file.set_times(times)
            .and_then(|()| file.set_permissions(meta.permissions()))
            .with_context(|| {
                format!(
                    "copy the times and mode of {} to {}",
                    path.display(),
                    tmp.display()
                )
            })?;
        file.sync_all()
            .with_context(|| format!("fsync {}", tmp.display()))?;
        (used, file.metadata()?.len())
    };
    fs::rename(&tmp, &dst)
        .with_context(|| format!("rename {} to {}", tmp.display(), dst.display()))?;
    fsutil::fsync_dir(&dir)?;
    // 5. Catalogue it.
    {
        let _lock = lock_xlogdb(env.lock_dir, &server.name)?;
        let entry = XlogEntry {
            name: name.to_string(),
            size,
            time,
            compression: final_compression.map(|c| c.name().to_string()),
            encryption: None,
        };
        xlogdb::append(&xlogdb::path(server), std::slice::from_ref(&entry))?;
        if let Some(summary) = summary {
            append_summary(server, name, &summary)?;
        }
    }
    // 6. Only now the source goes.
    fs::remove_file(path).with_context(|| format!("remove {}", path.display()))?;
    if let Some(src_dir) = path.parent() {
        fsutil::fsync_dir(src_dir)?;
    }
    let mut post = Hooks::new(server, env.config_file, "archive");
    let info = WalFileInfo::read(&dst)?;
    post.env_wal(
        name,
        &dst,
        info.size,
        time,
        final_compression.map(|c| c.name()),
    );
    post.post();
    Ok(Outcome::Archived)
}

fn append_summary(server: &ServerConfig, name: &str, summary: &str) -> Result<()> {
    fsutil::append_durably(
        &xlogdb::summaries_path(server),
        format!("{name}\t{summary}\n").as_bytes(),
    )
}

/// Move a rejected file to `errors/<name>.<UTC stamp>.<suffix>`.
pub fn move_to_errors(server: &ServerConfig, path: &Path, name: &str, suffix: &str) -> Result<()> {
    let errors = server
        .path("errors_directory")
        .ok_or_else(|| anyhow::anyhow!("server '{}' has no errors_directory", server.name))?;
    fsutil::create_dir_all(errors)?;
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
    let dst = errors.join(format!("{name}.{stamp}.{suffix}"));
    match fs::rename(path, &dst) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            log::warn!("{} not found", path.display());
            return Ok(());
        }
        Err(_) => {
            // Another filesystem: copy, then remove.
            fs::copy(path, &dst)
                .with_context(|| format!("copy {} to {}", path.display(), dst.display()))?;
            fs::remove_file(path).with_context(|| format!("remove {}", path.display()))?;
        }
    }
    fsutil::fsync_dir(errors)?;
    if let Some(dir) = path.parent() {
        fsutil::fsync_dir(dir)?;
    }
    Ok(())
}
