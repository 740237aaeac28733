//! `receive-wal` against real servers: it streams what pgbench writes, survives a server
//! restart, stops cleanly on SIGTERM, resumes from its `.partial` without a gap; archive-wal
//! then archives segments that equal the server's own byte for byte and pass pg_waldump.
//! Also the slot options with Barman's messages, synchronous replication (a commit returns
//! only while receive-wal runs, and what was acknowledged is on disk), and a promotion
//! (the new timeline is followed and its history file stored).

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{live_test, pg_command, run_live, ClusterOptions, PgCluster, PgInstall};
use crate::util::{barman_command, Scratch};

/// A `barman receive-wal` process, killed (SIGKILL) if the test ends without stopping it.
pub struct ReceiveWal {
    child: Option<Child>,
    out: PathBuf,
    err: PathBuf,
}

impl ReceiveWal {
    /// Starts `barman -c CONFIG receive-wal SERVER`, output into files of the scratch dir.
    pub fn start(scratch: &Scratch, server: &str) -> ReceiveWal {
        let n = std::fs::read_dir(scratch.path()).map_or(0, |d| d.count());
        let out = scratch.path().join(format!("receive-wal-{n}.out"));
        let err = scratch.path().join(format!("receive-wal-{n}.err"));
        let child = barman_command()
            .arg("-c")
            .arg(scratch.config())
            .args(["receive-wal", server])
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(std::fs::File::create(&err).unwrap())
            .spawn()
            .expect("start barman receive-wal");
        ReceiveWal {
            child: Some(child),
            out,
            err,
        }
    }

    /// What it printed so far (stdout, then stderr).
    pub fn output(&self) -> String {
        format!(
            "{}{}",
            std::fs::read_to_string(&self.out).unwrap_or_default(),
            std::fs::read_to_string(&self.err).unwrap_or_default()
        )
    }

    pub fn pid(&self) -> nix::unistd::Pid {
        nix::unistd::Pid::from_raw(self.child.as_ref().expect("running").id() as i32)
    }

    /// Sends `signal` and waits (at most 30 s) for the exit code.
    pub fn stop_with(&mut self, signal: nix::sys::signal::Signal) -> i32 {
        nix::sys::signal::kill(self.pid(), signal).unwrap();
        let mut child = self.child.take().expect("running");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                return status.code().unwrap_or(-1);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                panic!("receive-wal did not stop within 30 s:\n{}", self.output());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits (at most `timeout`) for it to exit by itself and returns its exit code.
    #[track_caller]
    pub fn wait_exit(&mut self, timeout: Duration) -> i32 {
        let child = self.child.as_mut().expect("running");
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                self.child = None;
                return status.code().unwrap_or(-1);
            }
            assert!(
                Instant::now() < deadline,
                "receive-wal did not exit within {timeout:?}:\n{}",
                self.output()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops it with SIGTERM and checks it exited 0.
    pub fn stop(&mut self) {
        let code = self.stop_with(nix::sys::signal::Signal::SIGTERM);
        assert_eq!(code, 0, "receive-wal exit code\n{}", self.output());
    }

    /// Whether it is still running.
    pub fn running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| c.try_wait().unwrap().is_none())
    }
}

impl Drop for ReceiveWal {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        if std::thread::panicking() {
            eprintln!("===== receive-wal output =====\n{}", self.output());
        }
    }
}

/// Waits (bounded) until `done` is true.
#[track_caller]
pub fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A scratch configuration with server `pg` streaming from `cluster` on slot `barman`.
pub fn streaming_scratch(cluster: &PgCluster, extra: &str) -> Scratch {
    let scratch = Scratch::new("");
    let text = std::fs::read_to_string(scratch.config()).unwrap();
    scratch.write_config(&format!(
        "{text}[pg]\nconninfo = {}\nstreaming_conninfo = {}\nbackup_method = postgres\n\
         streaming_archiver = on\nslot_name = barman\ncreate_slot = auto\n{extra}",
        cluster.conninfo(),
        cluster.conninfo()
    ));
    scratch
}

/// The streaming directory of server `pg`.
pub fn streaming_dir(scratch: &Scratch) -> PathBuf {
    scratch.home().join("pg/streaming")
}

