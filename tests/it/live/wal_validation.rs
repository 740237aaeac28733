//! The WAL validator and segment summaries of `barman_protocol::wal` against WAL written by
//! real servers, 13 to 18, with `pg_waldump` as the reference where it can read the WAL (it is
//! Debian's PostgreSQL 15 tool, so only for 15).
//!
//! Each test writes known transactions (commit, abort, commit prepared, abort prepared) and a
//! restore point into a segment of their own (between two `pg_switch_wal()`), then a pgbench
//! workload, stops the server and validates every segment of `pg_wal` in order, handing the
//! state from one segment to the next; the live segment is validated as a `.partial`. It then
//! checks the summaries against what the test did, damages copies (a flipped bit, a zeroed
//! page, a segment at the wrong position, another cluster's system identifier) and expects
//! each to be rejected at the right LSN.

use std::path::PathBuf;

use barman_protocol::wal::{
    validate_segment, SegmentKind, SegmentSummary, SegmentTail, SegmentValidator, TimestampTz,
    TransactionId, ValidatorOptions, WalFileName, XactKind,
};
use barman_protocol::{ErrorKind, Lsn, TimelineId, WalSegNo, WalSegmentSize};

use crate::harness::{client_bin, live_test, pg_command, ClusterOptions, PgCluster, PgInstall};

/// What the test did in its isolated segment.
struct KnownWork {
    /// The segment holding it.
    segno: WalSegNo,
    commit_xid: u32,
    commit_time: TimestampTz,
    abort_xid: u32,
    prepared_commit_xid: u32,
    prepared_commit_time: TimestampTz,
    prepared_abort_xid: u32,
    restore_point_end: Lsn,
    before: TimestampTz,
    after: TimestampTz,
}

/// The WAL of a stopped cluster, validated.
struct Validated {
    seg_size: WalSegmentSize,
    sysid: u64,
    pg_wal: PathBuf,
    /// Every complete segment, in order, with its file name and bytes.
    segments: Vec<(String, Vec<u8>, SegmentSummary)>,
    /// The live segment, validated as a partial.
    live: SegmentSummary,
}

live_test!(
    wal_of_a_16mb_cluster_validates_and_summarises,
    |pg: &PgInstall| {
        let mut cluster = PgCluster::start_with(pg, &options());
        let work = known_work(&cluster);
        cluster.pgbench(&["-i", "-s", "3", "-q"]);
        cluster.pgbench(&["-c", "2", "-t", "300"]);
        let wal = stop_and_validate(&mut cluster);
        assert_eq!(wal.seg_size, WalSegmentSize::DEFAULT);

        check_known_work(&wal, &work);
        check_workload_shape(&wal);
        if pg.major == 15 {
            compare_with_pg_waldump(&wal);
        }
        check_damage_is_detected(&wal, &work, pg.major);
    }
);

live_test!(wal_of_1mb_and_64mb_clusters_validates, |pg: &PgInstall| {
    for mib in [1u32, 64] {
        let options = options().initdb_arg(format!("--wal-segsize={mib}"));
        let mut cluster = PgCluster::start_with(pg, &options);
        let work = known_work(&cluster);
        cluster.pgbench(&["-i", "-s", "2", "-q"]);
        let wal = stop_and_validate(&mut cluster);
        assert_eq!(wal.seg_size, WalSegmentSize::from_mib(mib).unwrap());
        check_known_work(&wal, &work);
        if pg.major == 15 {
            compare_with_pg_waldump(&wal);
        }
    }
});

fn options() -> ClusterOptions {
    ClusterOptions::new()
        .conf("max_prepared_transactions = 5")
        .conf("track_commit_timestamp = on")
        .conf("autovacuum = off")
        .conf("wal_keep_size = '2GB'")
        .conf("max_wal_size = '2GB'")
}

/// Runs SQL returning one value.
fn value(cluster: &PgCluster, sql: &str) -> String {
    cluster.psql(sql).trim().to_owned()
}

