//! What a hostile or broken server cannot do to the backup server (issue 6).
//!
//! Against the [`fake_server`](crate::fake_server) (no PostgreSQL needed): an honest stream
//! is stored (so the fake itself is right), while a `BASE_BACKUP` archive holding a `../`
//! path, an absolute path, or a symbolic link out of the backup with a file written through
//! it makes `barman backup` fail, in the plain and the tar layout, over the 15+ stream and
//! the 13/14 one (a COPY per archive, no end-of-archive marker), naming the entry, with
//! nothing written outside the backup directory and the partial backup removed; a manifest
//! whose checksum for a file differs from the data fails the backup naming the file.
//!
//! Against a real PostgreSQL 15: a stored tar backup whose `base.tar.gz` was given the same
//! entries afterwards is refused by `verify-backup` and by `restore`, which writes nothing
//! outside the destination.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use crate::fake_server::{self, FakeServer, Script};
use crate::harness::{run_live, PgCluster, PgInstall};
use crate::util::{Run, Scratch};

/// The two storage layouts a backup can have.
const LAYOUTS: [(&str, &str); 2] = [("plain", ""), ("tar", "backup_compression = gzip\n")];

/// The two BASE_BACKUP streams: 15+ (typed CopyData) and 13/14 (a COPY per archive).
const MAJORS: [u32; 2] = [15, 14];

/// A catalogue whose server `pg` is the fake, with a directory `outside` next to
/// `barman_home` that hostile entries aim at.
struct FakeSetup {
    scratch: Scratch,
    server: Option<FakeServer>,
}

impl FakeSetup {
    /// The catalogue, with `options` for server `pg`; no server yet.
    fn new(options: &str) -> FakeSetup {
        let scratch = Scratch::new("");
        std::fs::create_dir(scratch.path().join("outside")).unwrap();
        let text = std::fs::read_to_string(scratch.config()).unwrap();
        scratch.write_config(&format!(
            "{text}[pg]\nconninfo = CONNINFO\nbackup_method = postgres\narchiver = on\n{options}"
        ));
        FakeSetup {
            scratch,
            server: None,
        }
    }

    /// Start the fake with `script` and point the configuration at it.
    fn serve(&mut self, script: Script) -> &FakeServer {
        let server = FakeServer::start(script);
        let text = std::fs::read_to_string(self.scratch.config()).unwrap();
        self.scratch
            .write_config(&text.replace("CONNINFO", &server.conninfo()));
        self.server.insert(server)
    }

    fn server(&self) -> &FakeServer {
        self.server.as_ref().expect("serve() was called")
    }

    fn backup(&self) -> Run {
        self.scratch.barman(&["backup", "pg"])
    }

    /// The one backup of the catalogue and its `backup.info`.
    fn only_backup(&self) -> (String, String) {
        let meta = self.scratch.home().join("pg/meta");
        let infos: Vec<PathBuf> = std::fs::read_dir(&meta)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.to_string_lossy().ends_with("-backup.info"))
            .collect();
        assert_eq!(infos.len(), 1, "backups in {}: {infos:?}", meta.display());
        let name = infos[0].file_name().unwrap().to_string_lossy().into_owned();
        let id = name.strip_suffix("-backup.info").unwrap().to_string();
        (id, std::fs::read_to_string(&infos[0]).unwrap())
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

/// Every path under `root` whose file name starts with `escaped` (links not followed).
fn escaped_files(root: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if entry.file_name().to_string_lossy().starts_with("escaped") {
                found.push(path.clone());
            }
            if entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                stack.push(path);
            }
        }
    }
    found
}

/// The hostile cases: (name, entries after the honest ones, the entry the error names).
/// `scratch` is where `barman_home` and `outside` are; `depth` is how many `..` lead from
/// the extraction directory to `scratch`.
fn hostile_cases(scratch: &Path, depth: usize) -> Vec<(&'static str, Vec<Vec<u8>>, String)> {
    use fake_server::{file, symlink};
    let up = "../".repeat(depth);
    let outside = scratch.join("outside").display().to_string();
    let absolute = scratch.join("escaped-absolute").display().to_string();
    vec![
        (
            "dot-dot path",
            vec![file(&format!("{up}escaped-dotdot"), b"owned\n")],
            format!("{up}escaped-dotdot"),
        ),
        (
            "absolute path",
            vec![file(&absolute, b"owned\n")],
            absolute.clone(),
        ),
        (
            "symbolic link out, then a file through it",
            vec![
                symlink("evil", &outside),
                file("evil/escaped-through-link", b"owned\n"),
            ],
            "evil".to_string(),
        ),
        (
            "tablespace-like link out, then a file through it",
            vec![
                symlink("pg_tblspc/16999", &outside),
                file("pg_tblspc/16999/escaped-through-tablespace", b"owned\n"),
            ],
            "pg_tblspc/16999".to_string(),
        ),
    ]
}

