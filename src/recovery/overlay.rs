//! The files a recovery writes on top of the backup's: the configuration files after
//! Barman's mangling pass (originals kept as `.origin`), the recovery settings and signal
//! file, `backup_manifest.<id>` and `.barman-recover.info`.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::Result;

use super::config::{detect_issues, mangle, Assertion, RecoveryFiles};
use super::dest::Destination;

/// What the configuration pass found.
#[derive(Debug, Default)]
pub struct ConfigReport {
    /// Settings changed to prevent data loss.
    pub changes: Vec<Assertion>,
    /// Settings to review.
    pub warnings: Vec<Assertion>,
    /// Configuration files the backup does not hold.
    pub missing_files: Vec<String>,
}

/// The inputs of the configuration pass.
pub struct Overlay<'a> {
    /// `server_version_num` of the backup.
    pub version: u32,
    /// Captured files of the data directory (name → content).
    pub captured: &'a BTreeMap<String, Vec<u8>>,
    /// Top-level names of the restored data directory.
    pub top_level: &'a [String],
    /// The recovery files to write, if any (PITR, get-wal or standby).
    pub recovery: Option<&'a RecoveryFiles>,
}

/// Write the mangled configuration, the recovery files, and the backup's metadata.
pub fn write(
    dest: &dyn Destination,
    data_dir: &Path,
    overlay: &Overlay<'_>,
    backup_id: &str,
    backup_info_text: &str,
) -> Result<ConfigReport> {
    let mut report = ConfigReport::default();
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    if let Some(manifest) = overlay.captured.get("backup_manifest") {
        files.push((format!("backup_manifest.{backup_id}"), manifest.clone()));
    }
    let mut conf_files = vec!["postgresql.conf".to_string()];
    if overlay.version >= 90400 {
        conf_files.push("postgresql.auto.conf".to_string());
    }
    let present = |name: &str| overlay.top_level.iter().any(|n| n == name);
    for name in conf_files
        .iter()
        .map(String::as_str)
        .chain(["pg_hba.conf", "pg_ident.conf"])
    {
        if !present(name) {
            report.missing_files.push(name.to_string());
        }
    }
    let (append_to, append_lines, signal) = match overlay.recovery {
        Some(RecoveryFiles::AutoConf {
            file,
            lines,
            signal,
        }) => (Some(file.as_str()), Some(lines.as_slice()), Some(*signal)),
        Some(RecoveryFiles::RecoveryConf { text }) => {
            files.push(("recovery.conf".to_string(), text.clone().into_bytes()));
            (None, None, None)
        }
        None => (None, None, None),
    };
    let mut names: Vec<String> = conf_files
        .into_iter()
        .filter(|n| present(n) && overlay.captured.contains_key(n))
        .collect();
    if overlay.version >= 120000 {
        if let Some(file) = append_to {
            if !names.iter().any(|n| n == file) {
                names.push(file.to_string());
            }
        }
    }
    for name in &names {
        let original = overlay.captured.get(name).cloned().unwrap_or_default();
        let append = if Some(name.as_str()) == append_to {
            append_lines
        } else {
            None
        };
        let (mangled, changes) = mangle(name, &original, append);
        report.changes.extend(changes);
        report.warnings.extend(detect_issues(name, &mangled));
        files.push((format!("{name}.origin"), original));
        files.push((name.clone(), mangled));
    }
    if let Some(signal) = signal {
        files.push((signal.to_string(), Vec::new()));
    }
    files.push((
        ".barman-recover.info".to_string(),
        backup_info_text.as_bytes().to_vec(),
    ));
    let now = chrono::Utc::now().timestamp();
    let mut w = dest.writer(data_dir)?;
    for (name, content) in &files {
        w.file_from_reader(
            Path::new(name),
            0o600,
            content.len() as u64,
            now,
            &mut content.as_slice(),
        )?;
    }
    w.finish()?;
    Ok(report)
}
