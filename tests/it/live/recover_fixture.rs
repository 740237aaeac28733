//! Backups for the recovery tests, made without the `backup` command: PostgreSQL's
//! low-level API (`pg_backup_start`/`pg_backup_stop`, `pg_start_backup`/`pg_stop_backup` on
//! 13–14) in one psql session, a copy of the data directory (and tablespace) in between, the
//! label written into the copy, and the catalogue entry Barman would write
//! (`meta/<id>-backup.info`, `base/<id>/data`, `base/<id>/<oid>`). WAL reaches the archive
//! through `archive_command` into `incoming/` and `barman archive-wal`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use barman::catalog::backup_info::Tablespace;
use barman::catalog::{BackupInfo, BackupStatus};

use crate::harness::{give_tree_to_server_user, PgCluster, PgInstall};
use crate::util::{Run, Scratch};

/// A cluster archiving into a barman catalogue, with a tablespace `tbs`.
pub struct Fixture {
    pub scratch: Scratch,
    pub cluster: PgCluster,
    pub tablespace_dir: PathBuf,
}

impl Fixture {
    /// A cluster with archiving into `incoming/` and a catalogue for server `pg`.
    pub fn new(pg: &PgInstall) -> Fixture {
        let (scratch, incoming) = crate::live::archive::scratch_with_incoming();
        let tablespace_dir = scratch.path().join("tbs");
        std::fs::create_dir_all(&tablespace_dir).unwrap();
        give_tree_to_server_user(&tablespace_dir);
        let cluster = PgCluster::start_with(
            pg,
            &crate::live::archive::archiving_options(&incoming)
                .conf("unix_socket_directories = '/tmp'"),
        );
        let sysid = cluster.psql("select system_identifier from pg_control_system()");
        scratch.write(
            "home/pg/identity.json",
            &format!(
                "{{\n    \"systemid\": \"{sysid}\",\n    \"version\": \"{}\"\n}}\n",
                pg.major
            ),
        );
        let text = std::fs::read_to_string(scratch.config()).unwrap();
        scratch.write_config(&format!(
            "{text}[pg]\nconninfo = {}\nbackup_method = postgres\narchiver = on\ncompression = gzip\n",
            cluster.conninfo()
        ));
        cluster.psql(&format!(
            "create tablespace tbs location '{}'",
            tablespace_dir.display()
        ));
        Fixture {
            scratch,
            cluster,
            tablespace_dir,
        }
    }

    /// Take a backup with the low-level API; returns its id.
    pub fn backup(&self, id: &str) -> String {
        let c = &self.cluster;
        let major = c.major();
        let begin_time = chrono::Utc::now().fixed_offset();
        let base = self.scratch.home().join("pg/base").join(id);
        let data = base.join("data");
        std::fs::create_dir_all(&data).unwrap();
        let tablespaces: Vec<Tablespace> = c
            .psql("select spcname, oid from pg_tablespace where spcname not like 'pg_%'")
            .lines()
            .filter(|l| !l.is_empty())
            .map(|l| {
                let (name, oid) = l.split_once('|').unwrap();
                Tablespace {
                    name: name.into(),
                    oid: oid.parse().unwrap(),
                    location: self.tablespace_dir.display().to_string(),
                }
            })
            .collect();
        // One session: start, copy (psql's \! runs the shell), stop.
        let mut copy = format!(
            "cp -a {}/. {}/ 2>/dev/null; rm -rf {}/pg_wal/* {}/postmaster.pid {}/postmaster.opts; mkdir -p {}/pg_wal/archive_status",
            c.data_dir().display(),
            data.display(),
            data.display(),
            data.display(),
            data.display(),
            data.display()
        );
        for t in &tablespaces {
            let dir = base.join(t.oid.to_string());
            copy.push_str(&format!(
                "; mkdir -p {} && cp -a {}/. {}/",
                dir.display(),
                self.tablespace_dir.display(),
                dir.display()
            ));
        }
        let (start_sql, stop_sql) = if major >= 15 {
            (
                "select pg_backup_start('barman-rs test', true);",
                // wait_for_archive => false: archive_all() waits, with a deadline.
                "select lsn, encode(convert_to(labelfile, 'UTF8'), 'hex'), pg_walfile_name(lsn) from pg_backup_stop(false);",
            )
        } else {
            (
                "select pg_start_backup('barman-rs test', true, false);",
                "select lsn, encode(convert_to(labelfile, 'UTF8'), 'hex'), pg_walfile_name(lsn) from pg_stop_backup(false, false);",
            )
        };
        let output = c.psql(&format!("{start_sql}\n\\! {copy}\n{stop_sql}\n"));
        let mut lines = output.lines().filter(|l| !l.is_empty());
        let start = lines.next().unwrap().to_string();
        let stop = lines.next_back().unwrap().to_string();
        let end_time = chrono::Utc::now().fixed_offset();
        let parts: Vec<&str> = stop.split('|').collect();
        let (end_lsn, label_hex, end_wal) = (parts[0], parts[1], parts[2]);
        let label = String::from_utf8(hex_decode(label_hex)).unwrap();
        std::fs::write(data.join("backup_label"), &label).unwrap();
        // START WAL LOCATION: 0/2000028 (file 000000010000000000000002)
        let start_line = label.lines().next().unwrap();
        let begin_lsn = start_line.split_whitespace().nth(3).unwrap().to_string();
        let begin_wal = start_line
            .rsplit(' ')
            .next()
            .unwrap()
            .trim_end_matches(')')
            .to_string();
        assert_eq!(begin_lsn, start, "the label agrees with the start LSN");
        let timeline: u32 = label
            .lines()
            .find_map(|l| l.strip_prefix("START TIMELINE: "))
            .unwrap()
            .parse()
            .unwrap();
        let offset = |lsn: &str| -> u64 {
            let (_, lo) = lsn.split_once('/').unwrap();
            u64::from_str_radix(lo, 16).unwrap() % (16 << 20)
        };
        let info = BackupInfo {
            backup_id: id.into(),
            backup_label: Some(label.clone()),
            begin_offset: Some(offset(&begin_lsn)),
            begin_time: Some(begin_time),
            begin_wal: Some(begin_wal),
            begin_xlog: Some(begin_lsn.clone()),
            end_offset: Some(offset(end_lsn)),
            end_time: Some(end_time),
            end_wal: Some(end_wal.into()),
            end_xlog: Some(end_lsn.into()),
            mode: Some("postgres".into()),
            pgdata: Some(c.data_dir().display().to_string()),
            server_name: Some("pg".into()),
            status: Some(BackupStatus::Done),
            systemid: Some(c.psql("select system_identifier from pg_control_system()")),
            tablespaces: (!tablespaces.is_empty()).then_some(tablespaces),
            timeline: Some(timeline),
            version: Some(c.psql("show server_version_num").parse().unwrap()),
            xlog_segment_size: Some(16 << 20),
            ..BackupInfo::default()
        };
        let meta = self.scratch.home().join("pg/meta");
        std::fs::create_dir_all(&meta).unwrap();
        std::fs::write(meta.join(format!("{id}-backup.info")), info.to_text()).unwrap();
        id.to_string()
    }

