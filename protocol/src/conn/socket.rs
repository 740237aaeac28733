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

/// How much the read buffer grows by when a read needs room.
const READ_CHUNK: usize = 64 * 1024;

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
    /// Frontend messages waiting for [`Framed::flush`].
    pub(crate) write_buf: BytesMut,
    max_len: usize,
}

impl Framed {
    pub(crate) fn new(socket: Socket) -> Framed {
        Framed {
            socket,
            read_buf: BytesMut::with_capacity(READ_CHUNK),
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
            if self.read_buf.capacity() - self.read_buf.len() < 1024 {
                self.read_buf.reserve(READ_CHUNK);
            }
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