/// A timestamp in the text form `TimestampTz` parses.
fn utc(cluster: &PgCluster, expr: &str) -> TimestampTz {
    let text = value(
        cluster,
        &format!(
            "SELECT to_char(({expr}) AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || '+00'"
        ),
    );
    text.parse()
        .unwrap_or_else(|e| panic!("timestamp {text:?}: {e}"))
}

fn known_work(cluster: &PgCluster) -> KnownWork {
    cluster.psql("CREATE TABLE known (id int PRIMARY KEY, note text)");
    cluster.psql("SELECT pg_switch_wal()");
    let seg_size: WalSegmentSize = value(cluster, "SHOW wal_segment_size").parse().unwrap();
    let here: Lsn = value(cluster, "SELECT pg_current_wal_insert_lsn()")
        .parse()
        .unwrap();
    let segno = here.segment_number(seg_size);
    let before = utc(cluster, "clock_timestamp()");

    let xid = |sql: &str| -> u32 {
        value(cluster, sql)
            .parse::<u64>()
            .map(|x| x as u32)
            .unwrap_or_else(|e| panic!("xid from {sql}: {e}"))
    };
    let commit_xid = xid(
        "BEGIN; INSERT INTO known VALUES (1, 'committed'); SELECT pg_current_xact_id(); COMMIT;",
    );
    let abort_xid = xid(
        "BEGIN; INSERT INTO known VALUES (2, 'aborted'); SELECT pg_current_xact_id(); ROLLBACK;",
    );
    let prepared_commit_xid = xid(
        "BEGIN; INSERT INTO known VALUES (3, 'prepared'); SELECT pg_current_xact_id(); PREPARE TRANSACTION 'p1';",
    );
    cluster.psql("COMMIT PREPARED 'p1'");
    let prepared_abort_xid = xid(
        "BEGIN; INSERT INTO known VALUES (4, 'prepared'); SELECT pg_current_xact_id(); PREPARE TRANSACTION 'p2';",
    );
    cluster.psql("ROLLBACK PREPARED 'p2'");
    let restore_point_end: Lsn = value(cluster, "SELECT pg_create_restore_point('rp one')")
        .parse()
        .unwrap();
    let after = utc(cluster, "clock_timestamp()");
    let end: Lsn = value(cluster, "SELECT pg_switch_wal()").parse().unwrap();
    assert_eq!(
        end.segment_number(seg_size),
        segno,
        "the known work must fit in one segment"
    );
    KnownWork {
        segno,
        commit_xid,
        commit_time: utc(
            cluster,
            &format!("pg_xact_commit_timestamp('{commit_xid}'::xid)"),
        ),
        abort_xid,
        prepared_commit_xid,
        prepared_commit_time: utc(
            cluster,
            &format!("pg_xact_commit_timestamp('{prepared_commit_xid}'::xid)"),
        ),
        prepared_abort_xid,
        restore_point_end,
        before,
        after,
    }
}

