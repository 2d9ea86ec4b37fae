//! Streaming request and response bodies. Blobs are never held in memory
//! whole: downloads are read in [`READ_CHUNK`] pieces a couple of chunks
//! ahead of the socket, uploads are hashed and written in batches of about
//! [`WRITE_BATCH`] bytes with one batch in flight on the blocking pool while
//! the next one is received.

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use sha2::{Digest as _, Sha256};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Size of each read when streaming a blob to a client.
pub const READ_CHUNK: usize = 128 * 1024;
/// Bytes collected from the request before one hash+write on the blocking pool.
pub const WRITE_BATCH: usize = 512 * 1024;

/// Response body: empty, a small buffer, or a blob streamed from disk.
pub(crate) enum RespBody {
    Empty,
    Full(Option<Bytes>),
    Stream {
        rx: mpsc::Receiver<io::Result<Bytes>>,
        remaining: u64,
    },
}

impl RespBody {
    pub fn full(b: impl Into<Bytes>) -> Self {
        let b = b.into();
        if b.is_empty() {
            RespBody::Empty
        } else {
            RespBody::Full(Some(b))
        }
    }
}

impl Body for RespBody {
    type Data = Bytes;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, io::Error>>> {
        match self.get_mut() {
            RespBody::Empty => Poll::Ready(None),
            RespBody::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            RespBody::Stream { rx, remaining } => {
                if *remaining == 0 {
                    return Poll::Ready(None);
                }
                match rx.poll_recv(cx) {
                    Poll::Ready(Some(Ok(b))) => {
                        *remaining = remaining.saturating_sub(b.len() as u64);
                        Poll::Ready(Some(Ok(Frame::data(b))))
                    }
                    Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e))),
                    Poll::Ready(None) => Poll::Ready(Some(Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "blob file ended before its recorded size",
                    )))),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            RespBody::Empty => true,
            RespBody::Full(b) => b.is_none(),
            RespBody::Stream { remaining, .. } => *remaining == 0,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            RespBody::Empty => SizeHint::with_exact(0),
            RespBody::Full(b) => SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64)),
            RespBody::Stream { remaining, .. } => SizeHint::with_exact(*remaining),
        }
    }
}

/// Streams `len` bytes of `file` starting at `offset`.
pub(crate) fn stream_file(mut file: File, offset: u64, len: u64) -> RespBody {
    let (tx, rx) = mpsc::channel::<io::Result<Bytes>>(2);
    tokio::spawn(async move {
        if offset > 0 {
            if let Err(e) = file.seek(SeekFrom::Start(offset)) {
                let _ = tx.send(Err(e)).await;
                return;
            }
        }
        let mut left = len;
        let mut file = Some(file);
        while left > 0 {
            let Some(mut f) = file.take() else { return };
            let n = left.min(READ_CHUNK as u64);
            let res = tokio::task::spawn_blocking(move || {
                let mut buf = Vec::with_capacity(n as usize);
                (&mut f).take(n).read_to_end(&mut buf)?;
                Ok::<_, io::Error>((f, buf))
            })
            .await
            .unwrap_or_else(|e| Err(io::Error::other(e)));
            match res {
                Ok((f, buf)) => {
                    if buf.is_empty() {
                        // Truncated on disk: end the channel so the body errors.
                        return;
                    }
                    left -= buf.len() as u64;
                    file = Some(f);
                    if tx.send(Ok(Bytes::from(buf))).await.is_err() {
                        return; // client went away
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "reading blob for download failed");
                    let _ = tx.send(Err(e)).await;
                    return;
                }
            }
        }
    });
    RespBody::Stream { rx, remaining: len }
}

/// Why reading a request body into a blob failed.
#[derive(Debug)]
pub(crate) enum SinkError {
    /// The client sent more than allowed.
    TooLarge,
    /// The connection failed or the body ended early.
    Client(hyper::Error),
    /// Writing to disk failed.
    Io(io::Error),
    /// No data arrived for longer than the idle timeout.
    Timeout,
}

