//! Backend (server → client) messages, decoded without I/O.
//!
//! Shaped like `postgres-protocol`'s `message::backend::Message` (STYLE.md rule 3), with the
//! messages that crate lacks for replication (CopyBothResponse `'W'`). [`BackendMessage::parse`]
//! takes bytes from the front of a buffer and returns `Ok(None)` while a whole message is not
//! there yet. Bodies keep their bytes (`Bytes`, shared with the read buffer) and were validated
//! when parsed, so their accessors cannot fail. See PostgreSQL's "Message Formats" and
//! PROTOCOL.md §1, §3 and §5.

use bytes::{Buf, Bytes, BytesMut};

use super::cursor::Cursor;
use super::DbError;
use crate::error::{Error, Result};

/// The largest message accepted by default: far above what a walsender sends (128 kB of WAL,
/// a timeline history file), far below what would exhaust memory.
pub const DEFAULT_MAX_MESSAGE_LEN: usize = 64 * 1024 * 1024;

/// One message from the server.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum BackendMessage {
    /// `'R'`: an authentication request or result.
    Authentication(Authentication),
    /// `'K'`: the cancel key of this backend.
    BackendKeyData(BackendKeyDataBody),
    /// `'C'`: a command finished; its tag.
    CommandComplete(CommandCompleteBody),
    /// `'d'`: a chunk of COPY data.
    CopyData(Bytes),
    /// `'c'`: the end of the server's COPY data.
    CopyDone,
    /// `'G'`: the server waits for COPY data (UPLOAD_MANIFEST).
    CopyInResponse(CopyResponseBody),
    /// `'H'`: COPY data from the server follows (BASE_BACKUP).
    CopyOutResponse(CopyResponseBody),
    /// `'W'`: COPY data flows both ways (START_REPLICATION).
    CopyBothResponse(CopyResponseBody),
    /// `'D'`: one row of a result set.
    DataRow(DataRowBody),
    /// `'I'`: the query string was empty.
    EmptyQueryResponse,
    /// `'E'`: an error.
    ErrorResponse(DbError),
    /// `'N'`: a notice or warning; the command goes on.
    NoticeResponse(DbError),
    /// `'A'`: a LISTEN/NOTIFY notification (not expected on replication connections).
    NotificationResponse(Bytes),
    /// `'v'`: the server does not support the requested protocol minor version or options.
    NegotiateProtocolVersion(NegotiateProtocolVersionBody),
    /// `'S'`: a run-time parameter's value.
    ParameterStatus(ParameterStatusBody),
    /// `'Z'`: ready for a new query.
    ReadyForQuery(ReadyForQueryBody),
    /// `'T'`: the columns of the result set that follows.
    RowDescription(RowDescriptionBody),
}

