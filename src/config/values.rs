//! Barman's value syntaxes: booleans, integers, sizes with SI/IEC suffixes, time
//! intervals (`3 DAYS`), retention policies, enumerations and comma-separated option
//! sets, and their renderings.
//!
//! The accepted forms follow Barman's `barman/config.py` parsers (`parse_boolean`,
//! `parse_time_interval`, `parse_si_suffix`, `CsvOption`) and `barman/retention_policies.py`.
//! Each value also renders the way Barman prints it in `show-servers` (Python `str()`),
//! and as JSON the way its encoder writes it in `diagnose`.

use std::collections::BTreeSet;
use std::fmt;

/// A parsed option value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    /// `true|t|yes|1|on` / `false|f|no|0|off`.
    Bool(bool),
    /// A plain integer.
    Int(i64),
    /// A size in bytes, from `N[k|Ki|M|Mi|G|Gi|T|Ti]`.
    Size(u64),
    /// A time interval.
    Interval(Interval),
    /// Free text, a path or an enumeration value (already lower-cased when the
    /// option is case-insensitive).
    Str(String),
    /// A retention policy.
    Retention(RetentionPolicy),
    /// `compression_level`: a named level or an integer.
    Level(CompressionLevel),
    /// A set of comma-separated flags (`backup_options`, `recovery_options`).
    Flags(FlagSet),
    /// A comma-separated list (`snapshot_disks`).
    List(Vec<String>),
}

impl Value {
    /// The value as Python's `str()` prints it: what `show-servers` shows.
    pub fn display(&self) -> String {
        match self {
            Value::Bool(true) => "True".into(),
            Value::Bool(false) => "False".into(),
            Value::Int(n) => n.to_string(),
            Value::Size(n) => n.to_string(),
            Value::Interval(i) => i.python_timedelta(),
            Value::Str(s) => s.clone(),
            Value::Retention(p) => p.to_string(),
            Value::Level(l) => l.to_string(),
            Value::Flags(f) => f.python_repr(),
            Value::List(items) => {
                let quoted: Vec<String> = items.iter().map(|s| format!("'{s}'")).collect();
                format!("[{}]", quoted.join(", "))
            }
        }
    }

    /// The value as JSON, as Barman's encoder writes it in `diagnose`.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match self {
            Value::Bool(b) => J::Bool(*b),
            Value::Int(n) => J::from(*n),
            Value::Size(n) => J::from(*n),
            Value::Interval(i) => J::String(i.human()),
            Value::Str(s) => J::String(s.clone()),
            Value::Retention(p) => J::String(p.to_string()),
            Value::Level(CompressionLevel::Int(n)) => J::from(*n),
            Value::Level(l) => J::String(l.to_string()),
            Value::Flags(f) => J::String(f.csv()),
            Value::List(items) => J::Array(items.iter().cloned().map(J::String).collect()),
        }
    }
}

/// Parse a boolean as Barman does (case-insensitive).
pub fn parse_bool(text: &str) -> Result<bool, String> {
    match text.to_ascii_lowercase().as_str() {
        "true" | "t" | "yes" | "1" | "on" => Ok(true),
        "false" | "f" | "no" | "0" | "off" => Ok(false),
        _ => Err("not a boolean (use one of true, t, yes, 1, on, false, f, no, 0, off)".into()),
    }
}

/// Parse a decimal integer, optionally signed.
pub fn parse_int(text: &str) -> Result<i64, String> {
    text.trim()
        .parse::<i64>()
        .map_err(|_| "not an integer".to_string())
}

/// Parse a non-negative integer.
pub fn parse_non_negative(text: &str) -> Result<i64, String> {
    let n = parse_int(text)?;
    if n < 0 {
        return Err("must not be negative".into());
    }
    Ok(n)
}

/// Parse `N[k|Ki|M|Mi|G|Gi|T|Ti]`: k, M, G, T are powers of 1000, the `i` forms
/// powers of 1024. Spaces between the number and the suffix are allowed.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let digits_end = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, rest) = t.split_at(digits_end);
    if digits.is_empty() {
        return Err("not a size (use a number with an optional suffix k, Ki, M, Mi, G, Gi, T or Ti, e.g. 10Gi)".into());
    }
    let multiplier: u64 = match rest.trim() {
        "" => 1,
        "k" => 1_000,
        "Ki" => 1 << 10,
        "M" => 1_000_000,
        "Mi" => 1 << 20,
        "G" => 1_000_000_000,
        "Gi" => 1 << 30,
        "T" => 1_000_000_000_000,
        "Ti" => 1 << 40,
        other => {
            return Err(format!(
                "unknown size suffix '{other}' (use k, Ki, M, Mi, G, Gi, T or Ti; suffixes are case-sensitive)"
            ))
        }
    };
    let n: u64 = digits
        .parse()
        .map_err(|_| "size is too large".to_string())?;
    n.checked_mul(multiplier)
        .ok_or_else(|| "size is too large".to_string())
}

