//! `barman show-servers SERVER...|all` (alias `show-server`): every configuration
//! key of each server with its resolved value, sorted, as `\tkey: value` lines
//! (values printed as Barman prints them: `True`, `None`, `REDUNDANCY 2`,
//! `BackupOptions({'concurrent_backup'})`).
//!
//! Then, unless the server is a passive node, the live status of its PostgreSQL with
//! Barman's keys (`current_xlog`, `replication_slot`, `server_txt_version`, ...; see
//! [`remote_status`](super::remote_status)), which override configuration keys of the
//! same name as in Barman.

use std::collections::BTreeMap;

use anyhow::Result;
use serde_json::Value as Json;

use super::remote_status::{self, Py};
use super::{select_servers, server_state_note, Context};
use crate::catalog;
use crate::config::values::{human_duration, Value};
use crate::config::ServerConfig;
use crate::postgres::runtime;

/// A value as shown by `show-servers`: console text and JSON.
struct Shown {
    text: String,
    json: Json,
}

impl Shown {
    fn of(value: Option<&Value>) -> Shown {
        match value {
            None => Shown {
                text: "None".into(),
                json: Json::Null,
            },
            Some(v) => {
                let json = match v {
                    Value::Bool(b) => Json::Bool(*b),
                    Value::Int(n) => Json::from(*n),
                    Value::Size(n) => Json::from(*n),
                    Value::Str(s) => Json::String(s.clone()),
                    Value::List(items) => items.iter().cloned().map(Json::String).collect(),
                    other => Json::String(other.display()),
                };
                Shown {
                    text: v.display(),
                    json,
                }
            }
        }
    }

    fn py(value: &Py) -> Shown {
        Shown {
            text: value.text(),
            json: value.json(),
        }
    }

    fn text(text: String) -> Shown {
        Shown {
            json: Json::String(text.clone()),
            text,
        }
    }
}

/// Run `show-servers`.
pub fn run(ctx: &mut Context, names: &[String]) -> Result<()> {
    let rt = runtime()?;
    for server in select_servers(&ctx.config, &mut ctx.out, names)? {
        let note = server_state_note(server);
        let mut items = server_items(server);
        if !server.passive_node() {
            for (key, value) in rt.block_on(remote_status::fetch(server)) {
                items.insert(key, Shown::py(&value));
            }
        }
        let mut json = serde_json::Map::new();
        json.insert(
            "description".into(),
            note.map_or(Json::Null, |n| Json::String(n.into())),
        );
        for (key, shown) in &items {
            if shown.json.is_null() && json.contains_key(*key) {
                continue;
            }
            json.insert(key.to_string(), shown.json.clone());
        }
        let header = match note {
            Some(note) => format!("Server {} {note}:", server.name),
            None => format!("Server {}:", server.name),
        };
        ctx.out.result(&server.name, Json::Object(json), || {
            std::iter::once(header)
                .chain(items.iter().map(|(k, v)| format!("\t{k}: {}", v.text)))
                .collect()
        });
    }
    Ok(())
}

fn server_items(server: &ServerConfig) -> BTreeMap<&'static str, Shown> {
    let mut items: BTreeMap<&'static str, Shown> = server
        .settings()
        .map(|(key, setting)| (key, Shown::of(setting.value.as_ref())))
        .collect();
    items.insert("name", Shown::text(server.name.clone()));
    items.insert("disabled", Shown::of(Some(&Value::Bool(server.disabled()))));
    items.insert(
        "passive_node",
        Shown::of(Some(&Value::Bool(server.passive_node()))),
    );
    items.insert(
        "active_model",
        match &server.active_model {
            Some(model) => Shown::text(model.clone()),
            None => Shown::of(None),
        },
    );
    items.insert("last_backup_maximum_age", last_backup_age(server));
    items
}

/// Barman's `last_backup_maximum_age` line: the limit and the age of the newest backup.
fn last_backup_age(server: &ServerConfig) -> Shown {
    let Some(Value::Interval(limit)) = server.get("last_backup_maximum_age") else {
        return Shown::text("None".into());
    };
    let newest_end = catalog::read_backups(server).ok().and_then(|backups| {
        backups
            .values()
            .rev()
            .filter(|b| {
                matches!(
                    b.status,
                    Some(catalog::BackupStatus::Done | catalog::BackupStatus::WaitingForWals)
                )
            })
            .find_map(|b| b.end_time)
    });
    let text = match newest_end {
        None => format!(
            "{} (WARNING! latest backup is No available backups old)",
            limit.human()
        ),
        Some(end) => {
            let age = (chrono::Utc::now() - end.with_timezone(&chrono::Utc))
                .num_seconds()
                .max(0) as u64;
            if age > limit.seconds() {
                format!(
                    "{} (WARNING! latest backup is {} old)",
                    limit.human(),
                    human_duration(age)
                )
            } else {
                format!(
                    "{} (latest backup: {} )",
                    limit.human(),
                    human_duration(age)
                )
            }
        }
    };
    Shown::text(text)
}
