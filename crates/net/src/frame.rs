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

/// Writes one frame (with [`WRITE_IDLE_TIMEOUT`]).
pub(crate) async fn write<W: AsyncWrite + Unpin + ?Sized>(
    w: &mut W,
    bytes: &[u8],
) -> Result<(), Error> {
    let len = u32::try_from(bytes.len())
        .map_err(|_| Error::Protocol(format!("frame of {} bytes", bytes.len())))?;
    idle_deadline(async {
        w.write_u32(len).await.map_err(lost)?;
        w.write_all(bytes).await.map_err(lost)
    })
    .await
}
