//! `barman backup` over BASE_BACKUP on every major version, with PostgreSQL's
//! archive_command delivering WAL into `incoming/` (so backups reach DONE without
//! receive-wal): a plain backup of a pgbench cluster with a tablespace reaches DONE, matches
//! its manifest (our `verify-backup`, and `pg_verifybackup` 15 where it reads the manifest
//! version); every storage format (plain, and gzip, lz4 and zstd tar compressed by us or by
//! the server) matches its manifest and, restored by hand (copied, or unpacked with the
//! ordinary decoders), starts with the same data and clean page checksums; a backup whose
//! server stops mid-way ends FAILED with nothing stored, and a concurrent backup is refused
//! by the lock.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::harness::{
    client_bin, client_command, copy_dir, give_tree_to_server_user, live_test, run_live, run_ok,
    server_command, PgCluster, PgInstall,
};
use crate::util::{Run, Scratch};

/// A cluster archiving into a barman catalogue, with a tablespace `ts1`.
struct Setup {
    scratch: Scratch,
    cluster: PgCluster,
    tablespace: PathBuf,
}

impl Setup {
    fn new(pg: &PgInstall, server_options: &str) -> Setup {
        let (scratch, incoming) = crate::live::archive::scratch_with_incoming();
        let tablespace = scratch.path().join("ts1");
        std::fs::create_dir(&tablespace).unwrap();
        give_tree_to_server_user(&tablespace);
        let cluster =
            PgCluster::start_with(pg, &crate::live::archive::archiving_options(&incoming));
        cluster.psql(&format!(
            "create tablespace ts1 location '{}'",
            tablespace.display()
        ));
        let text = std::fs::read_to_string(scratch.config()).unwrap();
        scratch.write_config(&format!(
            "{text}[pg]\nconninfo = {}\nbackup_method = postgres\narchiver = on\n{server_options}\n",
            cluster.conninfo()
        ));
        Setup {
            scratch,
            cluster,
            tablespace,
        }
    }

    /// pgbench tables (in the tablespace) plus a table in the default tablespace.
    fn load(&self, scale: u32) -> String {
        self.cluster.pgbench(&[
            "-i",
            "-q",
            "-s",
            &scale.to_string(),
            "--tablespace=ts1",
            "--index-tablespace=ts1",
        ]);
        self.cluster.psql(
            "create table plain_t as select g, md5(g::text) from generate_series(1, 20000) g",
        );
        self.checksum(&self.cluster)
    }

    /// A fingerprint of the data.
    fn checksum(&self, cluster: &PgCluster) -> String {
        cluster.psql(
            "select (select count(*) || ':' || sum(abalance + aid) from pgbench_accounts) || '/' || \
             (select count(*) || ':' || sum(g) from plain_t)",
        )
    }

    fn barman(&self, args: &[&str]) -> Run {
        self.scratch.barman(args)
    }

    /// The only backup id of the catalogue with this status.
    fn backup_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = std::fs::read_dir(self.scratch.home().join("pg/meta"))
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .filter_map(|e| {
                        e.file_name()
                            .to_string_lossy()
                            .strip_suffix("-backup.info")
                            .map(str::to_string)
                    })
                    .collect()
            })
            .unwrap_or_default();
        ids.sort();
        ids
    }

    fn info(&self, id: &str) -> String {
        std::fs::read_to_string(
            self.scratch
                .home()
                .join(format!("pg/meta/{id}-backup.info")),
        )
        .unwrap()
    }

    fn base(&self, id: &str) -> PathBuf {
        self.scratch.home().join("pg/base").join(id)
    }
}

fn field<'a>(info: &'a str, key: &str) -> &'a str {
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("no {key} in\n{info}"))
}