#[test]
fn an_honest_stream_from_the_fake_server_is_stored_in_both_layouts() {
    for (major, (layout, options)) in MAJORS.iter().flat_map(|m| LAYOUTS.map(|l| (*m, l))) {
        let script = Script {
            base_tar: fake_server::tar(&fake_server::honest_entries()),
            manifest: fake_server::manifest(&fake_server::honest_files(), None),
            major,
        };
        let mut setup = FakeSetup::new(options);
        setup.serve(script);
        let run = setup.backup();
        run.code(0);
        assert!(
            setup.server().unknown().is_empty(),
            "{:?}",
            setup.server().unknown()
        );
        assert!(
            setup
                .server()
                .queries()
                .iter()
                .any(|q| q.starts_with("BASE_BACKUP")),
            "{:?}",
            setup.server().queries()
        );
        let (id, info) = setup.only_backup();
        assert_eq!(
            field(&info, "status"),
            "WAITING_FOR_WALS",
            "{layout}: {info}"
        );
        assert_eq!(field(&info, "begin_wal"), "000000010000000000000002");
        let data = setup.base(&id).join("data");
        match layout {
            "plain" => {
                assert_eq!(std::fs::read(data.join("PG_VERSION")).unwrap(), b"15\n");
                assert_eq!(
                    std::fs::read(data.join("base/1/1259")).unwrap(),
                    vec![7u8; 8192]
                );
            }
            _ => {
                assert!(data.join("base.tar.gz").is_file(), "{layout}");
                assert!(!data.join("PG_VERSION").exists(), "{layout}");
            }
        }
        let verified = setup.scratch.barman(&["verify-backup", "pg", &id]);
        assert!(
            verified.ok().contains("backup successfully verified"),
            "{layout}: {}",
            verified.stderr
        );
    }
}

#[test]
fn hostile_tar_entries_fail_the_backup_and_nothing_is_written_outside() {
    for (major, (layout, options)) in MAJORS.iter().flat_map(|m| LAYOUTS.map(|l| (*m, l))) {
        for case in 0..hostile_cases(Path::new("/"), 0).len() {
            let mut setup = FakeSetup::new(options);
            // base/<id>/data -> <id> -> base -> pg -> home -> scratch: five levels up.
            let (case, hostile, named) = hostile_cases(setup.scratch.path(), 5).swap_remove(case);
            // The honest entries first, so that a plain backup has written files when the
            // hostile entry comes (and must remove them); pg_control last, as PostgreSQL
            // sends it.
            let mut entries = fake_server::honest_entries();
            let pg_control = entries.pop().unwrap();
            entries.extend(hostile);
            entries.push(pg_control);
            setup.serve(Script {
                base_tar: fake_server::tar(&entries),
                manifest: fake_server::manifest(&fake_server::honest_files(), None),
                major,
            });
            let run = setup.backup();
            let what = format!("{major}, {layout}, {case}");
            run.code(1)
                .stderr_has("ERROR: Backup failed copying files.\nDETAILS: ")
                .stderr_has(&format!("refused tar entry \"{named}\" of base.tar"));
            let (id, info) = setup.only_backup();
            assert_eq!(field(&info, "status"), "FAILED", "{what}: {info}");
            let error = field(&info, "error");
            assert!(
                error.starts_with("failure copying files (")
                    && error.contains(&format!("refused tar entry \"{named}\"")),
                "{what}: {error}"
            );
            assert!(
                !setup.base(&id).exists(),
                "{what}: the partial backup was left in {}",
                setup.base(&id).display()
            );
            assert_eq!(
                escaped_files(setup.scratch.path()),
                Vec::<PathBuf>::new(),
                "{what}: written outside the backup"
            );
            assert_eq!(
                std::fs::read_dir(setup.scratch.path().join("outside"))
                    .unwrap()
                    .count(),
                0,
                "{what}: written through a link"
            );
            assert!(
                setup.server().unknown().is_empty(),
                "{:?}",
                setup.server().unknown()
            );
        }
    }
}