    /// Switch WAL, wait for archive_command to deliver everything, run archive-wal.
    /// Returns the last archived segment.
    pub fn archive_all(&self) -> String {
        let c = &self.cluster;
        // A record, so that the switch closes a segment (pg_walfile_name of a segment
        // boundary names the next segment on 17+).
        c.psql("select pg_logical_emit_message(false, 'barman-rs', 'archive')");
        let last = c.psql("select pg_walfile_name(pg_current_wal_lsn())");
        c.psql("select pg_switch_wal()");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let archived = c.psql("select coalesce(last_archived_wal, '') from pg_stat_archiver");
            if archived.as_str() >= last.as_str() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "archive_command did not deliver {last}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        self.scratch.barman(&["archive-wal", "pg"]).ok();
        last
    }

    /// The workload of the restore-point tests: table `t` (created with `create_suffix`,
    /// e.g. a tablespace clause) with rows 1-100 in backup 20260101T000000, rows up to
    /// 150 before restore point `rp`, up to 300 after it, all archived.
    pub fn rows_around_restore_point(&self, create_suffix: &str) {
        let c = &self.cluster;
        c.psql(&format!("create table t (id int){create_suffix}"));
        c.psql("insert into t select generate_series(1, 100)");
        self.backup("20260101T000000");
        c.psql("insert into t select generate_series(101, 150)");
        c.psql("select pg_create_restore_point('rp')");
        c.psql("insert into t select generate_series(151, 300)");
        self.archive_all();
    }

    /// `barman restore pg ARGS...`.
    pub fn restore(&self, args: &[&str]) -> Run {
        let mut all = vec!["restore", "pg"];
        all.extend_from_slice(args);
        self.scratch.barman(&all)
    }

    /// `barman restore pg ARGS... --tablespace tbs:<name>_tbs latest <name>` (both in the
    /// scratch directory), which must succeed; returns the destination and the output.
    pub fn restore_latest(&self, name: &str, args: &[&str]) -> (PathBuf, String) {
        let dest = self.path(name);
        let tbs = format!("tbs:{}", self.path(&format!("{name}_tbs")).display());
        let mut all = args.to_vec();
        all.extend(["--tablespace", &tbs, "latest", dest.to_str().unwrap()]);
        let out = self.restore(&all).ok().to_string();
        (dest, out)
    }

    /// The archived segment names from `first` on (timeline 1).
    pub fn archived_from(&self, first: &str) -> Vec<String> {
        let db = std::fs::read_to_string(self.scratch.home().join("pg/wals/pg-xlog.db")).unwrap();
        let mut names: Vec<String> = db
            .lines()
            .filter_map(|l| l.split('\t').next())
            .filter(|n| n.len() == 24 && *n >= first)
            .map(String::from)
            .collect();
        names.sort();
        names
    }

    /// A fresh path in the scratch directory.
    pub fn path(&self, name: &str) -> PathBuf {
        self.scratch.path().join(name)
    }
}

fn hex_decode(hex: &str) -> Vec<u8> {
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect()
}

/// Poll `sql` on `cluster` until it returns `expected`.
pub fn wait_for(cluster: &PgCluster, sql: &str, expected: &str, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let got = cluster.psql(sql);
        if got == expected {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}: {sql} returned {got:?}, not {expected:?}\n{}",
            cluster.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Start a recovered data directory and wait until recovery has ended.
pub fn start_recovered(pg: &PgInstall, dest: &Path) -> PgCluster {
    let cluster = PgCluster::start_existing(pg, dest);
    wait_for(
        &cluster,
        "select pg_is_in_recovery()",
        "f",
        "the end of recovery",
    );
    cluster
}

/// Append `text` to the `postgresql.auto.conf` of the data directory `dest`, as a DBA
/// adjusts a restored cluster before starting it.
pub fn append_auto_conf(dest: &Path, text: &str) {
    use std::io::Write;
    let path = dest.join("postgresql.auto.conf");
    std::fs::OpenOptions::new()
        .append(true)
        .open(&path)
        .and_then(|mut f| f.write_all(format!("\n{text}\n").as_bytes()))
        .unwrap_or_else(|e| panic!("append to {}: {e}", path.display()));
}