/// The sorted file names of `dir` (none when it does not exist).
pub fn names_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

/// Closes the current segment and returns its name and the switch's end LSN.
pub fn switch(cluster: &PgCluster) -> (String, String) {
    let row = cluster.psql("select pg_walfile_name(l), l from (select pg_switch_wal() as l) s");
    let (name, lsn) = row.split_once('|').unwrap();
    (name.to_string(), lsn.to_string())
}

/// Waits until `segment` is complete (renamed or already archived) in `streaming/`.
pub fn wait_for_segment(scratch: &Scratch, segment: &str, rw: &mut ReceiveWal) {
    let path = streaming_dir(scratch).join(segment);
    let archived = scratch
        .home()
        .join("pg/wals")
        .join(&segment[..16])
        .join(segment);
    wait_until(
        &format!("segment {segment} in streaming/"),
        Duration::from_secs(60),
        || {
            assert!(rw.running(), "receive-wal exited:\n{}", rw.output());
            path.exists() || archived.exists()
        },
    );
}

/// The segment number (log * 256 + seg) of a 24-hex segment name.
pub fn segment_number(name: &str) -> u64 {
    u64::from_str_radix(&name[8..16], 16).unwrap() * 256
        + u64::from_str_radix(&name[16..24], 16).unwrap()
}

live_test!(
    receive_wal_streams_survives_a_restart_and_resumes_without_gap,
    |pg: &PgInstall| {
        let mut cluster = PgCluster::start(pg);
        let scratch = streaming_scratch(&cluster, "");
        let streaming = streaming_dir(&scratch);
        // 1. Stream while pgbench writes.
        let mut rw = ReceiveWal::start(&scratch, "pg");
        wait_until("a .partial in streaming/", Duration::from_secs(30), || {
            names_in(&streaming).iter().any(|n| n.ends_with(".partial"))
        });
        cluster.pgbench(&["-i", "-s", "2", "-q"]);
        cluster.pgbench(&["-T", "2", "-c", "2"]);
        let (first_switched, _) = switch(&cluster);
        wait_for_segment(&scratch, &first_switched, &mut rw);
        // 2. A server restart mid-stream is survived.
        cluster.restart();
        cluster.psql("create table after_restart as select generate_series(1, 10000) g");
        let (after_restart, _) = switch(&cluster);
        wait_for_segment(&scratch, &after_restart, &mut rw);
        assert!(rw.output().contains("reconnecting"), "{}", rw.output());
        // 3. SIGTERM: clean exit, a resumable .partial.
        cluster.psql("insert into after_restart select generate_series(1, 1000)");
        rw.stop();
        let out = rw.output();
        assert!(out.contains("Starting receive-wal for server pg"), "{out}");
        assert!(
            out.contains("SIGTERM received. Terminate gracefully."),
            "{out}"
        );
        let partial = names_in(&streaming)
            .into_iter()
            .filter(|n| n.ends_with(".partial"))
            .collect::<Vec<_>>();
        assert_eq!(partial.len(), 1, "{:?}", names_in(&streaming));
        // 4. Resume: writes while it was down arrive, without a gap.
        cluster.pgbench(&["-T", "1", "-c", "2"]);
        let mut rw = ReceiveWal::start(&scratch, "pg");
        cluster.pgbench(&["-T", "1", "-c", "2"]);
        let (last_switched, end_lsn) = switch(&cluster);
        wait_for_segment(&scratch, &last_switched, &mut rw);
        rw.stop();
        // 5. archive-wal archives them all; xlog.db has no gap and no duplicate.
        scratch.barman(&["archive-wal", "pg"]).ok();
        let segments = archived_segments(&scratch);
        assert_contiguous(&segments);
        assert!(
            segments.contains(&last_switched),
            "{last_switched} not archived: {segments:?}\nstreaming: {:?}\n{}",
            names_in(&streaming),
            rw.output()
        );
        // 6. Byte for byte equal to pg_wal (where not recycled), and pg_waldump reads them.
        assert_archive_matches_server(&scratch, &cluster, &segments, &end_lsn);
    }
);

