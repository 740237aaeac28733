//! `receive-wal` when things go wrong, against real servers (issue #5):
//!
//! - `kill -9` in the middle of a segment while pgbench writes, three times: everything
//!   reported as flushed is in `streaming/`, and the restarted receiver resumes;
//! - the replication slot dropped behind its back: it stops with an error naming the slot
//!   and the server and saying what to do; `--create-slot` and a restart resume; once the
//!   server has removed WAL it still needed, `--reset` (with Barman's messages) moves it on;
//! - a full disk (a small tmpfs mounted on `streaming/`): the error names the file and the
//!   receiver retries; once there is room again it goes on, and a restart resumes.
//!
//! In every case a watcher thread checks that no file of `streaming/` with a final segment
//! name is ever incomplete, and at the end archive-wal's xlog.db has no gap (but the one
//! `--reset` accepts) and no duplicate, and the archive equals the server's WAL byte for
//! byte (and passes pg_waldump on PostgreSQL 15).

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use nix::sys::signal::Signal;

use super::receive_wal::{
    archived_segments, assert_archive_matches_server, assert_contiguous, names_in, segment_number,
    streaming_dir, streaming_scratch, switch, wait_for_segment, wait_until, ReceiveWal,
};
use crate::harness::{live_test, pg_command, PgCluster, PgInstall};

/// The WAL segment size of the test clusters (initdb's default).
const SEG: u64 = 16 << 20;
/// The WAL page size.
const PAGE: u64 = 8192;

/// `X/Y` to a number.
fn lsn(text: &str) -> u64 {
    let (hi, lo) = text
        .trim()
        .split_once('/')
        .unwrap_or_else(|| panic!("not an LSN: {text:?}"));
    (u64::from_str_radix(hi, 16).unwrap() << 32) | u64::from_str_radix(lo, 16).unwrap()
}

/// The name of segment `segno` of timeline 1.
fn segment_name(segno: u64) -> String {
    format!(
        "{:08X}{:08X}{:08X}",
        1,
        segno / (0x1_0000_0000 / SEG),
        segno % (0x1_0000_0000 / SEG)
    )
}

/// Why the complete segment `name` at `path` is not one, if it is not: it must have the
/// segment size, the first page must carry a header of that segment, and it must equal the
/// server's copy in `pg_wal` byte for byte (past a segment switch PostgreSQL leaves pages
/// of zeros, so the server's copy is the only reference for the rest). Returns `Ok(true)`
/// when compared with the server's copy, `Ok(false)` when that is gone (recycled) or the
/// file itself went away meanwhile.
fn segment_problem(path: &Path, name: &str, pg_wal: &Path) -> Result<bool, String> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(format!("{name}: cannot read: {e}")),
    };
    if bytes.len() as u64 != SEG {
        return Err(format!("{name}: {} bytes, not {SEG}", bytes.len()));
    }
    let timeline = u32::from_str_radix(&name[..8], 16).unwrap();
    let start = segment_number(name) * SEG;
    let magic = u16::from_le_bytes([bytes[0], bytes[1]]);
    let tli = u32::from_le_bytes(bytes[4..8].try_into().unwrap());
    let addr = u64::from_le_bytes(bytes[8..16].try_into().unwrap());
    if magic == 0 || tli != timeline || addr != start {
        return Err(format!(
            "{name}: its first page has magic {magic:#x}, timeline {tli}, address {addr:X}"
        ));
    }
    match std::fs::read(pg_wal.join(name)) {
        Ok(theirs) if theirs == bytes => Ok(true),
        Ok(theirs) => {
            let at = bytes.iter().zip(&theirs).position(|(a, b)| a != b);
            Err(format!(
                "{name} differs from the server's copy from byte {at:?} on"
            ))
        }
        Err(_) => Ok(false),
    }
}

/// Checks, from a thread polling `streaming/` until dropped or finished, that every file
/// with a final segment name is a complete segment when it is seen ([`segment_problem`]).
/// It is read once, as soon as it is seen, while the server still has its own copy.
struct FinalNameWatcher {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<(usize, Vec<String>)>>,
}

