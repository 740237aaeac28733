//! `cron` left to do its job on a real server: it starts the WAL receiver, archives
//! what the receiver wrote, and after the receiver is killed the next `cron` starts a
//! new one that carries on without a gap in the archive; with `retention_policy_mode =
//! auto` it expires the backups the policy makes obsolete and the WAL only they needed.

use std::path::Path;
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use super::receive_wal::{segment_number, streaming_scratch, wait_until};
use crate::harness::{live_test, PgCluster, PgInstall};
use crate::util::Scratch;

/// The PID written in the receiver's lock file, if a live process holds it.
fn receiver_pid(scratch: &Scratch) -> Option<i32> {
    let text = std::fs::read_to_string(scratch.home().join(".pg-receive-wal.lock")).ok()?;
    let pid: i32 = text.trim().parse().ok()?;
    kill(Pid::from_raw(pid), None).ok().map(|()| pid)
}

/// Kills the receiver cron started (detached, so nothing else would) when the test ends.
struct KillReceiver<'a>(&'a Scratch);

impl Drop for KillReceiver<'_> {
    fn drop(&mut self) {
        if let Some(pid) = receiver_pid(self.0) {
            let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }
}

fn receive_wal_running(scratch: &Scratch) -> bool {
    scratch
        .barman(&["check", "pg"])
        .stdout
        .contains("receive-wal running: OK")
}

/// Creates the slot and lets `cron` start the receiver.
fn start_receiver_with_cron(scratch: &Scratch) {
    scratch.barman(&["receive-wal", "--create-slot", "pg"]).ok();
    scratch.barman(&["cron"]).ok();
    wait_for_receiver(scratch);
}

/// Waits until a receiver runs, calling `cron` again every few seconds as the
/// every-minute cron line would: under the full suite's load a receiver can still
/// exit at start (cause not yet found, see the issue note), and starting another is
/// cron's job.
fn wait_for_receiver(scratch: &Scratch) {
    let mut tries = 0;
    wait_until("cron's receiver", Duration::from_secs(120), || {
        tries += 1;
        if tries % 30 == 0 {
            scratch.barman(&["cron"]).ok();
        }
        receive_wal_running(scratch)
    });
}

/// SIGKILLs the receiver and waits until `check` sees it gone.
fn kill_receiver(scratch: &Scratch, pid: i32) {
    kill(Pid::from_raw(pid), Signal::SIGKILL).unwrap();
    wait_until("the killed receiver to go", Duration::from_secs(30), || {
        !receive_wal_running(scratch)
    });
}

fn archived(scratch: &Scratch, segment: &str) -> bool {
    let dir = scratch.home().join("pg/wals").join(&segment[..16]);
    // archive-wal may compress; the catalogue name starts with the segment name.
    std::fs::read_dir(&dir).is_ok_and(|entries| {
        entries
            .filter_map(|e| e.ok())
            .any(|e| e.file_name().to_string_lossy().starts_with(segment))
    }) && xlog_db_lists(&xlog_db(scratch), segment)
}

/// The server's WAL catalogue (`xlogdb_directory` defaults to the WAL directory).
fn xlog_db(scratch: &Scratch) -> std::path::PathBuf {
    scratch.home().join("pg/wals/pg-xlog.db")
}

fn xlog_db_lists(xlog_db: &Path, segment: &str) -> bool {
    std::fs::read_to_string(xlog_db).is_ok_and(|text| {
        text.lines()
            .any(|line| line.split('\t').next() == Some(segment))
    })
}

/// Switches WAL, then runs `cron` until the closed segment is archived.
fn switch_and_archive_with_cron(cluster: &PgCluster, scratch: &Scratch) -> String {
    cluster.psql("create table if not exists t (i int); insert into t values (1)");
    let segment = cluster.psql("select pg_walfile_name(pg_switch_wal())");
    wait_until(
        &format!("cron to archive {segment}"),
        Duration::from_secs(90),
        || {
            let run = scratch.barman(&["cron"]);
            assert_eq!(run.code, 0, "cron failed:\n{}{}", run.stdout, run.stderr);
            std::thread::sleep(Duration::from_millis(400));
            archived(scratch, &segment)
        },
    );
    segment
}

