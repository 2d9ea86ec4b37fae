//! Bridges between blocking writers (tar builders on a blocking thread) and the
//! async HTTP response bodies they feed.

use std::io::Write;

use bytes::Bytes;
use tokio::sync::mpsc;

/// A `Write` that hands full buffers to an async receiver.
pub(crate) struct ChannelWriter {
    tx: mpsc::Sender<Bytes>,
    buf: Vec<u8>,
}

impl ChannelWriter {
    pub(crate) fn new(tx: mpsc::Sender<Bytes>) -> ChannelWriter {
        ChannelWriter {
            tx,
            buf: Vec::new(),
        }
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= 256 * 1024 {
            self.flush()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if !self.buf.is_empty() {
            let chunk = Bytes::from(std::mem::take(&mut self.buf));
            self.tx.blocking_send(chunk).map_err(|_| {
                std::io::Error::new(std::io::ErrorKind::BrokenPipe, "client went away")
            })?;
        }
        Ok(())
    }
}

/// A blocking `Read` over byte chunks sent from an async task: request bodies and
/// registry downloads fed to the (blocking) tar readers.
pub struct ChannelReader {
    rx: std::sync::mpsc::Receiver<Bytes>,
    current: Bytes,
}

impl ChannelReader {
    /// Feeds an HTTP body into a reader for a blocking thread. The task ends
    /// `true` once the whole body was handed over, `false` if it broke off or the
    /// reader went away; abort it when the reader is done early.
    pub fn feed<B>(body: B) -> (ChannelReader, tokio::task::JoinHandle<bool>)
    where
        B: http_body::Body<Data = Bytes> + Unpin + Send + 'static,
        B::Error: Send,
    {
        Self::feed_with_idle_limit(body, None)
    }

    /// [`ChannelReader::feed`], breaking off (as if the body were cut) when the
    /// sender lets `idle_limit` pass without a byte: a client that announces a
    /// body and never sends it must not hold the request forever.
    pub fn feed_with_idle_limit<B>(
        mut body: B,
        idle_limit: Option<std::time::Duration>,
    ) -> (ChannelReader, tokio::task::JoinHandle<bool>)
    where
        B: http_body::Body<Data = Bytes> + Unpin + Send + 'static,
        B::Error: Send,
    {
        use http_body_util::BodyExt;
        let (tx, rx) = std::sync::mpsc::sync_channel::<Bytes>(16);
        let feeder = tokio::spawn(async move {
            loop {
                let next = match idle_limit {
                    Some(limit) => match tokio::time::timeout(limit, body.frame()).await {
                        Ok(next) => next,
                        Err(_) => return false,
                    },
                    None => body.frame().await,
                };
                let Some(frame) = next else { break };
                let Ok(frame) = frame else { return false };
                if let Ok(data) = frame.into_data() {
                    let tx = tx.clone();
                    // A full channel means the reader is busy; wait off-thread.
                    let sent = tokio::task::spawn_blocking(move || tx.send(data)).await;
                    if !matches!(sent, Ok(Ok(()))) {
                        return false;
                    }
                }
            }
            true
        });
        (
            ChannelReader {
                rx,
                current: Bytes::new(),
            },
            feeder,
        )
    }
}

impl std::io::Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.recv() {
                Ok(b) => self.current = b,
                Err(_) => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        self.current = self.current.slice(n..);
        Ok(n)
    }
}