/// The unit of a time interval as written in the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IntervalUnit {
    /// Hours.
    Hour,
    /// Days.
    Day,
    /// Weeks (7 days).
    Week,
    /// Months, counted as 31 days as Barman does.
    Month,
}

impl IntervalUnit {
    fn seconds(self) -> u64 {
        match self {
            IntervalUnit::Hour => 3_600,
            IntervalUnit::Day => 86_400,
            IntervalUnit::Week => 7 * 86_400,
            IntervalUnit::Month => 31 * 86_400,
        }
    }
}

/// A time interval such as `3 DAYS`: `N (hour|day|week|month)[s]`, case-insensitive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interval {
    /// The number of units.
    pub count: u64,
    /// The unit.
    pub unit: IntervalUnit,
}

impl Interval {
    /// Parse `N (hour|day|week|month)[s]`.
    pub fn parse(text: &str) -> Result<Interval, String> {
        const HINT: &str = "not a time interval (use a number and a unit: hour, day, week or month, e.g. '3 days')";
        let mut words = text.split_whitespace();
        let (Some(number), Some(unit), None) = (words.next(), words.next(), words.next()) else {
            return Err(HINT.into());
        };
        if !number.bytes().all(|b| b.is_ascii_digit()) {
            return Err(HINT.into());
        }
        let count: u64 = number.parse().map_err(|_| HINT.to_string())?;
        let unit = unit.to_ascii_lowercase();
        let unit = unit.strip_suffix('s').unwrap_or(&unit);
        let unit = match unit {
            "hour" => IntervalUnit::Hour,
            "day" => IntervalUnit::Day,
            "week" => IntervalUnit::Week,
            "month" => IntervalUnit::Month,
            _ => return Err(HINT.into()),
        };
        if count.checked_mul(unit.seconds()).is_none() {
            return Err("time interval is too large".into());
        }
        Ok(Interval { count, unit })
    }

    /// The length of the interval in seconds.
    pub fn seconds(&self) -> u64 {
        self.count * self.unit.seconds()
    }

    /// Python's `str(timedelta)`: `7 days, 0:00:00`, `1 day, 2:00:00`, `5:00:00`.
    pub fn python_timedelta(&self) -> String {
        let total = self.seconds();
        let days = total / 86_400;
        let rest = total % 86_400;
        let clock = format!("{}:{:02}:{:02}", rest / 3600, (rest / 60) % 60, rest % 60);
        match days {
            0 => clock,
            1 => format!("1 day, {clock}"),
            d => format!("{d} days, {clock}"),
        }
    }

    /// Barman's `human_readable_timedelta`: `7 days`, `1 day, 2 hours`.
    pub fn human(&self) -> String {
        human_duration(self.seconds())
    }
}

/// A number of seconds as Barman's `human_readable_timedelta` writes it.
pub fn human_duration(seconds: u64) -> String {
    let parts = [
        (seconds / 86_400, "day"),
        ((seconds % 86_400) / 3600, "hour"),
        ((seconds % 3600) / 60, "minute"),
        (seconds % 60, "second"),
    ];
    let words: Vec<String> = parts
        .iter()
        .filter(|(n, _)| *n > 0)
        .map(|(n, unit)| {
            if *n == 1 {
                format!("1 {unit}")
            } else {
                format!("{n} {unit}s")
            }
        })
        .collect();
    if words.is_empty() {
        "less than one second".into()
    } else {
        words.join(", ")
    }
}

/// The unit of a recovery window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowUnit {
    /// Days.
    Days,
    /// Weeks.
    Weeks,
    /// Months (31 days).
    Months,
}

/// `retention_policy`: `REDUNDANCY n` or `RECOVERY WINDOW OF n DAYS|WEEKS|MONTHS`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetentionPolicy {
    /// Keep the `n` newest DONE backups.
    Redundancy(u32),
    /// Keep whatever is needed to recover to any point in the last `count` units.
    RecoveryWindow {
        /// The number of units.
        count: u32,
        /// The unit.
        unit: WindowUnit,
    },
}

