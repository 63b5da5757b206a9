//! Length-prefixed frames on a byte stream: a 4-byte big-endian length, then the
//! bytes. A body is a run of non-empty frames closed by an empty one.

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::Error;

/// Largest header or payload frame accepted.
pub(crate) const MAX_MESSAGE: usize = 32 << 20;
/// Largest body chunk sent or accepted.
pub(crate) const MAX_CHUNK: usize = 1 << 20;

fn lost(e: std::io::Error) -> Error {
    Error::ConnectionLost(e.to_string())
}

/// Reads one frame of at most `max` bytes.
pub(crate) async fn read<R: AsyncRead + Unpin + ?Sized>(
    r: &mut R,
    max: usize,
) -> Result<Bytes, Error> {
    let len = r.read_u32().await.map_err(lost)? as usize;
    if len > max {
        return Err(Error::Protocol(format!(
            "frame of {len} bytes (limit {max})"
        )));
    }
    // Grown as bytes arrive: a peer announcing a large frame and sending
    // nothing costs nothing.
    let mut buf = Vec::with_capacity(len.min(64 << 10));
    let read = r
        .take(len as u64)
        .read_to_end(&mut buf)
        .await
        .map_err(lost)?;
    if read != len {
        return Err(Error::ConnectionLost(format!(
            "stream ended {read} bytes into a frame of {len}"
        )));
    }
    Ok(Bytes::from(buf))
}

/// Appends one frame to `buf`, so that several frames go out in one write.
pub(crate) fn push(buf: &mut Vec<u8>, bytes: &[u8]) -> Result<(), Error> {
    let len = u32::try_from(bytes.len())
        .map_err(|_| Error::Protocol(format!("frame of {} bytes", bytes.len())))?;
    buf.extend_from_slice(&len.to_be_bytes());
    buf.extend_from_slice(bytes);
    Ok(())
}

/// A write that makes no progress for this long fails: a peer that stops
/// reading cannot hold a stream, its task and its buffers for ever.
pub(crate) const WRITE_IDLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Runs one write with [`WRITE_IDLE_TIMEOUT`].
pub(crate) async fn idle_deadline<T>(
    write: impl std::future::Future<Output = Result<T, Error>>,
) -> Result<T, Error> {
    tokio::time::timeout(WRITE_IDLE_TIMEOUT, write)
        .await
        .map_err(|_| Error::Timeout(WRITE_IDLE_TIMEOUT))?
}

/// Writes all of `bytes`, failing only when one write makes no progress for
/// [`WRITE_IDLE_TIMEOUT`]. A large frame on a slow or paced stream may take
/// longer than that in all, as long as bytes keep going out: the deadline is
/// for a peer that stopped reading, not for a busy link.
pub(crate) async fn write_all_progressing<W: AsyncWrite + Unpin + ?Sized>(
    w: &mut W,
    mut bytes: &[u8],
) -> Result<(), Error> {
    while !bytes.is_empty() {
        let n = idle_deadline(async { w.write(bytes).await.map_err(lost) }).await?;
        if n == 0 {
            return Err(Error::ConnectionLost(
                "the stream takes no more bytes".into(),
            ));
        }
        bytes = &bytes[n..];
    }
    Ok(())
}

/// Writes one frame (see [`write_all_progressing`]).
pub(crate) async fn write<W: AsyncWrite + Unpin + ?Sized>(
    w: &mut W,
    bytes: &[u8],
) -> Result<(), Error> {
    let len = u32::try_from(bytes.len())
        .map_err(|_| Error::Protocol(format!("frame of {} bytes", bytes.len())))?;
    write_all_progressing(w, &len.to_be_bytes()).await?;
    write_all_progressing(w, bytes).await
}

#[cfg(test)]
mod tests {
    use std::future::Future as _;
    use std::pin::Pin;
    use std::task::{Context, Poll};
    use std::time::Duration;

    use tokio::io::AsyncWrite;

    use super::*;

    /// A stream that takes one byte per `every`, or nothing at all (`None`).
    struct Trickle {
        every: Option<Duration>,
        sleep: Option<Pin<Box<tokio::time::Sleep>>>,
        taken: Vec<u8>,
    }

    impl Trickle {
        fn new(every: Option<Duration>) -> Self {
            Trickle {
                every,
                sleep: None,
                taken: Vec::new(),
            }
        }
    }

    impl AsyncWrite for Trickle {
        fn poll_write(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<std::io::Result<usize>> {
            let Some(every) = self.every else {
                return Poll::Pending;
            };
            let sleep = self
                .sleep
                .get_or_insert_with(|| Box::pin(tokio::time::sleep(every)));
            std::task::ready!(sleep.as_mut().poll(cx));
            self.sleep = None;
            self.taken.push(buf[0]);
            Poll::Ready(Ok(1))
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_stream_that_keeps_taking_bytes_is_not_timed_out() {
        // 12 bytes (length prefix and payload) at one per 10 s: two minutes
        // in all, far beyond the idle timeout, but never idle that long.
        let mut w = Trickle::new(Some(Duration::from_secs(10)));
        write(&mut w, b"abcdefgh").await.expect("slow but steady");
        assert_eq!(&w.taken[4..], b"abcdefgh");
    }

    #[tokio::test(start_paused = true)]
    async fn a_stream_that_takes_nothing_times_out() {
        let mut w = Trickle::new(None);
        let started = tokio::time::Instant::now();
        let err = write(&mut w, b"abc").await.expect_err("stalled");
        assert!(matches!(err, Error::Timeout(_)), "{err}");
        assert_eq!(started.elapsed(), WRITE_IDLE_TIMEOUT);
    }
}
