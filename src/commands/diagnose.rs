//! `barman diagnose [--show-config-source]`: one JSON document (4-space indent,
//! sorted keys) with the global configuration, facts about this system, every
//! model, and per server its configuration, configuration problems, backups
//! (from the catalogue's `backup.info` files) and the newest archived WAL file of
//! each timeline. It is for support: it never connects to PostgreSQL.

use anyhow::{Context as _, Result};
use serde_json::{json, Map, Value as Json};

use super::Context;
use crate::catalog;
use crate::config::{Config, Setting};
use crate::output::json::python_dumps;

/// Run `diagnose`.
pub fn run(ctx: &mut Context, show_source: bool) -> Result<()> {
    // Unlike other commands, diagnose reports global problems inside its document
    // (errors_list) instead of refusing to run.
    let doc = build(&ctx.config, show_source)?;
    ctx.out.info_unlogged(&python_dumps(&doc, Some(4)));
    Ok(())
}

fn build(config: &Config, show_source: bool) -> Result<Json> {
    let mut servers = Map::new();
    for server in config.servers.values() {
        let backups: Map<String, Json> = catalog::read_backups(server)
            .with_context(|| format!("read the backup catalogue of server '{}'", server.name))?
            .into_iter()
            .map(|(id, info)| (id, info.to_json()))
            .collect();
        let wals: Map<String, Json> = catalog::latest_archived_wals(server)
            .with_context(|| format!("read the WAL archive of server '{}'", server.name))?
            .into_iter()
            .map(|(tli, info)| (tli, info.to_json()))
            .collect();
        let mut server_config = Map::new();
        for (key, setting) in server.settings() {
            server_config.insert(key.to_string(), setting_json(setting, show_source));
        }
        server_config.insert(
            "name".into(),
            plain_or_sourced(json!(server.name), "default", show_source),
        );
        server_config.insert(
            "disabled".into(),
            plain_or_sourced(json!(server.disabled()), "default", show_source),
        );
        servers.insert(
            server.name.clone(),
            json!({
                "active_model": server.active_model,
                "backups": backups,
                "config": server_config,
                "msg_list": server.msg_list,
                "wals": { "last_archived_wal_per_timeline": wals },
            }),
        );
    }
    let mut models = Map::new();
    for model in config.models.values() {
        let mut model_config = Map::new();
        for (key, setting) in &model.overrides {
            model_config.insert(key.to_string(), setting_json(setting, show_source));
        }
        model_config.insert("name".into(), json!(model.name));
        models.insert(model.name.clone(), json!({ "config": model_config }));
    }
    Ok(json!({
        "global": {
            "config": global_config(config, show_source),
            "system_info": system_info(),
        },
        "models": models,
        "servers": servers,
    }))
}

fn setting_json(setting: &Setting, show_source: bool) -> Json {
    let value = setting.value.as_ref().map_or(Json::Null, |v| v.to_json());
    plain_or_sourced(value, &setting.source.describe(), show_source)
}

fn plain_or_sourced(value: Json, source: &str, show_source: bool) -> Json {
    if show_source {
        json!({ "source": source, "value": value })
    } else {
        value
    }
}

/// `[barman]` as written, plus the derived global settings, as Barman reports them.
fn global_config(config: &Config, show_source: bool) -> Json {
    let mut map = Map::new();
    for (key, value) in &config.global.raw {
        let source = config
            .global
            .setting(key)
            .map(|s| s.source.describe())
            .unwrap_or_else(|| config.path.display().to_string());
        map.insert(
            key.clone(),
            plain_or_sourced(json!(value), &source, show_source),
        );
    }
    for key in [
        "barman_lock_directory",
        "lock_directory_cleanup",
        "config_changes_queue",
    ] {
        if let Some(setting) = config.global.setting(key) {
            map.insert(key.into(), setting_json(setting, show_source));
        }
    }
    map.insert("errors_list".into(), json!(config.global_errors));
    Json::Object(map)
}

fn system_info() -> Json {
    let uname = nix::sys::utsname::uname().ok();
    let kernel = uname.map(|u| {
        format!(
            "{} {} {} {}",
            u.sysname().to_string_lossy(),
            u.nodename().to_string_lossy(),
            u.release().to_string_lossy(),
            u.machine().to_string_lossy()
        )
    });
    let release = std::fs::read_to_string("/etc/os-release")
        .ok()
        .and_then(|text| {
            text.lines()
                .find_map(|l| l.strip_prefix("PRETTY_NAME="))
                .map(|v| v.trim_matches('"').to_string())
        });
    json!({
        "barman_ver": crate::BARMAN_COMPAT_VERSION,
        "implementation": format!("barman-rs {}", env!("CARGO_PKG_VERSION")),
        "kernel_ver": kernel,
        "release": release,
        "timestamp": chrono::Local::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, false),
    })
}