live_test!(
    cron_starts_the_receiver_archives_and_restarts_it_after_a_kill,
    |pg: &PgInstall| {
        let cluster = PgCluster::start(pg);
        let scratch = streaming_scratch(&cluster, "");
        let _cleanup = KillReceiver(&scratch);
        scratch.barman(&["receive-wal", "--create-slot", "pg"]).ok();
        assert!(!receive_wal_running(&scratch), "no receiver before cron");

        let run = scratch.barman(&["cron"]);
        assert_eq!(run.code, 0, "cron:\n{}{}", run.stdout, run.stderr);
        assert!(
            run.stdout
                .contains("Starting streaming archiver for server pg"),
            "cron output:\n{}",
            run.stdout
        );
        wait_for_receiver(&scratch);
        let first_pid = receiver_pid(&scratch).expect("receiver pid in its lock file");
        let first = switch_and_archive_with_cron(&cluster, &scratch);

        // A cron while it runs starts no second receiver.
        scratch.barman(&["cron"]).ok();
        assert_eq!(receiver_pid(&scratch), Some(first_pid));

        kill_receiver(&scratch, first_pid);

        let run = scratch.barman(&["cron"]);
        assert_eq!(run.code, 0, "cron:\n{}{}", run.stdout, run.stderr);
        wait_for_receiver(&scratch);
        let second_pid = receiver_pid(&scratch).expect("new receiver pid");
        assert_ne!(second_pid, first_pid);
        let second = switch_and_archive_with_cron(&cluster, &scratch);

        // Nothing between the two segments is missing from the catalogue.
        for n in segment_number(&first)..=segment_number(&second) {
            let name = format!("{}{:08X}{:08X}", &first[..8], n / 256, n % 256);
            assert!(
                xlog_db_lists(&xlog_db(&scratch), &name),
                "{name} is missing from the archive after the receiver restarted"
            );
        }
    }
);

/// `begin_wal` of a stored backup, from its `backup.info`.
fn begin_wal(scratch: &Scratch, id: &str) -> String {
    let meta = scratch.home().join(format!("pg/meta/{id}-backup.info"));
    let base = scratch.home().join(format!("pg/base/{id}/backup.info"));
    let text = std::fs::read_to_string(&meta)
        .or_else(|_| std::fs::read_to_string(&base))
        .unwrap_or_else(|e| panic!("backup.info of {id}: {e}"));
    text.lines()
        .find_map(|l| l.strip_prefix("begin_wal="))
        .unwrap_or_else(|| panic!("no begin_wal in backup.info of {id}:\n{text}"))
        .to_string()
}

