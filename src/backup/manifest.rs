//! The backup manifest PostgreSQL sends with BASE_BACKUP (`backup_manifest`, versions 1 and
//! 2; PROTOCOL.md §4, `src/backend/backup/backup_manifest.c`,
//! `src/common/parse_manifest.c`), the per-file checksums it lists, and the comparison of
//! what a backup holds (an [`Inventory`]) against it, with `pg_verifybackup`'s messages.
//!
//! Pure code: bytes in, facts and problems out. The manifest is kept byte for byte (its own
//! checksum is over the raw text), paths are raw bytes (`Encoded-Path` is hex for non-UTF-8
//! names), and the 64-bit system identifier is read exactly.

use std::collections::BTreeMap;
use std::fmt;

use serde::Deserialize;
use sha2::Digest;

/// A per-file checksum algorithm of the manifest (`MANIFEST_CHECKSUMS`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChecksumAlgorithm {
    /// No checksum.
    None,
    /// CRC-32C, 4 bytes in the server's memory order.
    Crc32c,
    /// SHA-224.
    Sha224,
    /// SHA-256.
    Sha256,
    /// SHA-384.
    Sha384,
    /// SHA-512.
    Sha512,
}

impl ChecksumAlgorithm {
    /// Parse the manifest's `Checksum-Algorithm` value (case-insensitive).
    pub fn parse(name: &str) -> Option<ChecksumAlgorithm> {
        Some(match name.to_ascii_uppercase().as_str() {
            "NONE" => ChecksumAlgorithm::None,
            "CRC32C" => ChecksumAlgorithm::Crc32c,
            "SHA224" => ChecksumAlgorithm::Sha224,
            "SHA256" => ChecksumAlgorithm::Sha256,
            "SHA384" => ChecksumAlgorithm::Sha384,
            "SHA512" => ChecksumAlgorithm::Sha512,
            _ => return None,
        })
    }

    /// The manifest's name of the algorithm.
    pub fn as_str(self) -> &'static str {
        match self {
            ChecksumAlgorithm::None => "NONE",
            ChecksumAlgorithm::Crc32c => "CRC32C",
            ChecksumAlgorithm::Sha224 => "SHA224",
            ChecksumAlgorithm::Sha256 => "SHA256",
            ChecksumAlgorithm::Sha384 => "SHA384",
            ChecksumAlgorithm::Sha512 => "SHA512",
        }
    }
}

/// A running checksum of one file (`pg_checksum_context`).
#[derive(Clone)]
pub enum Checksummer {
    /// Nothing computed.
    None,
    /// CRC-32C (the finalised value so far; `crc32c_append` continues it).
    Crc32c(u32),
    /// SHA-224.
    Sha224(sha2::Sha224),
    /// SHA-256.
    Sha256(sha2::Sha256),
    /// SHA-384.
    Sha384(sha2::Sha384),
    /// SHA-512.
    Sha512(sha2::Sha512),
}

impl Checksummer {
    /// A new checksum of `algorithm`.
    pub fn new(algorithm: ChecksumAlgorithm) -> Checksummer {
        match algorithm {
            ChecksumAlgorithm::None => Checksummer::None,
            ChecksumAlgorithm::Crc32c => Checksummer::Crc32c(0),
            ChecksumAlgorithm::Sha224 => Checksummer::Sha224(sha2::Sha224::new()),
            ChecksumAlgorithm::Sha256 => Checksummer::Sha256(sha2::Sha256::new()),
            ChecksumAlgorithm::Sha384 => Checksummer::Sha384(sha2::Sha384::new()),
            ChecksumAlgorithm::Sha512 => Checksummer::Sha512(sha2::Sha512::new()),
        }
    }

