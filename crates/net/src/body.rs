//! Streaming bodies that follow a request or a response: blocks and other bulk
//! data. The transport's flow control gives backpressure: a sender waits while
//! the receiver does not read.

use std::pin::Pin;

use bytes::Bytes;
use futures::{Stream, StreamExt};

use crate::transport::RecvHalf;
use crate::{frame, Error};

/// A body to send: a stream of chunks (each at most 1 MiB is sent as is; larger
/// chunks are split).
pub type OutgoingBody = Pin<Box<dyn Stream<Item = Result<Bytes, Error>> + Send>>;

/// A body being received.
pub struct IncomingBody {
    source: Source,
}

enum Source {
    Remote(Box<dyn RecvHalf>),
    Local(OutgoingBody),
    Done,
}

impl IncomingBody {
    pub(crate) fn remote(recv: Box<dyn RecvHalf>) -> Self {
        IncomingBody {
            source: Source::Remote(recv),
        }
    }

    pub(crate) fn local(body: OutgoingBody) -> Self {
        IncomingBody {
            source: Source::Local(body),
        }
    }

    /// The next chunk, or `None` at the end of the body.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, Error> {
        let next = match &mut self.source {
            Source::Done => return Ok(None),
            Source::Local(body) => body.next().await.transpose()?,
            Source::Remote(recv) => {
                let chunk = frame::read(recv.as_mut(), frame::MAX_CHUNK).await?;
                (!chunk.is_empty()).then_some(chunk)
            }
        };
        if next.is_none() {
            self.source = Source::Done;
        }
        Ok(next)
    }

    /// Reads the whole body, refusing more than `limit` bytes.
    pub async fn collect(mut self, limit: usize) -> Result<Vec<u8>, Error> {
        let mut out = Vec::new();
        while let Some(chunk) = self.chunk().await? {
            if out.len() + chunk.len() > limit {
                return Err(Error::Protocol(format!("body larger than {limit} bytes")));
            }
            out.extend_from_slice(&chunk);
        }
        Ok(out)
    }
}

impl std::fmt::Debug for IncomingBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("IncomingBody")
    }
}

/// Sends `body` as frames closed by an empty frame.
pub(crate) async fn send<W: tokio::io::AsyncWrite + Unpin + ?Sized>(
    w: &mut W,
    mut body: OutgoingBody,
) -> Result<(), Error> {
    while let Some(chunk) = body.next().await {
        let chunk = chunk?;
        for piece in chunk.chunks(frame::MAX_CHUNK) {
            if !piece.is_empty() {
                frame::write(w, piece).await?;
            }
        }
    }
    frame::write(w, &[]).await
}

/// A body made of the given chunks.
pub fn body_from_chunks(chunks: Vec<Bytes>) -> OutgoingBody {
    Box::pin(futures::stream::iter(chunks.into_iter().map(Ok)))
}
