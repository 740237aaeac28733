//! Protocol messages, decoded and encoded without I/O.
//!
//! - [`backend`]: server → client messages, [`BackendMessage::parse`] returning `Ok(None)`
//!   until a whole message is buffered;
//! - [`frontend`]: client → server messages as free functions into a `BytesMut`;
//! - [`copy_data`]: the replication sub-messages inside CopyData (`'w'`, `'k'`, `'r'`, `'h'`
//!   and BASE_BACKUP's `'n'`, `'d'`, `'p'`, `'m'`);
//! - [`DbError`]: the fields of an ErrorResponse or NoticeResponse.

pub mod backend;
pub mod copy_data;
mod cursor;
mod db_error;
pub mod frontend;

pub use backend::BackendMessage;
pub use db_error::DbError;