    /// Add bytes.
    pub fn update(&mut self, data: &[u8]) {
        match self {
            Checksummer::None => {}
            Checksummer::Crc32c(crc) => *crc = crc32c::crc32c_append(*crc, data),
            Checksummer::Sha224(h) => h.update(data),
            Checksummer::Sha256(h) => h.update(data),
            Checksummer::Sha384(h) => h.update(data),
            Checksummer::Sha512(h) => h.update(data),
        }
    }

    /// The digest bytes, as the manifest lists them (hex-decoded). CRC-32C is given in
    /// little-endian order, the memory order of the servers we meet.
    pub fn finish(self) -> Vec<u8> {
        match self {
            Checksummer::None => Vec::new(),
            Checksummer::Crc32c(crc) => crc.to_le_bytes().to_vec(),
            Checksummer::Sha224(h) => h.finalize().to_vec(),
            Checksummer::Sha256(h) => h.finalize().to_vec(),
            Checksummer::Sha384(h) => h.finalize().to_vec(),
            Checksummer::Sha512(h) => h.finalize().to_vec(),
        }
    }
}

/// One file of the manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManifestFile {
    /// The path relative to the data directory (`pg_tblspc/<oid>/...` for tablespaces).
    pub path: Vec<u8>,
    /// Its size in bytes.
    pub size: u64,
    /// The checksum algorithm.
    pub algorithm: ChecksumAlgorithm,
    /// The digest bytes (empty without a checksum).
    pub checksum: Vec<u8>,
}

/// A range of WAL the backup needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalRange {
    /// The timeline.
    pub timeline: u32,
    /// Where replay must start (`X/X`).
    pub start_lsn: String,
    /// Where replay may stop (`X/X`).
    pub end_lsn: String,
}

/// A parsed backup manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// `PostgreSQL-Backup-Manifest-Version` (1 or 2).
    pub version: u32,
    /// `System-Identifier` (version 2 only).
    pub system_identifier: Option<u64>,
    /// The files, by path.
    pub files: BTreeMap<Vec<u8>, ManifestFile>,
    /// The WAL ranges.
    pub wal_ranges: Vec<WalRange>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    #[serde(rename = "PostgreSQL-Backup-Manifest-Version")]
    version: u32,
    #[serde(rename = "System-Identifier")]
    system_identifier: Option<u64>,
    #[serde(rename = "Files")]
    files: Vec<RawFile>,
    #[serde(rename = "WAL-Ranges")]
    wal_ranges: Vec<RawRange>,
    #[serde(rename = "Manifest-Checksum")]
    checksum: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(rename = "Path")]
    path: Option<String>,
    #[serde(rename = "Encoded-Path")]
    encoded_path: Option<String>,
    #[serde(rename = "Size")]
    size: u64,
    #[serde(rename = "Last-Modified")]
    _last_modified: Option<String>,
    #[serde(rename = "Checksum-Algorithm")]
    algorithm: Option<String>,
    #[serde(rename = "Checksum")]
    checksum: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRange {
    #[serde(rename = "Timeline")]
    timeline: u32,
    #[serde(rename = "Start-LSN")]
    start_lsn: String,
    #[serde(rename = "End-LSN")]
    end_lsn: String,
}

