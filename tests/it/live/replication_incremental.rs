//! Incremental base backups (PostgreSQL 17+): after a full BASE_BACKUP, uploading its
//! manifest with UPLOAD_MANIFEST lets `BASE_BACKUP (INCREMENTAL)` send only the changed
//! blocks (files named `INCREMENTAL.<name>`). Older servers are refused before anything
//! is sent.

use std::path::Path;

use barman_protocol::command::{Checkpoint, Manifest};
use barman_protocol::conninfo::Env;
use barman_protocol::stream::base_backup::BaseBackupEvent;
use barman_protocol::{BaseBackupOptions, ConnInfo, ErrorKind, ReplicationConnection};

use crate::harness::{live_test, ClusterOptions, PgCluster, PgInstall};

fn block_on<T>(future: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("build a tokio runtime")
        .block_on(future)
}

/// Run a BASE_BACKUP; the base archive's tar bytes and the manifest.
async fn backup(
    conn: &mut ReplicationConnection,
    options: &BaseBackupOptions,
) -> (Vec<u8>, Vec<u8>) {
    let mut stream = conn.base_backup(options).await.unwrap();
    let (mut base, mut manifest) = (Vec::new(), Vec::new());
    let mut in_base = false;
    while let Some(event) = stream.next().await.unwrap() {
        match event {
            BaseBackupEvent::Archive { tablespace, .. } => in_base = tablespace.oid.is_none(),
            BaseBackupEvent::Data(d) if in_base => base.extend_from_slice(&d),
            BaseBackupEvent::Manifest(m) => manifest.extend_from_slice(&m),
            _ => {}
        }
    }
    (base, manifest)
}

live_test!(
    incremental_base_backup_after_upload_manifest,
    |pg: &PgInstall| {
        let mut options = ClusterOptions::new();
        if pg.major >= 17 {
            options = options.conf("summarize_wal = on");
        }
        let cluster = PgCluster::start_with(pg, &options);
        let env = Env::from_vars([], Some(Path::new("/nonexistent-home")), Some("postgres"));
        let info = ConnInfo::parse_with_env(
            &format!(
                "host=127.0.0.1 port={} user=postgres sslmode=disable",
                cluster.port()
            ),
            &env,
        )
        .unwrap();
        let mut full = BaseBackupOptions::default();
        full.checkpoint = Checkpoint::Fast;
        full.wait = false;
        full.manifest = Manifest::Yes;
        block_on(async {
            let mut conn = ReplicationConnection::connect(&info).await.unwrap();
            if pg.major < 17 {
                let e = conn.upload_manifest(b"{}").await.unwrap_err();
                assert_eq!(e.kind(), ErrorKind::Usage, "{e}");
                assert!(e.to_string().contains("17"), "{e}");
                // Nothing was sent: the session still works.
                conn.identify_system().await.unwrap();
                return;
            }
            let (_, manifest) = backup(&mut conn, &full).await;
            assert!(!manifest.is_empty());
            cluster.psql("create table t as select generate_series(1, 10000) g");
            let mut conn = ReplicationConnection::connect(&info).await.unwrap();
            conn.upload_manifest(&manifest).await.unwrap();
            let mut incremental = full.clone();
            incremental.incremental = true;
            let (base, _) = backup(&mut conn, &incremental).await;
            let mut archive = tar::Archive::new(base.as_slice());
            let names: Vec<String> = archive
                .entries()
                .unwrap()
                .map(|e| e.unwrap().path().unwrap().display().to_string())
                .collect();
            assert!(
                names.iter().any(|n| n.contains("INCREMENTAL.")),
                "an incremental backup holds INCREMENTAL.* files: {names:?}"
            );
            // A manifest that is not one is refused by the server, and the session survives.
            let mut conn = ReplicationConnection::connect(&info).await.unwrap();
            let e = conn.upload_manifest(b"not a manifest").await.unwrap_err();
            assert!(e.as_db_error().is_some(), "{e}");
            conn.identify_system().await.unwrap();
        });
    }
);