impl RetentionPolicy {
    /// Parse a retention policy, case-insensitively, with free spacing.
    pub fn parse(text: &str) -> Result<RetentionPolicy, String> {
        const HINT: &str =
            "not a retention policy (use 'REDUNDANCY n' or 'RECOVERY WINDOW OF n DAYS|WEEKS|MONTHS')";
        let words: Vec<String> = text
            .split_whitespace()
            .map(|w| w.to_ascii_uppercase())
            .collect();
        let words: Vec<&str> = words.iter().map(String::as_str).collect();
        let number = |w: &str| -> Result<u32, String> {
            if w.bytes().all(|b| b.is_ascii_digit()) {
                w.parse::<u32>().map_err(|_| HINT.to_string())
            } else {
                Err(HINT.into())
            }
        };
        match words.as_slice() {
            ["REDUNDANCY", n] => {
                let n = number(n)?;
                if n == 0 {
                    return Err("REDUNDANCY must be at least 1".into());
                }
                Ok(RetentionPolicy::Redundancy(n))
            }
            ["RECOVERY", "WINDOW", "OF", n, unit] => {
                let count = number(n)?;
                if count == 0 {
                    return Err("a recovery window must be at least 1 day, week or month".into());
                }
                let unit = match unit.strip_suffix('S').unwrap_or(unit) {
                    "DAY" => WindowUnit::Days,
                    "WEEK" => WindowUnit::Weeks,
                    "MONTH" => WindowUnit::Months,
                    _ => return Err(HINT.into()),
                };
                Ok(RetentionPolicy::RecoveryWindow { count, unit })
            }
            _ => Err(HINT.into()),
        }
    }
}

impl fmt::Display for RetentionPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RetentionPolicy::Redundancy(n) => write!(f, "REDUNDANCY {n}"),
            RetentionPolicy::RecoveryWindow { count, unit } => {
                let unit = match unit {
                    WindowUnit::Days => "DAYS",
                    WindowUnit::Weeks => "WEEKS",
                    WindowUnit::Months => "MONTHS",
                };
                write!(f, "RECOVERY WINDOW OF {count} {unit}")
            }
        }
    }
}

/// `compression_level`: `low`, `medium`, `high` or an integer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CompressionLevel {
    /// Fastest.
    Low,
    /// The default.
    Medium,
    /// Smallest.
    High,
    /// A level given as a number (negative allowed for zstd).
    Int(i64),
}

impl CompressionLevel {
    /// Parse a compression level.
    pub fn parse(text: &str) -> Result<CompressionLevel, String> {
        let t = text.trim().to_ascii_lowercase();
        match t.as_str() {
            "low" => Ok(CompressionLevel::Low),
            "medium" => Ok(CompressionLevel::Medium),
            "high" => Ok(CompressionLevel::High),
            _ => t.parse::<i64>().map(CompressionLevel::Int).map_err(|_| {
                "not a compression level (use low, medium, high or an integer)".into()
            }),
        }
    }
}

impl fmt::Display for CompressionLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CompressionLevel::Low => f.write_str("low"),
            CompressionLevel::Medium => f.write_str("medium"),
            CompressionLevel::High => f.write_str("high"),
            CompressionLevel::Int(n) => write!(f, "{n}"),
        }
    }
}

/// A set of comma-separated flags with a fixed vocabulary and mutually exclusive
/// pairs, like Barman's `CsvOption` (`backup_options`, `recovery_options`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlagSet {
    /// The Python class name shown by `show-servers` (`BackupOptions`).
    pub class: &'static str,
    /// The flags, lower-cased and sorted.
    pub flags: BTreeSet<String>,
}