/// Unpack one stored tar archive (`name` ends in `.tar`, `.tar.gz`, `.tar.lz4` or `.tar.zst`)
/// into `dest` with the ordinary decoders, as a DBA would with `tar -x`.
fn untar(archive: &Path, dest: &Path) {
    let name = archive.file_name().unwrap().to_string_lossy().into_owned();
    let file = std::fs::File::open(archive).unwrap();
    let reader: Box<dyn std::io::Read> = if name.ends_with(".tar.gz") {
        Box::new(flate2::read::GzDecoder::new(file))
    } else if name.ends_with(".tar.lz4") {
        Box::new(lz4_flex::frame::FrameDecoder::new(file))
    } else if name.ends_with(".tar.zst") {
        Box::new(zstd::stream::read::Decoder::new(file).unwrap())
    } else {
        assert!(name.ends_with(".tar"), "not a tar archive: {name}");
        Box::new(file)
    };
    std::fs::create_dir_all(dest).unwrap();
    let mut tar = tar::Archive::new(reader);
    tar.set_preserve_permissions(true);
    tar.unpack(dest)
        .unwrap_or_else(|err| panic!("untar {}: {err}", archive.display()));
}

/// Restore a backup by hand into `dest/data`, without barman: a plain backup is copied, a
/// tar backup unpacked (`base.tar*` into the data directory, `<oid>.tar*` into its own
/// directory); each tablespace link then points to its copy under `dest`, and the archived
/// WAL goes into pg_wal.
fn restore_by_hand(setup: &Setup, id: &str, dest: &Path) -> PathBuf {
    let stored = setup.base(id).join("data");
    let data = dest.join("data");
    let mut tablespaces = Vec::new();
    if stored.join("PG_VERSION").exists() {
        copy_dir(&stored, &data);
        for entry in std::fs::read_dir(data.join("pg_tblspc")).unwrap() {
            let link = entry.unwrap().path();
            let target = std::fs::read_link(&link).unwrap();
            assert!(
                target.starts_with(setup.base(id)),
                "tablespace link {} points outside the backup: {}",
                link.display(),
                target.display()
            );
            let copy = dest.join(format!(
                "ts_{}",
                link.file_name().unwrap().to_string_lossy()
            ));
            copy_dir(&target, &copy);
            tablespaces.push((link, copy));
        }
    } else {
        let mut archives: Vec<PathBuf> = std::fs::read_dir(&stored)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.file_name().unwrap().to_string_lossy().contains(".tar"))
            .collect();
        archives.sort();
        assert!(
            archives.iter().any(|a| a
                .file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("base.tar")),
            "no base archive in {}: {archives:?}",
            stored.display()
        );
        for archive in &archives {
            let name = archive.file_name().unwrap().to_string_lossy().into_owned();
            let stem = name.split(".tar").next().unwrap().to_string();
            if stem == "base" {
                untar(archive, &data);
            } else {
                assert!(stem.parse::<u32>().is_ok(), "unexpected archive {name}");
                let copy = dest.join(format!("ts_{stem}"));
                untar(archive, &copy);
                tablespaces.push((data.join("pg_tblspc").join(&stem), copy));
            }
        }
        assert!(
            !data.join("tablespace_map").exists(),
            "tar backups keep their links"
        );
    }
    // The links of the backup point to its own copy or to the source's tablespace: point
    // them to the restored copies instead.
    for (link, copy) in tablespaces {
        assert!(
            link.symlink_metadata()
                .is_ok_and(|m| m.file_type().is_symlink()),
            "no tablespace link {}",
            link.display()
        );
        std::fs::remove_file(&link).unwrap();
        std::os::unix::fs::symlink(&copy, &link).unwrap();
    }
    let wals = setup.scratch.home().join("pg/wals");
    for dir in std::fs::read_dir(&wals).unwrap() {
        let dir = dir.unwrap().path();
        if dir.is_dir() {
            for wal in std::fs::read_dir(&dir).unwrap() {
                let wal = wal.unwrap().path();
                let name = wal.file_name().unwrap().to_string_lossy().into_owned();
                if name.len() == 24 {
                    std::fs::copy(&wal, data.join("pg_wal").join(&name)).unwrap();
                }
            }
        }
    }
    // The copy must not archive into the catalogue of the source.
    std::fs::write(data.join("postgresql.auto.conf"), "archive_mode = off\n").unwrap();
    data
}

