//! Interoperability with the real Barman (Python, by EnterpriseDB; installed by `scripts/test`,
//! found by `harness::python_barman_bin`), on one catalogue and one server:
//!
//! - Barman takes a backup (`backup_method = postgres`, WAL through `archive_command` into
//!   `incoming/` and Barman's `archive-wal`); our `list-backups`, `show-backup`,
//!   `check-backup` read it and our `restore` to a restore point and to a time gives clusters
//!   that start with exactly the rows written before the target.
//! - The reverse: our plain and gzip-tar backups and our archived WAL are listed and shown by
//!   Barman and recovered by Barman's own `recover` to a restore point and to a time; keep
//!   annotations set by either are seen and released by the other.
//! - Locks: while our `receive-wal` runs Barman's `receive-wal` refuses and its `cron` starts
//!   no second receiver; while Barman's runs, ours refuses and our `cron` starts none; each
//!   `--stop` stops the other's receiver, and the receivers taking turns leave an archive
//!   without a gap.
//! - Barman 3.4 (Debian 12's version, the older catalogue layout), both ways.
//! - Outputs: `list-backups`, `show-backup` and `check`, console and `-f json`, compared
//!   line for line with Barman's on the same catalogue (differences that are deliberate are
//!   normalised here and listed in docs/migrating-from-barman.md).
//!
//! Barman runs Debian's `pg_basebackup` and `pg_receivewal` 15 and refuses servers newer
//! than them (its `pg_basebackup compatible` check), so the tests run on PostgreSQL 13 and
//! 15.

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{
    give_tree_to_server_user, python_barman, python_barman34, PgCluster, PgInstall,
};
use crate::live::receive_wal::{
    archived_segments, assert_archive_matches_server, assert_contiguous, switch, wait_until,
    ReceiveWal,
};
use crate::live::recover::rows_after_recovery;
use crate::util::{Run, Scratch};

/// A cluster archiving into `incoming/` of server `pg`, whose configuration both binaries read.
struct Interop {
    scratch: Scratch,
    cluster: PgCluster,
}

impl Interop {
    fn new(pg: &PgInstall, extra: &str) -> Interop {
        let (scratch, incoming) = crate::live::archive::scratch_with_incoming();
        let cluster =
            PgCluster::start_with(pg, &crate::live::archive::archiving_options(&incoming));
        let text = std::fs::read_to_string(scratch.config()).unwrap();
        scratch.write_config(&format!(
            "{text}[pg]\ndescription = interop\nconninfo = {0}\nstreaming_conninfo = {0}\n\
             backup_method = postgres\narchiver = on\n{extra}\n",
            cluster.conninfo()
        ));
        Interop { scratch, cluster }
    }

    /// Our binary: `barman -c CONFIG ARGS...`.
    fn ours(&self, args: &[&str]) -> Run {
        self.scratch.barman(args)
    }

    /// Python Barman: `barman -c CONFIG ARGS...`.
    fn theirs(&self, args: &[&str]) -> Run {
        let mut command = python_barman(&self.scratch.config());
        command.args(args).stdin(Stdio::null());
        Run::of(command)
    }

    /// Python Barman 3.4 (Debian 12's version): `barman -c CONFIG ARGS...`.
    fn theirs34(&self, args: &[&str]) -> Run {
        let mut command = python_barman34(&self.scratch.config());
        command.args(args).stdin(Stdio::null());
        Run::of(command)
    }

    /// Closes the current segment and waits until the server has archived it into
    /// `incoming/`.
    fn deliver_wal(&self) {
        let c = &self.cluster;
        c.psql("select pg_logical_emit_message(false, 'barman-rs', 'archive')");
        let last = c.psql("select pg_walfile_name(pg_current_wal_lsn())");
        c.psql("select pg_switch_wal()");
        wait_until(
            &format!("archive_command to deliver {last}"),
            Duration::from_secs(60),
            || {
                c.psql("select coalesce(last_archived_wal, '') from pg_stat_archiver")
                    .as_str()
                    >= last.as_str()
            },
        );
    }

    /// Closes the current segment, waits until the server has archived it into `incoming/`,
    /// then runs `archive-wal` of Barman (`with_theirs`) or ours.
    fn archive_all(&self, with_theirs: bool) {
        self.deliver_wal();
        if with_theirs {
            self.theirs(&["archive-wal", "pg"]).ok();
        } else {
            self.ours(&["archive-wal", "pg"]).ok();
        }
    }

