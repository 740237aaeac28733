//! `barman check-wal-archive SERVER [--timeline N]`: whether the server's WAL archive can
//! be used by a new server (BARMAN.md §1): it must be empty, or with `--timeline` hold no
//! file of that timeline or a later one. Barman's `check_archive_usable`, with its
//! messages; the archive is what `xlog.db` lists.

use anyhow::{Context as _, Result};
use serde_json::json;

use super::{select_one_server, Context};
use crate::catalog::{self, xlogdb};

/// Run `check-wal-archive`.
pub fn run(ctx: &mut Context, server: &str, timeline: Option<u32>) -> Result<()> {
    let Some(server) = select_one_server(&ctx.config, &mut ctx.out, server)? else {
        return Ok(());
    };
    let names: Vec<String> = xlogdb::read(server)
        .with_context(|| format!("read the WAL catalogue of server '{}'", server.name))?
        .into_iter()
        .map(|e| e.name)
        .collect();
    let header = format!("Server {}:", server.name);
    match usable(&names, timeline) {
        Ok(()) => {
            let passed = format!("WAL archive check for server {} passed", server.name);
            ctx.out.result(&server.name, json!(passed.clone()), || {
                vec![header, format!(" - {passed}")]
            });
        }
        Err(reason) => {
            ctx.out.result(&server.name, json!({}), || vec![header]);
            let message = format!(
                "WAL archive check failed for server {}: {reason}",
                server.name
            );
            log::error!("{message}");
            ctx.out.error(&message);
        }
    }
    Ok(())
}

/// Barman's `check_archive_usable`: the reason the archive cannot be used, if any.
fn usable(names: &[String], timeline: Option<u32>) -> Result<(), String> {
    let Some(timeline) = timeline else {
        return if names.is_empty() {
            Ok(())
        } else {
            Err("Expected empty archive".into())
        };
    };
    let mut unexpected = 0;
    for name in names {
        let tli = crate::wal::timeline_of(name)
            .filter(|_| catalog::is_wal_file_name(name))
            .ok_or_else(|| format!("Unexpected file {name} found in WAL archive"))?;
        if timeline <= tli {
            unexpected += 1;
        }
    }
    if unexpected > 0 {
        return Err(format!(
            "Found {unexpected} file{} in WAL archive equal to or newer than timeline {timeline}",
            if unexpected > 1 { "s" } else { "" }
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_archive_must_be_empty_or_older_than_the_timeline() {
        let names: Vec<String> = [
            "000000010000000000000002",
            "00000002.history",
            "000000020000000000000003",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        assert_eq!(usable(&[], None), Ok(()));
        assert_eq!(usable(&names, None), Err("Expected empty archive".into()));
        assert_eq!(usable(&names, Some(3)), Ok(()));
        assert_eq!(
            usable(&names, Some(2)),
            Err("Found 2 files in WAL archive equal to or newer than timeline 2".into())
        );
        assert_eq!(
            usable(&names[..1], Some(1)),
            Err("Found 1 file in WAL archive equal to or newer than timeline 1".into())
        );
        assert_eq!(
            usable(&["junk".to_string()], Some(1)),
            Err("Unexpected file junk found in WAL archive".into())
        );
    }
}
