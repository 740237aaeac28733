//! What the user asked to recover to: the recovery target (time, xid, LSN, restore point
//! name, immediate), the timeline and the action at the target, checked with Barman's rules
//! (BARMAN.md §4.1) before anything else happens.
//!
//! Pure: parsing and validation only. Whether the archive can reach the target is decided
//! by [`super::wal_plan`].

use std::fmt;

use barman_protocol::wal::{TimestampTz, TransactionId};
use barman_protocol::Lsn;
use chrono::{DateTime, FixedOffset, TimeZone};

/// One recovery target (`recovery_target*`): at most one may be given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `--target-time`: stop before the first transaction that ended after this time.
    Time(DateTime<FixedOffset>),
    /// `--target-xid`: stop at the end of this transaction.
    Xid(TransactionId),
    /// `--target-lsn`: stop at this WAL position.
    Lsn(Lsn),
    /// `--target-name`: stop at the restore point of this name.
    Name(String),
    /// `--target-immediate`: stop as soon as the backup is consistent.
    Immediate,
}

/// `--target-tli`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimelineTarget {
    /// The backup's timeline.
    Current,
    /// The newest timeline in the archive.
    Latest,
    /// A numbered timeline.
    Id(u32),
}

impl TimelineTarget {
    /// Parse `N`, `current` or `latest`.
    pub fn parse(text: &str) -> Result<TimelineTarget, String> {
        match text {
            "current" => Ok(TimelineTarget::Current),
            "latest" => Ok(TimelineTarget::Latest),
            n => match n.parse::<u32>() {
                Ok(id) if id > 0 => Ok(TimelineTarget::Id(id)),
                _ => Err(format!("{n} is not a valid timeline keyword")),
            },
        }
    }
}

impl fmt::Display for TimelineTarget {
    /// As given (and as written to `recovery_target_timeline`, unquoted).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TimelineTarget::Current => f.write_str("current"),
            TimelineTarget::Latest => f.write_str("latest"),
            TimelineTarget::Id(n) => write!(f, "{n}"),
        }
    }
}

/// `--target-action`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetAction {
    /// Pause at the target (PostgreSQL's default).
    Pause,
    /// Shut down at the target.
    Shutdown,
    /// Promote at the target: end recovery, open for writes on a new timeline.
    Promote,
}

impl TargetAction {
    /// The value of `recovery_target_action`.
    pub fn as_str(self) -> &'static str {
        match self {
            TargetAction::Pause => "pause",
            TargetAction::Shutdown => "shutdown",
            TargetAction::Promote => "promote",
        }
    }
}

/// Everything about where recovery stops.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RecoveryTarget {
    /// The target, if any.
    pub target: Option<Target>,
    /// `--target-tli`.
    pub timeline: Option<TimelineTarget>,
    /// `--target-action`.
    pub action: Option<TargetAction>,
    /// `--exclusive`: stop just before the target (time, xid, LSN).
    pub exclusive: bool,
}

impl RecoveryTarget {
    /// Whether this is a point-in-time recovery (Barman's `is_pitr`): any target, or a
    /// timeline alone.
    pub fn is_pitr(&self) -> bool {
        self.target.is_some() || self.timeline.is_some()
    }

    /// Whether recovery stops before or at the target (`recovery_target_inclusive`).
    pub fn inclusive(&self) -> bool {
        !self.exclusive
    }

    /// The targets as Barman's "Doing PITR. Recovery target ..." line lists them:
    /// `time: '...'`, `xid: '...'`, `lsn: '...'`, `timeline: '...'`, `name: '...'`,
    /// `immediate: True`.
    pub fn describe(&self, timeline_id: Option<u32>) -> String {
        let mut parts = Vec::new();
        match &self.target {
            Some(Target::Time(t)) => parts.push(format!("time: '{}'", python_datetime(t))),
            Some(Target::Xid(x)) => parts.push(format!("xid: '{x}'")),
            Some(Target::Lsn(l)) => parts.push(format!("lsn: '{l}'")),
            _ => {}
        }
        if let Some(tli) = self.timeline {
            let shown = timeline_id.map_or(tli.to_string(), |n| n.to_string());
            parts.push(format!("timeline: '{shown}'"));
        }
        match &self.target {
            Some(Target::Name(n)) => parts.push(format!("name: '{n}'")),
            Some(Target::Immediate) => parts.push("immediate: True".to_string()),
            _ => {}
        }
        parts.join(", ")
    }
}

/// The raw target options of the command line.
#[derive(Debug, Clone, Default)]
pub struct TargetArgs {
    /// `--target-time`.
    pub time: Option<String>,
    /// `--target-xid`.
    pub xid: Option<String>,
    /// `--target-lsn`.
    pub lsn: Option<String>,
    /// `--target-name`.
    pub name: Option<String>,
    /// `--target-immediate`.
    pub immediate: bool,
    /// `--target-tli`.
    pub tli: Option<String>,
    /// `--target-action`.
    pub action: Option<String>,
    /// `--exclusive`.
    pub exclusive: bool,
}

