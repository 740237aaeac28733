//! `barman put-wal SERVER`: the receiving end of `barman-wal-archive` (archive_command
//! over SSH). Standard input is a tar stream holding WAL files and a `SHA256SUMS` (or
//! legacy `MD5SUMS`) file; every file must have a matching checksum, and a plain WAL
//! segment must also pass the WAL validator, before anything is written into
//! `incoming/` (Barman's `Server.put_wal`, with its messages). Files are extracted to
//! `incoming/<name>.<pid>.tmp` (a name archive-wal skips), fsynced, and renamed into
//! place only once everything checked out; on any error nothing is left behind.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, Result};
use barman_protocol::wal::{SegmentValidator, ValidatorOptions};
use barman_protocol::WalSegmentSize;
use sha2::Digest as _;

use super::{select_one_server_allowing_inactive, Context};
use crate::catalog::is_wal_file_name;
use crate::config::ServerConfig;
use crate::fsutil;
use crate::output::Output;
use crate::wal::archiver::{identity_system_id, move_to_errors};
use crate::wal::compression::Compression;

/// Run `put-wal`, reading the tar stream from `input`.
pub fn run(ctx: &mut Context, server: &str, test: bool, input: &mut dyn Read) -> Result<()> {
    let Some(server) = select_one_server_allowing_inactive(&ctx.config, &mut ctx.out, server)?
    else {
        return Ok(());
    };
    if !server.active() {
        ctx.out.error(&format!("Inactive server: {}", server.name));
        return Ok(());
    }
    if test {
        ctx.out.info(&format!(
            "Ready to accept WAL files for the server {}",
            server.name
        ));
        return Ok(());
    }
    let dest = server
        .path("incoming_wals_directory")
        .ok_or_else(|| anyhow::anyhow!("server '{}' has no incoming_wals_directory", server.name))?
        .to_path_buf();
    fsutil::create_dir_all(&dest)?;
    let mut received = Received::default();
    let result = receive(&mut ctx.out, server, &dest, input, &mut received);
    // Whatever happened, no temporary file stays.
    for file in received.files.values() {
        let _ = std::fs::remove_file(&file.tmp_path);
    }
    result
}

/// One file extracted from the tar stream.
struct Extracted {
    tmp_path: PathBuf,
    sha256: String,
    md5: String,
}

#[derive(Default)]
struct Received {
    files: BTreeMap<String, Extracted>,
    sums: BTreeMap<String, String>,
    md5: bool,
}

/// `(SSH host: IP)` when run over SSH, as Barman adds to its messages.
fn source_suffix() -> String {
    std::env::var("SSH_CONNECTION")
        .ok()
        .and_then(|c| {
            c.split_whitespace()
                .next()
                .map(|ip| format!(" (SSH host: {ip})"))
        })
        .unwrap_or_default()
}

