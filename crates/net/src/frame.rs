//! Length-prefixed frames on a byte stream: a 4-byte big-endian length, then the
//! bytes. A body is a run of non-empty frames closed by an empty one.

use bytes::{Bytes, BytesMut};
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
    let mut buf = BytesMut::zeroed(len);
    r.read_exact(&mut buf).await.map_err(lost)?;
    Ok(buf.freeze())
}

/// Appends one frame to `buf`, so that several frames go out in one write.
pub(crate) fn push(buf: &mut Vec<u8>, bytes: &[u8]) -> Result<(), Error> {
    let len = u32::try_from(bytes.len())
        .map_err(|_| Error::Protocol(format!("frame of {} bytes", bytes.len())))?;
    buf.extend_from_slice(&len.to_be_bytes());
    buf.extend_from_slice(bytes);
    Ok(())
}

/// Writes one frame.
pub(crate) async fn write<W: AsyncWrite + Unpin + ?Sized>(
    w: &mut W,
    bytes: &[u8],
) -> Result<(), Error> {
    let len = u32::try_from(bytes.len())
        .map_err(|_| Error::Protocol(format!("frame of {} bytes", bytes.len())))?;
    w.write_u32(len).await.map_err(lost)?;
    w.write_all(bytes).await.map_err(lost)
}
