//! The byte transport of a connection (TCP, Unix socket, TLS over TCP) and the framing of
//! messages over it: backend messages are decoded from a read buffer by
//! [`BackendMessage::parse`], frontend messages are written into a write buffer and flushed.
//! Reading is cancel-safe: bytes read are kept in the buffer, so a timer may interrupt a read.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpStream, UnixStream};

use crate::error::{Error, Result};
use crate::message::backend::DEFAULT_MAX_MESSAGE_LEN;
use crate::message::BackendMessage;

/// The size of the buffers messages are read into. Message bodies are split off them as
/// `Bytes` and handed on (a base backup's archive data travels to the storing thread), so a
/// buffer is free again only when every body taken from it has been dropped.
const READ_BUFFER: usize = 256 * 1024;

/// A read waits for at least this much free room: fewer, larger reads.
const MIN_READ: usize = 16 * 1024;

/// Buffers kept for reuse once their bodies are dropped. A COPY stream then cycles through a
/// few buffers instead of touching fresh memory (a page fault per 4 kB) every 256 kB; the
/// base backup channel holds at most 64 bodies, a few buffers' worth.
const SPARE_BUFFERS: usize = 16;

/// A connected socket, maybe wrapped in TLS.
pub(crate) enum Socket {
    Tcp(TcpStream),
    Unix(UnixStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl Socket {
    /// The server certificate (DER) of a TLS connection.
    pub(crate) fn peer_certificate(&self) -> Option<&[u8]> {
        match self {
            Socket::Tls(tls) => tls
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|c| c.first())
                .map(|c| c.as_ref()),
            _ => None,
        }
    }

    pub(crate) fn is_tls(&self) -> bool {
        matches!(self, Socket::Tls(_))
    }
}

impl AsyncRead for Socket {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Socket::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            Socket::Unix(s) => Pin::new(s).poll_read(cx, buf),
            Socket::Tls(s) => Pin::new(&mut **s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Socket {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Socket::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            Socket::Unix(s) => Pin::new(s).poll_write(cx, buf),
            Socket::Tls(s) => Pin::new(&mut **s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Socket::Tcp(s) => Pin::new(s).poll_flush(cx),
            Socket::Unix(s) => Pin::new(s).poll_flush(cx),
            Socket::Tls(s) => Pin::new(&mut **s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Socket::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            Socket::Unix(s) => Pin::new(s).poll_shutdown(cx),
            Socket::Tls(s) => Pin::new(&mut **s).poll_shutdown(cx),
        }
    }
}

/// Messages over a [`Socket`].
pub(crate) struct Framed {
    pub(crate) socket: Socket,
    read_buf: BytesMut,
    /// The size `read_buf` was allocated with.
    read_buf_size: usize,
    /// Earlier read buffers, reused when no body of theirs is alive any more.
    spare: Vec<BytesMut>,
    /// Buffers allocated after the first (tests check that buffers are reused).
    #[cfg(test)]
    allocated: usize,
    /// Frontend messages waiting for [`Framed::flush`].
    pub(crate) write_buf: BytesMut,
    max_len: usize,
}

impl Framed {
    pub(crate) fn new(socket: Socket) -> Framed {
        Framed {
            socket,
            read_buf: BytesMut::with_capacity(READ_BUFFER),
            read_buf_size: READ_BUFFER,
            spare: Vec::new(),
            #[cfg(test)]
            allocated: 0,
            write_buf: BytesMut::new(),
            max_len: DEFAULT_MAX_MESSAGE_LEN,
        }
    }

    /// The next whole message from the server.
    pub(crate) async fn read(&mut self) -> Result<BackendMessage> {
        loop {
            if let Some(message) = BackendMessage::parse(&mut self.read_buf, self.max_len)? {
                return Ok(message);
            }
            self.make_room();
            let n = self
                .socket
                .read_buf(&mut self.read_buf)
                .await
                .map_err(|e| Error::io("read from the server", &e))?;
            if n == 0 {
                return Err(if self.read_buf.is_empty() {
                    Error::closed("(end of stream)")
                } else {
                    Error::closed("in the middle of a message")
                });
            }
        }
    }

    /// Room in `read_buf` for the rest of the message begun there, and for a read of at least
    /// [`MIN_READ`] bytes. When the buffer is full, the partial message moves to the front of
    /// a buffer that is free again (this one, a spare, or a new one) and the full buffer
    /// becomes a spare.
    fn make_room(&mut self) {
        let pending = self.read_buf.len();
        let wanted = BackendMessage::frame_len(&self.read_buf)
            .unwrap_or(0)
            .max(pending + MIN_READ);
        if self.read_buf.capacity() >= wanted || self.read_buf.try_reclaim(wanted - pending) {
            return;
        }
        let size = wanted.max(READ_BUFFER);
        let reusable = self.spare.iter_mut().position(|b| b.try_reclaim(size));
        let mut fresh = match reusable {
            Some(i) => self.spare.swap_remove(i),
            None => {
                #[cfg(test)]
                {
                    self.allocated += 1;
                }
                BytesMut::with_capacity(size)
            }
        };
        fresh.extend_from_slice(&self.read_buf);
        let mut full = std::mem::replace(&mut self.read_buf, fresh);
        let full_size = std::mem::replace(&mut self.read_buf_size, size);
        full.clear();
        // A buffer made for one large message is not worth keeping.
        if full_size == READ_BUFFER && self.spare.len() < SPARE_BUFFERS {
            self.spare.push(full);
        }
    }

    /// Sends everything written into `write_buf`.
    pub(crate) async fn flush(&mut self) -> Result<()> {
        let result = async {
            self.socket.write_all(&self.write_buf).await?;
            self.socket.flush().await
        }
        .await;
        self.write_buf.clear();
        result.map_err(|e| Error::io("write to the server", &e))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use super::*;

    /// A CopyData frame whose body is `len` bytes derived from `seed`.
    fn copy_data(seed: usize, len: usize) -> Vec<u8> {
        let mut v = vec![b'd'];
        v.extend_from_slice(&((len + 4) as u32).to_be_bytes());
        v.extend((0..len).map(|i| (seed * 31 + i) as u8));
        v
    }

    /// Reads `sizes` as CopyData messages sent over a socket pair in odd-sized writes,
    /// keeping the last `kept` bodies alive as a consumer behind a channel would.
    async fn read_messages(sizes: &[usize], kept: usize) -> Framed {
        let (client, mut server) = UnixStream::pair().unwrap();
        let stream: Vec<u8> = sizes
            .iter()
            .enumerate()
            .flat_map(|(i, len)| copy_data(i, *len))
            .collect();
        let writer = tokio::spawn(async move {
            for piece in stream.chunks(10_007) {
                server.write_all(piece).await.unwrap();
            }
        });
        let mut framed = Framed::new(Socket::Unix(client));
        let mut alive = VecDeque::new();
        for (i, len) in sizes.iter().enumerate() {
            let body = match framed.read().await.unwrap() {
                BackendMessage::CopyData(body) => body,
                other => panic!("message {i}: {other:?}"),
            };
            assert_eq!(body.len(), *len, "message {i}");
            assert!(
                body.iter()
                    .enumerate()
                    .all(|(j, b)| *b == (i * 31 + j) as u8),
                "message {i} has other bytes than were sent"
            );
            alive.push_back(body);
            if alive.len() > kept {
                alive.pop_front();
            }
        }
        writer.await.unwrap();
        framed
    }

    #[tokio::test]
    async fn a_long_copy_stream_reuses_its_read_buffers() {
        // 40 MB in messages of about 32 kB, as a walsender sends a base backup.
        let sizes: Vec<usize> = (0..1200).map(|i| 32_768 + (i * 7919) % 1000).collect();
        let framed = read_messages(&sizes, 64).await;
        assert!(
            framed.allocated <= SPARE_BUFFERS,
            "{} buffers allocated for 40 MB",
            framed.allocated
        );
        assert!(framed.spare.len() <= SPARE_BUFFERS);
    }

    #[tokio::test]
    async fn messages_larger_than_a_buffer_arrive_whole() {
        let sizes = [
            100,
            3 * READ_BUFFER + 5,
            7,
            READ_BUFFER - 4,
            READ_BUFFER,
            1,
            70_000,
        ];
        let framed = read_messages(&sizes, 3).await;
        assert!(framed.spare.len() <= SPARE_BUFFERS);
    }

    #[tokio::test]
    async fn a_message_cut_by_the_end_of_the_stream_is_an_error() {
        let (client, mut server) = UnixStream::pair().unwrap();
        let mut bytes = copy_data(1, 50_000);
        bytes.truncate(30_000);
        server.write_all(&bytes).await.unwrap();
        drop(server);
        let mut framed = Framed::new(Socket::Unix(client));
        let err = framed.read().await.unwrap_err();
        assert!(
            err.to_string().contains("in the middle of a message"),
            "{err}"
        );
    }
}