impl BackendMessage {
    /// Takes one whole message from the front of `buf`. `Ok(None)`: more bytes are needed (the
    /// buffer is left untouched). Errors: an unknown type byte, a length below 4 or above
    /// `max_len`, or a body that does not match its type.
    pub fn parse(buf: &mut BytesMut, max_len: usize) -> Result<Option<BackendMessage>> {
        if buf.len() < 5 {
            return Ok(None);
        }
        let tag = buf[0];
        let len = u32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]) as usize;
        if len < 4 {
            return Err(Error::protocol(format!(
                "invalid length {len} in message of type {}",
                describe_tag(tag)
            )));
        }
        if len > max_len {
            return Err(Error::protocol(format!(
                "message of type {} is too large: {len} bytes (limit {max_len})",
                describe_tag(tag)
            )));
        }
        if buf.len() < len + 1 {
            return Ok(None);
        }
        buf.advance(5);
        let body = buf.split_to(len - 4).freeze();
        BackendMessage::decode(tag, body).map(Some)
    }

    /// The bytes the message at the front of `buf` takes in all (type byte, length and body),
    /// once its 5-byte header is there: the room a reader needs before the message can be
    /// whole. Use it after [`BackendMessage::parse`] returned `Ok(None)`, which checked the
    /// length against its limit.
    pub fn frame_len(buf: &[u8]) -> Option<usize> {
        let header = buf.get(..5)?;
        Some(u32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize + 1)
    }

    /// Decodes a message body of type `tag` (without the type byte and length).
    pub fn decode(tag: u8, body: Bytes) -> Result<BackendMessage> {
        let message = match tag {
            b'R' => BackendMessage::Authentication(Authentication::parse(&body)?),
            b'K' => BackendMessage::BackendKeyData(BackendKeyDataBody::parse(&body)?),
            b'C' => BackendMessage::CommandComplete(CommandCompleteBody::parse(&body)?),
            b'd' => BackendMessage::CopyData(body),
            b'c' => {
                empty(tag, &body)?;
                BackendMessage::CopyDone
            }
            b'G' => BackendMessage::CopyInResponse(CopyResponseBody::parse(&body)?),
            b'H' => BackendMessage::CopyOutResponse(CopyResponseBody::parse(&body)?),
            b'W' => BackendMessage::CopyBothResponse(CopyResponseBody::parse(&body)?),
            b'D' => BackendMessage::DataRow(DataRowBody::parse(body)?),
            b'I' => {
                empty(tag, &body)?;
                BackendMessage::EmptyQueryResponse
            }
            b'E' => BackendMessage::ErrorResponse(DbError::parse(&body)?),
            b'N' => BackendMessage::NoticeResponse(DbError::parse(&body)?),
            b'A' => BackendMessage::NotificationResponse(body),
            b'v' => BackendMessage::NegotiateProtocolVersion(NegotiateProtocolVersionBody::parse(
                &body,
            )?),
            b'S' => BackendMessage::ParameterStatus(ParameterStatusBody::parse(&body)?),
            b'Z' => BackendMessage::ReadyForQuery(ReadyForQueryBody::parse(&body)?),
            b'T' => BackendMessage::RowDescription(RowDescriptionBody::parse(&body)?),
            other => {
                return Err(Error::protocol(format!(
                    "unexpected message type {} from the server",
                    describe_tag(other)
                )))
            }
        };
        Ok(message)
    }

    /// The message's name, for error messages (`"CopyData"`, `"ReadyForQuery"`, ...).
    pub fn name(&self) -> &'static str {
        match self {
            BackendMessage::Authentication(_) => "Authentication",
            BackendMessage::BackendKeyData(_) => "BackendKeyData",
            BackendMessage::CommandComplete(_) => "CommandComplete",
            BackendMessage::CopyData(_) => "CopyData",
            BackendMessage::CopyDone => "CopyDone",
            BackendMessage::CopyInResponse(_) => "CopyInResponse",
            BackendMessage::CopyOutResponse(_) => "CopyOutResponse",
            BackendMessage::CopyBothResponse(_) => "CopyBothResponse",
            BackendMessage::DataRow(_) => "DataRow",
            BackendMessage::EmptyQueryResponse => "EmptyQueryResponse",
            BackendMessage::ErrorResponse(_) => "ErrorResponse",
            BackendMessage::NoticeResponse(_) => "NoticeResponse",
            BackendMessage::NotificationResponse(_) => "NotificationResponse",
            BackendMessage::NegotiateProtocolVersion(_) => "NegotiateProtocolVersion",
            BackendMessage::ParameterStatus(_) => "ParameterStatus",
            BackendMessage::ReadyForQuery(_) => "ReadyForQuery",
            BackendMessage::RowDescription(_) => "RowDescription",
        }
    }
}

/// `'x'` for printable type bytes, `0xNN` otherwise.
fn describe_tag(tag: u8) -> String {
    if tag.is_ascii_graphic() {
        format!("'{}'", tag as char)
    } else {
        format!("0x{tag:02x}")
    }
}

fn empty(tag: u8, body: &[u8]) -> Result<()> {
    if body.is_empty() {
        Ok(())
    } else {
        Err(Error::protocol(format!(
            "message of type {} should be empty but has {} bytes",
            describe_tag(tag),
            body.len()
        )))
    }
}

/// The `'R'` messages.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Authentication {
    /// Code 0: authenticated.
    Ok,
    /// Code 3: send the password in clear text.
    CleartextPassword,
    /// Code 5: send the MD5 hash of the password with this salt.
    Md5Password {
        /// The 4-byte salt.
        salt: [u8; 4],
    },
    /// Code 10: SASL, with the mechanisms the server offers.
    Sasl {
        /// The mechanism names, in the server's order of preference.
        mechanisms: Vec<String>,
    },
    /// Code 11: a SASL challenge (server-first-message).
    SaslContinue(Bytes),
    /// Code 12: the SASL outcome (server-final-message).
    SaslFinal(Bytes),
    /// Any other code (Kerberos, GSSAPI, SSPI, ...): not supported by this crate.
    Unsupported(i32),
}

