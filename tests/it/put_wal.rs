//! `put-wal`: the tar stream barman-wal-archive sends (files plus `SHA256SUMS` or
//! `MD5SUMS`) lands in `incoming/` when every checksum matches; anything wrong is refused
//! with exit code 1 and nothing is written.

use std::io::Write;
use std::path::Path;
use std::process::Stdio;

use sha2::Digest;

use crate::util::{barman_command, Run, Scratch};

const HISTORY: &[u8] = b"1\t0/6030948\tno recovery target specified\n";

fn scratch() -> Scratch {
    Scratch::new("[pg]\nconninfo = host=pg\nbackup_method = postgres\narchiver = on\n")
}

/// A tar stream holding `files` (name, content) in order.
fn tar_of(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (name, content) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(content.len() as u64);
        header.set_mode(0o600);
        header.set_mtime(1_700_000_000);
        header.set_entry_type(tar::EntryType::Regular);
        // Bypass the builder's path checks: put-wal must refuse such names itself.
        let bytes = name.as_bytes();
        header.as_old_mut().name[..bytes.len()].copy_from_slice(bytes);
        header.set_cksum();
        builder.append(&header, *content).unwrap();
    }
    builder.into_inner().unwrap()
}

fn sha256(data: &[u8]) -> String {
    sha2::Sha256::digest(data)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn put_wal(scratch: &Scratch, input: &[u8]) -> Run {
    let mut child = barman_command()
        .arg("-c")
        .arg(scratch.config())
        .args(["put-wal", "pg"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    let output = child.wait_with_output().unwrap();
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn incoming_names(scratch: &Scratch) -> Vec<String> {
    let dir = scratch.home().join("pg/incoming");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

#[test]
fn put_wal_stores_files_whose_checksums_match() {
    let scratch = scratch();
    let sums = format!("{}  00000002.history\n", sha256(HISTORY));
    let input = tar_of(&[
        ("00000002.history", HISTORY),
        ("SHA256SUMS", sums.as_bytes()),
    ]);
    put_wal(&scratch, &input).code(0);
    let stored = scratch.home().join("pg/incoming/00000002.history");
    assert_eq!(std::fs::read(&stored).unwrap(), HISTORY);
    assert_eq!(incoming_names(&scratch), vec!["00000002.history"]);
    // The same file again is accepted silently.
    put_wal(&scratch, &input).code(0);
    assert_eq!(incoming_names(&scratch), vec!["00000002.history"]);
}

#[test]
fn put_wal_accepts_legacy_md5sums() {
    let scratch = scratch();
    let md5: String = <md5::Md5 as md5::Digest>::digest(HISTORY)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let sums = format!("{md5} *./00000003.history\n");
    let input = tar_of(&[
        ("./00000003.history", HISTORY),
        ("MD5SUMS", sums.as_bytes()),
    ]);
    put_wal(&scratch, &input).code(0);
    assert_eq!(incoming_names(&scratch), vec!["00000003.history"]);
}

#[test]
fn put_wal_refuses_a_checksum_mismatch_and_writes_nothing() {
    let scratch = scratch();
    let sums = format!("{}  00000002.history\n", sha256(b"something else"));
    let input = tar_of(&[
        ("00000002.history", HISTORY),
        ("SHA256SUMS", sums.as_bytes()),
    ]);
    let run = put_wal(&scratch, &input);
    run.code(1).stderr_has(&format!(
        "ERROR: Bad file checksum '{}' (should be {}) for file '00000002.history' in put-wal for server 'pg'",
        sha256(HISTORY),
        sha256(b"something else")
    ));
    assert!(
        incoming_names(&scratch).is_empty(),
        "{:?}",
        incoming_names(&scratch)
    );
}

#[test]
fn put_wal_refuses_missing_checksums_and_names_with_paths() {
    let scratch = scratch();
    put_wal(&scratch, &tar_of(&[("00000002.history", HISTORY)]))
        .code(1)
        .stderr_has(
            "ERROR: Missing checksum for file '00000002.history' in put-wal for server 'pg'",
        );
    let sums = format!("{}  ../00000002.history\n", sha256(HISTORY));
    put_wal(
        &scratch,
        &tar_of(&[
            ("../00000002.history", HISTORY),
            ("SHA256SUMS", sums.as_bytes()),
        ]),
    )
    .code(1)
    .stderr_has("ERROR: Unsupported filename '../00000002.history' in put-wal for server 'pg'");
    put_wal(&scratch, &tar_of(&[("postgresql.conf", b"x")]))
        .code(1)
        .stderr_has("ERROR: Unsupported filename 'postgresql.conf' in put-wal for server 'pg'");
    assert!(
        incoming_names(&scratch).is_empty(),
        "{:?}",
        incoming_names(&scratch)
    );
    assert!(!Path::new(&scratch.home().join("00000002.history")).exists());
}

#[test]
fn put_wal_validates_a_plain_segment() {
    let scratch = scratch();
    let zeros = vec![0u8; 16 << 20];
    let sums = format!("{}  000000010000000000000001\n", sha256(&zeros));
    let run = put_wal(
        &scratch,
        &tar_of(&[
            ("000000010000000000000001", &zeros),
            ("SHA256SUMS", sums.as_bytes()),
        ]),
    );
    run.code(1).stderr_has(
        "ERROR: WAL file '000000010000000000000001' in put-wal for server 'pg' failed validation",
    );
    assert!(
        incoming_names(&scratch).is_empty(),
        "{:?}",
        incoming_names(&scratch)
    );
}

#[test]
fn put_wal_test_mode_only_answers() {
    let scratch = scratch();
    let mut cmd = barman_command();
    cmd.arg("-c")
        .arg(scratch.config())
        .args(["put-wal", "-t", "pg"])
        .stdin(Stdio::null());
    let run = Run::of(cmd);
    assert_eq!(run.ok(), "Ready to accept WAL files for the server pg\n");
}
