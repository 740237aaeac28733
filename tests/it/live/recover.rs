//! `barman restore` end to end on every major version: a backup taken with the low-level
//! API, rows written after it, a `DROP TABLE` at a known time, then recoveries to each kind
//! of target; each recovered cluster is started and its rows counted. Unreachable targets
//! are refused before the destination is touched, and only the WAL the target needs is
//! copied.

use std::path::Path;

use crate::harness::{live_test, PgCluster, PgInstall};
use crate::live::recover_fixture::Fixture;

/// What the workload left behind, to check recoveries against.
struct Workload {
    /// xid of the transaction that inserted the 1000 rows after the backup.
    xid1: String,
    /// The WAL position just after it (and after restore point `rp1`).
    lsn1: String,
    /// A time after the 500 more rows and before the DROP.
    before_drop: String,
    /// The segment holding the DROP's commit.
    drop_segment: String,
    /// The backup's first segment.
    begin_wal: String,
}

/// 150 rows in the backup; +1000 (xid1, then restore point rp1 and lsn1); +500; a time;
/// DROP TABLE; then three more segments of unrelated activity.
fn workload(f: &Fixture) -> Workload {
    let c = &f.cluster;
    c.psql("create table t (id int, pad text) tablespace tbs");
    c.psql("insert into t select g, 'before' from generate_series(1, 100) g");
    c.psql("insert into t select g, 'before' from generate_series(101, 150) g");
    f.backup("20260101T000000");
    let info =
        std::fs::read_to_string(f.scratch.home().join("pg/meta/20260101T000000-backup.info"))
            .unwrap();
    let begin_wal = info
        .lines()
        .find_map(|l| l.strip_prefix("begin_wal="))
        .unwrap()
        .to_string();
    let xid1 = c.psql(
        "begin; insert into t select g, 'batch1' from generate_series(1, 1000) g; select txid_current(); commit;",
    );
    c.psql("select pg_create_restore_point('rp1')");
    let lsn1 = c.psql("select pg_current_wal_lsn()");
    c.psql("select pg_switch_wal()");
    c.psql("insert into t select g, 'batch2' from generate_series(1, 500) g");
    std::thread::sleep(std::time::Duration::from_millis(50));
    let before_drop = c.psql("select clock_timestamp()");
    std::thread::sleep(std::time::Duration::from_millis(50));
    c.psql("drop table t");
    let drop_segment = c.psql("select pg_walfile_name(pg_current_wal_lsn())");
    for i in 0..3 {
        c.psql(&format!(
            "create table junk{i} (x int); select pg_switch_wal()"
        ));
    }
    f.archive_all();
    Workload {
        xid1,
        lsn1,
        before_drop,
        drop_segment,
        begin_wal,
    }
}

