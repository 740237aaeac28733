//! `--bwlimit`: one byte budget shared by every copy worker.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A bandwidth limit in bytes per second, shared between threads.
pub struct Throttle {
    bytes_per_second: u64,
    state: Mutex<(Instant, u64)>,
}

impl Throttle {
    /// A limit of `kbps` KiB per second (Barman's `--bwlimit`, rsync's unit); `None` for 0.
    pub fn from_kbps(kbps: u64) -> Option<Throttle> {
        (kbps > 0).then(|| Throttle {
            bytes_per_second: kbps * 1024,
            state: Mutex::new((Instant::now(), 0)),
        })
    }

    /// Account for `n` bytes, sleeping as long as the budget is exceeded.
    pub fn consume(&self, n: u64) {
        let wait = {
            let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            state.1 += n;
            let due = Duration::from_secs_f64(state.1 as f64 / self.bytes_per_second as f64);
            due.saturating_sub(state.0.elapsed())
        };
        if !wait.is_zero() {
            std::thread::sleep(wait);
        }
    }
}