fn receive(
    out: &mut Output,
    server: &ServerConfig,
    dest: &Path,
    input: &mut dyn Read,
    received: &mut Received,
) -> Result<()> {
    let name_s = &server.name;
    let suffix = source_suffix();
    let sysid = identity_system_id(server)?;
    // 1. Extract the tar stream: checksum files parsed, WAL files to temporary names.
    let mut archive = tar::Archive::new(input);
    for entry in archive.entries().context("read the tar stream")? {
        let mut entry = entry.context("read the tar stream")?;
        let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
        let name = raw.strip_prefix("./").unwrap_or(&raw).to_string();
        let kind = entry.header().entry_type();
        if !kind.is_file() {
            out.error(&format!(
                "Unsupported file type '{}' for file '{name}' in put-wal for server '{name_s}'{suffix}",
                char::from(kind.as_byte())
            ));
            return Ok(());
        }
        if name.contains('/') {
            out.error(&format!(
                "Unsupported filename '{name}' in put-wal for server '{name_s}'{suffix}"
            ));
            return Ok(());
        }
        if name == "MD5SUMS" || name == "SHA256SUMS" {
            let mut text = String::new();
            entry
                .read_to_string(&mut text)
                .with_context(|| format!("read {name}"))?;
            for line in text.lines() {
                match split_checksum_line(line) {
                    Some((sum, path)) => {
                        let path = path.strip_prefix("./").unwrap_or(path);
                        received.sums.insert(path.to_string(), sum.to_lowercase());
                    }
                    None => out.warning(&format!(
                        "Bad checksum line '{line}' found in put-wal for server '{name_s}'{suffix}"
                    )),
                }
            }
            received.md5 = name == "MD5SUMS";
            continue;
        }
        if !is_wal_file_name(&name) {
            out.error(&format!(
                "Unsupported filename '{name}' in put-wal for server '{name_s}'{suffix}"
            ));
            return Ok(());
        }
        // `<name>.<pid>.tmp`, a name archive-wal leaves alone while it is being written.
        let tmp_path = crate::fsutil::temp_path(&dest.join(&name));
        let size = entry.header().size().unwrap_or(0);
        let extracted = extract(&mut entry, &tmp_path, &name, size, sysid);
        match extracted {
            Ok(Ok(file)) => {
                received.files.insert(name, file);
            }
            Ok(Err(reason)) => {
                let _ = std::fs::remove_file(&tmp_path);
                out.error(&format!(
                    "WAL file '{name}' in put-wal for server '{name_s}'{suffix} failed validation: {reason}"
                ));
                return Ok(());
            }
            Err(e) => {
                let _ = std::fs::remove_file(&tmp_path);
                return Err(e);
            }
        }
    }
    // 2. Every checksum must match a file, and every file must have a checksum.
    for (name, sum) in &received.sums {
        let Some(file) = received.files.get(name) else {
            out.error(&format!(
                "Checksum without corresponding file '{name}' in put-wal for server '{name_s}'{suffix}"
            ));
            return Ok(());
        };
        let actual = if received.md5 {
            &file.md5
        } else {
            &file.sha256
        };
        if actual != sum {
            out.error(&format!(
                "Bad file checksum '{actual}' (should be {sum}) for file '{name}' in put-wal for server '{name_s}'{suffix}"
            ));
            return Ok(());
        }
        log::info!(
            "Received file '{name}' with checksum '{sum}' by put-wal for server '{name_s}'{suffix}"
        );
    }
    if let Some(name) = received
        .files
        .keys()
        .find(|n| !received.sums.contains_key(*n))
    {
        out.error(&format!(
            "Missing checksum for file '{name}' in put-wal for server '{name_s}'{suffix}"
        ));
        return Ok(());
    }
    // 3. Into place, durably; an existing file with another checksum goes to errors/.
    for (name, file) in &received.files {
        let path = dest.join(name);
        let checksum = if received.md5 {
            &file.md5
        } else {
            &file.sha256
        };
        if path.exists() {
            let existing = hash_file(&path, received.md5)?;
            if &existing == checksum {
                out.debug(&format!(
                    "Duplicate Files with Identical Checksums. File {name} already exists on server {name_s}, and the checksums are identical. Skipping the file."
                ));
                continue;
            }
            move_to_errors(server, &file.tmp_path, name, "duplicate")?;
            out.info(&format!(
                "\tError: Duplicate Files Detected with Mismatched Checksums. File {name} already exists on server {name_s} with checksum {existing}, but the checksum of the incoming file is{checksum}. The file has been moved to the errors directory."
            ));
            continue;
        }
        std::fs::rename(&file.tmp_path, &path)
            .with_context(|| format!("rename {} to {}", file.tmp_path.display(), path.display()))?;
    }
    fsutil::fsync_dir(dest)
}