/// The vocabulary of a flag set.
#[derive(Debug, Clone, Copy)]
pub struct FlagVocabulary {
    /// The Python class name.
    pub class: &'static str,
    /// Allowed flags.
    pub allowed: &'static [&'static str],
    /// Pairs that cannot be set together.
    pub conflicts: &'static [(&'static str, &'static str)],
    /// Flags implied when none of the listed ones is given
    /// (`concurrent_backup` unless `exclusive_backup`).
    pub implied: Option<(&'static str, &'static [&'static str])>,
}

impl FlagSet {
    /// Parse a comma-separated list against a vocabulary.
    pub fn parse(text: &str, vocabulary: &FlagVocabulary) -> Result<FlagSet, String> {
        let mut flags = BTreeSet::new();
        for raw in text.split(',') {
            let flag = raw.trim().to_ascii_lowercase();
            if flag.is_empty() {
                continue;
            }
            if !vocabulary.allowed.contains(&flag.as_str()) {
                return Err(format!(
                    "unknown value '{flag}' (allowed: {})",
                    vocabulary.allowed.join(", ")
                ));
            }
            flags.insert(flag);
        }
        for (a, b) in vocabulary.conflicts {
            if flags.contains(*a) && flags.contains(*b) {
                return Err(format!("cannot contain both '{a}' and '{b}'"));
            }
        }
        if let Some((implied, unless)) = vocabulary.implied {
            if !unless.iter().any(|f| flags.contains(*f)) {
                flags.insert(implied.to_string());
            }
        }
        Ok(FlagSet {
            class: vocabulary.class,
            flags,
        })
    }

    /// Whether a flag is set.
    pub fn contains(&self, flag: &str) -> bool {
        self.flags.contains(flag)
    }

    /// The flags joined with commas.
    pub fn csv(&self) -> String {
        self.flags.iter().cloned().collect::<Vec<_>>().join(",")
    }

    /// Python's repr of the set subclass: `BackupOptions({'concurrent_backup'})`.
    pub fn python_repr(&self) -> String {
        if self.flags.is_empty() {
            return format!("{}()", self.class);
        }
        let items: Vec<String> = self.flags.iter().map(|f| format!("'{f}'")).collect();
        format!("{}({{{}}})", self.class, items.join(", "))
    }
}

/// Check a replication slot name: lower-case letters, digits and underscores.
pub fn parse_slot_name(text: &str) -> Result<String, String> {
    let name = text.to_ascii_lowercase();
    if name.is_empty()
        || !name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
    {
        return Err(
            "replication slot names may only contain lower case letters, numbers, and the underscore character"
                .into(),
        );
    }
    if name.len() > 63 {
        return Err("replication slot names are at most 63 characters long".into());
    }
    Ok(name)
}

/// Barman's `pretty_size`: `97.3 MiB`, `512 B` (base 1024).
pub fn pretty_size(bytes: f64) -> String {
    const SUFFIXES: [&str; 9] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB", "ZiB", "YiB"];
    let mut size = bytes;
    for (i, suffix) in SUFFIXES.iter().enumerate() {
        if size.abs() < 1024.0 || i == SUFFIXES.len() - 1 {
            return if i == 0 {
                format!("{} {suffix}", size.trunc() as i64)
            } else {
                format!("{size:.1} {suffix}")
            };
        }
        size /= 1024.0;
    }
    unreachable!("the loop returns at the last suffix")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn booleans_accept_barman_spellings_case_insensitively() {
        for t in ["true", "T", "yes", "1", "On", "TRUE"] {
            assert_eq!(parse_bool(t), Ok(true), "{t}");
        }
        for t in ["false", "F", "no", "0", "OFF"] {
            assert_eq!(parse_bool(t), Ok(false), "{t}");
        }
        assert!(parse_bool("enabled").is_err());
        assert!(parse_bool("").is_err());
    }

    #[test]
    fn sizes_use_si_and_iec_suffixes() {
        assert_eq!(parse_size("0"), Ok(0));
        assert_eq!(parse_size("10"), Ok(10));
        assert_eq!(parse_size("10k"), Ok(10_000));
        assert_eq!(parse_size("10Ki"), Ok(10_240));
        assert_eq!(parse_size("3 M"), Ok(3_000_000));
        assert_eq!(parse_size("3Mi"), Ok(3 << 20));
        assert_eq!(parse_size("2G"), Ok(2_000_000_000));
        assert_eq!(parse_size("2Gi"), Ok(2 << 30));
        assert_eq!(parse_size("1T"), Ok(1_000_000_000_000));
        assert_eq!(parse_size("1Ti"), Ok(1 << 40));
    }

    #[test]
    fn malformed_sizes_are_rejected_with_a_reason() {
        assert!(parse_size("").unwrap_err().contains("not a size"));
        assert!(parse_size("MiB").unwrap_err().contains("not a size"));
        assert!(parse_size("10 GB")
            .unwrap_err()
            .contains("unknown size suffix 'GB'"));
        assert!(parse_size("10gi").unwrap_err().contains("case-sensitive"));
        assert!(parse_size("-5").is_err());
        assert!(parse_size("99999999999Ti")
            .unwrap_err()
            .contains("too large"));
    }

    #[test]
    fn intervals_parse_units_with_optional_plural() {
        let i = Interval::parse("3 DAYS").unwrap();
        assert_eq!(i.seconds(), 3 * 86_400);
        assert_eq!(Interval::parse("1 day").unwrap().seconds(), 86_400);
        assert_eq!(Interval::parse(" 2 weeks ").unwrap().seconds(), 14 * 86_400);
        assert_eq!(Interval::parse("1 Month").unwrap().seconds(), 31 * 86_400);
        assert_eq!(Interval::parse("6 hours").unwrap().seconds(), 6 * 3600);
        for bad in [
            "3",
            "days",
            "3 fortnights",
            "-1 day",
            "1.5 days",
            "3 days ago",
        ] {
            assert!(Interval::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn intervals_render_like_python() {
        assert_eq!(
            Interval::parse("7 days").unwrap().python_timedelta(),
            "7 days, 0:00:00"
        );
        assert_eq!(
            Interval::parse("1 day").unwrap().python_timedelta(),
            "1 day, 0:00:00"
        );
        assert_eq!(
            Interval::parse("5 hours").unwrap().python_timedelta(),
            "5:00:00"
        );
        assert_eq!(
            Interval::parse("26 hours").unwrap().python_timedelta(),
            "1 day, 2:00:00"
        );
        assert_eq!(
            Interval::parse("26 hours").unwrap().human(),
            "1 day, 2 hours"
        );
        assert_eq!(human_duration(0), "less than one second");
        assert_eq!(human_duration(61), "1 minute, 1 second");
    }

    #[test]
    fn retention_policies_round_trip() {
        for (text, shown) in [
            ("REDUNDANCY 2", "REDUNDANCY 2"),
            ("redundancy   7", "REDUNDANCY 7"),
            ("RECOVERY WINDOW OF 4 WEEKS", "RECOVERY WINDOW OF 4 WEEKS"),
            ("recovery window of 1 day", "RECOVERY WINDOW OF 1 DAYS"),
            ("Recovery Window Of 3 months", "RECOVERY WINDOW OF 3 MONTHS"),
        ] {
            let p = RetentionPolicy::parse(text).unwrap();
            assert_eq!(p.to_string(), shown);
            assert_eq!(RetentionPolicy::parse(&p.to_string()), Ok(p));
        }
    }

    #[test]
    fn malformed_retention_policies_are_rejected() {
        for bad in [
            "",
            "REDUNDANCY",
            "REDUNDANCY two",
            "REDUNDANCY 0",
            "REDUNDANCY -1",
            "RECOVERY WINDOW 3 DAYS",
            "RECOVERY WINDOW OF 3 YEARS",
            "RECOVERY WINDOW OF 0 DAYS",
            "KEEP 3",
        ] {
            assert!(RetentionPolicy::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn backup_options_imply_concurrent_and_reject_conflicts() {
        let vocab = crate::config::options::BACKUP_OPTIONS;
        let empty = FlagSet::parse("", &vocab).unwrap();
        assert_eq!(empty.python_repr(), "BackupOptions({'concurrent_backup'})");
        let two = FlagSet::parse("External_Configuration, concurrent_backup", &vocab).unwrap();
        assert_eq!(two.csv(), "concurrent_backup,external_configuration");
        assert!(FlagSet::parse("exclusive_backup,concurrent_backup", &vocab)
            .unwrap_err()
            .contains("cannot contain both"));
        assert!(FlagSet::parse("fast", &vocab)
            .unwrap_err()
            .contains("unknown value 'fast'"));
    }

    #[test]
    fn slot_names_are_lower_cased_and_checked() {
        assert_eq!(parse_slot_name("Barman_1"), Ok("barman_1".into()));
        assert!(parse_slot_name("bar-man").is_err());
        assert!(parse_slot_name("").is_err());
        assert!(parse_slot_name(&"x".repeat(64)).is_err());
    }

    #[test]
    fn compression_levels_accept_names_and_integers() {
        assert_eq!(CompressionLevel::parse("HIGH"), Ok(CompressionLevel::High));
        assert_eq!(CompressionLevel::parse("-3"), Ok(CompressionLevel::Int(-3)));
        assert!(CompressionLevel::parse("max").is_err());
    }

    #[test]
    fn pretty_sizes_match_barman() {
        assert_eq!(pretty_size(0.0), "0 B");
        assert_eq!(pretty_size(1023.0), "1023 B");
        assert_eq!(pretty_size(1024.0), "1.0 KiB");
        assert_eq!(pretty_size(102_036_932.0), "97.3 MiB");
        assert_eq!(pretty_size(5.5 * (1u64 << 40) as f64), "5.5 TiB");
    }

    #[test]
    fn values_display_like_python() {
        assert_eq!(Value::Bool(true).display(), "True");
        assert_eq!(
            Value::List(vec!["a".into(), "b".into()]).display(),
            "['a', 'b']"
        );
        assert_eq!(
            Value::Retention(RetentionPolicy::Redundancy(2)).to_json(),
            serde_json::json!("REDUNDANCY 2")
        );
    }
}
