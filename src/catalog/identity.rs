//! `<backup_directory>/identity.json`: which PostgreSQL cluster a server's catalogue
//! belongs to (`{"systemid": "...", "version": "15"}`, 4-space indent, sorted keys,
//! trailing newline, as Barman writes it). Written at the first backup; checked by
//! `check` ("systemid coherence") and by the archiver, which refuses WAL of another
//! cluster.

use std::fs;

use anyhow::{Context, Result};
use serde_json::json;

use crate::config::ServerConfig;
use crate::fsutil;

/// The identity of the cluster a catalogue holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The system identifier, as text.
    pub systemid: String,
    /// The major version, as text (`15`).
    pub version: String,
}

impl Identity {
    /// The system identifier as a number.
    pub fn systemid_number(&self) -> Option<u64> {
        self.systemid.parse().ok()
    }
}

/// Read the identity of a server's catalogue, if recorded.
pub fn read(server: &ServerConfig) -> Result<Option<Identity>> {
    let Some(dir) = server.path("backup_directory") else {
        return Ok(None);
    };
    let path = dir.join("identity.json");
    let text = match fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("read {}", path.display())),
    };
    let value: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("parse {}", path.display()))?;
    let field = |key: &str| {
        value.get(key).and_then(|v| {
            v.as_str()
                .map(str::to_string)
                .or_else(|| v.as_u64().map(|n| n.to_string()))
        })
    };
    match (field("systemid"), field("version")) {
        (Some(systemid), version) => Ok(Some(Identity {
            systemid,
            version: version.unwrap_or_default(),
        })),
        _ => Err(anyhow::anyhow!(
            "{} has no systemid: fix or remove the file",
            path.display()
        )),
    }
}

/// Record the identity of a server's catalogue, durably.
pub fn write(server: &ServerConfig, identity: &Identity) -> Result<()> {
    let dir = server
        .path("backup_directory")
        .ok_or_else(|| anyhow::anyhow!("server '{}' has no backup_directory", server.name))?;
    fsutil::create_dir_all(dir)?;
    let doc = json!({ "systemid": identity.systemid, "version": identity.version });
    let text = format!("{}\n", crate::output::json::python_dumps(&doc, Some(4)));
    fsutil::write_durably(&dir.join("identity.json"), text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::MainConfig;

    #[test]
    fn identity_round_trips_in_barmans_format() {
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("barman.conf");
        fs::write(
            &conf,
            format!(
                "[barman]\nbarman_home = {}\n[pg]\nconninfo = x\n",
                dir.path().display()
            ),
        )
        .unwrap();
        let cfg = MainConfig::load(&conf).unwrap().complete().unwrap();
        let pg = cfg.server("pg").unwrap();
        assert_eq!(read(pg).unwrap(), None);
        let id = Identity {
            systemid: "7710809247697520226".into(),
            version: "15".into(),
        };
        write(pg, &id).unwrap();
        assert_eq!(
            fs::read_to_string(dir.path().join("pg/identity.json")).unwrap(),
            "{\n    \"systemid\": \"7710809247697520226\",\n    \"version\": \"15\"\n}\n"
        );
        assert_eq!(read(pg).unwrap(), Some(id));
    }
}