/// The segment names listed in `pg-xlog.db`, in order (history files left out).
pub fn archived_segments(scratch: &Scratch) -> Vec<String> {
    let db = std::fs::read_to_string(scratch.home().join("pg/wals/pg-xlog.db")).unwrap();
    db.lines()
        .map(|l| l.split('\t').next().unwrap().to_string())
        .filter(|n| n.len() == 24)
        .collect()
}

/// Asserts that `segments` is not empty and each follows the previous one: no gap and
/// no duplicate.
#[track_caller]
pub fn assert_contiguous(segments: &[String]) {
    assert!(!segments.is_empty(), "no segment archived");
    for pair in segments.windows(2) {
        assert_eq!(
            segment_number(&pair[1]),
            segment_number(&pair[0]) + 1,
            "gap or duplicate in xlog.db between {} and {}:\n{segments:?}",
            pair[0],
            pair[1]
        );
    }
}

/// Restores `segments` with get-wal and asserts that each still in the server's pg_wal
/// equals it byte for byte (at least one must be), then that pg_waldump reads from the
/// first one's start to `end_lsn` without error where a pg_waldump of the server's major
/// is available.
#[track_caller]
pub fn assert_archive_matches_server(
    scratch: &Scratch,
    cluster: &PgCluster,
    segments: &[String],
    end_lsn: &str,
) {
    let pg = cluster.install();
    let back = scratch.path().join("back");
    let _ = std::fs::remove_dir_all(&back);
    std::fs::create_dir(&back).unwrap();
    let mut compared = 0;
    for name in segments {
        scratch
            .barman(&["get-wal", "-o", back.to_str().unwrap(), "pg", name])
            .ok();
        if let Ok(original) = std::fs::read(cluster.data_dir().join("pg_wal").join(name)) {
            assert!(
                std::fs::read(back.join(name)).unwrap() == original,
                "{name} differs from the server's"
            );
            compared += 1;
        }
    }
    assert!(compared > 0, "no segment left in pg_wal to compare");
    let start = format!(
        "{:X}/{:X}",
        u64::from_str_radix(&segments[0][8..16], 16).unwrap(),
        u64::from_str_radix(&segments[0][16..24], 16).unwrap() << 24
    );
    // pg_waldump reads only its own major's WAL: the install's own, or Debian's 15.
    // The npm server packages ship none, so for those majors the byte-for-byte
    // comparison above is the proof, and the test says what it did not run.
    let own = pg.bin_dir.join("pg_waldump");
    if !own.exists() && pg.major != crate::harness::CLIENT_TOOLS_MAJOR {
        eprintln!(
            "note: no pg_waldump {} in {}; WAL compared byte for byte only",
            pg.major,
            pg.bin_dir.display()
        );
        return;
    }
    let waldump = pg_command(&pg.client_bin("pg_waldump"))
        .arg("-p")
        .arg(&back)
        .args(["-s", &start, "-e", end_lsn])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert!(
        waldump.status.success(),
        "pg_waldump -s {start} -e {end_lsn}: {}",
        String::from_utf8_lossy(&waldump.stderr)
    );
}

