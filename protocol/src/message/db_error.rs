//! [`DbError`]: the fields of an ErrorResponse or NoticeResponse (`'E'`/`'N'`), as listed in
//! PostgreSQL's "Error and Notice Message Fields" (`src/include/postgres_ext.h`, `PG_DIAG_*`).

use std::fmt;

use super::cursor::Cursor;
use crate::error::Result;

/// An error or notice reported by the server, with every field it sent.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DbError {
    severity: String,
    severity_nonlocalized: Option<String>,
    code: String,
    message: String,
    detail: Option<String>,
    hint: Option<String>,
    position: Option<String>,
    internal_position: Option<String>,
    internal_query: Option<String>,
    context: Option<String>,
    schema: Option<String>,
    table: Option<String>,
    column: Option<String>,
    datatype: Option<String>,
    constraint: Option<String>,
    file: Option<String>,
    line: Option<String>,
    routine: Option<String>,
    /// Fields with a type byte this crate does not know, kept as sent.
    other: Vec<(u8, String)>,
}

impl DbError {
    /// Parses the body of an ErrorResponse or NoticeResponse: `(type byte, string)*`, then NUL.
    /// Invalid UTF-8 (a server in another encoding) is replaced, not rejected.
    pub(crate) fn parse(body: &[u8]) -> Result<DbError> {
        let mut c = Cursor::new("ErrorResponse", body);
        let mut e = DbError::default();
        loop {
            let tag = c.u8("field type")?;
            if tag == 0 {
                break;
            }
            let value = String::from_utf8_lossy(c.cstr_bytes("field value")?).into_owned();
            match tag {
                b'S' => e.severity = value,
                b'V' => e.severity_nonlocalized = Some(value),
                b'C' => e.code = value,
                b'M' => e.message = value,
                b'D' => e.detail = Some(value),
                b'H' => e.hint = Some(value),
                b'P' => e.position = Some(value),
                b'p' => e.internal_position = Some(value),
                b'q' => e.internal_query = Some(value),
                b'W' => e.context = Some(value),
                b's' => e.schema = Some(value),
                b't' => e.table = Some(value),
                b'c' => e.column = Some(value),
                b'd' => e.datatype = Some(value),
                b'n' => e.constraint = Some(value),
                b'F' => e.file = Some(value),
                b'L' => e.line = Some(value),
                b'R' => e.routine = Some(value),
                other => e.other.push((other, value)),
            }
        }
        c.finish()?;
        Ok(e)
    }

    /// Builds an error from its main fields (for tests and synthetic errors).
    pub fn new(severity: &str, code: &str, message: &str) -> DbError {
        DbError {
            severity: severity.to_owned(),
            severity_nonlocalized: Some(severity.to_owned()),
            code: code.to_owned(),
            message: message.to_owned(),
            ..DbError::default()
        }
    }

    /// `ERROR`, `FATAL`, `PANIC`, `WARNING`, `NOTICE`, ... (localized).
    pub fn severity(&self) -> &str {
        &self.severity
    }

    /// The severity in English, whatever `lc_messages` says (9.6+).
    pub fn severity_nonlocalized(&self) -> Option<&str> {
        self.severity_nonlocalized.as_deref()
    }

    /// The SQLSTATE (`28P01`, `42704`, ...).
    pub fn code(&self) -> &str {
        &self.code
    }

    /// The primary message.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The DETAIL line.
    pub fn detail(&self) -> Option<&str> {
        self.detail.as_deref()
    }

    /// The HINT line.
    pub fn hint(&self) -> Option<&str> {
        self.hint.as_deref()
    }

    /// The cursor position in the query (1-based, as text).
    pub fn position(&self) -> Option<&str> {
        self.position.as_deref()
    }

    /// The position in an internally generated query.
    pub fn internal_position(&self) -> Option<&str> {
        self.internal_position.as_deref()
    }

    /// The internally generated query.
    pub fn internal_query(&self) -> Option<&str> {
        self.internal_query.as_deref()
    }

    /// The CONTEXT (call stack).
    pub fn context(&self) -> Option<&str> {
        self.context.as_deref()
    }

    /// Schema name, when the error is about a database object.
    pub fn schema(&self) -> Option<&str> {
        self.schema.as_deref()
    }

    /// Table name.
    pub fn table(&self) -> Option<&str> {
        self.table.as_deref()
    }

    /// Column name.
    pub fn column(&self) -> Option<&str> {
        self.column.as_deref()
    }

    /// Data type name.
    pub fn datatype(&self) -> Option<&str> {
        self.datatype.as_deref()
    }

    /// Constraint name.
    pub fn constraint(&self) -> Option<&str> {
        self.constraint.as_deref()
    }

    /// Source file of the server that reported the error.
    pub fn file(&self) -> Option<&str> {
        self.file.as_deref()
    }

    /// Source line (as text).
    pub fn line(&self) -> Option<&str> {
        self.line.as_deref()
    }

    /// Source routine.
    pub fn routine(&self) -> Option<&str> {
        self.routine.as_deref()
    }

    /// Fields of unknown type, as `(type byte, value)`.
    pub fn other_fields(&self) -> &[(u8, String)] {
        &self.other
    }

    fn english_severity(&self) -> &str {
        self.severity_nonlocalized
            .as_deref()
            .unwrap_or(&self.severity)
    }

    /// FATAL or PANIC: the server closes the connection after sending it.
    pub fn is_fatal(&self) -> bool {
        matches!(self.english_severity(), "FATAL" | "PANIC")
    }
}

impl fmt::Display for DbError {
    /// `SEVERITY: message (SQLSTATE code)`, then `DETAIL:` and `HINT:` lines when present.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.severity, self.message)?;
        if !self.code.is_empty() {
            write!(f, " (SQLSTATE {})", self.code)?;
        }
        if let Some(detail) = &self.detail {
            write!(f, "\nDETAIL: {detail}")?;
        }
        if let Some(hint) = &self.hint {
            write!(f, "\nHINT: {hint}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_field() {
        let body = b"SFATAL\0VFATAL\0C28P01\0Mpassword authentication failed for user \"x\"\0\
Dsome detail\0Hsome hint\0Fauth.c\0L330\0Rauth_failed\0Zextra\0\0";
        let e = DbError::parse(body).unwrap();
        assert_eq!(e.severity(), "FATAL");
        assert_eq!(e.code(), "28P01");
        assert!(e.is_fatal());
        assert_eq!(e.detail(), Some("some detail"));
        assert_eq!(e.hint(), Some("some hint"));
        assert_eq!(e.file(), Some("auth.c"));
        assert_eq!(e.line(), Some("330"));
        assert_eq!(e.routine(), Some("auth_failed"));
        assert_eq!(e.other_fields(), &[(b'Z', "extra".to_owned())]);
        assert_eq!(
            e.to_string(),
            "FATAL: password authentication failed for user \"x\" (SQLSTATE 28P01)\n\
             DETAIL: some detail\nHINT: some hint"
        );
    }

    #[test]
    fn rejects_truncated_bodies() {
        assert!(DbError::parse(b"").is_err());
        assert!(DbError::parse(b"SERROR").is_err());
        assert!(DbError::parse(b"SERROR\0").is_err());
        assert!(DbError::parse(b"SERROR\0\0junk").is_err());
        let e = DbError::parse(b"SERROR\0\0").unwrap();
        assert!(!e.is_fatal());
    }
}
