//! `barman list-servers [--minimal]` (alias `list-server`): one line per configured
//! server, `NAME - DESCRIPTION`, with ` (inactive)`, ` (WARNING: disabled)` and
//! ` (Passive)` marks as Barman prints them.

use anyhow::Result;
use serde_json::json;

use super::{all_servers, Context};

/// Run `list-servers`.
pub fn run(ctx: &mut Context, minimal: bool) -> Result<()> {
    for server in all_servers(&ctx.config, &mut ctx.out)? {
        let mut description = server.description().to_string();
        if !server.active() {
            description.push_str(" (inactive)");
        } else if server.disabled() {
            description.push_str(" (WARNING: disabled)");
        }
        if server.passive_node() {
            description.push_str(" (Passive)");
        }
        let name = server.name.clone();
        let line = if minimal || description.is_empty() {
            name.clone()
        } else {
            format!("{name} - {description}")
        };
        ctx.out
            .result(&name, json!({ "description": description }), || vec![line]);
    }
    Ok(())
}