impl FinalNameWatcher {
    fn start(dir: PathBuf, pg_wal: PathBuf) -> FinalNameWatcher {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let handle = std::thread::spawn(move || {
            let mut checked = HashSet::new();
            let mut compared = 0;
            let mut problems = Vec::new();
            while !flag.load(Ordering::Relaxed) {
                for name in names_in(&dir) {
                    let is_segment =
                        name.len() == 24 && name.bytes().all(|b| b.is_ascii_hexdigit());
                    if !is_segment || checked.contains(&name) {
                        continue;
                    }
                    let path = dir.join(&name);
                    if !path.exists() {
                        continue;
                    }
                    match segment_problem(&path, &name, &pg_wal) {
                        Ok(true) => compared += 1,
                        Ok(false) => {}
                        Err(problem) => problems.push(problem),
                    }
                    checked.insert(name);
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            (compared, problems)
        });
        FinalNameWatcher {
            stop,
            handle: Some(handle),
        }
    }

    /// Stops watching, asserts that every final name seen was a complete segment and that
    /// at least one was compared with the server's copy, and returns how many were.
    #[track_caller]
    fn finish(mut self) -> usize {
        self.stop.store(true, Ordering::Relaxed);
        let (compared, problems) = self.handle.take().unwrap().join().unwrap();
        assert!(
            problems.is_empty(),
            "incomplete files with a final segment name in streaming/:\n{}",
            problems.join("\n")
        );
        assert!(
            compared > 0,
            "no complete segment of streaming/ was ever compared with the server's"
        );
        compared
    }
}

impl Drop for FinalNameWatcher {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
    }
}

/// pgbench writing in the background until dropped.
struct Load {
    child: Child,
}

impl Load {
    /// Starts two pgbench clients (the tables must exist: `pgbench -i`).
    fn start(cluster: &PgCluster) -> Load {
        let child = pg_command(&cluster.install().client_bin("pgbench"))
            .args(["-h", "127.0.0.1", "-p"])
            .arg(cluster.port().to_string())
            .args(["-U", "postgres", "-n", "-c", "2", "-T", "600", "postgres"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start pgbench");
        Load { child }
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A tmpfs mounted on a directory (we run as root), unmounted when dropped, also when the
/// test panics.
struct Tmpfs {
    dir: PathBuf,
}

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(dir).unwrap();
        mount(&[
            "-t",
            "tmpfs",
            "-o",
            &format!("size={size},mode=0700"),
            "tmpfs",
            dir.to_str().unwrap(),
        ]);
        Tmpfs {
            dir: dir.to_path_buf(),
        }
    }

    /// Gives it a new size (files stay).
    fn resize(&self, size: &str) {
        mount(&[
            "-o",
            &format!("remount,size={size}"),
            "tmpfs",
            self.dir.to_str().unwrap(),
        ]);
    }
}

fn mount(args: &[&str]) {
    let out = Command::new("mount")
        .args(args)
        .output()
        .expect("run mount");
    assert!(
        out.status.success(),
        "mount {args:?} failed (these tests mount a tmpfs and need root): {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let umount = |lazy: bool| {
            let mut cmd = Command::new("umount");
            if lazy {
                cmd.arg("-l");
            }
            cmd.arg(&self.dir)
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        if !umount(false) && !umount(true) {
            eprintln!("could not unmount the tmpfs on {}", self.dir.display());
        }
    }
}

/// The position the server last had confirmed as flushed by the receiver (the slot's
/// `restart_lsn`), if any.
fn slot_restart_lsn(cluster: &PgCluster) -> Option<u64> {
    let text =
        cluster.psql("select restart_lsn from pg_replication_slots where slot_name = 'barman'");
    (!text.is_empty()).then(|| lsn(&text))
}

/// Waits until no process streams from slot `barman` (the walsender of a killed receiver
/// notices the closed socket).
fn wait_slot_released(cluster: &PgCluster) {
    wait_until(
        "slot barman to be released",
        Duration::from_secs(30),
        || {
            cluster.psql(
                "select count(*) from pg_replication_slots where slot_name = 'barman' and active",
            ) == "0"
        },
    );
}

/// Asserts that `streaming/` holds the server's WAL up to `upto`: the bytes of its segment
/// (complete or `.partial`) up to that offset equal those of pg_wal.
#[track_caller]
fn assert_streamed_up_to(cluster: &PgCluster, streaming: &Path, upto: u64) {
    let (segno, offset) = (upto / SEG, (upto % SEG) as usize);
    if offset == 0 {
        return;
    }
    let name = segment_name(segno);
    let ours = std::fs::read(streaming.join(&name))
        .or_else(|_| std::fs::read(streaming.join(format!("{name}.partial"))))
        .unwrap_or_else(|e| {
            panic!(
                "{name} is not in streaming/ ({e}): {:?}",
                names_in(streaming)
            )
        });
    let theirs = std::fs::read(cluster.data_dir().join("pg_wal").join(&name)).unwrap();
    assert!(
        ours.len() >= offset && ours[..offset] == theirs[..offset],
        "the WAL up to {upto:X}, reported to the server as flushed, is not in streaming/{name}"
    );
}

/// The newest `.partial` of `dir`.
fn newest_partial(dir: &Path) -> Option<String> {
    names_in(dir).into_iter().rfind(|n| n.ends_with(".partial"))
}

/// Whether the `.partial` at `path` is mid-segment: its second page was written, its last
/// page not yet.
fn is_mid_segment(path: &Path) -> bool {
    use std::os::unix::fs::FileExt;
    let Ok(file) = std::fs::File::open(path) else {
        return false;
    };
    let mut second = [0u8; 2];
    let mut last = [0u8; 2];
    file.read_exact_at(&mut second, PAGE).is_ok()
        && file.read_exact_at(&mut last, SEG - PAGE).is_ok()
        && second != [0, 0]
        && last == [0, 0]
}

live_test!(
    receive_wal_killed_mid_segment_resumes_without_gap,
    |pg: &PgInstall| {
        let cluster = PgCluster::start(pg);
        let scratch = streaming_scratch(&cluster, "");
        let streaming = streaming_dir(&scratch);
        cluster.pgbench(&["-i", "-s", "1", "-q"]);
        let watcher = FinalNameWatcher::start(streaming.clone(), cluster.data_dir().join("pg_wal"));
        let load = Load::start(&cluster);
        let mut rw = ReceiveWal::start(&scratch, "pg");
        let mut killed_mid_segment = 0;
        for round in 1..=3 {
            // WAL written after this receiver started has been received and reported.
            let target = lsn(&cluster.psql("select pg_current_wal_lsn()"));
            wait_until(
                &format!("receive-wal to report {target:X} flushed (round {round})"),
                Duration::from_secs(60),
                || {
                    assert!(rw.running(), "receive-wal exited:\n{}", rw.output());
                    slot_restart_lsn(&cluster).is_some_and(|l| l >= target)
                        && newest_partial(&streaming)
                            .is_some_and(|p| is_mid_segment(&streaming.join(p)))
                },
            );
            rw.stop_with(Signal::SIGKILL);
            if newest_partial(&streaming).is_some_and(|p| is_mid_segment(&streaming.join(p))) {
                killed_mid_segment += 1;
            }
            // Everything the server was told is flushed is in streaming/.
            wait_slot_released(&cluster);
            let reported = slot_restart_lsn(&cluster).expect("the slot exists");
            assert!(reported >= target, "{reported:X} < {target:X}");
            assert_streamed_up_to(&cluster, &streaming, reported);
            rw = ReceiveWal::start(&scratch, "pg");
        }
        assert!(
            killed_mid_segment > 0,
            "no kill landed in the middle of a segment"
        );
        drop(load);
        cluster.psql("create table after_kills as select generate_series(1, 10000) g");
        let (last, end_lsn) = switch(&cluster);
        wait_for_segment(&scratch, &last, &mut rw);
        rw.stop();
        let checked = watcher.finish();
        // archive-wal: no gap, no duplicate, equal to the server's WAL.
        scratch.barman(&["archive-wal", "pg"]).ok();
        let segments = archived_segments(&scratch);
        assert_contiguous(&segments);
        assert!(
            segments.contains(&last),
            "{last} not archived: {segments:?}"
        );
        assert!(checked <= segments.len(), "{checked} > {segments:?}");
        assert_archive_matches_server(&scratch, &cluster, &segments, &end_lsn);
    }
);

/// Drops slot `barman` while a receiver streams from it: its walsender is terminated
/// and the slot dropped as soon as it is free (before the receiver reconnects).
fn drop_slot_behind_its_back(cluster: &PgCluster) {
    cluster.psql(
        "do $$
         begin
           for i in 1..400 loop
             perform pg_terminate_backend(active_pid) from pg_replication_slots
               where slot_name = 'barman' and active_pid is not null;
             begin
               perform pg_drop_replication_slot('barman');
               return;
             exception when object_in_use then
               perform pg_sleep(0.05);
             end;
           end loop;
           raise 'slot barman stayed in use';
         end $$",
    );
}

live_test!(
    receive_wal_stops_when_its_slot_is_dropped_and_reset_moves_on,
    |pg: &PgInstall| {
        let cluster = PgCluster::start(pg);
        let scratch = streaming_scratch(&cluster, "create_slot = manual\n");
        let streaming = streaming_dir(&scratch);
        scratch.barman(&["receive-wal", "--create-slot", "pg"]).ok();
        let watcher = FinalNameWatcher::start(streaming.clone(), cluster.data_dir().join("pg_wal"));
        let mut rw = ReceiveWal::start(&scratch, "pg");
        cluster.psql("create table t as select generate_series(1, 50000) g");
        let (first, _) = switch(&cluster);
        wait_for_segment(&scratch, &first, &mut rw);
        cluster.psql("insert into t select generate_series(1, 1000)");
        // 1. The slot is dropped behind its back: it stops, saying what happened and what
        // to do, on the console and in the log.
        drop_slot_behind_its_back(&cluster);
        let code = rw.wait_exit(Duration::from_secs(60));
        let out = rw.output();
        assert_eq!(code, 1, "{out}");
        for text in [
            "ERROR: receive-wal of server pg stopped: replication slot 'barman' does not exist on server 'pg'",
            "HINT: it was dropped while receive-wal was running: create it again with 'barman receive-wal --create-slot pg' and restart receive-wal; if the server has meanwhile removed WAL that receive-wal still needs, 'barman receive-wal --reset pg' moves it to the slot's position",
        ] {
            assert!(out.contains(text), "{text:?} not in:\n{out}");
        }
        let log = std::fs::read_to_string(scratch.log_file()).unwrap();
        assert!(
            log.contains("replication slot 'barman' does not exist on server 'pg'")
                && log.contains("barman receive-wal --create-slot pg"),
            "{log}"
        );
        let partial = newest_partial(&streaming).expect("a .partial marks the position");
        // 2. Without the slot it does not start (create_slot = manual), as Barman says.
        scratch
            .barman(&["receive-wal", "pg"])
            .code(1)
            .stderr_has("replication slot 'barman' doesn't exist. Please execute 'barman receive-wal --create-slot pg'");
        // 3. --create-slot and a restart resume where it stopped, without a gap.
        scratch.barman(&["receive-wal", "--create-slot", "pg"]).ok();
        let mut rw = ReceiveWal::start(&scratch, "pg");
        cluster.psql("insert into t select generate_series(1, 50000)");
        let (second, end_lsn) = switch(&cluster);
        wait_for_segment(&scratch, &second, &mut rw);
        rw.stop();
        assert!(
            rw.output().contains(&format!(
                "starting log streaming at {:X}/{:X}",
                (segment_number(&partial) * SEG) >> 32,
                (segment_number(&partial) * SEG) & 0xFFFF_FFFF
            )),
            "it did not resume at {partial}:\n{}",
            rw.output()
        );
        scratch.barman(&["archive-wal", "pg"]).ok();
        let before_reset = archived_segments(&scratch);
        assert_contiguous(&before_reset);
        assert!(before_reset.contains(&second), "{before_reset:?}");
        assert_archive_matches_server(&scratch, &cluster, &before_reset, &end_lsn);
        // 4. Stopped and without a slot, it falls behind: the server removes the WAL it
        // would resume at. The new slot cannot bring that back.
        let stale = newest_partial(&streaming).expect("a .partial marks the position");
        scratch.barman(&["receive-wal", "--drop-slot", "pg"]).ok();
        for _ in 0..3 {
            cluster.psql("insert into t select generate_series(1, 10000)");
            switch(&cluster);
        }
        cluster.psql("checkpoint");
        cluster.psql("checkpoint");
        assert!(
            !cluster
                .data_dir()
                .join("pg_wal")
                .join(&stale[..24])
                .exists(),
            "the server still has {} after two checkpoints",
            &stale[..24]
        );
        scratch.barman(&["receive-wal", "--create-slot", "pg"]).ok();
        let mut rw = ReceiveWal::start(&scratch, "pg");
        let code = rw.wait_exit(Duration::from_secs(60));
        let out = rw.output();
        assert_eq!(code, 1, "{out}");
        for text in [
            &format!("ERROR: receive-wal of server pg stopped: server 'pg' has removed WAL that receive-wal still needs: requested WAL segment {} has already been removed", &stale[..24]),
            "HINT: 'barman receive-wal --reset pg' moves receive-wal to the slot's (or the server's) current position; the WAL in between is lost to the archive, so take a new backup",
        ] {
            assert!(out.contains(text), "{text:?} not in:\n{out}");
        }
        // The failed start did not move the slot back to WAL the server no longer has
        // (else --reset would find nothing to do).
        let restart = slot_restart_lsn(&cluster).expect("the slot exists");
        let reset_to = segment_name(restart / SEG);
        assert!(
            reset_to.as_str() > &stale[..24],
            "the slot was moved back to {restart:X}, before the server's oldest WAL"
        );
        // 5. --reset moves the position to the slot's, with Barman's messages.
        let run = scratch.barman(&["receive-wal", "--reset", "pg"]);
        let out = run.ok();
        assert_eq!(
            out,
            format!(
                "Resetting receive-wal directory status\nRemoving status file {}\nCreating status file {}\n",
                streaming.join(&stale).display(),
                streaming.join(format!("{reset_to}.partial")).display()
            )
        );
        // 6. It streams again from there; the archive's only gap is the one reset made.
        let mut rw = ReceiveWal::start(&scratch, "pg");
        cluster.psql("insert into t select generate_series(1, 10000)");
        let (third, end_lsn) = switch(&cluster);
        wait_for_segment(&scratch, &third, &mut rw);
        rw.stop();
        watcher.finish();
        scratch.barman(&["archive-wal", "pg"]).ok();
        let all = archived_segments(&scratch);
        let (old, new) = all.split_at(before_reset.len());
        assert_eq!(old, &before_reset[..]);
        assert_eq!(new.first(), Some(&reset_to), "{all:?}");
        assert_contiguous(new);
        assert!(new.contains(&third), "{all:?}");
        assert_archive_matches_server(&scratch, &cluster, new, &end_lsn);
    }
);

live_test!(
    receive_wal_on_a_full_disk_retries_and_resumes_without_gap,
    |pg: &PgInstall| {
        let cluster = PgCluster::start(pg);
        let scratch = streaming_scratch(&cluster, "");
        let streaming = streaming_dir(&scratch);
        // Room for one segment, not two: the second cannot be created.
        let tmpfs = Tmpfs::mount(&streaming, "24m");
        let watcher = FinalNameWatcher::start(streaming.clone(), cluster.data_dir().join("pg_wal"));
        let mut rw = ReceiveWal::start(&scratch, "pg");
        wait_until("a segment in streaming/", Duration::from_secs(30), || {
            assert!(rw.running(), "receive-wal exited:\n{}", rw.output());
            !names_in(&streaming).is_empty()
        });
        // The segment it started with (maybe complete already).
        let first = names_in(&streaming)[0][..24].to_string();
        let next = segment_name(segment_number(&first) + 1);
        cluster.psql("create table t as select generate_series(1, 10000) g");
        let (switched, _) = switch(&cluster);
        assert!(
            segment_number(&switched) >= segment_number(&first),
            "{switched}"
        );
        // 1. The disk fills when the next segment is created: the error names the file, is
        // logged, and the receiver retries.
        let full = format!(
            "allocate 16777216 bytes for {}: No space left on device",
            streaming.join(format!("{next}.partial")).display()
        );
        wait_until(
            "receive-wal to retry twice",
            Duration::from_secs(60),
            || {
                assert!(rw.running(), "receive-wal exited:\n{}", rw.output());
                rw.output().contains("(attempt 2)")
            },
        );
        let out = rw.output();
        assert!(
            out.contains(&format!("WARNING: receive-wal of server pg: {full}"))
                && out.contains("reconnecting in"),
            "{out}"
        );
        let log = std::fs::read_to_string(scratch.log_file()).unwrap();
        assert!(log.contains(&full), "{log}");
        // Nothing half made: the first segment is complete, nothing else has its name or a
        // wrong size.
        assert_eq!(names_in(&streaming), vec![first.clone()]);
        let pg_wal = cluster.data_dir().join("pg_wal");
        assert_eq!(
            segment_problem(&streaming.join(&first), &first, &pg_wal),
            Ok(true)
        );
        // 2. Room again: it goes on by itself.
        tmpfs.resize("512m");
        cluster.psql("insert into t select generate_series(1, 10000)");
        let (after, _) = switch(&cluster);
        assert!(segment_number(&after) >= segment_number(&next), "{after}");
        wait_for_segment(&scratch, &after, &mut rw);
        // 3. A restart resumes where it stopped.
        rw.stop();
        let mut rw = ReceiveWal::start(&scratch, "pg");
        cluster.psql("insert into t select generate_series(1, 10000)");
        let (last, end_lsn) = switch(&cluster);
        wait_for_segment(&scratch, &last, &mut rw);
        rw.stop();
        watcher.finish();
        scratch.barman(&["archive-wal", "pg"]).ok();
        let segments = archived_segments(&scratch);
        assert_eq!(segments.first(), Some(&first));
        assert_contiguous(&segments);
        assert!(segments.contains(&last), "{segments:?}");
        assert_archive_matches_server(&scratch, &cluster, &segments, &end_lsn);
    }
);