/// The WAL segments copied into `dir` (not history files).
fn segments_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.len() == 24)
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Start a recovered data directory and count the rows of `t` (None when it does not exist).
pub fn rows_after_recovery(pg: &PgInstall, dest: &Path) -> Option<u64> {
    let cluster = PgCluster::start_existing(pg, dest);
    // Wait until recovery has ended (promotion) or paused at the target.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let state = cluster
            .psql("select pg_is_in_recovery() and not coalesce(pg_is_wal_replay_paused(), false)");
        if state == "f" {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "recovery did not finish"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    let exists = cluster.psql("select count(*) from pg_class where relname = 't'");
    if exists == "0" {
        return None;
    }
    Some(cluster.psql("select count(*) from t").parse().unwrap())
}

fn is_empty_or_missing(dir: &Path) -> bool {
    std::fs::read_dir(dir).map_or(true, |mut d| d.next().is_none())
}

live_test!(recover_to_each_target, |pg: &PgInstall| {
    let f = Fixture::new(pg);
    let w = workload(&f);
    let tbs = |name: &str| format!("tbs:{}", f.path(name).display());

    // 1. PITR by time, just before the DROP: every row committed before it.
    let dest = f.path("by_time");
    let out = f
        .restore(&[
            "--target-time",
            &w.before_drop,
            "--target-action",
            "promote",
            "--tablespace",
            &tbs("by_time_tbs"),
            "20260101T000000",
            dest.to_str().unwrap(),
        ])
        .ok()
        .to_string();
    assert!(
        out.contains("Starting local restore for server pg using backup 20260101T000000"),
        "{out}"
    );
    assert!(out.contains("Doing PITR. Recovery target time: '"), "{out}");
    assert!(
        out.contains("Your PostgreSQL server has been successfully prepared for recovery!"),
        "{out}"
    );
    assert!(out.contains("postgresql.conf line"), "{out}");
    assert!(out.contains("archive_command = false"), "{out}");
    // Only the WAL up to the DROP's segment was copied, not the three after it.
    let archived = f.archived_from(&w.begin_wal);
    let needed: Vec<String> = archived
        .iter()
        .filter(|n| n.as_str() <= w.drop_segment.as_str())
        .cloned()
        .collect();
    assert_eq!(segments_in(&dest.join("barman_wal")), needed);
    assert!(archived.len() >= needed.len() + 2, "{archived:?}");
    assert!(dest.join("recovery.signal").is_file());
    assert!(dest.join("postgresql.conf.origin").is_file());
    assert!(dest.join(".barman-recover.info").is_file());
    let auto = std::fs::read_to_string(dest.join("postgresql.auto.conf")).unwrap();
    assert!(auto.contains("recovery_target_time = '"), "{auto}");
    assert_eq!(
        std::fs::read_link(
            dest.join("pg_tblspc").join(
                std::fs::read_dir(dest.join("pg_tblspc"))
                    .unwrap()
                    .next()
                    .unwrap()
                    .unwrap()
                    .file_name()
            )
        )
        .unwrap(),
        f.path("by_time_tbs")
    );
    assert_eq!(rows_after_recovery(pg, &dest), Some(1650));

    // 2. Every other target kind.
    let kinds: [(&str, Vec<String>, Option<u64>); 6] = [
        (
            "xid",
            vec!["--target-xid".into(), w.xid1.clone()],
            Some(1150),
        ),
        (
            "xid_exclusive",
            vec!["--target-xid".into(), w.xid1.clone(), "--exclusive".into()],
            Some(150),
        ),
        (
            "name",
            vec!["--target-name".into(), "rp1".into()],
            Some(1150),
        ),
        (
            "lsn",
            vec!["--target-lsn".into(), w.lsn1.clone()],
            Some(1150),
        ),
        ("immediate", vec!["--target-immediate".into()], Some(150)),
        // To the end of the WAL: the table is dropped.
        ("end", Vec::new(), None),
    ];
    for (kind, args, expected) in kinds {
        let dest = f.path(kind);
        let mut full: Vec<&str> = args.iter().map(String::as_str).collect();
        if !args.is_empty() {
            full.extend(["--target-action", "promote"]);
        }
        let tbs2 = tbs(&format!("{kind}_tbs"));
        full.extend([
            "--tablespace",
            &tbs2,
            "-j",
            "3",
            "latest",
            dest.to_str().unwrap(),
        ]);
        let out = f.restore(&full).ok().to_string();
        if args.is_empty() {
            assert!(out.contains("Generating archive status files"), "{out}");
            assert!(!dest.join("recovery.signal").exists());
            let wal = segments_in(&dest.join("pg_wal"));
            assert_eq!(wal, f.archived_from(&w.begin_wal));
            assert!(dest
                .join("pg_wal/archive_status")
                .join(format!("{}.done", wal[0]))
                .is_file());
        }
        assert_eq!(rows_after_recovery(pg, &dest), expected, "{kind}: {args:?}");
    }

    // 3. Refusals, before anything is written.
    let refused = |args: &[&str], message: &str| {
        let dest = f.path("refused");
        let refused_tbs = tbs("refused_tbs");
        let mut all = args.to_vec();
        all.extend([
            "--tablespace",
            &refused_tbs,
            "latest",
            dest.to_str().unwrap(),
        ]);
        let run = f.restore(&all);
        assert_ne!(run.code, 0, "{args:?}: {}", run.stdout);
        assert!(run.stderr.contains(message), "{args:?}: {}", run.stderr);
        assert!(
            is_empty_or_missing(&dest),
            "{args:?} touched the destination"
        );
        assert!(
            is_empty_or_missing(&f.path("refused_tbs")),
            "{args:?} touched the tablespace destination"
        );
    };
    refused(
        &["--target-time", "2000-01-01 00:00:00+00"],
        "is before the backup end time",
    );
    refused(
        &["--target-time", "2999-01-01 00:00:00+00"],
        "is not reached by the WAL archive",
    );
    refused(
        &["--target-name", "no_such_point"],
        "'no_such_point' is not in the WAL archive after the backup; those after the backup are: rp1",
    );
    refused(
        &["--target-xid", "4000000"],
        "does not end in the WAL archive",
    );
    refused(&["--target-lsn", "0/1"], "is before the backup end LSN");
    // WAL that Barman stored encrypted (gpg) would reach PostgreSQL as ciphertext.
    let db_path = f.scratch.home().join("pg/wals/pg-xlog.db");
    let db = std::fs::read_to_string(&db_path).unwrap();
    let marked: String = db
        .lines()
        .map(|line| {
            let mut fields: Vec<&str> = line.split('\t').collect();
            if fields[0].len() == 24 && fields[0] >= w.begin_wal.as_str() {
                fields.resize(5, "None");
                fields[4] = "gpg";
            }
            fields.join("\t") + "\n"
        })
        .collect();
    std::fs::write(&db_path, &marked).unwrap();
    let needed = f.archived_from(&w.begin_wal);
    assert!(needed.len() > 1, "{needed:?}");
    refused(
        &[],
        &format!(
            "WAL file {} (and {} more) needed by this recovery is encrypted, which this barman does not support",
            needed[0],
            needed.len() - 1
        ),
    );
    std::fs::write(&db_path, &db).unwrap();
    // A non-empty destination.
    let busy = f.path("busy");
    std::fs::create_dir_all(&busy).unwrap();
    std::fs::write(busy.join("keep-me"), "x").unwrap();
    let run = f.restore(&["latest", busy.to_str().unwrap()]);
    assert_ne!(run.code, 0);
    assert!(run.stderr.contains("is not empty"), "{}", run.stderr);
    assert_eq!(std::fs::read_dir(&busy).unwrap().count(), 1);
    // A segment the target needs is missing from the archive.
    let victim = &f.archived_from(&w.begin_wal)[2];
    std::fs::remove_file(
        f.scratch
            .home()
            .join("pg/wals")
            .join(&victim[..16])
            .join(victim),
    )
    .unwrap();
    refused(
        &["--target-time", &w.before_drop],
        &format!("WAL file {victim} is missing from the archive"),
    );
});

/// A tar backup (base.tar.gz, the tablespace as <oid>.tar.zst) restored on a "remote" host:
/// the SSH command is a stand-in that runs the remote command locally, so the files travel
/// as tar streams through real pipes and a real `tar -x`, as they would over SSH.
#[test]
fn remote_restore_of_a_compressed_backup() {
    crate::harness::run_live(16, |pg: &PgInstall| {
        let f = Fixture::new(pg);
        let _w = workload(&f);
        // The same backup, as pg_basebackup -Ft -z would store it.
        let home = f.scratch.home().join("pg");
        let plain = home.join("base/20260101T000000");
        let tar_dir = home.join("base/20260101T000001/data");
        std::fs::create_dir_all(&tar_dir).unwrap();
        let sh = |script: String| {
            let status = std::process::Command::new("sh")
                .arg("-c")
                .arg(&script)
                .status()
                .unwrap();
            assert!(status.success(), "{script}");
        };
        sh(format!(
            "tar -czf {}/base.tar.gz -C {}/data .",
            tar_dir.display(),
            plain.display()
        ));
        for entry in std::fs::read_dir(&plain).unwrap() {
            let name = entry.unwrap().file_name().to_string_lossy().into_owned();
            if name.parse::<u32>().is_ok() {
                sh(format!(
                    "tar -cf - -C {}/{name} . | zstd -q -o {}/{name}.tar.zst",
                    plain.display(),
                    tar_dir.display()
                ));
            }
        }
        let info = std::fs::read_to_string(home.join("meta/20260101T000000-backup.info")).unwrap();
        std::fs::write(
            home.join("meta/20260101T000001-backup.info"),
            info.replace("compression=None", "compression=gzip"),
        )
        .unwrap();
        let ssh = f
            .scratch
            .write("fake-ssh", "#!/bin/sh\nshift\nexec sh -c \"$*\"\n");
        std::fs::set_permissions(&ssh, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        let dest = f.path("remote dest");
        let tbs = format!("tbs:{}", f.path("remote_tbs").display());
        let ssh_command = format!("{} postgres@pghost", ssh.display());
        let out = f
            .restore(&[
                "--remote-ssh-command",
                &ssh_command,
                "--target-name",
                "rp1",
                "--target-action",
                "promote",
                "--tablespace",
                &tbs,
                "-j",
                "2",
                "20260101T000001",
                dest.to_str().unwrap(),
            ])
            .ok()
            .to_string();
        assert!(
            out.contains("Starting remote restore for server pg using backup 20260101T000001"),
            "{out}"
        );
        assert!(
            out.contains(&format!("Remote command: {ssh_command}")),
            "{out}"
        );
        assert!(dest.join("backup_label").is_file());
        assert!(dest.join("postgresql.auto.conf.origin").is_file());
        assert_eq!(rows_after_recovery(pg, &dest), Some(1150));
    });
}

/// Measurement, run by hand: `cargo test --release --test it -- --ignored recover_speed
/// --nocapture`. Restores a pgbench backup (scale from `BARMAN_BENCH_SCALE`, default 20)
/// with all its WAL, against `cp -a` of the same backup plus `gzip -dc` of the same WAL.
#[test]
#[ignore]
fn recover_speed() {
    crate::harness::run_live(16, |pg: &PgInstall| {
        let scale = std::env::var("BARMAN_BENCH_SCALE").unwrap_or_else(|_| "20".into());
        let f = Fixture::new(pg);
        f.cluster
            .pgbench(&["-i", "-q", "-s", &scale, "--tablespace=tbs"]);
        f.backup("20260101T000000");
        f.cluster.pgbench(&["-c", "2", "-t", "2000", "-n"]);
        f.archive_all();
        let home = f.scratch.home().join("pg");
        let begin = std::fs::read_to_string(home.join("meta/20260101T000000-backup.info"))
            .unwrap()
            .lines()
            .find_map(|l| l.strip_prefix("begin_wal=").map(String::from))
            .unwrap();
        let wal = f.archived_from(&begin);
        let sync = || {
            let _ = std::process::Command::new("sync").status();
        };
        // Baseline: cp -a of data and tablespace, then every WAL file decompressed.
        sync();
        let t = std::time::Instant::now();
        let base = home.join("base/20260101T000000");
        let dest = f.path("cp");
        let script = format!(
            "cp -a {b}/data {d} && for o in {b}/[0-9]*; do cp -a $o {d}.tbs.$(basename $o); done && for w in {ws}; do gzip -dc {h}/wals/$(echo $w | cut -c1-16)/$w > {d}/pg_wal/$w; done",
            b = base.display(),
            d = dest.display(),
            h = home.display(),
            ws = wal.join(" ")
        );
        assert!(std::process::Command::new("sh")
            .arg("-c")
            .arg(&script)
            .status()
            .unwrap()
            .success());
        sync();
        let baseline = t.elapsed();
        for jobs in ["1", "2"] {
            let dest = f.path(&format!("restore-j{jobs}"));
            let tbs = format!("tbs:{}", f.path(&format!("restore-j{jobs}-tbs")).display());
            sync();
            let t = std::time::Instant::now();
            f.restore(&[
                "-j",
                jobs,
                "--tablespace",
                &tbs,
                "latest",
                dest.to_str().unwrap(),
            ])
            .ok();
            sync();
            let ours = t.elapsed();
            eprintln!(
                "scale {scale}, {} WAL files: barman restore -j {jobs}: {:.2} s; cp -a + gzip -dc: {:.2} s; ratio {:.2}",
                wal.len(),
                ours.as_secs_f64(),
                baseline.as_secs_f64(),
                ours.as_secs_f64() / baseline.as_secs_f64()
            );
        }
    });
}
