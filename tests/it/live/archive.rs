//! archive-wal on real WAL: PostgreSQL's archive_command copies each finished segment
//! into the server's `incoming/` directory, and archive-wal validates, compresses and
//! catalogues them; get-wal then serves them back byte for byte.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::harness::{live_test, ClusterOptions, PgCluster, PgInstall};
use crate::util::Scratch;

/// A scratch barman home whose `pg/incoming/` the server's OS user may write, and that
/// directory.
pub fn scratch_with_incoming() -> (Scratch, PathBuf) {
    let scratch = Scratch::new("");
    let incoming = scratch.home().join("pg/incoming");
    std::fs::create_dir_all(&incoming).unwrap();
    // The server runs as another user: let it reach and write into incoming/.
    for dir in [
        scratch.path().to_path_buf(),
        scratch.home(),
        scratch.home().join("pg"),
    ] {
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    std::fs::set_permissions(&incoming, std::fs::Permissions::from_mode(0o777)).unwrap();
    (scratch, incoming)
}

/// Cluster options whose `archive_command` delivers each WAL file into `incoming`: copied
/// under a temporary name and renamed, so that archive-wal never sees half a file, and
/// never over a file already there.
pub fn archiving_options(incoming: &Path) -> ClusterOptions {
    ClusterOptions::new()
        .conf("archive_mode = on")
        .conf(format!(
            "archive_command = 'test ! -f {0}/%f && cp %p {0}/%f.tmp && mv {0}/%f.tmp {0}/%f'",
            incoming.display()
        ))
}

/// A scratch barman home and a cluster archiving into its `pg/incoming/`.
pub fn archiving_cluster(pg: &PgInstall) -> (Scratch, PgCluster, PathBuf) {
    let (scratch, incoming) = scratch_with_incoming();
    let cluster = PgCluster::start_with(pg, &archiving_options(&incoming));
    (scratch, cluster, incoming)
}

live_test!(
    archive_wal_takes_what_archive_command_delivers,
    |pg: &PgInstall| {
        let (scratch, cluster, incoming) = archiving_cluster(pg);
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
        "{text}[pg]\nconninfo = {}\nbackup_method = postgres\narchiver = on\ncompression = zstd\n",
        cluster.conninfo()
    ));
        cluster.psql("create table t as select g from generate_series(1, 50000) g");
        cluster.psql("select pg_create_restore_point('live_archive_test')");
        let segment = cluster.psql("select pg_walfile_name(pg_current_wal_lsn())");
        cluster.psql("select pg_switch_wal()");
        cluster.psql("insert into t select g from generate_series(1, 1000) g");
        cluster.psql("select pg_switch_wal()");
        // Wait for the archiver to deliver the segment holding the restore point.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        while !incoming.join(&segment).exists() {
            assert!(
                std::time::Instant::now() < deadline,
                "archive_command did not deliver {segment}"
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        std::thread::sleep(std::time::Duration::from_millis(300));
        let out = scratch.barman(&["archive-wal", "pg"]).ok().to_string();
        assert!(out.contains(&format!("\t{segment}\n")), "{out}");
        let db = std::fs::read_to_string(scratch.home().join("pg/wals/pg-xlog.db")).unwrap();
        assert!(db.contains(&format!("{segment}\t")), "{db}");
        assert!(db.lines().all(|l| l.contains("\tzstd\tNone")), "{db}");
        let summaries =
            std::fs::read_to_string(scratch.home().join("pg/wals/pg-xlog.db.summaries")).unwrap();
        assert!(summaries.contains("live_archive_test"), "{summaries}");
        // verify-wal re-validates what was archived (compressed with zstd).
        let verified = scratch.barman(&["verify-wal", "pg"]).ok().to_string();
        assert!(verified.contains(" 0 FAILED\n"), "{verified}");
        // Served back identical to what PostgreSQL wrote.
        let dest = scratch.path().join("back");
        std::fs::create_dir(&dest).unwrap();
        scratch
            .barman(&["get-wal", "-o", dest.to_str().unwrap(), "pg", &segment])
            .ok();
        let original = std::fs::read(cluster.data_dir().join("pg_wal").join(&segment));
        if let Ok(original) = original {
            // Still in pg_wal (not yet recycled): compare byte for byte.
            assert!(std::fs::read(dest.join(&segment)).unwrap() == original);
        }
        assert_eq!(
            std::fs::metadata(dest.join(&segment)).unwrap().len(),
            16 << 20
        );
    }
);