/// Stops the server and validates every segment of `pg_wal` up to the live one.
fn stop_and_validate(cluster: &mut PgCluster) -> Validated {
    cluster.psql("SELECT pg_switch_wal()");
    let seg_size: WalSegmentSize = value(cluster, "SHOW wal_segment_size").parse().unwrap();
    let sysid: u64 = value(cluster, "SELECT system_identifier FROM pg_control_system()")
        .parse()
        .unwrap();
    let live_name = value(
        cluster,
        "SELECT pg_walfile_name(pg_current_wal_insert_lsn())",
    );
    let major = cluster.major();
    cluster.stop();

    let pg_wal = cluster.data_dir().join("pg_wal");
    let mut names: Vec<(WalSegNo, String)> = std::fs::read_dir(&pg_wal)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter_map(|name| match WalFileName::parse(&name, seg_size) {
            Ok(WalFileName::Segment { segno, .. }) if name <= live_name => Some((segno, name)),
            _ => None,
        })
        .collect();
    names.sort();
    let (live_segno, _) = names.pop().expect("the live segment is in pg_wal");
    assert!(!names.is_empty(), "no complete segment in pg_wal");

    let mut carry = None;
    let mut previous: Option<WalSegNo> = None;
    let mut segments = Vec::new();
    for (segno, name) in names {
        let bytes = std::fs::read(pg_wal.join(&name)).unwrap();
        let mut options = ValidatorOptions::new(TimelineId::FIRST, segno, seg_size)
            .system_identifier(Some(sysid))
            .major(major)
            .unwrap();
        if previous.and_then(|p| p.checked_add(1)) == Some(segno) {
            options = options.carry_over(carry.take().expect("state of the previous segment"));
        }
        let mut validator = SegmentValidator::new(options).unwrap();
        let summary = validator
            .feed(&bytes)
            .unwrap_or_else(|e| panic!("PostgreSQL {major}: segment {name} rejected: {e}"))
            .unwrap_or_else(|| panic!("segment {name} is shorter than {seg_size}"));
        carry = Some(validator.into_carry_over().unwrap());
        previous = Some(segno);
        segments.push((name, bytes, summary));
    }

    let live_name = WalFileName::Partial {
        timeline: TimelineId::FIRST,
        segno: live_segno,
    }
    .to_file_name(seg_size);
    let live_bytes = std::fs::read(pg_wal.join(&live_name[..24])).unwrap();
    let mut options = ValidatorOptions::for_file_name(&live_name, seg_size)
        .unwrap()
        .system_identifier(Some(sysid));
    if previous.and_then(|p| p.checked_add(1)) == Some(live_segno) {
        options = options.carry_over(carry.take().unwrap());
    }
    let live = validate_segment(&live_bytes, options)
        .unwrap_or_else(|e| panic!("PostgreSQL {major}: live segment {live_name} rejected: {e}"));
    assert_eq!(live.tail, SegmentTail::EndOfWal, "{live}");
    Validated {
        seg_size,
        sysid,
        pg_wal,
        segments,
        live,
    }
}

fn check_known_work(wal: &Validated, work: &KnownWork) {
    let (name, _, s) = wal
        .segments
        .iter()
        .find(|(_, _, s)| s.segno == work.segno)
        .expect("the segment of the known work was validated");
    assert_eq!(s.tail, SegmentTail::Switch, "{name}: {s}");
    assert_eq!(s.system_identifier, wal.sysid);
    let x = &s.xacts;
    assert_eq!((x.commits, x.aborts), (2, 2), "{s}");
    let first = x.first.unwrap();
    assert_eq!(first.kind, XactKind::Commit);
    assert_eq!(first.xid, TransactionId::new(work.commit_xid));
    assert_eq!(
        first.time, work.commit_time,
        "commit time of {}",
        work.commit_xid
    );
    let last = x.last.unwrap();
    assert_eq!(last.kind, XactKind::AbortPrepared);
    assert_eq!(last.xid, TransactionId::new(work.prepared_abort_xid));
    assert!(last.time >= work.prepared_commit_time && last.time <= work.after);
    let (lo, hi) = x.xid_range.unwrap();
    assert_eq!(lo, TransactionId::new(work.commit_xid));
    assert_eq!(hi, TransactionId::new(work.prepared_abort_xid));
    for xid in [work.abort_xid, work.prepared_commit_xid] {
        assert!(x.may_contain_xid(TransactionId::new(xid)));
    }
    let (t_lo, t_hi) = x.time_range.unwrap();
    assert_eq!(t_lo, work.commit_time);
    assert!(t_hi >= work.prepared_commit_time && t_hi <= work.after);
    assert!(work.before <= work.commit_time);
    assert_eq!(s.restore_points.len(), 1, "{s}");
    let rp = &s.restore_points[0];
    assert_eq!(rp.name, "rp one");
    assert!(rp.lsn < work.restore_point_end);
    assert!(rp.time >= work.prepared_commit_time && rp.time <= work.after);
    // The summary line carries all of it.
    assert_eq!(&s.to_line().parse::<SegmentSummary>().unwrap(), s);
}