/// Restore a backup by hand, start it and check it: the same data as `expected`, every
/// relation of the database readable with its page checksums (the server verifies them as
/// it reads each page), and on 15, whose tools are installed here (the other majors have
/// only their server binaries, and a tablespace's directory is named for its major),
/// `pg_amcheck` and, once stopped, `pg_checksums --check` clean.
fn restores_and_checks(pg: &PgInstall, setup: &Setup, id: &str, expected: &str, what: &str) {
    let dest = tempfile::Builder::new()
        .prefix("barman-restored-")
        .tempdir_in("/tmp")
        .unwrap();
    let data = restore_by_hand(setup, id, dest.path());
    let mut restored = PgCluster::start_existing(pg, &data);
    assert_eq!(setup.checksum(&restored), expected, "{what}: data differ");
    // Sequential scans only (a vacuumed table would be counted from its index): every
    // heap page is read, and its checksum verified as it comes into shared buffers.
    restored.psql(
        "set enable_indexonlyscan = off; set enable_indexscan = off; set enable_bitmapscan = off; \
         do $$ declare r record; begin \
           for r in select c.oid::regclass as rel from pg_class c where c.relkind in ('r', 'm', 't') loop \
             execute 'select count(*) from ' || r.rel; \
           end loop; end $$",
    );
    if pg.major == 15 {
        // Debian's 15 has contrib, so amcheck: heap and B-tree structure of every database.
        let mut command = client_command("pg_amcheck");
        command
            .arg("--install-missing")
            .arg("--all")
            .arg("--heapallindexed")
            .arg("-h")
            .arg(restored.socket_dir())
            .arg("-p")
            .arg(restored.port().to_string())
            .args(["-U", "postgres"]);
        run_ok(&mut command, &format!("{what}: pg_amcheck"));
    }
    restored.stop();
    if pg.major == 15 {
        let mut command = server_command(&pg.client_bin("pg_checksums"));
        command.arg("--check").arg("-D").arg(&data);
        let output = run_ok(&mut command, &format!("{what}: pg_checksums --check"));
        let report = String::from_utf8_lossy(&output.stdout);
        assert!(report.contains("Bad checksums:  0"), "{what}: {report}");
    }
}