/// `sha256sum` lines: `<hex>  <name>` or `<hex> *<name>` (Barman's `re.split(r" [* ]")`).
fn split_checksum_line(line: &str) -> Option<(&str, &str)> {
    let line = line.trim_end();
    let pos = line.find(' ')?;
    let (sum, rest) = line.split_at(pos);
    let name = rest
        .strip_prefix("  ")
        .or_else(|| rest.strip_prefix(" *"))?;
    Some((sum, name))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn hash_file(path: &Path, md5: bool) -> Result<String> {
    let mut file = File::open(path).with_context(|| format!("open {}", path.display()))?;
    let mut buf = vec![0u8; 1 << 20];
    let mut sha = sha2::Sha256::new();
    let mut md = <md5::Md5 as md5::Digest>::new();
    loop {
        let n = file
            .read(&mut buf)
            .with_context(|| format!("read {}", path.display()))?;
        if n == 0 {
            break;
        }
        if md5 {
            md5::Digest::update(&mut md, &buf[..n]);
        } else {
            sha.update(&buf[..n]);
        }
    }
    Ok(if md5 {
        hex(&md5::Digest::finalize(md))
    } else {
        hex(&sha.finalize())
    })
}

/// Copies one tar entry to `tmp`, hashing it and, for a plain WAL segment, validating
/// it. The inner `Err` is a validation failure.
fn extract(
    entry: &mut dyn Read,
    tmp: &Path,
    name: &str,
    size: u64,
    sysid: Option<u64>,
) -> Result<std::result::Result<Extracted, String>> {
    let mut file = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(fsutil::FILE_MODE)
        .open(tmp)
        .with_context(|| format!("create {}", tmp.display()))?;
    let mut sha = sha2::Sha256::new();
    let mut md = <md5::Md5 as md5::Digest>::new();
    let mut validator: Option<SegmentValidator> = None;
    let mut first = true;
    let mut buf = vec![0u8; 1 << 20];
    let mut invalid: Option<String> = None;
    loop {
        let n = entry
            .read(&mut buf)
            .with_context(|| format!("read {name} from the tar stream"))?;
        if n == 0 {
            break;
        }
        let chunk = &buf[..n];
        if first {
            first = false;
            // Plain segments are validated here; compressed ones by archive-wal.
            let plain = Compression::detect(chunk).is_none();
            let seg_size = u32::try_from(size)
                .ok()
                .and_then(|s| WalSegmentSize::new(s).ok());
            if let (true, Some(seg_size)) = (plain, seg_size) {
                if let Ok(options) = ValidatorOptions::for_file_name(name, seg_size) {
                    match SegmentValidator::new(options.system_identifier(sysid)) {
                        Ok(v) => validator = Some(v),
                        Err(e) => invalid = Some(e.to_string()),
                    }
                }
            } else if plain && barman_protocol::wal::names::is_segment_file_name(name) {
                invalid = Some(format!("its size ({size} bytes) is not a WAL segment size"));
            }
        }
        if let (Some(v), None) = (validator.as_mut(), invalid.as_ref()) {
            if let Err(e) = v.feed(chunk) {
                invalid = Some(e.to_string());
            }
        }
        sha.update(chunk);
        md5::Digest::update(&mut md, chunk);
        file.write_all(chunk)
            .with_context(|| format!("write {}", tmp.display()))?;
    }
    if let Some(reason) = invalid {
        return Ok(Err(reason));
    }
    if let Some(v) = &mut validator {
        if !v.is_finished() {
            if let Err(e) = v.finish() {
                return Ok(Err(e.to_string()));
            }
        }
    }
    file.sync_all()
        .with_context(|| format!("fsync {}", tmp.display()))?;
    Ok(Ok(Extracted {
        tmp_path: tmp.to_path_buf(),
        sha256: hex(&sha.finalize()),
        md5: hex(&md5::Digest::finalize(md)),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_lines_in_both_sha256sum_modes() {
        assert_eq!(
            split_checksum_line("abc  000000010000000000000001"),
            Some(("abc", "000000010000000000000001"))
        );
        assert_eq!(
            split_checksum_line("abc *./000000010000000000000001"),
            Some(("abc", "./000000010000000000000001"))
        );
        assert_eq!(split_checksum_line("garbage"), None);
    }
}