fn check_workload_shape(wal: &Validated) {
    let summaries: Vec<&SegmentSummary> = wal.segments.iter().map(|(_, _, s)| s).collect();
    assert!(
        summaries.len() >= 4,
        "expected several segments, got {}",
        summaries.len()
    );
    assert!(
        summaries.iter().any(|s| s.pending_record.is_some()),
        "no record crossed a segment boundary"
    );
    assert!(summaries.iter().any(|s| s.ends_with_switch()));
    let commits: u64 = summaries.iter().map(|s| u64::from(s.xacts.commits)).sum();
    assert!(
        commits >= 600,
        "pgbench committed 600 transactions, summaries show {commits}"
    );
}

/// `pg_waldump` over the same directory must list the same records.
fn compare_with_pg_waldump(wal: &Validated) {
    let start = wal.segments[0].2.start_lsn().unwrap();
    let output = pg_command(&client_bin("pg_waldump"))
        .arg("-p")
        .arg(&wal.pg_wal)
        .arg("-s")
        .arg(start.to_string())
        .output()
        .expect("run pg_waldump");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let records = parse_waldump(&stdout);
    assert!(
        !records.is_empty(),
        "pg_waldump printed no records: {stderr}"
    );

    // Every record, counted in the segment where it ends (where we check its CRC).
    let size = wal.seg_size;
    let mut per_segment = std::collections::BTreeMap::<WalSegNo, (u32, Lsn, Lsn)>::new();
    for r in &records {
        let end = record_end(r.lsn, r.tot_len, size);
        let segno = end.prev_segment_number(size).unwrap();
        let e = per_segment.entry(segno).or_insert((0, r.lsn, r.lsn));
        e.0 += 1;
        e.2 = r.lsn;
    }
    let mut ours = 0u64;
    let all = wal
        .segments
        .iter()
        .map(|(name, _, s)| (name.as_str(), s))
        .chain(std::iter::once(("the live segment", &wal.live)));
    for (name, s) in all {
        ours += u64::from(s.records);
        let (count, first, last) = per_segment.get(&s.segno).copied().unwrap_or_default();
        assert_eq!(s.records, count, "{name}: {s}");
        if count > 0 {
            assert_eq!(s.first_record, Some(first), "{name}");
            assert_eq!(s.last_record, Some(last), "{name}");
        }
        let commits = records
            .iter()
            .filter(|r| {
                r.rmgr == "Transaction"
                    && record_end(r.lsn, r.tot_len, size).prev_segment_number(size) == Some(s.segno)
                    && r.desc.starts_with("COMMIT")
            })
            .count();
        assert_eq!(s.xacts.commits as usize, commits, "{name}");
    }
    assert_eq!(ours, records.len() as u64, "record count");
    // Same end of WAL: pg_waldump stops where our live segment's WAL ends.
    let last = records.last().unwrap();
    assert_eq!(wal.live.last_record, Some(last.lsn));
    assert!(
        stderr.contains(&format!(
            "invalid record length at {}",
            wal.live.end.unwrap()
        )),
        "pg_waldump: {stderr}"
    );
}

struct DumpedRecord {
    rmgr: String,
    tot_len: u32,
    lsn: Lsn,
    desc: String,
}

/// `rmgr: XLOG len (rec/tot): 114/ 114, tx: 0, lsn: 0/01000028, prev 0/00000000, desc: ...`
fn parse_waldump(stdout: &str) -> Vec<DumpedRecord> {
    stdout
        .lines()
        .filter_map(|line| {
            let rmgr = line.strip_prefix("rmgr: ")?.split_whitespace().next()?;
            let tot = line.split("len (rec/tot):").nth(1)?.split(',').next()?;
            let tot_len = tot.split('/').nth(1)?.trim().parse().ok()?;
            let lsn = line
                .split("lsn: ")
                .nth(1)?
                .split(',')
                .next()?
                .parse()
                .ok()?;
            let desc = line.split("desc: ").nth(1).unwrap_or("").to_owned();
            Some(DumpedRecord {
                rmgr: rmgr.to_owned(),
                tot_len,
                lsn,
                desc,
            })
        })
        .collect()
}