live_test!(slot_options_print_barmans_messages, |pg: &PgInstall| {
    let cluster = PgCluster::start(pg);
    let scratch = streaming_scratch(&cluster, "");
    let run = scratch.barman(&["receive-wal", "--create-slot", "pg"]);
    assert_eq!(
        run.ok(),
        "Creating physical replication slot 'barman' on server 'pg'\nReplication slot 'barman' created\n"
    );
    scratch
        .barman(&["receive-wal", "--create-slot", "pg"])
        .code(1)
        .stderr_has("ERROR: Replication slot 'barman' already exists");
    let run = scratch.barman(&["receive-wal", "--create-slot", "--if-not-exists", "pg"]);
    assert!(run.ok().contains(
        "Replication slot 'barman' already exists and --if-not-exists was specified. Skipping creation"
    ));
    // --reset with nothing streamed yet: aligned.
    let run = scratch.barman(&["receive-wal", "--reset", "pg"]);
    assert!(run
        .ok()
        .contains("Nothing to do. Position of receive-wal is aligned."));
    // An old position is replaced by the slot's (or server's) current segment.
    let streaming = streaming_dir(&scratch);
    std::fs::create_dir_all(&streaming).unwrap();
    std::fs::write(streaming.join("000000010000000000000000.partial"), b"").unwrap();
    cluster.psql("select pg_switch_wal()");
    cluster.psql("create table t as select 1");
    cluster.psql("select pg_switch_wal()");
    let run = scratch.barman(&["receive-wal", "--reset", "pg"]);
    let out = run.ok();
    assert!(
        out.contains("Resetting receive-wal directory status"),
        "{out}"
    );
    assert!(out.contains("Removing status file"), "{out}");
    assert!(out.contains("Creating status file"), "{out}");
    assert!(!streaming.join("000000010000000000000000.partial").exists());
    let run = scratch.barman(&["receive-wal", "--drop-slot", "pg"]);
    assert_eq!(
        run.ok(),
        "Dropping physical replication slot 'barman' on server 'pg'\nReplication slot 'barman' dropped\n"
    );
    scratch
        .barman(&["receive-wal", "--drop-slot", "pg"])
        .code(1)
        .stderr_has("ERROR: Replication slot 'barman' does not exist");
    // Without create_slot = auto, a missing slot stops receive-wal before streaming.
    let manual = streaming_scratch(&cluster, "create_slot = manual\n");
    manual
        .barman(&["receive-wal", "pg"])
        .code(1)
        .stderr_has(
            "ERROR: replication slot 'barman' doesn't exist. Please execute 'barman receive-wal --create-slot pg'",
        );
    // --stop without a running receiver.
    scratch
        .barman(&["receive-wal", "--stop", "pg"])
        .code(1)
        .stderr_has("ERROR: Termination of receive-wal failed: no such process for server pg");
});

