//! The sub-messages carried inside CopyData during replication, decoded without I/O.
//!
//! START_REPLICATION (PROTOCOL.md §5.3–5.4, `src/backend/replication/walsender.c`,
//! `src/bin/pg_basebackup/receivelog.c`): server `'w'` XLogData and `'k'` primary keepalive;
//! client `'r'` standby status update and `'h'` hot standby feedback.
//! BASE_BACKUP on 15+ (PROTOCOL.md §3.5, `src/backend/backup/basebackup_copy.c`): `'n'` new
//! archive, `'d'` data, `'p'` progress, `'m'` manifest.
//!
//! A CopyData payload is always complete once framed, so these parsers take the whole payload
//! and return `Result<T>`.

use bytes::{BufMut, Bytes, BytesMut};

use super::cursor::Cursor;
use super::frontend::write_message;
use crate::error::{Error, Result};
use crate::lsn::Lsn;

/// Microseconds between the Unix epoch and PostgreSQL's epoch, 2000-01-01 00:00:00 UTC.
pub const POSTGRES_EPOCH_OFFSET_MICROS: i64 = 946_684_800 * 1_000_000;

/// Converts a wall-clock time to a `TimestampTz` (microseconds since 2000-01-01 UTC).
pub fn timestamp_from_system_time(time: std::time::SystemTime) -> i64 {
    let unix_micros = match time.duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_micros()).unwrap_or(i64::MAX),
        Err(e) => -i64::try_from(e.duration().as_micros()).unwrap_or(i64::MAX),
    };
    unix_micros.saturating_sub(POSTGRES_EPOCH_OFFSET_MICROS)
}

/// The current time as a `TimestampTz`.
pub fn current_timestamp() -> i64 {
    timestamp_from_system_time(std::time::SystemTime::now())
}

/// A message from a walsender inside CopyBoth.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReplicationMessage {
    /// `'w'`: WAL bytes.
    XLogData(XLogDataBody),
    /// `'k'`: the server's position, and whether it wants a status update now.
    PrimaryKeepalive(PrimaryKeepaliveBody),
}

impl ReplicationMessage {
    /// Decodes a CopyData payload received during START_REPLICATION.
    pub fn parse(payload: &Bytes) -> Result<ReplicationMessage> {
        let mut c = Cursor::new("replication CopyData", payload);
        match c.u8("message type")? {
            b'w' => {
                let wal_start = Lsn::new(c.u64("XLogData start")?);
                let wal_end = Lsn::new(c.u64("XLogData end")?);
                let send_time = c.i64("XLogData send time")?;
                let header = c.position();
                Ok(ReplicationMessage::XLogData(XLogDataBody {
                    wal_start,
                    wal_end,
                    send_time,
                    data: payload.slice(header..),
                }))
            }
            b'k' => {
                let wal_end = Lsn::new(c.u64("keepalive end")?);
                let send_time = c.i64("keepalive send time")?;
                let reply = c.u8("keepalive reply flag")?;
                c.finish()?;
                Ok(ReplicationMessage::PrimaryKeepalive(PrimaryKeepaliveBody {
                    wal_end,
                    send_time,
                    reply_requested: reply != 0,
                }))
            }
            other => Err(Error::protocol(format!(
                "unexpected CopyData message of type 0x{other:02x} during START_REPLICATION"
            ))),
        }
    }
}

/// `'w'` XLogData.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct XLogDataBody {
    wal_start: Lsn,
    wal_end: Lsn,
    send_time: i64,
    data: Bytes,
}

impl XLogDataBody {
    /// Builds a body (for tests and replays).
    pub fn new(wal_start: Lsn, wal_end: Lsn, send_time: i64, data: Bytes) -> XLogDataBody {
        XLogDataBody {
            wal_start,
            wal_end,
            send_time,
            data,
        }
    }

    /// Position of the first byte of [`data`](Self::data).
    pub fn wal_start(&self) -> Lsn {
        self.wal_start
    }

    /// The server's end of WAL when it sent this (not the end of this message).
    pub fn wal_end(&self) -> Lsn {
        self.wal_end
    }

    /// The server's clock when it sent this, µs since 2000-01-01 UTC.
    pub fn send_time(&self) -> i64 {
        self.send_time
    }