/// The position just after a record's last byte, stepping over page headers (8 kB pages).
fn record_end(lsn: Lsn, tot_len: u32, size: WalSegmentSize) -> Lsn {
    const BLCKSZ: u64 = 8192;
    let (mut pos, mut left) = (lsn.as_u64(), u64::from(tot_len));
    while left > 0 {
        let take = (BLCKSZ - pos % BLCKSZ).min(left);
        pos += take;
        left -= take;
        if left > 0 {
            pos += if pos % u64::from(size.bytes()) == 0 {
                40
            } else {
                24
            };
        }
    }
    Lsn::new(pos)
}

fn check_damage_is_detected(wal: &Validated, work: &KnownWork, major: u32) {
    let (name, bytes, s) = wal
        .segments
        .iter()
        .find(|(_, _, s)| s.segno == work.segno)
        .unwrap();
    let commit = s.xacts.first.unwrap().lsn;
    let options = || {
        ValidatorOptions::new(TimelineId::FIRST, s.segno, wal.seg_size)
            .system_identifier(Some(wal.sysid))
            .major(major)
            .unwrap()
    };
    validate_segment(bytes, options()).unwrap();

    // One flipped bit in the commit record's timestamp.
    let mut flipped = bytes.clone();
    let off = commit.segment_offset(wal.seg_size) as usize + 30;
    flipped[off] ^= 0x04;
    let e = validate_segment(&flipped, options()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Checksum, "{e}");
    assert_eq!(e.lsn(), Some(commit));
    if major == 15 {
        let dir = scratch_with(name, &flipped);
        let output = pg_command(&client_bin("pg_waldump"))
            .arg(dir.path().join(name))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains(&format!(
                "incorrect resource manager data checksum in record at {commit}"
            )),
            "pg_waldump: {stderr}"
        );
    }

    // A zeroed page in a full segment.
    let (_, full, fs) = wal
        .segments
        .iter()
        .find(|(_, _, s)| s.tail == SegmentTail::Full)
        .expect("a segment full of WAL");
    let mut zeroed = full.clone();
    zeroed[3 * 8192..4 * 8192].fill(0);
    let full_options = ValidatorOptions::new(TimelineId::FIRST, fs.segno, wal.seg_size);
    let e = validate_segment(&zeroed, full_options.clone()).unwrap_err();
    assert!(e.is_corruption(), "{e}");
    assert_eq!(
        e.lsn(),
        Some(fs.start_lsn().unwrap().checked_add(3 * 8192).unwrap())
    );
    // Truncated.
    let e = validate_segment(&full[..full.len() / 2], full_options.clone()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::UnexpectedEnd);
    // At the wrong position (swapped with its neighbour).
    let wrong = ValidatorOptions::new(
        TimelineId::FIRST,
        fs.segno.checked_add(1).unwrap(),
        wal.seg_size,
    );
    let e = validate_segment(full, wrong).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PageHeader);
    assert!(e.to_string().starts_with("unexpected pageaddr"), "{e}");
    // From another cluster.
    let e =
        validate_segment(full, full_options.system_identifier(Some(wal.sysid ^ 1))).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ForeignSegment);
    // Named as partial, the damaged copies are still rejected, not taken as an end of WAL.
    let partial =
        ValidatorOptions::new(TimelineId::FIRST, s.segno, wal.seg_size).kind(SegmentKind::Partial);
    assert_eq!(
        validate_segment(&flipped, partial).unwrap_err().kind(),
        ErrorKind::Checksum
    );
}

/// A scratch directory holding one file, for pg_waldump.
fn scratch_with(name: &str, bytes: &[u8]) -> tempfile::TempDir {
    let dir = tempfile::Builder::new()
        .prefix("barman-wal-")
        .tempdir_in("/tmp")
        .unwrap();
    std::fs::write(dir.path().join(name), bytes).unwrap();
    dir
}