impl Authentication {
    fn parse(body: &[u8]) -> Result<Authentication> {
        let mut c = Cursor::new("Authentication", body);
        let code = c.i32("authentication code")?;
        let auth = match code {
            0 => Authentication::Ok,
            3 => Authentication::CleartextPassword,
            5 => {
                let salt = c.take(4, "salt")?;
                Authentication::Md5Password {
                    salt: [salt[0], salt[1], salt[2], salt[3]],
                }
            }
            10 => {
                let mut mechanisms = Vec::new();
                loop {
                    let name = c.cstr("SASL mechanism")?;
                    if name.is_empty() {
                        break;
                    }
                    mechanisms.push(name.to_owned());
                }
                Authentication::Sasl { mechanisms }
            }
            11 => {
                return Ok(Authentication::SaslContinue(Bytes::copy_from_slice(
                    c.rest(),
                )))
            }
            12 => return Ok(Authentication::SaslFinal(Bytes::copy_from_slice(c.rest()))),
            other => return Ok(Authentication::Unsupported(other)),
        };
        c.finish()?;
        Ok(auth)
    }
}

/// `'K'`: process id and secret key (4 bytes with protocol 3.0, up to 256 with 3.2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackendKeyDataBody {
    process_id: i32,
    secret_key: Bytes,
}

impl BackendKeyDataBody {
    fn parse(body: &[u8]) -> Result<BackendKeyDataBody> {
        let mut c = Cursor::new("BackendKeyData", body);
        let process_id = c.i32("process id")?;
        let secret_key = c.rest();
        if secret_key.len() < 4 || secret_key.len() > 256 {
            return Err(Error::protocol(format!(
                "malformed BackendKeyData message: secret key of {} bytes",
                secret_key.len()
            )));
        }
        Ok(BackendKeyDataBody {
            process_id,
            secret_key: Bytes::copy_from_slice(secret_key),
        })
    }

    /// The backend's process id.
    pub fn process_id(&self) -> i32 {
        self.process_id
    }

    /// The cancel key.
    pub fn secret_key(&self) -> &[u8] {
        &self.secret_key
    }
}

/// `'C'`: the command tag (`IDENTIFY_SYSTEM`, `SELECT`, `COPY 0`, ...).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandCompleteBody {
    tag: String,
}

impl CommandCompleteBody {
    fn parse(body: &[u8]) -> Result<CommandCompleteBody> {
        let mut c = Cursor::new("CommandComplete", body);
        let tag = c.cstr("command tag")?.to_owned();
        c.finish()?;
        Ok(CommandCompleteBody { tag })
    }

    /// The command tag.
    pub fn tag(&self) -> &str {
        &self.tag
    }
}

/// `'G'`, `'H'`, `'W'`: overall format and per-column formats.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyResponseBody {
    format: u8,
    column_formats: Vec<i16>,
}

impl CopyResponseBody {
    fn parse(body: &[u8]) -> Result<CopyResponseBody> {
        let mut c = Cursor::new("CopyResponse", body);
        let format = c.u8("format")?;
        let count = c.i16("column count")?;
        let count = usize::try_from(count).map_err(|_| {
            Error::protocol("malformed CopyResponse message: negative column count")
        })?;
        let mut column_formats = Vec::with_capacity(count.min(c.rest().len() / 2));
        for _ in 0..count {
            column_formats.push(c.i16("column format")?);
        }
        c.finish()?;
        Ok(CopyResponseBody {
            format,
            column_formats,
        })
    }

    /// 0 = text, 1 = binary (always 0 for replication).
    pub fn format(&self) -> u8 {
        self.format
    }

    /// The format of each column.
    pub fn column_formats(&self) -> &[i16] {
        &self.column_formats
    }
}

/// `'D'`: the values of one row; `None` is SQL NULL. Values are the server's text output.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataRowBody {
    storage: Bytes,
    ranges: Vec<Option<(usize, usize)>>,
}

