//! A checked reader over message bytes: every read returns an error naming the field instead
//! of panicking when the bytes run out (STYLE.md rule 2).

use crate::error::{Error, Result};

/// Reads big-endian integers and NUL-terminated strings from a message body.
#[derive(Debug, Clone)]
pub(crate) struct Cursor<'a> {
    what: &'static str,
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    /// A cursor over `buf`, the body of the message named `what` (for error messages).
    pub(crate) fn new(what: &'static str, buf: &'a [u8]) -> Cursor<'a> {
        Cursor { what, buf, pos: 0 }
    }

    fn short(&self, field: &str) -> Error {
        Error::protocol(format!(
            "malformed {} message: truncated at byte {} while reading {field}",
            self.what, self.pos
        ))
    }

    /// The bytes not read yet.
    pub(crate) fn rest(&self) -> &'a [u8] {
        self.buf.get(self.pos..).unwrap_or_default()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.rest().is_empty()
    }

    pub(crate) fn position(&self) -> usize {
        self.pos
    }

    /// The next `n` bytes.
    pub(crate) fn take(&mut self, n: usize, field: &str) -> Result<&'a [u8]> {
        let end = self.pos.checked_add(n).ok_or_else(|| self.short(field))?;
        let slice = self
            .buf
            .get(self.pos..end)
            .ok_or_else(|| self.short(field))?;
        self.pos = end;
        Ok(slice)
    }

    pub(crate) fn u8(&mut self, field: &str) -> Result<u8> {
        Ok(self.take(1, field)?[0])
    }

    pub(crate) fn i16(&mut self, field: &str) -> Result<i16> {
        let b = self.take(2, field)?;
        Ok(i16::from_be_bytes([b[0], b[1]]))
    }

    pub(crate) fn i32(&mut self, field: &str) -> Result<i32> {
        let b = self.take(4, field)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    pub(crate) fn u32(&mut self, field: &str) -> Result<u32> {
        Ok(self.i32(field)? as u32)
    }

    pub(crate) fn u64(&mut self, field: &str) -> Result<u64> {
        let b = self.take(8, field)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_be_bytes(a))
    }

    pub(crate) fn i64(&mut self, field: &str) -> Result<i64> {
        Ok(self.u64(field)? as i64)
    }

    /// A NUL-terminated byte string (without its NUL).
    pub(crate) fn cstr_bytes(&mut self, field: &str) -> Result<&'a [u8]> {
        let rest = self.rest();
        let nul = rest
            .iter()
            .position(|&b| b == 0)
            .ok_or_else(|| self.short(field))?;
        self.pos += nul + 1;
        Ok(&rest[..nul])
    }

    /// A NUL-terminated UTF-8 string (without its NUL).
    pub(crate) fn cstr(&mut self, field: &str) -> Result<&'a str> {
        let what = self.what;
        let bytes = self.cstr_bytes(field)?;
        std::str::from_utf8(bytes).map_err(|_| {
            Error::protocol(format!(
                "malformed {what} message: {field} is not valid UTF-8"
            ))
        })
    }

    /// Fails unless every byte was read.
    pub(crate) fn finish(&self) -> Result<()> {
        if self.is_empty() {
            Ok(())
        } else {
            Err(Error::protocol(format!(
                "malformed {} message: {} unexpected trailing bytes",
                self.what,
                self.rest().len()
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_fields_and_reports_truncation() {
        let data = [0u8, 1, 0, 0, 0, 2, b'h', b'i', 0, 9];
        let mut c = Cursor::new("Test", &data);
        assert_eq!(c.i16("a").unwrap(), 1);
        assert_eq!(c.i32("b").unwrap(), 2);
        assert_eq!(c.cstr("c").unwrap(), "hi");
        assert!(c.finish().is_err());
        assert_eq!(c.u8("d").unwrap(), 9);
        let err = c.u64("e").unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::Protocol);
        assert!(err.to_string().contains("while reading e"), "{err}");
        assert!(c.cstr("f").is_err());
        assert!(c.take(usize::MAX, "g").is_err());
    }

    #[test]
    fn rejects_unterminated_and_invalid_strings() {
        assert!(Cursor::new("T", b"abc").cstr("s").is_err());
        assert!(Cursor::new("T", &[0xff, 0]).cstr("s").is_err());
    }
}