/// The next body frame, or `SinkError::Timeout` if none arrives within `idle`.
async fn next_frame(
    body: &mut Incoming,
    idle: Duration,
) -> Result<Option<Frame<Bytes>>, SinkError> {
    match tokio::time::timeout(idle, body.frame()).await {
        Err(_) => Err(SinkError::Timeout),
        Ok(None) => Ok(None),
        Ok(Some(Err(e))) => Err(SinkError::Client(e)),
        Ok(Some(Ok(f))) => Ok(Some(f)),
    }
}

/// Writer that hashes and appends to a file off the async threads, keeping
/// one batch in flight while the next is collected.
pub(crate) struct Sink {
    state: Option<(File, Sha256)>,
    inflight: Option<JoinHandle<io::Result<(File, Sha256)>>>,
    pending: Vec<Bytes>,
    pending_len: usize,
    /// Bytes accepted so far (written or pending).
    pub written: u64,
}

impl Sink {
    pub fn new(file: File, hasher: Sha256) -> Self {
        Sink {
            state: Some((file, hasher)),
            inflight: None,
            pending: Vec::new(),
            pending_len: 0,
            written: 0,
        }
    }

    async fn settle(&mut self) -> io::Result<()> {
        if let Some(h) = self.inflight.take() {
            let st = h.await.unwrap_or_else(|e| Err(io::Error::other(e)))?;
            self.state = Some(st);
        }
        Ok(())
    }

    async fn dispatch(&mut self) -> io::Result<()> {
        self.settle().await?;
        let bufs = std::mem::take(&mut self.pending);
        self.pending_len = 0;
        let (mut file, mut hasher) = self
            .state
            .take()
            .ok_or_else(|| io::Error::other("upload sink used after failure"))?;
        self.inflight = Some(tokio::task::spawn_blocking(move || {
            for b in &bufs {
                hasher.update(b);
                file.write_all(b)?;
            }
            Ok((file, hasher))
        }));
        Ok(())
    }

    pub async fn write(&mut self, b: Bytes) -> io::Result<()> {
        self.written += b.len() as u64;
        self.pending_len += b.len();
        self.pending.push(b);
        if self.pending_len >= WRITE_BATCH {
            self.dispatch().await?;
        }
        Ok(())
    }

    /// Waits for any in-flight write so the file can safely be truncated
    /// or removed after a failure.
    pub async fn abort(mut self) {
        if let Some(h) = self.inflight.take() {
            let _ = h.await;
        }
    }

    /// Flushes everything, optionally fsyncs, and returns the file and hasher.
    pub async fn finish(mut self, fsync: bool) -> io::Result<(File, Sha256, u64)> {
        if !self.pending.is_empty() {
            self.dispatch().await?;
        }
        self.settle().await?;
        let (file, hasher) = self
            .state
            .take()
            .ok_or_else(|| io::Error::other("upload sink used after failure"))?;
        let file = if fsync {
            tokio::task::spawn_blocking(move || file.sync_all().map(|()| file))
                .await
                .unwrap_or_else(|e| Err(io::Error::other(e)))?
        } else {
            file
        };
        Ok((file, hasher, self.written))
    }

    /// Copies a request body into the sink, refusing to go past `limit`
    /// total bytes or to wait longer than `idle` for the next piece.
    pub async fn copy_body(
        &mut self,
        mut body: Incoming,
        limit: u64,
        idle: Duration,
    ) -> Result<(), SinkError> {
        while let Some(frame) = next_frame(&mut body, idle).await? {
            if let Ok(data) = frame.into_data() {
                if self.written + data.len() as u64 > limit {
                    return Err(SinkError::TooLarge);
                }
                self.write(data).await.map_err(SinkError::Io)?;
            }
        }
        Ok(())
    }
}

/// Reads a whole (small) body, refusing more than `limit` bytes.
pub(crate) async fn read_limited(
    mut body: Incoming,
    limit: u64,
    idle: Duration,
) -> Result<Vec<u8>, SinkError> {
    let mut out = Vec::new();
    while let Some(frame) = next_frame(&mut body, idle).await? {
        if let Ok(data) = frame.into_data() {
            if (out.len() + data.len()) as u64 > limit {
                return Err(SinkError::TooLarge);
            }
            out.extend_from_slice(&data);
        }
    }
    Ok(out)
}