/// Decode lower- or upper-case hex.
pub fn from_hex(text: &str) -> Option<Vec<u8>> {
    if text.len() % 2 != 0 {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

/// Lower-case hex.
pub fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Manifest {
    /// Parse a manifest and check its `Manifest-Checksum` (SHA-256 of every byte up to
    /// and including the newline before the last line).
    pub fn parse(bytes: &[u8]) -> Result<Manifest, String> {
        let raw: RawManifest = serde_json::from_slice(bytes)
            .map_err(|e| format!("could not parse backup manifest: {e}"))?;
        if !(1..=2).contains(&raw.version) {
            return Err(format!(
                "could not parse backup manifest: unexpected manifest version {}",
                raw.version
            ));
        }
        let body = manifest_body(bytes)?;
        let actual = sha2::Sha256::digest(body);
        let expected = from_hex(&raw.checksum).ok_or_else(|| {
            "could not parse backup manifest: invalid manifest checksum".to_string()
        })?;
        if actual.as_slice() != expected.as_slice() {
            return Err(format!(
                "manifest checksum mismatch: the manifest says {}, its content gives {}",
                raw.checksum,
                to_hex(&actual)
            ));
        }
        let mut files = BTreeMap::new();
        for f in raw.files {
            let path = match (f.path, f.encoded_path) {
                (Some(p), None) => p.into_bytes(),
                (None, Some(hex)) => from_hex(&hex).ok_or_else(|| {
                    format!("could not parse backup manifest: invalid Encoded-Path \"{hex}\"")
                })?,
                _ => {
                    return Err(
                        "could not parse backup manifest: a file has both or neither of Path and Encoded-Path"
                            .into(),
                    )
                }
            };
            let algorithm = match f.algorithm.as_deref() {
                None => ChecksumAlgorithm::None,
                Some(name) => ChecksumAlgorithm::parse(name).ok_or_else(|| {
                    format!("could not parse backup manifest: unrecognized checksum algorithm \"{name}\"")
                })?,
            };
            let checksum = match (&f.checksum, algorithm) {
                (_, ChecksumAlgorithm::None) => Vec::new(),
                (Some(hex), _) => from_hex(hex).ok_or_else(|| {
                    format!("could not parse backup manifest: invalid checksum \"{hex}\"")
                })?,
                (None, _) => {
                    return Err(format!(
                        "could not parse backup manifest: file \"{}\" has a checksum algorithm but no checksum",
                        String::from_utf8_lossy(&path)
                    ))
                }
            };
            if files.contains_key(&path) {
                return Err(format!(
                    "duplicate path name in backup manifest: \"{}\"",
                    String::from_utf8_lossy(&path)
                ));
            }
            files.insert(
                path.clone(),
                ManifestFile {
                    path,
                    size: f.size,
                    algorithm,
                    checksum,
                },
            );
        }
        Ok(Manifest {
            version: raw.version,
            system_identifier: raw.system_identifier,
            files,
            wal_ranges: raw
                .wal_ranges
                .into_iter()
                .map(|r| WalRange {
                    timeline: r.timeline,
                    start_lsn: r.start_lsn,
                    end_lsn: r.end_lsn,
                })
                .collect(),
        })
    }
}

/// The bytes the manifest checksum covers: all lines but the last one.
fn manifest_body(bytes: &[u8]) -> Result<&[u8], String> {
    let without_final = bytes
        .strip_suffix(b"\n")
        .ok_or("could not parse backup manifest: the manifest does not end with a newline")?;
    let last_line_start = without_final
        .iter()
        .rposition(|&b| b == b'\n')
        .ok_or("could not parse backup manifest: the manifest has fewer than two lines")?;
    Ok(&bytes[..=last_line_start])
}

/// What a backup holds: each regular file's size and checksum.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Inventory {
    /// By path relative to the data directory.
    pub files: BTreeMap<Vec<u8>, SeenFile>,
}

/// A file as found in a backup.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenFile {
    /// Its size.
    pub size: u64,
    /// Its checksum, computed with `algorithm`.
    pub checksum: Vec<u8>,
    /// The algorithm of `checksum`.
    pub algorithm: ChecksumAlgorithm,
}

/// A difference between a backup and its manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// Listed but absent.
    Missing(String),
    /// Present but not listed.
    Extra(String),
    /// Sizes differ.
    Size {
        /// The file.
        path: String,
        /// The manifest's size.
        expected: u64,
        /// The size found.
        found: u64,
    },
    /// Checksums differ.
    Checksum(String),
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Missing(p) => write!(f, "\"{p}\" is present in the manifest but not on disk"),
            Problem::Extra(p) => write!(f, "\"{p}\" is present on disk but not in the manifest"),
            Problem::Size {
                path,
                expected,
                found,
            } => write!(
                f,
                "\"{path}\" has size {found} on disk but size {expected} in the manifest"
            ),
            Problem::Checksum(p) => write!(f, "checksum mismatch for file \"{p}\""),
        }
    }
}

