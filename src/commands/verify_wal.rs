//! `barman verify-wal SERVER [WAL_NAME...]`: validate the archived WAL again — every
//! page header, every record's CRC-32C, the cluster's system identifier — and report
//! each file that fails. Without names, every file `xlog.db` lists is checked, in
//! order, consecutive segments with the state handed from one to the next (so records
//! crossing segment boundaries are checked whole). Exit code 1 when a file fails or is
//! missing.

use anyhow::{Context as _, Result};
use barman_protocol::wal::{
    CarryOver, SegmentValidator, TimelineHistory, ValidatorOptions, WalFileName,
};
use barman_protocol::{TimelineId, WalSegmentSize};
use serde_json::json;

use super::{select_one_server_allowing_inactive, Context};
use crate::catalog::remove::archived_path;
use crate::catalog::{identity, is_wal_file_name, xlogdb};
use crate::wal::compression::copy_decompressed;

/// Run `verify-wal`.
pub fn run(ctx: &mut Context, server: &str, names: &[String]) -> Result<()> {
    let Some(server) = select_one_server_allowing_inactive(&ctx.config, &mut ctx.out, server)?
    else {
        return Ok(());
    };
    let wals = server
        .path("wals_directory")
        .ok_or_else(|| anyhow::anyhow!("server '{}' has no wals_directory", server.name))?;
    let files: Vec<String> = if names.is_empty() {
        xlogdb::read(server)
            .with_context(|| format!("read the WAL catalogue of server '{}'", server.name))?
            .into_iter()
            .map(|e| e.name)
            .collect()
    } else {
        names.to_vec()
    };
    let sysid = identity::read(server)?.and_then(|i| i.systemid_number());
    let mut results = Vec::new();
    let mut carry: Option<(String, CarryOver)> = None;
    for name in &files {
        let outcome = if !is_wal_file_name(name) {
            Err(format!("'{name}' is not a WAL file name"))
        } else {
            verify_one(&archived_path(wals, name), name, sysid, &mut carry)
        };
        results.push((name.clone(), outcome));
    }
    let failed = results.iter().filter(|(_, r)| r.is_err()).count();
    let name = server.name.clone();
    let json = json!({
        "files": results.iter().map(|(n, r)| match r {
            Ok(()) => json!({"name": n, "status": "OK"}),
            Err(e) => json!({"name": n, "status": "FAILED", "error": e}),
        }).collect::<Vec<_>>(),
        "ok": results.len() - failed,
        "failed": failed,
    });
    let lines = {
        let mut lines = vec![format!("Verifying the WAL archive of server {name}")];
        for (n, r) in &results {
            lines.push(match r {
                Ok(()) => format!("\t{n}: OK"),
                Err(e) => format!("\t{n}: FAILED ({e})"),
            });
        }
        lines.push(format!(
            "Verified {} WAL files: {} OK, {failed} FAILED",
            results.len(),
            results.len() - failed
        ));
        lines
    };
    ctx.out.result(&name, json, || lines);
    if failed > 0 {
        ctx.out.error(&format!(
            "{failed} WAL file(s) of server {name} failed verification: recovery through them is not possible; restore them from another copy or take a new backup"
        ));
    }
    Ok(())
}

/// Check one archived file; `carry` holds the previous segment's state when it was
/// valid.
fn verify_one(
    path: &std::path::Path,
    name: &str,
    sysid: Option<u64>,
    carry: &mut Option<(String, CarryOver)>,
) -> Result<(), String> {
    let mut plain = Vec::with_capacity(16 << 20);
    let file =
        std::fs::File::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()));
    let previous = carry.take();
    let mut file = file?;
    copy_decompressed(&mut file, &mut plain)
        .map_err(|e| format!("cannot decompress {}: {e}", path.display()))?;
    if name.ends_with(".history") {
        let tli =
            crate::wal::timeline_of(name).ok_or_else(|| format!("bad history file name {name}"))?;
        let text =
            std::str::from_utf8(&plain).map_err(|_| "the history file is not text".to_string())?;
        TimelineHistory::parse(TimelineId::new(tli).map_err(|e| e.to_string())?, text)
            .map_err(|e| e.to_string())?;
        return Ok(());
    }
    if name.ends_with(".backup") {
        return Ok(());
    }
    let size = u32::try_from(plain.len())
        .ok()
        .and_then(|n| WalSegmentSize::new(n).ok())
        .ok_or_else(|| format!("its size ({} bytes) is not a WAL segment size", plain.len()))?;
    let mut options = ValidatorOptions::for_file_name(name, size)
        .map_err(|e| e.to_string())?
        .system_identifier(sysid);
    // Continue from the previous segment only when this one directly follows it on the
    // same timeline; otherwise start fresh (a continuation is then skipped, not checked).
    if let Some((previous_name, state)) = previous {
        let follows = match WalFileName::parse(name, size) {
            Ok(WalFileName::Segment { segno, .. }) => {
                state.next_segno() == segno && previous_name.get(..8) == name.get(..8)
            }
            _ => false,
        };
        if follows {
            options = options.carry_over(state);
        }
    }
    let mut validator = SegmentValidator::new(options).map_err(|e| e.to_string())?;
    let summary = validator.feed(&plain).map_err(|e| e.to_string())?;
    if summary.is_none() {
        validator.finish().map_err(|e| e.to_string())?;
    }
    // Hand the state to the next segment when it directly follows this one.
    if name.len() == 24 {
        if let Ok(state) = validator.into_carry_over() {
            *carry = Some((name.to_string(), state));
        }
    }
    Ok(())
}