/// Whether committing `sql` blocks: it runs in a background psql; if it has not returned
/// after `wait`, the backends waiting for synchronous replication are cancelled (their
/// commits then return with a warning) and `true` is returned. Also returns psql's output.
fn commit_blocks(cluster: &PgCluster, sql: &str, wait: Duration) -> (bool, String) {
    let mut child = pg_command(&cluster.install().client_bin("psql"))
        .args(["-XAtq", "-d"])
        .arg(cluster.conninfo())
        .args([
            "-c",
            "begin",
            "-c",
            sql,
            "-c",
            "select pg_current_wal_insert_lsn()",
            "-c",
            "commit",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + wait;
    let mut blocked = false;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            blocked = true;
            cluster.psql(
                "select pg_cancel_backend(pid) from pg_stat_activity where wait_event = 'SyncRep'",
            );
            let hard = Instant::now() + Duration::from_secs(20);
            while child.try_wait().unwrap().is_none() {
                if Instant::now() > hard {
                    let _ = child.kill();
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let output = child.wait_with_output().unwrap();
    (
        blocked,
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    )
}

live_test!(
    synchronous_commits_return_only_while_receive_wal_runs,
    |pg: &PgInstall| {
        let cluster = PgCluster::start_with(
            pg,
            &ClusterOptions::new()
                .conf("synchronous_standby_names = 'barman_receive_wal'")
                .conf("synchronous_commit = on"),
        );
        let scratch = streaming_scratch(&cluster, "");
        cluster.psql("set synchronous_commit = local; create table early (i int)");
        // Nothing streams: a commit waits.
        let (blocked, out) = commit_blocks(
            &cluster,
            "insert into early values (0)",
            Duration::from_secs(3),
        );
        assert!(
            blocked,
            "the commit did not wait without receive-wal: {out}"
        );
        let mut rw = ReceiveWal::start(&scratch, "pg");
        wait_until(
            "receive-wal to be a sync standby",
            Duration::from_secs(30),
            || {
                cluster.psql(
                "select count(*) from pg_stat_replication where application_name = 'barman_receive_wal' and sync_state = 'sync'",
            ) == "1"
            },
        );
        let mut acknowledged = String::new();
        for i in 1..=20 {
            let (blocked, out) = commit_blocks(
                &cluster,
                &format!("insert into early values ({i})"),
                Duration::from_secs(10),
            );
            assert!(
                !blocked,
                "commit {i} waited with receive-wal running: {out}"
            );
            acknowledged = out.lines().next().unwrap_or_default().to_string();
        }
        // Killed without warning: everything acknowledged is already on our disk.
        rw.stop_with(nix::sys::signal::Signal::SIGKILL);
        let segment = cluster.psql(&format!("select pg_walfile_name('{acknowledged}')"));
        let offset: usize = cluster
            .psql(&format!(
                "select file_offset from pg_walfile_name_offset('{acknowledged}')"
            ))
            .parse()
            .unwrap();
        let ours = std::fs::read(streaming_dir(&scratch).join(format!("{segment}.partial")))
            .or_else(|_| std::fs::read(streaming_dir(&scratch).join(&segment)))
            .unwrap();
        let theirs = std::fs::read(cluster.data_dir().join("pg_wal").join(&segment)).unwrap();
        assert!(
            offset > 0 && ours[..offset] == theirs[..offset],
            "the acknowledged WAL up to {acknowledged} is not in streaming/"
        );
        // And commits block again.
        let (blocked, out) = commit_blocks(
            &cluster,
            "insert into early values (100)",
            Duration::from_secs(3),
        );
        assert!(
            blocked,
            "the commit did not wait after receive-wal was killed: {out}"
        );
    }
);

/// Promotion: receive-wal streams from a standby that is promoted; it follows the new
/// timeline and stores `00000002.history`. PostgreSQL 15 only (a second cluster per run).
#[test]
fn receive_wal_follows_a_promotion_to_a_new_timeline() {
    run_live(15, |pg: &PgInstall| {
        let primary = PgCluster::start(pg);
        primary.psql("create table before_promotion as select generate_series(1, 1000) g");
        let standby_dir = tempfile::Builder::new()
            .prefix("barman-standby-")
            .tempdir_in("/tmp")
            .unwrap();
        let data = standby_dir.path().join("data");
        let status = pg_command(&pg.client_bin("pg_basebackup"))
            .arg("-D")
            .arg(&data)
            .args(["-R", "-X", "stream", "-c", "fast", "-d"])
            .arg(primary.conninfo())
            .status()
            .unwrap();
        assert!(status.success(), "pg_basebackup failed");
        let standby = PgCluster::start_existing(pg, &data);
        wait_until("the standby to stream", Duration::from_secs(30), || {
            standby.psql("select count(*) from pg_stat_wal_receiver") == "1"
        });
        let scratch = streaming_scratch(&standby, "");
        let mut rw = ReceiveWal::start(&scratch, "pg");
        wait_until("a .partial in streaming/", Duration::from_secs(30), || {
            names_in(&streaming_dir(&scratch))
                .iter()
                .any(|n| n.ends_with(".partial"))
        });
        primary.psql("insert into before_promotion select generate_series(1, 1000)");
        std::thread::sleep(Duration::from_millis(500));
        standby.psql("select pg_promote()");
        wait_until("timeline 2 on the standby", Duration::from_secs(30), || {
            standby.psql("select timeline_id from pg_control_checkpoint()") == "2"
                || standby.psql("select pg_is_in_recovery()") == "f"
        });
        standby.psql("create table after_promotion as select generate_series(1, 10000) g");
        let (segment, _) = switch(&standby);
        assert!(segment.starts_with("00000002"), "{segment}");
        wait_for_segment(&scratch, &segment, &mut rw);
        let streaming = streaming_dir(&scratch);
        assert!(
            streaming.join("00000002.history").exists(),
            "{:?}",
            names_in(&streaming)
        );
        let history = std::fs::read_to_string(streaming.join("00000002.history")).unwrap();
        assert!(history.starts_with("1\t"), "{history}");
        assert!(
            rw.output().contains("switched to timeline 2"),
            "{}",
            rw.output()
        );
        rw.stop();
        // archive-wal takes the history file and the old timeline's partial segment.
        scratch.barman(&["archive-wal", "pg"]).ok();
        assert!(scratch.home().join("pg/wals/00000002.history").exists());
    });
}