/// Whether a path is ignored when looking for files the manifest does not list:
/// `ignored` entries match the path itself or a directory holding it.
pub fn is_ignored(path: &[u8], ignored: &[&str]) -> bool {
    ignored.iter().any(|i| {
        let i = i.as_bytes();
        path == i || (path.starts_with(i) && path.get(i.len()) == Some(&b'/'))
    })
}

/// What `pg_verifybackup` ignores on disk: these files and directories may exist without
/// being listed.
pub const VERIFY_IGNORED: &[&str] = &[
    "backup_manifest",
    "pg_wal",
    "postgresql.auto.conf",
    "recovery.signal",
    "standby.signal",
];

/// Compare what a backup holds with its manifest; problems in path order.
pub fn compare(manifest: &Manifest, inventory: &Inventory, ignored: &[&str]) -> Vec<Problem> {
    let mut problems = Vec::new();
    let show = |p: &[u8]| String::from_utf8_lossy(p).into_owned();
    for (path, listed) in &manifest.files {
        match inventory.files.get(path) {
            None => problems.push(Problem::Missing(show(path))),
            Some(seen) if seen.size != listed.size => problems.push(Problem::Size {
                path: show(path),
                expected: listed.size,
                found: seen.size,
            }),
            Some(seen) => {
                if listed.algorithm != ChecksumAlgorithm::None && !checksums_match(listed, seen) {
                    problems.push(Problem::Checksum(show(path)));
                }
            }
        }
    }
    for path in inventory.files.keys() {
        if !manifest.files.contains_key(path) && !is_ignored(path, ignored) {
            problems.push(Problem::Extra(show(path)));
        }
    }
    problems
}

