//! Frontend (client → server) messages, written into a `BytesMut` by free functions.
//!
//! Every tagged message goes through [`write_message`], which reserves the 4-byte length and
//! fills it in once the body is written (STYLE.md rule 3). Strings cannot hold a NUL byte on
//! the wire; functions taking strings reject one with a usage error instead of truncating.

use bytes::{BufMut, BytesMut};

use crate::error::{Error, Result};

/// `SSLRequest` code (PROTOCOL.md §1.1).
pub const SSL_REQUEST_CODE: i32 = 80_877_103;
/// Protocol version 3.0 (`0x00030000`).
pub const PROTOCOL_VERSION_3_0: i32 = 196_608;

/// Writes a message with type byte `tag`, its length, and the body `body` writes.
pub fn write_message(tag: u8, buf: &mut BytesMut, body: impl FnOnce(&mut BytesMut)) {
    buf.put_u8(tag);
    write_untagged(buf, body);
}

/// Writes a length-prefixed message without a type byte (startup and SSLRequest packets).
fn write_untagged(buf: &mut BytesMut, body: impl FnOnce(&mut BytesMut)) {
    let start = buf.len();
    buf.put_i32(0);
    body(buf);
    // Messages we build are far below 2 GiB; saturate rather than wrap if one ever is not.
    let len = i32::try_from(buf.len() - start).unwrap_or(i32::MAX);
    buf[start..start + 4].copy_from_slice(&len.to_be_bytes());
}

fn cstr(what: &str, s: &[u8]) -> Result<()> {
    if s.contains(&0) {
        Err(Error::usage(format!("{what} cannot contain a NUL byte")))
    } else {
        Ok(())
    }
}

fn put_cstr(buf: &mut BytesMut, s: &[u8]) {
    buf.put_slice(s);
    buf.put_u8(0);
}

/// `SSLRequest`: 8 bytes, answered by one byte `S` or `N`.
pub fn ssl_request(buf: &mut BytesMut) {
    write_untagged(buf, |b| b.put_i32(SSL_REQUEST_CODE));
}

/// `StartupMessage` for protocol 3.0 with the given `(name, value)` parameters.
pub fn startup_message<'a>(
    parameters: impl IntoIterator<Item = (&'a str, &'a str)>,
    buf: &mut BytesMut,
) -> Result<()> {
    let parameters: Vec<(&str, &str)> = parameters.into_iter().collect();
    for (name, value) in &parameters {
        cstr("a startup parameter name", name.as_bytes())?;
        cstr(&format!("startup parameter {name}"), value.as_bytes())?;
    }
    write_untagged(buf, |b| {
        b.put_i32(PROTOCOL_VERSION_3_0);
        for (name, value) in &parameters {
            put_cstr(b, name.as_bytes());
            put_cstr(b, value.as_bytes());
        }
        b.put_u8(0);
    });
    Ok(())
}

/// `PasswordMessage` (`'p'`): a cleartext password or an MD5 hash, NUL-terminated.
pub fn password_message(password: &[u8], buf: &mut BytesMut) -> Result<()> {
    cstr("a password", password)?;
    write_message(b'p', buf, |b| put_cstr(b, password));
    Ok(())
}

/// `SASLInitialResponse` (`'p'`): mechanism, then the client-first-message.
pub fn sasl_initial_response(mechanism: &str, data: &[u8], buf: &mut BytesMut) -> Result<()> {
    cstr("a SASL mechanism", mechanism.as_bytes())?;
    let len = i32::try_from(data.len()).map_err(|_| Error::usage("SASL message too long"))?;
    write_message(b'p', buf, |b| {
        put_cstr(b, mechanism.as_bytes());
        b.put_i32(len);
        b.put_slice(data);
    });
    Ok(())
}

/// `SASLResponse` (`'p'`): the client-final-message.
pub fn sasl_response(data: &[u8], buf: &mut BytesMut) {
    write_message(b'p', buf, |b| b.put_slice(data));
}

/// `Query` (`'Q'`): the simple query protocol, the only one a walsender accepts.
pub fn query(sql: &str, buf: &mut BytesMut) -> Result<()> {
    cstr("a query", sql.as_bytes())?;
    write_message(b'Q', buf, |b| put_cstr(b, sql.as_bytes()));
    Ok(())
}

/// `CopyData` (`'d'`) with an opaque payload.
pub fn copy_data(payload: &[u8], buf: &mut BytesMut) {
    write_message(b'd', buf, |b| b.put_slice(payload));
}

/// `CopyDone` (`'c'`).
pub fn copy_done(buf: &mut BytesMut) {
    write_message(b'c', buf, |_| {});
}

/// `CopyFail` (`'f'`) with a reason.
pub fn copy_fail(reason: &str, buf: &mut BytesMut) -> Result<()> {
    cstr("a CopyFail reason", reason.as_bytes())?;
    write_message(b'f', buf, |b| put_cstr(b, reason.as_bytes()));
    Ok(())
}

/// `Terminate` (`'X'`).
pub fn terminate(buf: &mut BytesMut) {
    write_message(b'X', buf, |_| {});
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn startup_matches_the_observed_packet() {
        let mut buf = BytesMut::new();
        startup_message(
            [
                ("user", "postgres"),
                ("replication", "true"),
                ("application_name", "probe"),
            ],
            &mut buf,
        )
        .unwrap();
        assert_eq!(buf.len(), 63);
        assert_eq!(&buf[..8], &[0, 0, 0, 0x3f, 0, 3, 0, 0]);
        assert_eq!(buf[62], 0);
        assert!(startup_message([("user", "a\0b")], &mut buf).is_err());
    }

    #[test]
    fn writes_simple_messages() {
        let mut buf = BytesMut::new();
        ssl_request(&mut buf);
        assert_eq!(buf.as_ref(), &[0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f]);

        let mut buf = BytesMut::new();
        query("IDENTIFY_SYSTEM", &mut buf).unwrap();
        assert_eq!(&buf[..5], &[b'Q', 0, 0, 0, 20]);
        assert_eq!(&buf[5..], b"IDENTIFY_SYSTEM\0");
        assert!(query("a\0", &mut buf).is_err());

        let mut buf = BytesMut::new();
        copy_done(&mut buf);
        terminate(&mut buf);
        assert_eq!(buf.as_ref(), &[b'c', 0, 0, 0, 4, b'X', 0, 0, 0, 4]);

        let mut buf = BytesMut::new();
        sasl_initial_response("SCRAM-SHA-256", b"n,,n=,r=x", &mut buf).unwrap();
        assert_eq!(&buf[..5], &[b'p', 0, 0, 0, 4 + 14 + 4 + 9]);

        let mut buf = BytesMut::new();
        password_message(b"md5c28372dc675dab14f64a4eeafdd43644", &mut buf).unwrap();
        assert_eq!(buf.len(), 1 + 4 + 35 + 1);
        let mut buf = BytesMut::new();
        copy_data(b"xyz", &mut buf);
        sasl_response(b"c=biws", &mut buf);
        copy_fail("no", &mut buf).unwrap();
        assert_eq!(&buf[..8], &[b'd', 0, 0, 0, 7, b'x', b'y', b'z']);
    }
}