impl DataRowBody {
    fn parse(body: Bytes) -> Result<DataRowBody> {
        let mut c = Cursor::new("DataRow", &body);
        let count = c.i16("column count")?;
        let count = usize::try_from(count)
            .map_err(|_| Error::protocol("malformed DataRow message: negative column count"))?;
        let mut ranges = Vec::with_capacity(count.min(c.rest().len() / 4 + 1));
        for _ in 0..count {
            let len = c.i32("value length")?;
            if len == -1 {
                ranges.push(None);
                continue;
            }
            let len = usize::try_from(len)
                .map_err(|_| Error::protocol("malformed DataRow message: negative value length"))?;
            let start = c.position();
            c.take(len, "value")?;
            ranges.push(Some((start, start + len)));
        }
        c.finish()?;
        Ok(DataRowBody {
            storage: body.clone(),
            ranges,
        })
    }

    /// The number of values.
    pub fn len(&self) -> usize {
        self.ranges.len()
    }

    /// True for a row without columns.
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// Value `index` (`None` for NULL or past the end), sharing the message's bytes.
    pub fn get(&self, index: usize) -> Option<Bytes> {
        let (start, end) = (*self.ranges.get(index)?)?;
        Some(self.storage.slice(start..end))
    }

    /// All values in order.
    pub fn values(&self) -> Vec<Option<Bytes>> {
        (0..self.len()).map(|i| self.get(i)).collect()
    }
}

/// `'v'`: the newest minor protocol version the server supports and the options it ignored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NegotiateProtocolVersionBody {
    newest_minor_version: i32,
    unrecognized_options: Vec<String>,
}

impl NegotiateProtocolVersionBody {
    fn parse(body: &[u8]) -> Result<NegotiateProtocolVersionBody> {
        let mut c = Cursor::new("NegotiateProtocolVersion", body);
        let newest_minor_version = c.i32("minor version")?;
        let count = c.i32("option count")?;
        let count = usize::try_from(count).map_err(|_| {
            Error::protocol("malformed NegotiateProtocolVersion message: negative option count")
        })?;
        let mut unrecognized_options = Vec::new();
        for _ in 0..count {
            unrecognized_options.push(c.cstr("option name")?.to_owned());
        }
        c.finish()?;
        Ok(NegotiateProtocolVersionBody {
            newest_minor_version,
            unrecognized_options,
        })
    }

    /// The newest minor version of protocol 3 the server speaks.
    pub fn newest_minor_version(&self) -> i32 {
        self.newest_minor_version
    }

    /// The `_pq_.` options the server did not recognize.
    pub fn unrecognized_options(&self) -> &[String] {
        &self.unrecognized_options
    }
}

/// `'S'`: a run-time parameter and its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParameterStatusBody {
    name: String,
    value: String,
}

impl ParameterStatusBody {
    fn parse(body: &[u8]) -> Result<ParameterStatusBody> {
        let mut c = Cursor::new("ParameterStatus", body);
        let name = String::from_utf8_lossy(c.cstr_bytes("name")?).into_owned();
        let value = String::from_utf8_lossy(c.cstr_bytes("value")?).into_owned();
        c.finish()?;
        Ok(ParameterStatusBody { name, value })
    }

    /// The parameter's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its value.
    pub fn value(&self) -> &str {
        &self.value
    }
}

/// `'Z'`: the transaction status (`I` idle, `T` in a transaction, `E` failed transaction).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadyForQueryBody {
    status: u8,
}

impl ReadyForQueryBody {
    fn parse(body: &[u8]) -> Result<ReadyForQueryBody> {
        let mut c = Cursor::new("ReadyForQuery", body);
        let status = c.u8("transaction status")?;
        c.finish()?;
        if !matches!(status, b'I' | b'T' | b'E') {
            return Err(Error::protocol(format!(
                "malformed ReadyForQuery message: transaction status {}",
                describe_tag(status)
            )));
        }
        Ok(ReadyForQueryBody { status })
    }

    /// The transaction status byte.
    pub fn status(&self) -> u8 {
        self.status
    }
}

/// One column of a `'T'` message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldDescription {
    /// Column name.
    pub name: String,
    /// Table OID, or 0.
    pub table_oid: u32,
    /// Column number in that table, or 0.
    pub column_id: i16,
    /// Type OID (25 text, 23 int4, 20 int8, 26 oid, 17 bytea).
    pub type_oid: u32,
    /// Type length (-1 variable; not reliable for replication results, PROTOCOL.md §1.5).
    pub type_size: i16,
    /// Type modifier.
    pub type_modifier: i32,
    /// 0 text, 1 binary.
    pub format: i16,
}