fn backup_ids(scratch: &Scratch) -> Vec<String> {
    let run = scratch.barman(&["-f", "json", "list-backups", "pg"]);
    let json: serde_json::Value = serde_json::from_str(run.ok()).expect("list-backups JSON");
    let mut ids: Vec<String> = json["pg"]
        .as_array()
        .expect("a list of backups")
        .iter()
        .map(|b| b["backup_id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    ids
}

live_test!(
    cron_expires_obsolete_backups_and_their_wal,
    |pg: &PgInstall| {
        let cluster = PgCluster::start(pg);
        let scratch = streaming_scratch(
            &cluster,
            "retention_policy = REDUNDANCY 1\nminimum_redundancy = 1\n",
        );
        let _cleanup = KillReceiver(&scratch);
        start_receiver_with_cron(&scratch);

        scratch.barman(&["backup", "--wait", "pg"]).ok();
        switch_and_archive_with_cron(&cluster, &scratch);
        // A second backup needs a distinct id (they are named by the second).
        std::thread::sleep(Duration::from_millis(1100));
        scratch.barman(&["backup", "--wait", "pg"]).ok();
        let ids = backup_ids(&scratch);
        assert_eq!(ids.len(), 2, "two backups before cron: {ids:?}");
        let (old, new) = (&ids[0], &ids[1]);
        let old_wal = begin_wal(&scratch, old);
        let new_wal = begin_wal(&scratch, new);
        assert!(xlog_db_lists(&xlog_db(&scratch), &old_wal));

        let run = scratch.barman(&["cron"]);
        assert_eq!(run.code, 0, "cron:\n{}{}", run.stdout, run.stderr);
        assert!(
            run.stdout.contains(&format!(
                "Enforcing retention policy: removing backup {old}"
            )),
            "cron output:\n{}{}",
            run.stdout,
            run.stderr
        );
        assert_eq!(backup_ids(&scratch), vec![new.clone()]);
        assert!(!scratch.home().join(format!("pg/base/{old}")).exists());
        // The WAL only the expired backup needed is gone; the kept backup's is not.
        assert!(!xlog_db_lists(&xlog_db(&scratch), &old_wal));
        assert!(!archived(&scratch, &old_wal));
        assert!(archived(&scratch, &new_wal), "{new_wal} of the kept backup");

        // The kept backup is the minimum redundancy: another cron removes nothing.
        let run = scratch.barman(&["cron"]);
        assert!(
            !run.stdout.contains("Enforcing retention policy"),
            "{}",
            run.stdout
        );
        assert_eq!(backup_ids(&scratch), vec![new.clone()]);
    }
);

/// The value of the sample `line_start` (name and labels) in `barman metrics` output.
fn sample(metrics: &str, line_start: &str) -> f64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(line_start)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no sample {line_start} in:\n{metrics}"))
        .parse()
        .unwrap()
}

live_test!(
    metrics_report_what_check_and_the_catalogue_say,
    |pg: &PgInstall| {
        let cluster = PgCluster::start(pg);
        let scratch = streaming_scratch(&cluster, "");
        let _cleanup = KillReceiver(&scratch);
        start_receiver_with_cron(&scratch);
        scratch.barman(&["backup", "--wait", "pg"]).ok();
        switch_and_archive_with_cron(&cluster, &scratch);

        let text = scratch.barman(&["metrics"]).ok().to_string();
        assert!(text.contains("# TYPE barman_backups gauge"), "{text}");
        assert_eq!(sample(&text, r#"barman_server_active{server="pg"}"#), 1.0);
        assert_eq!(
            sample(&text, r#"barman_backups{server="pg",status="DONE"}"#),
            1.0
        );
        assert_eq!(
            sample(&text, r#"barman_backups{server="pg",status="FAILED"}"#),
            0.0
        );
        assert!(sample(&text, r#"barman_last_backup_size_bytes{server="pg"}"#) > 1e6);
        assert!(sample(&text, r#"barman_last_backup_age_seconds{server="pg"}"#) < 3600.0);
        assert!(sample(&text, r#"barman_wal_archived_files{server="pg"}"#) >= 2.0);
        assert!(sample(&text, r#"barman_wal_archive_lag_seconds{server="pg"}"#) < 3600.0);
        assert_eq!(
            sample(&text, r#"barman_receive_wal_running{server="pg"}"#),
            1.0
        );
        assert_eq!(
            sample(
                &text,
                r#"barman_check_ok{server="pg",check="receive-wal running"}"#
            ),
            1.0
        );
        assert_eq!(sample(&text, r#"barman_checks_failed{server="pg"}"#), 0.0);

        let json: serde_json::Value =
            serde_json::from_str(scratch.barman(&["-f", "json", "metrics", "pg"]).ok()).unwrap();
        assert_eq!(json["pg"]["backups"]["DONE"], 1.0);
        assert_eq!(json["pg"]["check_ok"]["PostgreSQL"], 1.0);

        // The receiver dies: the figures and the failed check say so.
        let pid = receiver_pid(&scratch).expect("receiver pid");
        kill_receiver(&scratch, pid);
        let text = scratch.barman(&["metrics", "pg"]).ok().to_string();
        assert_eq!(
            sample(&text, r#"barman_receive_wal_running{server="pg"}"#),
            0.0
        );
        assert_eq!(
            sample(
                &text,
                r#"barman_check_ok{server="pg",check="receive-wal running"}"#
            ),
            0.0
        );
        assert!(sample(&text, r#"barman_checks_failed{server="pg"}"#) >= 1.0);

        // PostgreSQL goes away: the metrics still come, with the connection check failed.
        drop(cluster);
        let text = scratch.barman(&["metrics", "pg"]).ok().to_string();
        assert_eq!(
            sample(&text, r#"barman_check_ok{server="pg",check="PostgreSQL"}"#),
            0.0
        );
        assert_eq!(
            sample(&text, r#"barman_backups{server="pg",status="DONE"}"#),
            1.0
        );
    }
);