    /// The WAL bytes, as in the segment files.
    pub fn data(&self) -> &Bytes {
        &self.data
    }

    /// Consumes the body, returning the WAL bytes.
    pub fn into_data(self) -> Bytes {
        self.data
    }

    /// Position just past the last byte of this message, or `None` on overflow (a hostile
    /// server).
    pub fn data_end(&self) -> Option<Lsn> {
        self.wal_start.checked_add(self.data.len() as u64)
    }
}

/// `'k'` primary keepalive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrimaryKeepaliveBody {
    wal_end: Lsn,
    send_time: i64,
    reply_requested: bool,
}

impl PrimaryKeepaliveBody {
    /// The server's current end of WAL.
    pub fn wal_end(&self) -> Lsn {
        self.wal_end
    }

    /// The server's clock, µs since 2000-01-01 UTC.
    pub fn send_time(&self) -> i64 {
        self.send_time
    }

    /// True when the server wants a status update at once (or it will time us out).
    pub fn reply_requested(&self) -> bool {
        self.reply_requested
    }
}

/// Writes a CopyData holding a standby status update (`'r'`): positions are "last byte + 1"
/// written, flushed and applied (0/0 = not reported); `send_time` is µs since 2000-01-01.
pub fn standby_status_update(
    write: Lsn,
    flush: Lsn,
    apply: Lsn,
    send_time: i64,
    reply_requested: bool,
    buf: &mut BytesMut,
) {
    write_message(b'd', buf, |b| {
        b.put_u8(b'r');
        b.put_u64(write.as_u64());
        b.put_u64(flush.as_u64());
        b.put_u64(apply.as_u64());
        b.put_i64(send_time);
        b.put_u8(u8::from(reply_requested));
    });
}

/// Writes a CopyData holding hot standby feedback (`'h'`); all zeros clears the feedback.
pub fn hot_standby_feedback(
    send_time: i64,
    xmin: u32,
    xmin_epoch: u32,
    catalog_xmin: u32,
    catalog_xmin_epoch: u32,
    buf: &mut BytesMut,
) {
    write_message(b'd', buf, |b| {
        b.put_u8(b'h');
        b.put_i64(send_time);
        b.put_u32(xmin);
        b.put_u32(xmin_epoch);
        b.put_u32(catalog_xmin);
        b.put_u32(catalog_xmin_epoch);
    });
}

/// A CopyData message of the 15+ BASE_BACKUP stream.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BaseBackupMessage {
    /// `'n'`: a new archive starts (`base.tar`, `16395.tar.gz`, ...) for the tablespace at
    /// `location` (empty for the main data directory).
    NewArchive {
        /// The archive's file name.
        name: String,
        /// The tablespace's directory on the server; empty for the data directory.
        location: String,
    },
    /// `'d'`: bytes of the current archive or of the manifest.
    Data(Bytes),
    /// `'p'`: cumulative archive bytes processed so far, across all archives.
    Progress(u64),
    /// `'m'`: the manifest follows, in `Data` messages.
    Manifest,
}