/// `'T'`: the columns of a result set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowDescriptionBody {
    fields: Vec<FieldDescription>,
}

impl RowDescriptionBody {
    fn parse(body: &[u8]) -> Result<RowDescriptionBody> {
        let mut c = Cursor::new("RowDescription", body);
        let count = c.i16("column count")?;
        let count = usize::try_from(count).map_err(|_| {
            Error::protocol("malformed RowDescription message: negative column count")
        })?;
        let mut fields = Vec::with_capacity(count.min(c.rest().len() / 19 + 1));
        for _ in 0..count {
            fields.push(FieldDescription {
                name: String::from_utf8_lossy(c.cstr_bytes("column name")?).into_owned(),
                table_oid: c.u32("table oid")?,
                column_id: c.i16("column number")?,
                type_oid: c.u32("type oid")?,
                type_size: c.i16("type size")?,
                type_modifier: c.i32("type modifier")?,
                format: c.i16("format code")?,
            });
        }
        c.finish()?;
        Ok(RowDescriptionBody { fields })
    }

    /// The columns in order.
    pub fn fields(&self) -> &[FieldDescription] {
        &self.fields
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(tag: u8, body: &[u8]) -> Vec<u8> {
        let mut v = vec![tag];
        v.extend_from_slice(&((body.len() + 4) as u32).to_be_bytes());
        v.extend_from_slice(body);
        v
    }

    fn parse_all(bytes: &[u8]) -> Result<Vec<BackendMessage>> {
        let mut buf = BytesMut::from(bytes);
        let mut out = Vec::new();
        while let Some(m) = BackendMessage::parse(&mut buf, DEFAULT_MAX_MESSAGE_LEN)? {
            out.push(m);
        }
        assert!(buf.is_empty(), "left over: {buf:?}");
        Ok(out)
    }

    #[test]
    fn needs_more_bytes_until_a_message_is_whole() {
        let bytes = frame(b'Z', b"I");
        for cut in 0..bytes.len() {
            let mut buf = BytesMut::from(&bytes[..cut]);
            assert_eq!(BackendMessage::parse(&mut buf, 1024).unwrap(), None);
            assert_eq!(buf.len(), cut, "a partial message is left in place");
            let expected = (cut >= 5).then_some(bytes.len());
            assert_eq!(BackendMessage::frame_len(&buf), expected);
        }
        let mut buf = BytesMut::from(&bytes[..]);
        let m = BackendMessage::parse(&mut buf, 1024).unwrap().unwrap();
        assert_eq!(
            m,
            BackendMessage::ReadyForQuery(ReadyForQueryBody { status: b'I' })
        );
    }

    #[test]
    fn decodes_a_startup_sequence() {
        let mut bytes = frame(b'R', &[0, 0, 0, 5, 0x85, 0xb3, 0x03, 0x4d]);
        bytes.extend(frame(
            b'R',
            b"\0\0\0\x0aSCRAM-SHA-256-PLUS\0SCRAM-SHA-256\0\0",
        ));
        bytes.extend(frame(b'R', &[0, 0, 0, 0]));
        bytes.extend(frame(b'S', b"server_version\x0015.20 (Debian)\0"));
        bytes.extend(frame(b'K', &[0, 0, 0x30, 0x39, 1, 2, 3, 4]));
        bytes.extend(frame(b'Z', b"I"));
        let m = parse_all(&bytes).unwrap();
        assert_eq!(
            m[0],
            BackendMessage::Authentication(Authentication::Md5Password {
                salt: [0x85, 0xb3, 0x03, 0x4d]
            })
        );
        assert_eq!(
            m[1],
            BackendMessage::Authentication(Authentication::Sasl {
                mechanisms: vec!["SCRAM-SHA-256-PLUS".into(), "SCRAM-SHA-256".into()]
            })
        );
        assert_eq!(m[2], BackendMessage::Authentication(Authentication::Ok));
        match &m[3] {
            BackendMessage::ParameterStatus(p) => {
                assert_eq!((p.name(), p.value()), ("server_version", "15.20 (Debian)"))
            }
            other => panic!("{other:?}"),
        }
        match &m[4] {
            BackendMessage::BackendKeyData(k) => {
                assert_eq!(k.process_id(), 12345);
                assert_eq!(k.secret_key(), &[1, 2, 3, 4]);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn decodes_a_result_set() {
        let mut t = vec![0, 2];
        for (name, oid) in [("systemid", 25u32), ("timeline", 23)] {
            t.extend_from_slice(name.as_bytes());
            t.push(0);
            t.extend_from_slice(&0u32.to_be_bytes());
            t.extend_from_slice(&0i16.to_be_bytes());
            t.extend_from_slice(&oid.to_be_bytes());
            t.extend_from_slice(&(-1i16).to_be_bytes());
            t.extend_from_slice(&0i32.to_be_bytes());
            t.extend_from_slice(&0i16.to_be_bytes());
        }
        let mut d = vec![0, 2, 0, 0, 0, 3];
        d.extend_from_slice(b"123");
        d.extend_from_slice(&(-1i32).to_be_bytes());
        let mut bytes = frame(b'T', &t);
        bytes.extend(frame(b'D', &d));
        bytes.extend(frame(b'C', b"IDENTIFY_SYSTEM\0"));
        let m = parse_all(&bytes).unwrap();
        match &m[0] {
            BackendMessage::RowDescription(r) => {
                assert_eq!(r.fields()[1].name, "timeline");
                assert_eq!(r.fields()[1].type_oid, 23);
            }
            other => panic!("{other:?}"),
        }
        match &m[1] {
            BackendMessage::DataRow(r) => {
                assert_eq!(r.values(), vec![Some(Bytes::from_static(b"123")), None]);
                assert_eq!(r.get(7), None);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn rejects_bad_lengths_and_types() {
        let mut buf = BytesMut::from(&[b'Z', 0, 0, 0, 3][..]);
        assert!(BackendMessage::parse(&mut buf, 1024).is_err());
        let mut buf = BytesMut::from(&[b'd', 0, 0, 8, 0][..]);
        let err = BackendMessage::parse(&mut buf, 1024).unwrap_err();
        assert!(err.to_string().contains("too large"), "{err}");
        let mut buf = BytesMut::from(&frame(b'?', b"")[..]);
        assert!(BackendMessage::parse(&mut buf, 1024).is_err());
        let mut buf = BytesMut::from(&frame(b'c', b"x")[..]);
        assert!(BackendMessage::parse(&mut buf, 1024).is_err());
        let mut buf = BytesMut::from(&frame(b'Z', b"Q")[..]);
        assert!(BackendMessage::parse(&mut buf, 1024).is_err());
        let mut buf = BytesMut::from(&frame(b'D', &[0xff, 0xff])[..]);
        assert!(BackendMessage::parse(&mut buf, 1024).is_err());
        let mut buf = BytesMut::from(&frame(b'D', &[0, 1, 0, 0, 0, 9, 1])[..]);
        assert!(BackendMessage::parse(&mut buf, 1024).is_err());
        let mut buf = BytesMut::from(&frame(b'K', &[0, 0, 0, 1])[..]);
        assert!(BackendMessage::parse(&mut buf, 1024).is_err());
    }

    /// Every prefix and every single-byte corruption of a valid transcript parses or fails,
    /// never panics.
    #[test]
    fn garbage_never_panics() {
        let mut bytes = frame(b'R', b"\0\0\0\x0aSCRAM-SHA-256\0\0");
        bytes.extend(frame(
            b'T',
            &[
                0, 1, b'a', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 25, 0xff, 0xff, 0, 0, 0, 0, 0, 0,
            ],
        ));
        bytes.extend(frame(b'D', &[0, 1, 0, 0, 0, 1, b'x']));
        bytes.extend(frame(b'E', b"SERROR\0C42704\0Mnope\0\0"));
        bytes.extend(frame(b'W', &[0, 0, 0]));
        bytes.extend(frame(b'v', &[0, 0, 0, 0, 0, 0, 0, 1, b'x', 0]));
        for i in 0..bytes.len() {
            for v in [0u8, 1, 0x7f, 0x80, 0xff] {
                let mut b = bytes.clone();
                b[i] = v;
                let mut buf = BytesMut::from(&b[..]);
                while let Ok(Some(_)) = BackendMessage::parse(&mut buf, 4096) {}
                let mut buf = BytesMut::from(&b[..i]);
                while let Ok(Some(_)) = BackendMessage::parse(&mut buf, 4096) {}
            }
        }
    }
}
