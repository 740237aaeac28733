//! `barman terminate-process SERVER TASK` (and `receive-wal --stop`): stop the process
//! that holds the task's lock file (`.<server>-<task>.lock`, whose content is the
//! holder's PID), as Barman's `ProcessManager.kill` does: SIGINT, then up to ten
//! seconds of checks that it is gone (BARMAN.md §1.3, §3.6).

use std::time::Duration;

use anyhow::Result;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use super::{select_one_server_allowing_inactive, Context};
use crate::config::ServerConfig;
use crate::fsutil;
use crate::output::Output;

/// How many times to check, [`CHECK_INTERVAL`] apart, that the process has ended.
const CHECKS: u32 = 100;

/// The wait between two checks.
const CHECK_INTERVAL: Duration = Duration::from_millis(100);

/// Run `terminate-process`.
pub fn run(ctx: &mut Context, server: &str, task: &str) -> Result<()> {
    let Some(server) = select_one_server_allowing_inactive(&ctx.config, &mut ctx.out, server)?
    else {
        return Ok(());
    };
    let lock_dir = ctx.config.global.lock_directory().to_path_buf();
    terminate(&mut ctx.out, &lock_dir, server, task);
    Ok(())
}

/// Stops the process running `task` for `server`, with Barman's messages.
pub fn terminate(out: &mut Output, lock_dir: &std::path::Path, server: &ServerConfig, task: &str) {
    let lock = fsutil::server_lock_path(lock_dir, &server.name, task);
    let pid = match fsutil::lock_holder(&lock) {
        Some(pid) if pid > 0 => pid,
        _ => {
            out.error(&format!(
                "Termination of {task} failed: no such process for server {}",
                server.name
            ));
            return;
        }
    };
    let Ok(raw) = i32::try_from(pid) else {
        out.error(&format!("Cannot terminate process {task}({pid})"));
        return;
    };
    let target = Pid::from_raw(raw);
    // SIGINT first, then the null signal to see whether the process is still there.
    let signals = std::iter::once(Some(Signal::SIGINT)).chain(std::iter::repeat(None));
    for (check, signal) in signals.take(CHECKS as usize + 1).enumerate() {
        match kill(target, signal) {
            Err(nix::errno::Errno::ESRCH) => {
                out.info(&format!("Stopped process {task}({pid})"));
                return;
            }
            Err(e) => {
                out.error(&format!(
                    "Cannot terminate process {task}({pid}) of server {}: {e}",
                    server.name
                ));
                return;
            }
            Ok(()) => {}
        }
        if check == 0 {
            continue;
        }
        // A zombie child of ours (tests) is gone as far as the lock is concerned.
        if fsutil::lock_holder(&lock).is_none() {
            out.info(&format!("Stopped process {task}({pid})"));
            return;
        }
        std::thread::sleep(CHECK_INTERVAL);
    }
    out.error(&format!("Cannot terminate process {task}({pid})"));
}