fn checksums_match(listed: &ManifestFile, seen: &SeenFile) -> bool {
    if seen.algorithm != listed.algorithm {
        return false;
    }
    if seen.checksum == listed.checksum {
        return true;
    }
    // A CRC-32C written by a server of the other byte order.
    listed.algorithm == ChecksumAlgorithm::Crc32c && {
        let mut swapped = seen.checksum.clone();
        swapped.reverse();
        swapped == listed.checksum
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A manifest as the server writes it, with a correct checksum.
    pub(crate) fn manifest_text(files: &[(&str, &[u8])], version: u32) -> Vec<u8> {
        let mut text = format!("{{ \"PostgreSQL-Backup-Manifest-Version\": {version},\n");
        if version >= 2 {
            text.push_str("\"System-Identifier\": 7710809521602424182,\n");
        }
        text.push_str("\"Files\": [\n");
        let lines: Vec<String> = files
            .iter()
            .map(|(path, data)| {
                let mut c = Checksummer::new(ChecksumAlgorithm::Crc32c);
                c.update(data);
                format!(
                    "{{ \"Path\": \"{path}\", \"Size\": {}, \"Last-Modified\": \"2026-11-22 02:00:20 GMT\", \"Checksum-Algorithm\": \"CRC32C\", \"Checksum\": \"{}\" }}",
                    data.len(),
                    to_hex(&c.finish())
                )
            })
            .collect();
        text.push_str(&lines.join(",\n"));
        text.push_str("\n],\n\"WAL-Ranges\": [\n{ \"Timeline\": 1, \"Start-LSN\": \"0/2000028\", \"End-LSN\": \"0/2000100\" }\n],\n");
        let sum = to_hex(&sha2::Sha256::digest(text.as_bytes()));
        text.push_str(&format!("\"Manifest-Checksum\": \"{sum}\"}}\n"));
        text.into_bytes()
    }

    #[test]
    fn crc32c_is_written_in_memory_order() {
        // PROTOCOL.md §4.2: CRC-32C("123456789") = 0xE3069283, listed as 839206e3.
        let mut c = Checksummer::new(ChecksumAlgorithm::Crc32c);
        c.update(b"1234");
        c.update(b"56789");
        assert_eq!(to_hex(&c.finish()), "839206e3");
        let mut s = Checksummer::new(ChecksumAlgorithm::Sha256);
        s.update(b"abc");
        assert_eq!(
            to_hex(&s.finish()),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn parses_both_versions_and_checks_its_own_checksum() {
        for version in [1, 2] {
            let text = manifest_text(&[("backup_label", b"x"), ("base/1/1", b"yy")], version);
            let m = Manifest::parse(&text).unwrap();
            assert_eq!(m.version, version);
            assert_eq!(
                m.system_identifier,
                (version == 2).then_some(7710809521602424182)
            );
            assert_eq!(m.files.len(), 2);
            assert_eq!(m.files[&b"base/1/1".to_vec()].size, 2);
            assert_eq!(m.wal_ranges[0].start_lsn, "0/2000028");
        }
        let mut text = manifest_text(&[("backup_label", b"x")], 1);
        // Change one byte of the body: the manifest checksum no longer matches.
        let i = text.windows(4).position(|w| w == b"Size").unwrap();
        text[i + 7] = b'9';
        let err = Manifest::parse(&text).unwrap_err();
        assert!(err.starts_with("manifest checksum mismatch"), "{err}");
        assert!(Manifest::parse(b"{}").is_err());
        let mut bad = manifest_text(&[], 1);
        bad.pop();
        assert!(Manifest::parse(&bad).is_err(), "no final newline");
    }

    #[test]
    fn encoded_paths_are_hex() {
        let body = "{ \"PostgreSQL-Backup-Manifest-Version\": 1,\n\"Files\": [\n{ \"Encoded-Path\": \"6162ff\", \"Size\": 0, \"Last-Modified\": \"x\" }\n],\n\"WAL-Ranges\": [\n],\n";
        let sum = to_hex(&sha2::Sha256::digest(body.as_bytes()));
        let text = format!("{body}\"Manifest-Checksum\": \"{sum}\"}}\n");
        let m = Manifest::parse(text.as_bytes()).unwrap();
        let f = &m.files[&vec![b'a', b'b', 0xff]];
        assert_eq!(f.algorithm, ChecksumAlgorithm::None);
    }

    #[test]
    fn comparison_reports_what_pg_verifybackup_reports() {
        let m = Manifest::parse(&manifest_text(
            &[("a", b"1"), ("b", b"22"), ("c", b"333"), ("d", b"4")],
            2,
        ))
        .unwrap();
        let seen = |data: &[u8]| {
            let mut c = Checksummer::new(ChecksumAlgorithm::Crc32c);
            c.update(data);
            SeenFile {
                size: data.len() as u64,
                checksum: c.finish(),
                algorithm: ChecksumAlgorithm::Crc32c,
            }
        };
        let mut inv = Inventory::default();
        inv.files.insert(b"a".to_vec(), seen(b"1"));
        inv.files.insert(b"b".to_vec(), seen(b"2"));
        inv.files.insert(b"c".to_vec(), seen(b"334"));
        inv.files.insert(b"e".to_vec(), seen(b""));
        inv.files
            .insert(b"pg_wal/000000010000000000000001".to_vec(), seen(b""));
        let problems: Vec<String> = compare(&m, &inv, VERIFY_IGNORED)
            .iter()
            .map(|p| p.to_string())
            .collect();
        assert_eq!(
            problems,
            [
                "\"b\" has size 1 on disk but size 2 in the manifest",
                "checksum mismatch for file \"c\"",
                "\"d\" is present in the manifest but not on disk",
                "\"e\" is present on disk but not in the manifest",
            ]
        );
        assert!(is_ignored(b"pg_wal/x/y", &["pg_wal"]));
        assert!(!is_ignored(b"pg_walx", &["pg_wal"]));
    }
}
