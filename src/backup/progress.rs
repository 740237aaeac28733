//! The progress line shown on a terminal while a backup copies: bytes done out of the
//! server's estimate (BASE_BACKUP's PROGRESS sizes), rate and time left.

use std::time::Duration;

use crate::config::values::pretty_size;

/// Where a copy stands.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Progress {
    /// Bytes processed by the server (uncompressed), cumulative.
    pub done: u64,
    /// The server's estimate of the total, if any.
    pub total: Option<u64>,
    /// Time since the copy started.
    pub elapsed: Duration,
}

/// `pg: 45.2 MiB / 97.3 MiB (46%), 12.3 MiB/s, 4 s left`.
pub fn line(server: &str, p: &Progress) -> String {
    let secs = p.elapsed.as_secs_f64();
    let rate = if secs > 0.0 {
        p.done as f64 / secs
    } else {
        0.0
    };
    let mut text = format!("{server}: {}", pretty_size(p.done as f64));
    if let Some(total) = p.total.filter(|t| *t > 0) {
        // The estimate is taken before the copy: the server may send a bit more.
        let total = total.max(p.done);
        let percent = p.done * 100 / total;
        text.push_str(&format!(" / {} ({percent}%)", pretty_size(total as f64)));
        text.push_str(&format!(", {}/s", pretty_size(rate)));
        if rate > 0.0 && total > p.done {
            let left = ((total - p.done) as f64 / rate).ceil() as u64;
            text.push_str(&format!(", {left} s left"));
        }
    } else {
        text.push_str(&format!(", {}/s", pretty_size(rate)));
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_line_shows_size_percent_rate_and_time_left() {
        let p = Progress {
            done: 50 << 20,
            total: Some(100 << 20),
            elapsed: Duration::from_secs(5),
        };
        assert_eq!(
            line("pg", &p),
            "pg: 50.0 MiB / 100.0 MiB (50%), 10.0 MiB/s, 5 s left"
        );
        let p = Progress {
            done: 512,
            total: None,
            elapsed: Duration::from_secs(1),
        };
        assert_eq!(line("pg", &p), "pg: 512 B, 512 B/s");
    }
}