impl BaseBackupMessage {
    /// Decodes a CopyData payload of a 15+ BASE_BACKUP.
    pub fn parse(payload: &Bytes) -> Result<BaseBackupMessage> {
        let mut c = Cursor::new("BASE_BACKUP CopyData", payload);
        let message = match c.u8("message type")? {
            b'n' => {
                let name = c.cstr("archive name")?.to_owned();
                let location = c.cstr("tablespace location")?.to_owned();
                BaseBackupMessage::NewArchive { name, location }
            }
            b'd' => return Ok(BaseBackupMessage::Data(payload.slice(1..))),
            b'p' => {
                let done = c.u64("progress")?;
                BaseBackupMessage::Progress(done)
            }
            b'm' => BaseBackupMessage::Manifest,
            other => {
                return Err(Error::protocol(format!(
                    "malformed COPY message of type 0x{other:02x} during BASE_BACKUP"
                )))
            }
        };
        c.finish()?;
        Ok(message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_observed_xlogdata_header() {
        let mut p = hex("77 0000000001000000 000000000177bd88 000303d299ed5523");
        p.extend_from_slice(&[0x10, 0xd1]);
        let m = ReplicationMessage::parse(&Bytes::from(p)).unwrap();
        let ReplicationMessage::XLogData(x) = m else {
            panic!("{m:?}")
        };
        assert_eq!(x.wal_start().to_string(), "0/1000000");
        assert_eq!(x.wal_end().to_string(), "0/177BD88");
        assert_eq!(x.send_time(), 0x000303d299ed5523);
        assert_eq!(x.data().as_ref(), &[0x10, 0xd1]);
        assert_eq!(x.data_end(), Some(Lsn::new(0x1000002)));
    }

    #[test]
    fn decodes_observed_keepalive() {
        let p = hex("6b 00000000017be770 000303d29b575648 00");
        let m = ReplicationMessage::parse(&Bytes::from(p)).unwrap();
        let ReplicationMessage::PrimaryKeepalive(k) = m else {
            panic!("{m:?}")
        };
        assert_eq!(k.wal_end(), Lsn::new(0x17be770));
        assert!(!k.reply_requested());
    }

    #[test]
    fn writes_observed_status_update() {
        let mut buf = BytesMut::new();
        standby_status_update(
            Lsn::new(0x17be770),
            Lsn::new(0x17be770),
            Lsn::INVALID,
            0x000303d29b5755dc,
            true,
            &mut buf,
        );
        let mut expected = hex("64 00000026");
        expected.extend(hex(
            "72 00000000017be770 00000000017be770 0000000000000000 000303d29b5755dc 01",
        ));
        assert_eq!(buf.as_ref(), &expected[..]);

        let mut buf = BytesMut::new();
        hot_standby_feedback(0x000303d29b5756b9, 0, 0, 0, 0, &mut buf);
        assert_eq!(buf.len(), 1 + 4 + 25);
    }

    #[test]
    fn decodes_observed_base_backup_messages() {
        let n = BaseBackupMessage::parse(&Bytes::from(hex("6e 626173652e74617200 00"))).unwrap();
        assert_eq!(
            n,
            BaseBackupMessage::NewArchive {
                name: "base.tar".into(),
                location: String::new()
            }
        );
        let p = BaseBackupMessage::parse(&Bytes::from(hex("70 00000000026c6200"))).unwrap();
        assert_eq!(p, BaseBackupMessage::Progress(40657408));
        let m = BaseBackupMessage::parse(&Bytes::from(hex("6d"))).unwrap();
        assert_eq!(m, BaseBackupMessage::Manifest);
        let d = BaseBackupMessage::parse(&Bytes::from_static(b"dabc")).unwrap();
        assert_eq!(d, BaseBackupMessage::Data(Bytes::from_static(b"abc")));
    }

    #[test]
    fn rejects_truncated_and_unknown_payloads() {
        for p in [
            &b""[..],
            b"w",
            b"w\0\0\0\0\0\0\0\0\0\0\0\0",
            b"k\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0",
            b"k\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0",
            b"x",
        ] {
            assert!(
                ReplicationMessage::parse(&Bytes::copy_from_slice(p)).is_err(),
                "{p:?}"
            );
        }
        for p in [
            &b""[..],
            b"n",
            b"nabc\0",
            b"p\0\0",
            b"p\0\0\0\0\0\0\0\0\0",
            b"mx",
            b"z",
        ] {
            assert!(
                BaseBackupMessage::parse(&Bytes::copy_from_slice(p)).is_err(),
                "{p:?}"
            );
        }
        // Any prefix of any payload is an error or a value, never a panic.
        let full = hex("77 0000000001000000 000000000177bd88 000303d299ed5523 ff");
        for i in 0..full.len() {
            let _ = ReplicationMessage::parse(&Bytes::copy_from_slice(&full[..i]));
            let _ = BaseBackupMessage::parse(&Bytes::copy_from_slice(&full[..i]));
        }
    }

    #[test]
    fn converts_clock_to_postgres_epoch() {
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(946_684_800);
        assert_eq!(timestamp_from_system_time(t), 0);
        let t = t + std::time::Duration::from_micros(5);
        assert_eq!(timestamp_from_system_time(t), 5);
        assert!(current_timestamp() > 0);
    }

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }
}