live_test!(
    a_plain_backup_reaches_done_verifies_and_starts,
    |pg: &PgInstall| {
        let setup = Setup::new(pg, "");
        let expected = setup.load(1);
        let started = Instant::now();
        let run = setup.barman(&[
            "backup",
            "--immediate-checkpoint",
            "--name",
            "nightly",
            "--wait",
            "--wait-timeout",
            "120",
            "pg",
        ]);
        let out = run.ok().to_string();
        eprintln!(
            "PostgreSQL {}: backup took {:?}\n{out}",
            pg.major,
            started.elapsed()
        );
        let ids = setup.backup_ids();
        assert_eq!(ids.len(), 1, "{out}");
        let id = &ids[0];
        for line in [
            format!(
                "Starting backup using postgres method for server pg in {}",
                setup.base(id).display()
            ),
            format!("Starting backup copy via BASE_BACKUP for {id}"),
            "Backup start at LSN: ".to_string(),
            "Copy done (time: ".to_string(),
            "Finalising the backup.".to_string(),
            "This is the first backup for server pg".to_string(),
            "Backup size: ".to_string(),
            "Backup end at LSN: ".to_string(),
            "Backup completed (start time: ".to_string(),
            "Waiting for the WAL file ".to_string(),
        ] {
            assert!(
                out.contains(&line),
                "missing {line:?} in\n{out}\n{}",
                run.stderr
            );
        }
        assert!(!run.stderr.contains("WAITING_FOR_WALS"), "{}", run.stderr);
        let info = setup.info(id);
        assert_eq!(field(&info, "status"), "DONE", "{info}");
        assert_eq!(field(&info, "mode"), "postgres");
        assert_eq!(field(&info, "compression"), "None");
        assert_eq!(field(&info, "error"), "None");
        assert!(
            field(&info, "tablespaces").starts_with("[('ts1', "),
            "{info}"
        );
        assert!(field(&info, "backup_label").contains("BACKUP METHOD: streamed"));
        assert_eq!(
            field(&info, "systemid"),
            setup
                .cluster
                .psql("select system_identifier from pg_control_system()")
        );
        assert!(field(&info, "end_xlog") >= field(&info, "begin_xlog"));
        // The restore point is in the WAL after the backup.
        let data = setup.base(id).join("data");
        assert!(data.join("PG_VERSION").exists() && data.join("backup_manifest").exists());
        let oid = setup
            .cluster
            .psql("select oid from pg_tablespace where spcname = 'ts1'");
        assert_eq!(
            std::fs::read_link(data.join("pg_tblspc").join(&oid)).unwrap(),
            setup.base(id).join(&oid)
        );
        assert!(!setup.tablespace.join("nothing").exists());
        // Our verification, and pg_verifybackup 15 where it reads the manifest (v1, 13 to 16).
        let verified = setup.barman(&["verify-backup", "pg", id]);
        assert!(
            verified.ok().contains("backup successfully verified"),
            "{}",
            verified.stdout
        );
        if pg.major <= 16 {
            let output = std::process::Command::new(client_bin("pg_verifybackup"))
                .arg("--no-parse-wal")
                .arg(&data)
                .output()
                .unwrap();
            assert!(
                output.status.success(),
                "pg_verifybackup failed:\n{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        // list-backups and show-backup read what backup wrote.
        let listed = setup.barman(&["list-backups", "pg"]).ok().to_string();
        assert!(
            listed.starts_with(&format!("pg {id} 'nightly' - F - ")),
            "{listed}"
        );
        // The backup plus the archived WAL starts and holds the data.
        restores_and_checks(pg, &setup, id, &expected, "plain backup");
        // A damaged file is found by verify-backup.
        let victim = data.join("PG_VERSION");
        std::fs::write(&victim, "99\n").unwrap();
        let bad = setup.barman(&["verify-backup", "pg", id]);
        bad.code(1)
            .stderr_has("verify backup failure on directory")
            .stderr_has("checksum mismatch for file \"PG_VERSION\"");
    }
);

live_test!(
    every_storage_format_matches_its_manifest_and_restores_by_hand,
    |pg: &PgInstall| {
        let setup = Setup::new(pg, "immediate_checkpoint = true");
        let expected = setup.load(1);
        let mut cases: Vec<(&str, &str, Vec<&str>)> = vec![
            (
                "gzip",
                "backup_compression = gzip",
                vec!["base.tar.gz", "backup_manifest"],
            ),
            (
                "lz4",
                "backup_compression = lz4",
                vec!["base.tar.lz4", "backup_manifest"],
            ),
            (
                "zstd",
                "backup_compression = zstd\nbackup_compression_workers = 2",
                vec!["base.tar.zst", "backup_manifest"],
            ),
        ];
        // Server-side compression (15+): gzip is in every build; zstd only where the server was
        // built with it (Debian's 15, not the minimal builds of the other majors).
        if pg.major >= 15 {
            cases.push((
                "gzip",
                "backup_compression = gzip\nbackup_compression_location = server",
                vec!["base.tar.gz", "backup_manifest"],
            ));
            cases.push((
            "None",
            "backup_compression = gzip\nbackup_compression_location = server\nbackup_compression_format = plain",
            vec!["PG_VERSION", "backup_manifest"],
        ));
        }
        if pg.major == 15 {
            cases.push((
                "lz4",
                "backup_compression = lz4\nbackup_compression_location = server",
                vec!["base.tar.lz4", "backup_manifest"],
            ));
            cases.push((
            "zstd",
            "backup_compression = zstd\nbackup_compression_location = server\nbackup_compression_level = 5",
            vec!["base.tar.zst", "backup_manifest"],
        ));
        }
        let base_config = std::fs::read_to_string(setup.scratch.config()).unwrap();
        let oid = setup
            .cluster
            .psql("select oid from pg_tablespace where spcname = 'ts1'");
        for (recorded, options, files) in cases {
            setup
                .scratch
                .write_config(&format!("{base_config}{options}\n"));
            let run = setup.barman(&["backup", "--wait", "--wait-timeout", "120", "pg"]);
            run.ok();
            let id = setup.backup_ids().pop().unwrap();
            let info = setup.info(&id);
            assert_eq!(field(&info, "status"), "DONE", "{options}\n{info}");
            assert_eq!(field(&info, "compression"), recorded, "{options}");
            let data = setup.base(&id).join("data");
            for f in &files {
                assert!(
                    data.join(f).exists(),
                    "{options}: no {f} in {}",
                    data.display()
                );
            }
            if recorded != "None" {
                let suffix = files[0].strip_prefix("base.tar").unwrap();
                assert!(
                    data.join(format!("{oid}.tar{suffix}")).exists(),
                    "{options}"
                );
                assert!(!data.join("PG_VERSION").exists());
            }
            let verified = setup.barman(&["verify-backup", "pg", &id]);
            assert!(
                verified.ok().contains("backup successfully verified"),
                "{options}: {}",
                verified.stderr
            );
            restores_and_checks(pg, &setup, &id, &expected, options);
        }
    }
);

/// Poll until `check` holds (or panic after `secs`).
fn wait_until(secs: u64, what: &str, check: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn failing_backup(pg: &PgInstall) {
    let mut setup = Setup::new(pg, "immediate_checkpoint = true");
    setup.load(2);
    // A slow backup (1 MB/s), stopped by a server crash after the copy started.
    let child = crate::util::barman_command()
        .arg("-c")
        .arg(setup.scratch.config())
        .args(["backup", "--bwlimit", "1024", "pg"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let data_started = |s: &Setup| {
        s.backup_ids()
            .first()
            .is_some_and(|id| s.base(id).join("data/base").exists())
    };
    wait_until(60, "the copy to start", || data_started(&setup));
    // The lock refuses a second backup meanwhile.
    let second = setup.barman(&["backup", "pg"]);
    second
        .code(1)
        .stderr_has("Another backup process is running");
    setup.cluster.stop_with_mode("immediate");
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("ERROR: Backup failed copying files.\nDETAILS: "),
        "{stderr}"
    );
    let ids = setup.backup_ids();
    assert_eq!(ids.len(), 1);
    let info = setup.info(&ids[0]);
    assert_eq!(field(&info, "status"), "FAILED", "{info}");
    assert!(
        field(&info, "error").starts_with("failure copying files ("),
        "{info}"
    );
    assert!(
        !setup.base(&ids[0]).exists(),
        "partial files were left behind"
    );
    let listed = setup.barman(&["list-backups", "pg"]).ok().to_string();
    assert!(listed.contains("FAILED"), "{listed}");
    // A backup process killed mid-copy leaves a STARTED backup: the next backup marks it
    // FAILED and removes its files.
    setup.cluster.start_again();
    let mut child = crate::util::barman_command()
        .arg("-c")
        .arg(setup.scratch.config())
        .args(["-q", "backup", "--bwlimit", "1024", "pg"])
        .spawn()
        .unwrap();
    wait_until(60, "the second copy to start", || {
        setup.backup_ids().len() == 2
            && setup
                .base(&setup.backup_ids()[1])
                .join("data/base")
                .exists()
    });
    child.kill().unwrap();
    child.wait().unwrap();
    let killed = setup.backup_ids()[1].clone();
    assert_eq!(field(&setup.info(&killed), "status"), "STARTED");
    let next = setup.barman(&["backup", "--wait", "pg"]);
    next.ok();
    next.stderr_has(&format!(
        "Backup {killed} of server pg was interrupted: it is now marked as FAILED"
    ));
    assert_eq!(field(&setup.info(&killed), "status"), "FAILED");
    assert!(!setup.base(&killed).exists());
    let last = setup.backup_ids().pop().unwrap();
    assert_eq!(field(&setup.info(&last), "status"), "DONE");
    // Another cluster behind the same server name is refused.
    setup.scratch.write(
        "home/pg/identity.json",
        "{\n    \"systemid\": \"1\",\n    \"version\": \"15\"\n}\n",
    );
    setup
        .barman(&["backup", "pg"])
        .code(1)
        .stderr_has("Impossible to start the backup of server 'pg'")
        .stderr_has("differs from 1 recorded in identity.json");
}

#[test]
fn a_backup_whose_server_stops_fails_and_the_lock_refuses_a_second_pg15() {
    run_live(15, failing_backup);
}

#[test]
fn a_backup_whose_server_stops_fails_and_the_lock_refuses_a_second_pg13() {
    run_live(13, failing_backup);
}

#[test]
fn a_backup_whose_server_stops_fails_and_the_lock_refuses_a_second_pg18() {
    run_live(18, failing_backup);
}

/// A backup ends only once the server has archived its last segment: on 15+ we wait for
/// that ourselves (BASE_BACKUP with NOWAIT, `pg_stat_archiver` polled), on 13 the server
/// does. With archive_command failing, the backup keeps waiting; once it works again,
/// the backup ends DONE.
fn backup_waiting_for_the_archiver(pg: &PgInstall) {
    let setup = Setup::new(pg, "immediate_checkpoint = true");
    setup.load(1);
    let working = setup.cluster.psql("show archive_command");
    setup
        .cluster
        .psql("alter system set archive_command = 'false'");
    setup.cluster.psql("select pg_reload_conf()");
    let mut child = crate::util::barman_command()
        .arg("-c")
        .arg(setup.scratch.config())
        .args(["backup", "pg"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let label_stored = |s: &Setup| {
        s.backup_ids()
            .first()
            .is_some_and(|id| s.base(id).join("data/backup_label").exists())
    };
    wait_until(60, "the copy to store backup_label", || {
        label_stored(&setup)
    });
    // The archiver fails on the backup's segment (or an earlier one) while the backup waits.
    let failures = || {
        setup
            .cluster
            .psql("select failed_count from pg_stat_archiver")
            .parse::<u64>()
            .unwrap()
    };
    wait_until(60, "archive_command to fail", || failures() >= 2);
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        child.try_wait().unwrap().is_none(),
        "the backup ended while its WAL was not archived"
    );
    let id = setup.backup_ids()[0].clone();
    assert_eq!(field(&setup.info(&id), "status"), "STARTED");
    setup.cluster.psql(&format!(
        "alter system set archive_command = '{}'",
        working.replace('\'', "''")
    ));
    setup.cluster.psql("select pg_reload_conf()");
    // Before 14 the archiver retries on a new segment or a minute later, not on a reload.
    setup.cluster.psql("create table wake_the_archiver ()");
    setup.cluster.psql("select pg_switch_wal()");
    let output = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{stderr}");
    let info = setup.info(&id);
    assert_eq!(field(&info, "status"), "DONE", "{info}\n{stdout}\n{stderr}");
    assert!(stdout.contains(field(&info, "end_wal")), "{stdout}");
}

#[test]
fn a_backup_waits_for_the_archiver_pg15() {
    run_live(15, backup_waiting_for_the_archiver);
}

#[test]
fn a_backup_waits_for_the_archiver_pg13() {
    run_live(13, backup_waiting_for_the_archiver);
}

#[test]
fn a_backup_waits_for_the_archiver_pg18() {
    run_live(18, backup_waiting_for_the_archiver);
}

/// A tmpfs mounted on a directory, unmounted on drop (also when the test panics).
struct Tmpfs {
    dir: PathBuf,
}

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(dir).unwrap();
        let status = std::process::Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "tmpfs",
            ])
            .arg(dir)
            .status()
            .unwrap();
        assert!(
            status.success(),
            "mount a tmpfs on {} (the test needs root)",
            dir.display()
        );
        Tmpfs {
            dir: dir.to_path_buf(),
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let ok = std::process::Command::new("umount")
            .arg(&self.dir)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            // Busy (a process still in it): detach it now, it goes when released.
            let _ = std::process::Command::new("umount")
                .arg("-l")
                .arg(&self.dir)
                .status();
        }
    }
}

/// Name, size and CRC of every file under `dir`, sorted.
fn files_with_sums(dir: &Path) -> Vec<(String, u64, u32)> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let entry = entry.unwrap();
            let meta = std::fs::symlink_metadata(entry.path()).unwrap();
            if meta.is_dir() {
                stack.push(entry.path());
            } else if meta.is_file() {
                let data = std::fs::read(entry.path()).unwrap();
                found.push((
                    entry
                        .path()
                        .strip_prefix(dir)
                        .unwrap()
                        .display()
                        .to_string(),
                    meta.len(),
                    crc32c::crc32c(&data),
                ));
            }
        }
    }
    found.sort();
    found
}