    /// The backup ids of the catalogue, oldest first.
    fn backup_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = std::fs::read_dir(self.scratch.home().join("pg/base"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        ids.sort();
        ids
    }

    fn path(&self, name: &str) -> PathBuf {
        self.scratch.path().join(name)
    }

    /// Tablespace `tbs` (in the scratch directory) holding table `t` with 100 rows.
    fn table_in_tablespace(&self) {
        let dir = self.path("tbs");
        std::fs::create_dir_all(&dir).unwrap();
        give_tree_to_server_user(&dir);
        let c = &self.cluster;
        c.psql(&format!(
            "create tablespace tbs location '{}'",
            dir.display()
        ));
        c.psql("create table t (id int, pad text) tablespace tbs");
        c.psql("insert into t select g, 'before' from generate_series(1, 100) g");
    }

    /// Asserts that the restored `dest` links its one tablespace to `<scratch>/<name>_tbs`.
    #[track_caller]
    fn assert_tablespace_moved(&self, dest: &Path, name: &str) {
        let links: Vec<PathBuf> = std::fs::read_dir(dest.join("pg_tblspc"))
            .unwrap()
            .map(|e| std::fs::read_link(e.unwrap().path()).unwrap())
            .collect();
        assert_eq!(links, [self.path(&format!("{name}_tbs"))]);
    }

    /// `--tablespace tbs:<scratch>/<name>_tbs`: a restore must not write into the running
    /// cluster's own tablespace directory.
    fn tablespace_arg(&self, name: &str) -> String {
        format!("tbs:{}", self.path(&format!("{name}_tbs")).display())
    }
}

/// The workload after a backup: 1000 rows, restore point `rp1` (1100 rows in all with the
/// 100 of the backup), 500 rows, a time (1600 rows), 250 rows (1850). Returns the time.
fn workload_after_backup(c: &PgCluster) -> String {
    c.psql("insert into t select g, 'batch1' from generate_series(1, 1000) g");
    c.psql("select pg_create_restore_point('rp1')");
    c.psql("insert into t select g, 'batch2' from generate_series(1, 500) g");
    std::thread::sleep(Duration::from_millis(50));
    let time = c.psql("select clock_timestamp()");
    std::thread::sleep(Duration::from_millis(50));
    c.psql("insert into t select g, 'batch3' from generate_series(1, 250) g");
    time
}

/// `interop_test!(name)` runs `fn name(&PgInstall)` as tests `name::pg13` and `name::pg15`
/// (like `harness::live_test!`, on the majors Barman's client tools can serve).
macro_rules! interop_test {
    ($name:ident) => {
        mod $name {
            #[test]
            fn pg13() {
                $crate::harness::run_live(13, super::$name);
            }

            #[test]
            fn pg15() {
                $crate::harness::run_live(15, super::$name);
            }
        }
    };
}

/// Barman's backup and WAL, read and restored by us.
fn barman_backup_restored_by_us(pg: &PgInstall) {
    // Barman's archive-wal compresses the WAL (gzip); our restore decompresses it.
    let x = Interop::new(pg, "compression = gzip");
    let c = &x.cluster;
    x.table_in_tablespace();
    let out = x.theirs(&["backup", "pg"]);
    let text = format!("{}{}", out.stdout, out.stderr);
    out.code(0);
    assert!(text.contains("Backup completed"), "{text}");
    let ids = x.backup_ids();
    assert_eq!(ids.len(), 1, "{ids:?}");
    let id = &ids[0];
    let time = workload_after_backup(c);
    x.archive_all(true);
    // The backup is DONE for Barman once its WAL is archived.
    x.theirs(&["check-backup", "pg", id]).ok();

    let listed = x.ours(&["list-backups", "pg"]).ok().to_string();
    assert!(listed.starts_with(&format!("pg {id} - ")), "{listed}");
    let shown = x.ours(&["show-backup", "pg", id]).ok().to_string();
    assert!(shown.contains(&format!("Backup {id}:")), "{shown}");
    assert!(shown.contains("Status                 : DONE"), "{shown}");
    x.ours(&["check-backup", "pg", id]).ok();

    for (name, args, rows) in [
        ("by_name", vec!["--target-name", "rp1"], 1100),
        ("by_time", vec!["--target-time", time.as_str()], 1600),
    ] {
        let dest = x.path(name);
        let tbs = x.tablespace_arg(name);
        let mut all = vec!["restore", "pg", id.as_str(), dest.to_str().unwrap()];
        all.extend(args);
        all.extend(["--target-action", "promote", "--tablespace", &tbs]);
        x.ours(&all).ok();
        x.assert_tablespace_moved(&dest, name);
        assert_eq!(
            rows_after_recovery(pg, &dest),
            Some(rows),
            "our restore {name} of Barman's backup {id}"
        );
    }
}

interop_test!(barman_backup_restored_by_us);

/// Our backups (plain, then gzip tar) and our WAL, listed, shown and recovered by Barman.
fn our_backup_recovered_by_barman(pg: &PgInstall) {
    // Our archive-wal compresses the WAL (bzip2); Barman's recover decompresses it.
    let x = Interop::new(pg, "compression = bzip2");
    let c = &x.cluster;
    x.table_in_tablespace();
    x.ours(&["backup", "pg"]).ok();
    let text = std::fs::read_to_string(x.scratch.config()).unwrap();
    x.scratch
        .write_config(&format!("{text}backup_compression = gzip\n"));
    // Backup ids have a one-second resolution.
    std::thread::sleep(Duration::from_millis(1100));
    x.ours(&["backup", "pg"]).ok();
    let ids = x.backup_ids();
    assert_eq!(ids.len(), 2, "{ids:?}");
    let (plain, tar) = (&ids[0], &ids[1]);
    assert!(
        x.scratch
            .home()
            .join(format!("pg/base/{tar}/data/base.tar.gz"))
            .is_file(),
        "the second backup is a gzip tar"
    );
    let time = workload_after_backup(c);
    x.archive_all(false);

    let listed = x.theirs(&["list-backups", "pg"]).ok().to_string();
    for id in [plain, tar] {
        assert!(
            listed
                .lines()
                .any(|l| l.starts_with(&format!("pg {id} - "))),
            "Barman lists {id}:\n{listed}"
        );
        let shown = x.theirs(&["show-backup", "pg", id]).ok().to_string();
        assert!(shown.contains(&format!("Backup {id}:")), "{shown}");
        assert!(shown.contains("DONE"), "{shown}");
    }

    // Keep annotations: each binary sees the other's (meta/<id>-keep).
    x.ours(&["keep", "pg", plain, "--target", "full"]).ok();
    x.theirs(&["keep", "pg", tar, "--target", "standalone"])
        .ok();
    assert!(
        x.scratch
            .home()
            .join(format!("pg/meta/{plain}-keep"))
            .is_file()
            && x.scratch
                .home()
                .join(format!("pg/meta/{tar}-keep"))
                .is_file(),
        "both keep annotations in meta/"
    );

    // Barman's outputs on our catalogue equal ours (see `outputs_match_barman`).
    let mut problems = Vec::new();
    for fmt in [&[][..], &["-f", "json"][..]] {
        for cmd in [
            vec!["keep", "-s", "pg", plain.as_str()],
            vec!["keep", "-s", "pg", tar.as_str()],
            vec!["list-backups", "pg"],
            vec!["show-backup", "pg", plain.as_str()],
            vec!["show-backup", "pg", tar.as_str()],
            vec!["check", "pg"],
        ] {
            let mut args: Vec<&str> = fmt.to_vec();
            args.extend(cmd);
            problems.extend(compare(&x, &args, normalise));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    let status = x
        .theirs(&["-f", "json", "keep", "-s", "pg", plain])
        .ok()
        .to_string();
    assert!(
        status.contains("\"message\": \"full\""),
        "Barman reads our keep: {status}"
    );
    let status = x
        .ours(&["-f", "json", "keep", "-s", "pg", tar])
        .ok()
        .to_string();
    assert!(
        status.contains("\"message\": \"standalone\""),
        "we read Barman's keep: {status}"
    );
    // Each releases the other's keep.
    x.theirs(&["keep", "-r", "pg", plain]).ok();
    x.ours(&["keep", "-r", "pg", tar]).ok();
    for id in [plain, tar] {
        let status = x
            .theirs(&["-f", "json", "keep", "-s", "pg", id])
            .ok()
            .to_string();
        assert!(status.contains("\"nokeep\""), "{status}");
        let status = x
            .ours(&["-f", "json", "keep", "-s", "pg", id])
            .ok()
            .to_string();
        assert!(status.contains("\"nokeep\""), "{status}");
    }

    for (id, name, args, rows) in [
        (
            plain,
            "plain_by_time",
            vec!["--target-time", time.as_str()],
            1600,
        ),
        (plain, "plain_by_name", vec!["--target-name", "rp1"], 1100),
        (
            tar,
            "tar_by_time",
            vec!["--target-time", time.as_str()],
            1600,
        ),
        (tar, "tar_by_name", vec!["--target-name", "rp1"], 1100),
    ] {
        let dest = x.path(name);
        let tbs = x.tablespace_arg(name);
        let mut all = vec!["recover", "pg", id.as_str(), dest.to_str().unwrap()];
        all.extend(args);
        all.extend(["--target-action", "promote", "--tablespace", &tbs]);
        let out = x.theirs(&all);
        out.code(0);
        x.assert_tablespace_moved(&dest, name);
        assert!(
            out.stdout
                .contains("Your PostgreSQL server has been successfully prepared for recovery!"),
            "{}{}",
            out.stdout,
            out.stderr
        );
        assert_eq!(
            rows_after_recovery(pg, &dest),
            Some(rows),
            "Barman's recover {name} of our backup {id}"
        );
    }
}

interop_test!(our_backup_recovered_by_barman);

/// Both outputs of one command, normalised by `normalise`, must be equal line for line.
///
/// The two commands run one after the other against a live server, and what the
/// commands that show its state (`status`, `check`, `replication-status`, `show-servers`)
/// read can move in between: right after a WAL switch the write position sits on a
/// segment boundary (`Current WAL segment` names the segment before it on 13-16), and the
/// first record the background writer logs moves it into the next one. So such a pair
/// that differs is run again, up to three times in all; the differences of the earlier
/// attempts are printed, and a real difference, which repeats, is reported from the last.
fn compare(x: &Interop, args: &[&str], normalise: impl Fn(&str) -> String) -> Vec<String> {
    let live = args
        .iter()
        .any(|a| ["status", "check", "replication-status", "show-servers"].contains(a));
    let attempts = if live { 3 } else { 1 };
    let mut problems = Vec::new();
    for attempt in 1..=attempts {
        if attempt > 1 {
            eprintln!(
                "attempt {} of `barman {}` differed, running it again:\n{}",
                attempt - 1,
                args.join(" "),
                problems.join("\n")
            );
            std::thread::sleep(Duration::from_millis(300));
        }
        problems = compare_once(x, args, &normalise);
        if problems.is_empty() {
            break;
        }
    }
    problems
}

/// One run of each binary, and the differences between their outputs.
fn compare_once(x: &Interop, args: &[&str], normalise: &impl Fn(&str) -> String) -> Vec<String> {
    let theirs = x.theirs(args);
    let ours = x.ours(args);
    let mut problems = Vec::new();
    if theirs.code != ours.code {
        problems.push(format!(
            "`barman {}`: exit code {} (Barman) vs {} (ours)",
            args.join(" "),
            theirs.code,
            ours.code
        ));
    }
    let (t, o) = (normalise(&theirs.stdout), normalise(&ours.stdout));
    if t != o {
        let tl: Vec<&str> = t.lines().collect();
        let ol: Vec<&str> = o.lines().collect();
        let mut diff = String::new();
        for i in 0..tl.len().max(ol.len()) {
            let (a, b) = (tl.get(i).copied(), ol.get(i).copied());
            if a != b {
                diff.push_str(&format!(
                    "  -{}\n  +{}\n",
                    a.unwrap_or("<none>"),
                    b.unwrap_or("<none>")
                ));
            }
        }
        if diff.is_empty() {
            diff = format!("  -{t:?}\n  +{o:?}\n");
        }
        problems.push(format!("`barman {}` differs (- Barman, + ours):\n{diff}--- Barman stderr\n{}--- our stderr\n{}", args.join(" "), theirs.stderr, ours.stderr));
    }
    problems
}

/// Our `check` says why `pg_basebackup` and `pg_receivexlog` need no client binary (we speak
/// the protocol natively): the hints of `pg_basebackup`, `pg_basebackup compatible`,
/// `pg_receivexlog` and `pg_receivexlog compatible`, empty in Barman's output, are blanked.
/// Nothing else is touched.
fn normalise_check(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for (i, line) in text.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let trimmed = line.trim_start();
        if trimmed.starts_with("pg_basebackup: OK (")
            || trimmed.starts_with("pg_basebackup compatible: OK (")
            || trimmed.starts_with("pg_receivexlog: OK (")
            || trimmed.starts_with("pg_receivexlog compatible: OK (")
        {
            out.push_str(line.split(" (").next().unwrap());
            continue;
        }
        let mut line = line.to_string();
        for key in [
            "\"pg_basebackup\": {\"hint\": \"",
            "\"pg_basebackup_compatible\": {\"hint\": \"",
            "\"pg_receivexlog\": {\"hint\": \"",
            "\"pg_receivexlog_compatible\": {\"hint\": \"",
        ] {
            if let Some(start) = line.find(key) {
                let from = start + key.len();
                let end = from + line[from..].find('"').unwrap();
                line.replace_range(from..end, "");
            }
        }
        out.push_str(&line);
    }
    out
}

/// `normalise_check`, and the values that depend on the moment they are computed (WAL rates
/// over the time since the archiver's statistics were reset; the slot's `restart_lsn`,
/// which a running receiver moves between the two commands), and `show-servers`'
/// `pg_basebackup_*`/`pg_receivexlog_*` path and version, which name our binary (we need
/// no `pg_basebackup` nor `pg_receivewal`).
fn normalise(text: &str) -> String {
    let text = normalise_check(text);
    let mut out = String::with_capacity(text.len());
    for (i, line) in text.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let mut line = line.to_string();
        for key in [
            "Server WAL archiving rate: ",
            "current_archived_wals_per_second: ",
            "pg_basebackup_path: ",
            "pg_basebackup_version: ",
            "pg_receivexlog_path: ",
            "pg_receivexlog_version: ",
            "\"pg_receivexlog_path\": \"",
            "\"pg_receivexlog_version\": \"",
            "\"current_archived_wals_per_second\": \"",
            "\"pg_basebackup_path\": \"",
            "\"pg_basebackup_version\": \"",
            "\"server_archived_wals_per_hour\": {\"description\": \"Server WAL archiving rate\", \"message\": \"",
        ] {
            let mut from = 0;
            while let Some(at) = line[from..].find(key) {
                let start = from + at + key.len();
                let end = start
                    + line[start..]
                        .find(['"', '\t'])
                        .unwrap_or(line.len() - start);
                line.replace_range(start..end, "<varies>");
                from = start;
            }
        }
        if let Some(at) = line.find("restart_lsn='") {
            let start = at + "restart_lsn='".len();
            if let Some(len) = line[start..].find('\'') {
                line.replace_range(start..start + len, "<varies>");
            }
        }
        out.push_str(&line);
    }
    out
}

/// The same catalogue (a backup by Barman, WAL archived by Barman) through both binaries.
fn outputs_match_barman(pg: &PgInstall) {
    let x = Interop::new(pg, "compression = gzip");
    let c = &x.cluster;
    c.psql("create table t (id int, pad text)");
    c.psql("insert into t select g, 'before' from generate_series(1, 100) g");
    x.theirs(&["backup", "pg"]).ok();
    let id = x.backup_ids().remove(0);
    std::thread::sleep(Duration::from_millis(1100));
    x.ours(&["backup", "pg"]).ok();
    let ours_id = x.backup_ids().remove(1);
    // Our backup.info has Barman's keys, in Barman's (sorted) order.
    let keys = |id: &str| -> Vec<String> {
        let path = x.scratch.home().join(format!("pg/meta/{id}-backup.info"));
        std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            .lines()
            .map(|l| l.split('=').next().unwrap().to_string())
            .collect()
    };
    assert_eq!(
        keys(&ours_id),
        keys(&id),
        "backup.info keys: ours vs Barman's"
    );
    // copy_stats in microseconds, as Barman's timedelta.total_seconds().
    let ours_info = std::fs::read_to_string(
        x.scratch
            .home()
            .join(format!("pg/meta/{ours_id}-backup.info")),
    )
    .unwrap();
    let stats = ours_info
        .lines()
        .find_map(|l| l.strip_prefix("copy_stats="))
        .unwrap();
    let copy_time = stats
        .split("'copy_time': ")
        .nth(1)
        .and_then(|r| r.split([',', '}']).next())
        .unwrap();
    assert!(
        copy_time.split('.').nth(1).map_or(true, |f| f.len() <= 6),
        "{stats}"
    );
    workload_after_backup(c);
    x.archive_all(true);
    x.theirs(&["check-backup", "pg", &id]).ok();

    // xlog.db: what Barman's archive-wal wrote, Barman's rebuild-xlogdb and ours agree
    // (name, size, mtime, compression of every WAL file).
    let xlogdb = x.scratch.home().join("pg/wals/pg-xlog.db");
    let read = || std::fs::read_to_string(&xlogdb).unwrap();
    let archived = read();
    assert!(archived.contains("\tgzip\tNone\n"), "{archived}");
    x.theirs(&["rebuild-xlogdb", "pg"]).ok();
    let rebuilt_by_barman = read();
    x.ours(&["rebuild-xlogdb", "pg"]).ok();
    assert_eq!(
        read(),
        rebuilt_by_barman,
        "xlog.db: ours vs Barman's rebuild-xlogdb"
    );
    let lines = |t: &str| -> Vec<String> {
        let mut v: Vec<String> = t.lines().map(String::from).collect();
        v.sort();
        v
    };
    assert_eq!(
        lines(&archived),
        lines(&rebuilt_by_barman),
        "xlog.db after archive-wal"
    );

    let mut problems = Vec::new();
    for json in [false, true] {
        let fmt: &[&str] = if json { &["-f", "json"] } else { &[] };
        for cmd in [
            vec!["list-backups", "pg"],
            vec!["show-backup", "pg", id.as_str()],
            vec!["show-backup", "pg", ours_id.as_str()],
            vec!["check", "pg"],
            vec!["list-servers"],
            vec!["status", "pg"],
            vec!["show-servers", "pg"],
            vec!["list-files", "pg", id.as_str()],
            vec!["list-files", "--target", "wal", "pg", ours_id.as_str()],
            vec!["check-backup", "pg", id.as_str()],
            vec!["replication-status", "pg"],
            vec!["check", "--nagios", "all"],
            vec!["list-backups", "--minimal", "pg"],
            vec!["list-servers", "--minimal"],
            vec!["show-backup", "pg", "latest"],
            vec!["show-backup", "pg", "oldest"],
            vec!["list-files", "--target", "standalone", "pg", "first"],
            vec!["list-files", "--target", "full", "pg", "last"],
            vec!["status", "all"],
            vec!["keep", "--status", "pg", "latest"],
            vec!["get-wal", "--peek", "3", "pg", "000000010000000000000002"],
            vec!["show-backup", "pg", "20200101T000000"],
            vec!["check-wal-archive", "pg"],
            vec!["check-wal-archive", "--timeline", "2", "pg"],
            vec!["check-wal-archive", "--timeline", "1", "pg"],
        ] {
            // --nagios output has no JSON form (Barman prints "{}" before the line).
            if json && cmd.contains(&"--nagios") {
                continue;
            }
            let mut args: Vec<&str> = fmt.to_vec();
            args.extend(cmd);
            problems.extend(compare(&x, &args, normalise));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));

    // Deliberate: an unknown server is a usage error here (exit code 2), an ordinary
    // error in Barman (1); the message is the same.
    let theirs = x.theirs(&["list-backups", "nosuchserver"]);
    let ours = x.ours(&["list-backups", "nosuchserver"]);
    assert_eq!((theirs.code, ours.code), (1, 2), "{theirs:?}\n{ours:?}");
    assert_eq!(theirs.stderr, ours.stderr);
    assert_eq!(theirs.stdout, ours.stdout);
}

interop_test!(outputs_match_barman);

/// The PID written in `.pg-receive-wal.lock` (empty when there is none).
fn lock_pid(x: &Interop) -> String {
    std::fs::read_to_string(x.scratch.home().join(".pg-receive-wal.lock"))
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// A `.partial` segment in `streaming/`: a receiver is streaming.
fn streaming_partial(x: &Interop) -> bool {
    std::fs::read_dir(x.scratch.home().join("pg/streaming")).is_ok_and(|d| {
        d.filter_map(|e| e.ok())
            .any(|e| e.file_name().to_string_lossy().ends_with(".partial"))
    })
}

/// Python Barman's `receive-wal`, stopped with its own `receive-wal --stop` (or killed,
/// with the `pg_receivewal` it started, when the test ends early).
struct TheirReceiver {
    child: Option<Child>,
    log: PathBuf,
}

impl TheirReceiver {
    fn start(x: &Interop) -> TheirReceiver {
        let log = x.path("their-receive-wal.log");
        let child = python_barman(&x.scratch.config())
            .args(["receive-wal", "pg"])
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(std::fs::File::create(x.path("their-receive-wal.err")).unwrap())
            .spawn()
            .expect("start Python Barman's receive-wal");
        TheirReceiver {
            child: Some(child),
            log,
        }
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().unwrap().id()
    }

    fn running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| c.try_wait().unwrap().is_none())
    }

    fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Waits for it to exit (after a `--stop`).
    fn wait_exit(&mut self) {
        let mut child = self.child.take().unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while child.try_wait().unwrap().is_none() {
            assert!(
                Instant::now() < deadline,
                "Barman's receive-wal did not stop"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for TheirReceiver {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The PIDs of the `pg_receivewal` processes writing into `dir` (started by Barman's
/// receive-wal), from /proc.
fn pg_receivewal_pids(dir: &Path) -> Vec<i32> {
    let needle = dir.display().to_string();
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| {
                let c = String::from_utf8_lossy(&c);
                c.contains("pg_receivewal") && c.contains(&needle)
            })
        })
        .collect()
}

/// `check`, `replication-status`, `status` and `show-servers`, console and JSON, equal
/// Barman's (see `normalise`).
#[track_caller]
fn same_check_and_replication_status(x: &Interop, switched_at: &str) {
    // A receiver reports what it wrote and flushed a moment (pg_receivewal: up to its
    // status interval) after it has: both sides must read a report that covers the
    // segment the test switched at `switched_at`, not one from before it and one after.
    wait_until(
        "the receiver to report the switched segment as written and flushed",
        Duration::from_secs(60),
        || {
            x.cluster.psql(&format!(
                "select count(*) from pg_stat_replication \
                 where write_lsn is null or write_lsn < '{switched_at}' \
                    or flush_lsn is null or flush_lsn < '{switched_at}'"
            )) == "0"
        },
    );
    let mut problems = Vec::new();
    for fmt in [&[][..], &["-f", "json"][..]] {
        for cmd in [
            ["check", "pg"],
            ["replication-status", "pg"],
            ["status", "pg"],
            ["show-servers", "pg"],
        ] {
            let mut args: Vec<&str> = fmt.to_vec();
            args.extend(cmd);
            problems.extend(compare(x, &args, normalise));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// One WAL receiver per server, whichever binary started it: both take the same `flock` on
/// `<barman_lock_directory>/.pg-receive-wal.lock` and write their PID in it, and each one's
/// `receive-wal --stop` stops the other's receiver.
fn one_receiver_per_server(pg: &PgInstall) {
    let x = Interop::new(
        pg,
        "streaming_archiver = on\nslot_name = barman\ncreate_slot = auto",
    );
    // Only the receivers deliver WAL here: the archive's continuity is theirs.
    x.cluster.psql("alter system set archive_command = 'true'");
    x.cluster.psql("select pg_reload_conf()");
    // A record, a switch, and the segment complete in streaming/ (or already archived by
    // the archive-wal that Barman's cron starts).
    let streamed = |what: &str| {
        x.cluster
            .psql("select pg_logical_emit_message(false, 'barman-rs', 'interop')");
        let (segment, lsn) = switch(&x.cluster);
        let path = x.scratch.home().join("pg/streaming").join(&segment);
        let archived = x
            .scratch
            .home()
            .join("pg/wals")
            .join(&segment[..16])
            .join(&segment);
        wait_until(
            &format!("{segment} complete in streaming/ ({what})"),
            Duration::from_secs(60),
            || path.exists() || archived.exists(),
        );
        lsn
    };
    // 1. Ours runs: Barman's receive-wal refuses, its cron starts no second one.
    let mut ours = ReceiveWal::start(&x.scratch, "pg");
    wait_until("our receive-wal to stream", Duration::from_secs(60), || {
        assert!(ours.running(), "our receive-wal exited:\n{}", ours.output());
        streaming_partial(&x)
    });
    let switched_at = streamed("our receiver");
    assert_eq!(lock_pid(&x), ours.pid().to_string(), "our PID in the lock");
    let refused = x.theirs(&["receive-wal", "pg"]);
    let text = format!("{}{}", refused.stdout, refused.stderr);
    assert_ne!(refused.code, 0, "Barman's receive-wal must refuse:\n{text}");
    assert!(
        text.contains("Another receive-wal process is already running for server pg."),
        "{text}"
    );
    let cron = x.theirs(&["cron"]);
    cron.code(0);
    assert!(
        !cron.stdout.contains("Starting streaming archiver"),
        "Barman's cron started a second receiver:\n{}",
        cron.stdout
    );
    assert!(ours.running(), "{}", ours.output());
    assert_eq!(lock_pid(&x), ours.pid().to_string());
    // With a receiver running, `check` (streaming lines included) is the same in both.
    same_check_and_replication_status(&x, &switched_at);
    // Barman's --stop reads our PID from the lock and stops our receiver. It waits for the
    // PID to disappear, so the test reaps our receiver (its child) meanwhile.
    let mut stop = python_barman(&x.scratch.config())
        .args(["receive-wal", "--stop", "pg"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run Barman's receive-wal --stop");
    wait_until(
        "Barman's receive-wal --stop",
        Duration::from_secs(60),
        || {
            ours.running();
            stop.try_wait().unwrap().is_some()
        },
    );
    let stop = stop.wait_with_output().unwrap();
    assert!(
        stop.status.success(),
        "Barman's receive-wal --stop of ours:\n{}{}",
        String::from_utf8_lossy(&stop.stdout),
        String::from_utf8_lossy(&stop.stderr)
    );
    let code = ours.wait_exit(Duration::from_secs(30));
    assert_eq!(
        code,
        0,
        "our receive-wal after Barman's --stop:\n{}",
        ours.output()
    );

    // 2. Barman's runs: ours refuses, our cron starts none, our --stop stops it.
    let mut theirs = TheirReceiver::start(&x);
    wait_until(
        "Barman's receive-wal to take the lock",
        Duration::from_secs(60),
        || {
            assert!(
                theirs.running(),
                "Barman's receive-wal exited:\n{}",
                theirs.output()
            );
            lock_pid(&x) == theirs.pid().to_string()
        },
    );
    let refused = x.ours(&["receive-wal", "pg"]);
    assert_ne!(refused.code, 0, "our receive-wal must refuse:\n{refused:?}");
    refused.stderr_has("Another receive-wal process is already running for server pg.");
    let cron = x.ours(&["cron"]);
    cron.code(0);
    assert!(
        !cron.stdout.contains("Starting streaming archiver"),
        "our cron started a second receiver:\n{}",
        cron.stdout
    );
    assert!(theirs.running(), "{}", theirs.output());
    same_check_and_replication_status(&x, &switched_at);
    // Barman's pg_receivewal went on from our .partial.
    streamed("Barman's receiver");
    let stop = x.ours(&["receive-wal", "--stop", "pg"]);
    let running = theirs.running();
    assert_eq!(
        stop.code,
        0,
        "our --stop of Barman's receive-wal: {stop:?}\nrunning: {running}\nlock: {:?}\n{}\n{}\n{:?}",
        lock_pid(&x),
        theirs.output(),
        std::fs::read_to_string(x.path("their-receive-wal.err")).unwrap_or_default(),
        pg_receivewal_pids(&x.scratch.home().join("pg/streaming"))
    );
    theirs.wait_exit();
    let streaming = x.scratch.home().join("pg/streaming");
    wait_until(
        "Barman's pg_receivewal to exit",
        Duration::from_secs(30),
        || pg_receivewal_pids(&streaming).is_empty(),
    );

    // 3. Ours again, from Barman's .partial; then the archive has no gap and equals the
    // server's WAL.
    let mut ours = ReceiveWal::start(&x.scratch, "pg");
    let end_lsn = streamed("our receiver again");
    ours.stop();
    x.ours(&["archive-wal", "pg"]).ok();
    let segments = archived_segments(&x.scratch);
    // One segment (at least) from each receiver in turn.
    assert!(segments.len() >= 3, "{segments:?}");
    assert_contiguous(&segments);
    assert_archive_matches_server(&x.scratch, &x.cluster, &segments, &end_lsn);
}

interop_test!(one_receiver_per_server);

/// Barman 3.4's catalogue (`base/<id>/backup.info`, `wals/xlog.db` of four columns), read and
/// restored by us; then our archive-wal on it, and Barman 3.4 still reads the catalogue and
/// recovers its backup with the WAL we archived.
fn barman34_catalogue_both_ways(pg: &PgInstall) {
    let x = Interop::new(pg, "compression = gzip");
    let c = &x.cluster;
    c.psql("create table t (id int, pad text)");
    c.psql("insert into t select g, 'before' from generate_series(1, 100) g");
    // Barman 3.4's check (run by its backup) wants a WAL archived already.
    x.deliver_wal();
    x.theirs34(&["archive-wal", "pg"]).ok();
    let check = x.theirs34(&["check", "pg"]);
    assert_eq!(check.code, 0, "Barman 3.4's check: {check:?}");
    x.theirs34(&["backup", "pg"]).ok();
    let ids = x.backup_ids();
    assert_eq!(ids.len(), 1, "{ids:?}");
    let id = &ids[0];
    let home = x.scratch.home();
    assert!(home.join(format!("pg/base/{id}/backup.info")).is_file());
    assert!(!home.join(format!("pg/meta/{id}-backup.info")).exists());
    workload_after_backup(c);
    x.deliver_wal();
    x.theirs34(&["archive-wal", "pg"]).ok();
    x.theirs34(&["check-backup", "pg", id]).ok();
    let old_db = home.join("pg/wals/xlog.db");
    let db = std::fs::read_to_string(&old_db).unwrap();
    assert!(db.lines().all(|l| l.split('\t').count() == 4), "{db}");

    let listed = x.ours(&["list-backups", "pg"]).ok().to_string();
    assert!(listed.starts_with(&format!("pg {id} - ")), "{listed}");
    let shown = x.ours(&["show-backup", "pg", id]).ok().to_string();
    assert!(shown.contains("Status                 : DONE"), "{shown}");
    x.ours(&["check-backup", "pg", id]).ok();
    let dest = x.path("ours_by_name");
    x.ours(&[
        "restore",
        "pg",
        id,
        dest.to_str().unwrap(),
        "--target-name",
        "rp1",
        "--target-action",
        "promote",
    ])
    .ok();
    assert_eq!(
        rows_after_recovery(pg, &dest),
        Some(1100),
        "our restore of Barman 3.4's backup"
    );

    // Our archive-wal appends to the same wals/xlog.db, in the four columns 3.4 parses.
    c.psql("insert into t select g, 'batch4' from generate_series(1, 300) g");
    std::thread::sleep(Duration::from_millis(50));
    let time = c.psql("select clock_timestamp()");
    std::thread::sleep(Duration::from_millis(50));
    // A commit after the target, for recovery to stop at.
    c.psql("insert into t select g, 'batch5' from generate_series(1, 50) g");
    x.archive_all(false);
    let db = std::fs::read_to_string(&old_db).unwrap();
    assert!(db.lines().all(|l| l.split('\t').count() == 4), "{db}");
    assert!(!home.join("pg/wals/pg-xlog.db").exists());
    x.theirs34(&["list-backups", "pg"]).ok();
    x.theirs34(&["show-backup", "pg", id]).ok();
    // A status change of ours rewrites 3.4's backup.info with only the keys it knows (3.4
    // refuses a file with others), and our keep is one that 3.4's retention sees.
    let info_path = home.join("pg/base").join(id).join("backup.info");
    let info = std::fs::read_to_string(&info_path).unwrap();
    std::fs::write(
        &info_path,
        info.replace("status=DONE", "status=WAITING_FOR_WALS"),
    )
    .unwrap();
    x.ours(&["check-backup", "pg", id]).ok();
    assert_eq!(std::fs::read_to_string(&info_path).unwrap(), info);
    let shown = x.theirs34(&["show-backup", "pg", id]).ok().to_string();
    assert!(shown.contains("DONE"), "{shown}");
    x.ours(&["keep", "--target", "standalone", "pg", id]).ok();
    let kept = x.theirs34(&["keep", "--status", "pg", id]).ok().to_string();
    assert!(kept.contains("Keep: standalone"), "{kept}");
    x.ours(&["keep", "--release", "pg", id]).ok();
    let kept = x.theirs34(&["keep", "--status", "pg", id]).ok().to_string();
    assert!(kept.contains("Keep: nokeep"), "{kept}");
    let dest = x.path("theirs34_by_time");
    let out = x.theirs34(&[
        "recover",
        "pg",
        id,
        dest.to_str().unwrap(),
        "--target-time",
        &time,
        "--target-action",
        "promote",
    ]);
    out.code(0);
    assert_eq!(
        rows_after_recovery(pg, &dest),
        Some(2150),
        "Barman 3.4's recover with WAL we archived"
    );
}

interop_test!(barman34_catalogue_both_ways);