/// The result of parsing: the target, and warnings to show (a time without zone).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParsedTarget {
    /// The target.
    pub target: RecoveryTarget,
    /// Warnings for the user.
    pub warnings: Vec<String>,
}

/// Parse and check the target options with Barman's rules and messages.
pub fn parse(args: &TargetArgs) -> Result<ParsedTarget, String> {
    let given = [
        args.time.is_some(),
        args.xid.is_some(),
        args.lsn.is_some(),
        args.name.is_some(),
        args.immediate,
    ];
    if given.iter().filter(|g| **g).count() > 1 {
        return Err("You cannot specify multiple targets for the recovery operation".into());
    }
    let mut warnings = Vec::new();
    let target = if let Some(text) = &args.time {
        let (t, naive) = parse_time(text)
            .map_err(|e| format!("Unable to parse the target time parameter '{text}': {e}"))?;
        if naive {
            warnings.push(
                "No time zone has been specified through '--target-time' command-line option. Barman assumed the same time zone from the Barman host."
                    .to_string(),
            );
        }
        Some(Target::Time(t))
    } else if let Some(text) = &args.xid {
        let xid: u32 = text
            .trim()
            .parse()
            .map_err(|_| format!("Invalid target xid '{text}': not a transaction id"))?;
        let xid = TransactionId::new(xid);
        if !xid.is_normal() {
            return Err(format!(
                "Invalid target xid '{text}': transaction ids of user transactions start at 3"
            ));
        }
        Some(Target::Xid(xid))
    } else if let Some(text) = &args.lsn {
        let lsn: Lsn = text
            .trim()
            .parse()
            .map_err(|_| format!("Invalid target LSN '{text}': expected X/X (e.g. 0/3000060)"))?;
        Some(Target::Lsn(lsn))
    } else if let Some(name) = &args.name {
        Some(Target::Name(name.clone()))
    } else if args.immediate {
        Some(Target::Immediate)
    } else {
        None
    };
    let timeline = args.tli.as_deref().map(TimelineTarget::parse).transpose()?;
    let action = match args.action.as_deref() {
        None => None,
        Some("pause") => Some(TargetAction::Pause),
        Some("shutdown") => Some(TargetAction::Shutdown),
        Some("promote") => Some(TargetAction::Promote),
        Some(other) => {
            return Err(format!(
                "Illegal target action '{other}' for this version of PostgreSQL"
            ))
        }
    };
    let target = RecoveryTarget {
        target,
        timeline,
        action,
        exclusive: args.exclusive,
    };
    if target.action.is_some() && !target.is_pitr() {
        return Err("Can't enable recovery target action when PITR is not required".into());
    }
    Ok(ParsedTarget { target, warnings })
}

/// Parse a `--target-time` the way `dateutil.parser.parse` reads the usual forms:
/// `YYYY-MM-DD[ T]HH:MM[:SS[.ffffff]]` with an optional offset (`+HH`, `+HHMM`, `+HH:MM`,
/// `Z`, ` UTC`), or a date alone. Returns the time and whether it had no zone (then it is
/// taken in the local time zone, as Barman does).
pub fn parse_time(text: &str) -> Result<(DateTime<FixedOffset>, bool), String> {
    let s = text.trim();
    let (body, offset) = split_offset(s)?;
    let body = body.trim().replacen('T', " ", 1);
    let formats = [
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%d %H:%M",
        "%Y/%m/%d %H:%M:%S%.f",
        "%Y/%m/%d %H:%M:%S",
    ];
    let naive = formats
        .iter()
        .find_map(|f| chrono::NaiveDateTime::parse_from_str(&body, f).ok())
        .or_else(|| {
            chrono::NaiveDate::parse_from_str(&body, "%Y-%m-%d")
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
        })
        .ok_or_else(|| "unknown string format".to_string())?;
    match offset {
        Some(seconds) => {
            let zone = FixedOffset::east_opt(seconds).ok_or("offset out of range")?;
            let t = zone
                .from_local_datetime(&naive)
                .single()
                .ok_or("ambiguous time")?;
            Ok((t, false))
        }
        None => {
            let t = chrono::Local
                .from_local_datetime(&naive)
                .earliest()
                .ok_or("the time does not exist in the local time zone")?;
            Ok((t.fixed_offset(), true))
        }
    }
}

/// Split a trailing zone off a time: `Z`, `UTC`/`GMT`, `+HH`, `+HHMM`, `+HH:MM`.
fn split_offset(s: &str) -> Result<(&str, Option<i32>), String> {
    for zulu in [" UTC", " GMT", "UTC", "Z", " Z"] {
        if let Some(body) = s.strip_suffix(zulu) {
            return Ok((body, Some(0)));
        }
    }
    // The last '+' or '-' after the time part (dates contain '-' too).
    let time_start = s.find(':').unwrap_or(s.len());
    let Some(pos) = s[time_start..].rfind(['+', '-']).map(|p| p + time_start) else {
        return Ok((s, None));
    };
    let sign = if &s[pos..=pos] == "-" { -1 } else { 1 };
    let digits: String = s[pos + 1..].chars().filter(|c| *c != ':').collect();
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("bad time zone offset '{}'", &s[pos..]));
    }
    let (h, m) = match digits.len() {
        1 | 2 => (digits.parse::<i32>().unwrap_or(0), 0),
        4 => (
            digits[..2].parse::<i32>().unwrap_or(0),
            digits[2..].parse::<i32>().unwrap_or(0),
        ),
        _ => return Err(format!("bad time zone offset '{}'", &s[pos..])),
    };
    Ok((s[..pos].trim_end(), Some(sign * (h * 3600 + m * 60))))
}

