//! `barman get-wal SERVER WAL_NAME`: send one WAL file from the archive, decompressed,
//! to standard output or into `-o DIR` — what `restore_command` runs during recovery
//! (BARMAN.md §1.3). `-P` also serves the `.partial` file `receive-wal` is writing,
//! `--peek N` lists the names of up to N consecutive archived files, `-t` checks that
//! the server can be reached. Exit codes as Barman: 0, 1 (not found), 3 (bad name or
//! destination).

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};

use super::{select_one_server_allowing_inactive, Context};
use crate::catalog::is_wal_file_name;
use crate::wal::compression::{copy_decompressed, Compression};
use crate::wal::{next_log_first_segment, next_segment_name, possible_paths};

/// The options of `get-wal`.
pub struct GetWalArgs {
    /// The server.
    pub server: String,
    /// The WAL file name.
    pub wal_name: String,
    /// `-o DIR`.
    pub output_directory: Option<PathBuf>,
    /// `-P`.
    pub partial: bool,
    /// `-z`/`-j`: compress the output (deprecated in Barman, kept for scripts).
    pub output_compression: Option<Compression>,
    /// `--keep-compression`: send the file as stored.
    pub keep_compression: bool,
    /// `--peek N`.
    pub peek: Option<u32>,
    /// `-t`.
    pub test: bool,
}

/// Run `get-wal`.
pub fn run(ctx: &mut Context, args: GetWalArgs) -> Result<()> {
    let Some(server) =
        select_one_server_allowing_inactive(&ctx.config, &mut ctx.out, &args.server)?
    else {
        return Ok(());
    };
    if args.test {
        ctx.out.info(&format!(
            "Ready to retrieve WAL files from the server {}",
            server.name
        ));
        return Ok(());
    }
    if args.keep_compression && args.output_compression.is_some() {
        ctx.out
            .error("argument `--gzip`/`--bzip2` not allowed with argument `keep-compression`");
        return Ok(());
    }
    let source = std::env::var("SSH_CONNECTION")
        .ok()
        .and_then(|c| {
            c.split_whitespace()
                .next()
                .map(|ip| format!(" (SSH host: {ip})"))
        })
        .unwrap_or_default();
    let name = &args.wal_name;
    if !is_wal_file_name(name) {
        ctx.out
            .error_with_code(&format!("'{name}' is not a valid wal file name{source}"), 3);
        return Ok(());
    }
    if let Some(count) = args.peek {
        for found in peek(server, name, count) {
            ctx.out.info_unlogged(&found);
        }
        return Ok(());
    }
    for path in possible_paths(server, name, args.partial) {
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e).with_context(|| format!("open {}", path.display())),
        };
        let shown = path
            .file_name()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        match &args.output_directory {
            Some(dir) => {
                let destination = dir.join(name);
                ctx.out.info(&format!(
                    "Sending WAL '{shown}' for server '{}' into '{}' file{source}",
                    server.name,
                    destination.display()
                ));
                if let Err(e) = send_to_file(file, &destination, &args) {
                    ctx.out.error_with_code(
                        &format!(
                            "Unable to write '{}' file{source}: {e:#}",
                            destination.display()
                        ),
                        3,
                    );
                }
            }
            None => {
                log::info!(
                    "Sending WAL '{shown}' for server '{}' to standard output{source}",
                    server.name
                );
                let stdout = io::stdout();
                let mut out = BufWriter::with_capacity(1 << 20, stdout.lock());
                send(file, &mut out, &args)
                    .and_then(|()| out.flush())
                    .with_context(|| format!("send {} to standard output", path.display()))?;
            }
        }
        return Ok(());
    }
    ctx.out.error(&format!(
        "WAL file '{name}' not found in server '{}'{source}",
        server.name
    ));
    Ok(())
}

/// Copy a stored file to `out`: decompressed, as stored, or recompressed.
fn send(mut file: File, out: &mut dyn Write, args: &GetWalArgs) -> io::Result<()> {
    if args.keep_compression {
        io::copy(&mut file, out)?;
        return Ok(());
    }
    match args.output_compression {
        None => {
            copy_decompressed(&mut file, out)?;
        }
        Some(c) => {
            let mut plain = Vec::with_capacity(16 << 20);
            copy_decompressed(&mut file, &mut plain)?;
            c.compress(6, &mut plain.as_slice(), out)?;
        }
    }
    Ok(())
}

/// Write into `destination` through a temporary name, so that PostgreSQL never
/// sees a half-written segment.
fn send_to_file(file: File, destination: &Path, args: &GetWalArgs) -> Result<()> {
    let tmp = crate::fsutil::temp_path(destination);
    let result = (|| -> Result<()> {
        let mut out = BufWriter::with_capacity(1 << 20, File::create(&tmp)?);
        send(file, &mut out, args)?;
        out.flush()?;
        std::fs::rename(&tmp, destination)?;
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Up to `count` consecutive archived files from `name`.
fn peek(server: &crate::config::ServerConfig, name: &str, count: u32) -> Vec<String> {
    let exists = |n: &str| possible_paths(server, n, false).iter().any(|p| p.exists());
    let mut found = Vec::new();
    if name.len() != 24 {
        if exists(name) {
            found.push(name.to_string());
        }
        return found;
    }
    let mut current = Some(name.to_string());
    while let Some(candidate) = current {
        if found.len() as u32 >= count {
            break;
        }
        if exists(&candidate) {
            current = next_segment_name(&candidate);
            found.push(candidate);
            continue;
        }
        // A missing power-of-two segment number may be a log boundary: try the next log.
        let seg = u32::from_str_radix(&candidate[16..24], 16).unwrap_or(0);
        if !seg.is_power_of_two() {
            break;
        }
        current = next_log_first_segment(&candidate).filter(|n| exists(n));
    }
    found
}