#[test]
fn a_manifest_checksum_that_differs_from_the_data_fails_the_backup() {
    for (major, (layout, options)) in MAJORS.iter().flat_map(|m| LAYOUTS.map(|l| (*m, l))) {
        let layout = format!("{major}, {layout}");
        let script = Script {
            base_tar: fake_server::tar(&fake_server::honest_entries()),
            manifest: fake_server::manifest(&fake_server::honest_files(), Some("base/1/1259")),
            major,
        };
        let mut setup = FakeSetup::new(options);
        setup.serve(script);
        let run = setup.backup();
        run.code(1)
            .stderr_has("ERROR: Backup failed copying files.\nDETAILS: ")
            .stderr_has("the backup does not match its manifest (1 problem)")
            .stderr_has("checksum mismatch for file \"base/1/1259\"");
        let (id, info) = setup.only_backup();
        assert_eq!(field(&info, "status"), "FAILED", "{layout}: {info}");
        assert!(
            field(&info, "error").contains("checksum mismatch for file \"base/1/1259\""),
            "{layout}: {info}"
        );
        assert!(!setup.base(&id).exists(), "{layout}: partial files left");
        let listed = setup.scratch.barman(&["list-backups", "pg"]);
        assert!(listed.ok().contains("FAILED"), "{}", listed.stdout);
    }
}

/// Rewrite the gzipped tar `path` with `extra` entries after its last one.
fn append_to_tar_gz(path: &Path, extra: &[Vec<u8>]) {
    let mut plain = Vec::new();
    flate2::read::MultiGzDecoder::new(std::fs::File::open(path).unwrap())
        .read_to_end(&mut plain)
        .unwrap();
    // The end of the last entry: headers and data, up to the end-of-archive marker.
    let mut end = 0u64;
    let mut archive = tar::Archive::new(plain.as_slice());
    for entry in archive.entries().unwrap() {
        let entry = entry.unwrap();
        end = entry.raw_file_position() + entry.size().div_ceil(512) * 512;
    }
    plain.truncate(end as usize);
    for e in extra {
        plain.extend_from_slice(e);
    }
    plain.extend_from_slice(&[0u8; 1024]);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&plain).unwrap();
    std::fs::write(path, gz.finish().unwrap()).unwrap();
}

fn restore_of_a_tampered_tar_backup(pg: &PgInstall) {
    let (scratch, incoming) = crate::live::archive::scratch_with_incoming();
    std::fs::create_dir(scratch.path().join("outside")).unwrap();
    let cluster = PgCluster::start_with(pg, &crate::live::archive::archiving_options(&incoming));
    let text = std::fs::read_to_string(scratch.config()).unwrap();
    scratch.write_config(&format!(
        "{text}[pg]\nconninfo = {}\nbackup_method = postgres\narchiver = on\nbackup_compression = gzip\nimmediate_checkpoint = true\n",
        cluster.conninfo()
    ));
    scratch
        .barman(&["backup", "--wait", "--wait-timeout", "120", "pg"])
        .ok();
    let meta = scratch.home().join("pg/meta");
    let id = std::fs::read_dir(&meta)
        .unwrap()
        .find_map(|e| {
            e.unwrap()
                .file_name()
                .to_string_lossy()
                .strip_suffix("-backup.info")
                .map(str::to_string)
        })
        .unwrap();
    let info = std::fs::read_to_string(meta.join(format!("{id}-backup.info"))).unwrap();
    assert_eq!(field(&info, "status"), "DONE", "{info}");
    let archive = scratch
        .home()
        .join(format!("pg/base/{id}/data/base.tar.gz"));
    let original = std::fs::read(&archive).unwrap();
    // DEST = <scratch>/restores/dest: two levels below the scratch directory.
    let dest = scratch.path().join("restores/dest");
    // The untouched backup restores (so a refusal below is the entry's doing).
    scratch
        .barman(&["restore", "pg", &id, dest.to_str().unwrap()])
        .ok();
    assert!(dest.join("PG_VERSION").is_file());
    std::fs::remove_dir_all(&dest).unwrap();
    for (case, hostile, named) in hostile_cases(scratch.path(), 2) {
        std::fs::write(&archive, &original).unwrap();
        append_to_tar_gz(&archive, &hostile);
        // verify-backup reads the archive with the same rules as backup.
        let verified = scratch.barman(&["verify-backup", "pg", &id]);
        verified
            .code(1)
            .stderr_has(&format!("refused tar entry \"{named}\" of base.tar.gz"));
        let run = scratch.barman(&["restore", "pg", &id, dest.to_str().unwrap()]);
        run.code(1).stderr_has("refusing");
        assert!(
            run.stderr.contains(&named),
            "{case}: the error does not name {named}:\n{}",
            run.stderr
        );
        assert_eq!(
            escaped_files(scratch.path()),
            Vec::<PathBuf>::new(),
            "{case}: written outside the destination"
        );
        assert_eq!(
            std::fs::read_dir(scratch.path().join("outside"))
                .unwrap()
                .count(),
            0,
            "{case}: written through a link"
        );
        let _ = std::fs::remove_dir_all(&dest);
    }
    drop(cluster);
}

#[test]
fn a_tampered_tar_backup_is_refused_by_verify_and_restore_pg15() {
    run_live(15, restore_of_a_tampered_tar_backup);
}