/// A time as Python's `str(datetime)` prints it (what Barman writes to
/// `recovery_target_time`): `2026-11-22 02:03:37+00:00`, with `.ffffff` when not zero.
pub fn python_datetime(t: &DateTime<FixedOffset>) -> String {
    crate::catalog::backup_info::python_datetime(t)
}

/// The same instant as PostgreSQL's `TimestampTz`.
pub fn to_timestamptz(t: &DateTime<FixedOffset>) -> TimestampTz {
    TimestampTz::from_unix_micros(t.timestamp_micros()).unwrap_or(TimestampTz::INFINITY)
}

/// A `TimestampTz` as a UTC `DateTime`, for messages.
pub fn from_timestamptz(t: TimestampTz) -> Option<DateTime<FixedOffset>> {
    let micros = t.to_unix_micros()?;
    chrono::Utc
        .timestamp_micros(micros)
        .single()
        .map(|t| t.fixed_offset())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> TargetArgs {
        TargetArgs::default()
    }

    #[test]
    fn times_parse_with_every_zone_form() {
        for (text, expected) in [
            ("2026-11-22 02:03:37+00:00", "2026-11-22 02:03:37+00:00"),
            ("2026-11-22 02:03:37+00", "2026-11-22 02:03:37+00:00"),
            ("2026-11-22T02:03:37Z", "2026-11-22 02:03:37+00:00"),
            ("2026-11-22 02:03:37 UTC", "2026-11-22 02:03:37+00:00"),
            (
                "2026-11-22 04:03:37.25+02:00",
                "2026-11-22 04:03:37.250000+02:00",
            ),
            ("2026-11-22 04:03:37-0130", "2026-11-22 04:03:37-01:30"),
        ] {
            let (t, naive) = parse_time(text).unwrap();
            assert!(!naive, "{text}");
            assert_eq!(python_datetime(&t), expected, "{text}");
        }
        let (_, naive) = parse_time("2026-11-22 02:03:37").unwrap();
        assert!(naive);
        assert!(parse_time("yesterday").is_err());
        assert!(parse_time("2026-11-22 02:03:37+0x").is_err());
    }

    #[test]
    fn only_one_target_and_an_action_needs_one() {
        let mut a = args();
        a.time = Some("2026-11-22 02:03:37+00".into());
        a.name = Some("x".into());
        assert_eq!(
            parse(&a).unwrap_err(),
            "You cannot specify multiple targets for the recovery operation"
        );
        let mut a = args();
        a.action = Some("promote".into());
        assert_eq!(
            parse(&a).unwrap_err(),
            "Can't enable recovery target action when PITR is not required"
        );
        let mut a = args();
        a.tli = Some("latest".into());
        a.action = Some("promote".into());
        let p = parse(&a).unwrap();
        assert!(p.target.is_pitr());
        assert_eq!(p.target.action, Some(TargetAction::Promote));
    }

    #[test]
    fn xid_lsn_and_timeline_values_are_checked() {
        let mut a = args();
        a.xid = Some("abc".into());
        assert!(parse(&a).is_err());
        a.xid = Some("2".into());
        assert!(parse(&a).is_err());
        a.xid = Some("745".into());
        assert_eq!(
            parse(&a).unwrap().target.target,
            Some(Target::Xid(TransactionId::new(745)))
        );
        let mut a = args();
        a.lsn = Some("0/30000A0".into());
        assert_eq!(
            parse(&a).unwrap().target.target,
            Some(Target::Lsn(Lsn::new(0x30000A0)))
        );
        a.lsn = Some("3000".into());
        assert!(parse(&a).is_err());
        assert_eq!(TimelineTarget::parse("2"), Ok(TimelineTarget::Id(2)));
        assert!(TimelineTarget::parse("zero").is_err());
        assert!(TimelineTarget::parse("0").is_err());
    }

    #[test]
    fn the_pitr_line_lists_targets_as_barman() {
        let t = RecoveryTarget {
            target: Some(Target::Time(
                parse_time("2026-11-22 02:03:37+00").unwrap().0,
            )),
            timeline: Some(TimelineTarget::Latest),
            ..RecoveryTarget::default()
        };
        assert_eq!(
            t.describe(Some(2)),
            "time: '2026-11-22 02:03:37+00:00', timeline: '2'"
        );
        let t = RecoveryTarget {
            target: Some(Target::Immediate),
            ..RecoveryTarget::default()
        };
        assert_eq!(t.describe(None), "immediate: True");
    }
}