fn disk_full_backup(pg: &PgInstall) {
    let setup = Setup::new(pg, "immediate_checkpoint = true");
    // The backups (base/, tablespaces included) on a small file system; the catalogue's
    // metadata and WAL stay on the ordinary one.
    let tmpfs = Tmpfs::mount(&setup.scratch.home().join("pg/base"), "48m");
    // A first backup of the empty cluster (about 25 MB) fits.
    setup
        .barman(&["backup", "--wait", "--wait-timeout", "120", "pg"])
        .ok();
    let first = setup.backup_ids().pop().unwrap();
    assert_eq!(field(&setup.info(&first), "status"), "DONE");
    let first_files = files_with_sums(&setup.base(&first));
    let wals = setup.scratch.home().join("pg/wals");
    // The archived files (xlog.db, next to them, grows as WAL arrives).
    let archived = |dir: &Path| -> Vec<(String, u64, u32)> {
        files_with_sums(dir)
            .into_iter()
            .filter(|(name, _, _)| name.contains('/'))
            .collect()
    };
    let wal_before = archived(&wals);
    assert!(!wal_before.is_empty());
    // With pgbench data in, the second one does not.
    setup.load(1);
    let run = setup.barman(&["backup", "pg"]);
    let second = setup.backup_ids().pop().unwrap();
    assert_ne!(second, first);
    run.code(1)
        .stderr_has("ERROR: Backup failed copying files.\nDETAILS: ")
        .stderr_has("No space left on device")
        .stderr_has(&format!("{}/", setup.base(&second).display()))
        .stderr_has(&format!(
            "HINT: the file system of {} is full",
            setup.base(&second).display()
        ));
    let info = setup.info(&second);
    assert_eq!(field(&info, "status"), "FAILED", "{info}");
    let error = field(&info, "error");
    assert!(
        error.starts_with("failure copying files (") && error.contains("No space left on device"),
        "{error}"
    );
    assert!(
        !setup.base(&second).exists(),
        "partial files were left behind"
    );
    // The earlier backup and the WAL archive are as they were.
    assert_eq!(field(&setup.info(&first), "status"), "DONE");
    assert_eq!(files_with_sums(&setup.base(&first)), first_files);
    let verified = setup.barman(&["verify-backup", "pg", &first]);
    assert!(
        verified.ok().contains("backup successfully verified"),
        "{}",
        verified.stderr
    );
    let wal_after = archived(&wals);
    for wal in &wal_before {
        assert!(wal_after.contains(wal), "{wal:?} changed or went away");
    }
    let listed = setup.barman(&["list-backups", "pg"]).ok().to_string();
    assert!(
        listed.contains(&format!("pg {second} - F - FAILED")),
        "{listed}"
    );
    drop(tmpfs);
}

#[test]
fn a_backup_on_a_full_disk_fails_cleanly_and_keeps_earlier_backups_pg15() {
    run_live(15, disk_full_backup);
}

#[test]
fn a_backup_on_a_full_disk_fails_cleanly_and_keeps_earlier_backups_pg13() {
    run_live(13, disk_full_backup);
}
