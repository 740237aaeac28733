//! replication-status, switch-wal and terminate-process against a server that
//! receive-wal streams from.

use std::time::Duration;

use super::receive_wal::{streaming_scratch, wait_until, ReceiveWal};
use crate::harness::{live_test, PgCluster, PgInstall};

live_test!(
    replication_status_switch_wal_and_terminate_process,
    |pg: &PgInstall| {
        let cluster = PgCluster::start(pg);
        let scratch = streaming_scratch(&cluster, "");
        // No client yet.
        let out = scratch
            .barman(&["replication-status", "pg"])
            .ok()
            .to_string();
        assert!(
            out.starts_with(
                "Status of streaming clients for server 'pg':\n  Current LSN on master: "
            ),
            "{out}"
        );
        assert!(out.ends_with("  No streaming clients attached\n"), "{out}");
        let mut rw = ReceiveWal::start(&scratch, "pg");
        wait_until(
            "receive-wal in pg_stat_replication",
            Duration::from_secs(30),
            || {
                cluster.psql("select count(*) from pg_stat_replication where state = 'streaming' and flush_lsn is not null")
                    == "1"
            },
        );
        // Console, minimal and JSON layouts.
        let out = scratch
            .barman(&["replication-status", "pg"])
            .ok()
            .to_string();
        for expected in [
            "  Number of streaming clients: 1\n",
            "  1. Async WAL streamer\n",
            "     Application name: barman_receive_wal\n",
            "     Communication   : TCP/IP\n",
            "     Replication slot: barman\n",
            "     Current state   : streaming (async)\n",
            "     Sent LSN   : ",
            "     Flush LSN  : ",
        ] {
            assert!(out.contains(expected), "{expected:?} missing:\n{out}");
        }
        let out = scratch
            .barman(&[
                "replication-status",
                "--minimal",
                "--target",
                "wal-streamer",
                "pg",
            ])
            .ok()
            .to_string();
        assert!(
            out.starts_with("Wal streamers for master 'pg' (LSN @ "),
            "{out}"
        );
        assert!(out.contains("  1. W) postgres@127.0.0.1 S:"), "{out}");
        assert!(out.contains(" AN:barman_receive_wal\n"), "{out}");
        let out = scratch
            .barman(&["replication-status", "--target", "hot-standby", "pg"])
            .ok()
            .to_string();
        assert!(out.contains("  No hot standby servers attached"), "{out}");
        let json = scratch
            .barman(&["-f", "json", "replication-status", "pg"])
            .ok()
            .to_string();
        let doc: serde_json::Value = serde_json::from_str(&json).unwrap();
        let client = &doc["pg"]["streaming_clients"][0];
        assert_eq!(client["application_name"], "barman_receive_wal", "{json}");
        assert_eq!(client["replication_slot"], "barman", "{json}");
        assert_eq!(client["name"], "Async WAL streamer", "{json}");
        assert!(doc["pg"]["server_lsn"].is_string(), "{json}");
        // switch-wal --archive: the closed segment is streamed and archived.
        cluster.psql("create table t as select generate_series(1, 1000) g");
        let run = scratch.barman(&["switch-wal", "--archive", "--archive-timeout", "60", "pg"]);
        let out = run.ok().to_string();
        let closed = out
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("The WAL file "))
            .and_then(|l| l.split(' ').next())
            .unwrap_or_else(|| panic!("{out}"))
            .to_string();
        assert!(
            out.contains(&format!(
                "Waiting for the WAL file {closed} from server 'pg' (max: 60 seconds)\n"
            )),
            "{out}"
        );
        assert!(scratch
            .home()
            .join("pg/wals")
            .join(&closed[..16])
            .join(&closed)
            .exists());
        // Nothing written since: no switch.
        let out = scratch.barman(&["switch-wal", "pg"]).ok().to_string();
        assert!(
            out == "No switch required for server 'pg'\n" || out.starts_with("The WAL file "),
            "{out}"
        );
        // terminate-process stops receive-wal through its lock.
        let out = scratch
            .barman(&["terminate-process", "pg", "receive-wal"])
            .ok()
            .to_string();
        assert!(out.starts_with("Stopped process receive-wal("), "{out}");
        wait_until("receive-wal to exit", Duration::from_secs(30), || {
            !rw.running()
        });
        assert!(
            rw.output()
                .contains("SIGINT received. Terminate gracefully."),
            "{}",
            rw.output()
        );
    }
);
