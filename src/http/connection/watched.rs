//! The socket (TCP or TLS) wrapped so that the connection's clock hears of its traffic: each
//! read that brings bytes (a request is arriving, not silence), each write that sends bytes
//! (the peer reads our answers), and each write the socket cannot take (the peer does not).

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::ConnectionState;

/// The socket (TCP or TLS) with a note of its traffic on the connection's clock.
pub struct Watched<I> {
    inner: I,
    state: Arc<ConnectionState>,
}

impl<I> Watched<I> {
    pub fn new(inner: I, state: Arc<ConnectionState>) -> Self {
        Watched { inner, state }
    }

    /// Notes what a write (or flush) of `n` bytes came to.
    fn note<T>(
        &self,
        polled: Poll<io::Result<T>>,
        sent: impl Fn(&T) -> bool,
    ) -> Poll<io::Result<T>> {
        match &polled {
            Poll::Ready(Ok(value)) if sent(value) => self.state.sent(),
            Poll::Pending => self.state.blocked(),
            _ => {}
        }
        polled
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for Watched<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.state.received();
        }
        polled
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Watched<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.note(polled, |n| *n > 0)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let polled = Pin::new(&mut self.inner).poll_flush(cx);
        // A completed flush has sent whatever was waiting (a TLS stream's records).
        self.note(polled, |()| true)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.note(polled, |n| *n > 0)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
