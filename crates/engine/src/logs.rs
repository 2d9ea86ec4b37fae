//! `logs`: reads the log the monitor writes (json-file or local, across
//! rotated and compressed files: `berth_monitor::logfile`), optionally following it.

use std::collections::VecDeque;
use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use berth_monitor::logfile::{self, Record, RecordReader};
use bytes::Bytes;
use tokio::sync::mpsc;

use crate::{Engine, Result};

#[derive(Debug, Clone, Default)]
pub struct LogOptions {
    pub stdout: bool,
    pub stderr: bool,
    pub follow: bool,
    /// Only the last N lines; `None` for all.
    pub tail: Option<usize>,
    pub timestamps: bool,
    /// Unix seconds (fractional): entries before this are skipped.
    pub since: Option<f64>,
    /// Unix seconds: entries after this are skipped, and following stops there.
    pub until: Option<f64>,
}

struct Formatter {
    tty: bool,
    opts: LogOptions,
}

impl Formatter {
    /// Formats one log record, or `None` if the options filter it out.
    fn format(&self, record: &Record) -> Option<Bytes> {
        let stream = record.stream;
        if (stream == berth_monitor::STDOUT && !self.opts.stdout)
            || (stream == berth_monitor::STDERR && !self.opts.stderr)
        {
            return None;
        }
        if self.opts.since.is_some() || self.opts.until.is_some() {
            let secs = record.time_nanos as f64 / 1e9;
            if self.opts.since.is_some_and(|s| secs < s)
                || self.opts.until.is_some_and(|u| secs > u)
            {
                return None;
            }
        }
        let mut payload = Vec::with_capacity(record.line.len() + 40);
        if self.opts.timestamps {
            payload.extend_from_slice(record.time().as_bytes());
            payload.push(b' ');
        }
        payload.extend_from_slice(&record.line);
        if self.tty {
            return Some(Bytes::from(payload));
        }
        let mut framed = berth_monitor::frame_header(stream, payload.len()).to_vec();
        framed.extend_from_slice(&payload);
        Some(Bytes::from(framed))
    }
}

/// Every record in the rotated files of `live`, oldest first (the caller
/// drops what it has sent).
///
/// A rotation renames every file one place older, so the files are opened all
/// together and read only once the live file is seen unchanged across the
/// opening: open descriptors keep their contents whatever is renamed later,
/// whereas reading each file as it is opened can read `.2` before a rotation and
/// then, as `.1`, what was the live file, missing what had moved to `.2`. A file
/// renamed or compressed away between listing and opening is found by looking
/// again.
fn rotated_since(live: &Path, format: berth_monitor::logfile::LogFormat) -> Vec<Record> {
    let inode = || std::fs::metadata(live).map(|m| m.ino()).ok();
    let mut best_effort = Vec::new();
    for _ in 0..5 {
        let before = inode();
        let opened: std::io::Result<Vec<_>> = logfile::files(live)
            .iter()
            .filter(|p| p.as_path() != live)
            .map(|p| logfile::open(p))
            .collect();
        let stable = before.is_some() && inode() == before;
        let Ok(files) = opened else {
            continue;
        };
        let mut records = Vec::new();
        for mut f in files {
            records.extend(
                RecordReader::default()
                    .read_available(format, &mut f)
                    .unwrap_or_default(),
            );
        }
        if stable {
            return records;
        }
        best_effort = records;
    }
    best_effort
}

impl Engine {
    /// Streams the container's log as docker does: stdcopy frames without a TTY, raw
    /// bytes with one, read across rotated (and compressed) files in the
    /// driver's format. Returns whether the container has a TTY, and the stream.
    pub fn logs(
        self: &Arc<Self>,
        reference: &str,
        opts: LogOptions,
    ) -> Result<(bool, mpsc::Receiver<Bytes>)> {
        let c = self.container(reference)?;
        let Some(format) = crate::log_driver::read_format(&c.host_config.log.driver) else {
            return Err(crate::EngineError::NotImplemented(
                "configured logging driver does not support reading".into(),
            ));
        };
        let (tx, rx) = mpsc::channel(64);
        let live = self.container_dir(&c.id).join("container.log");
        let fmt = Formatter {
            tty: c.config.tty,
            opts,
        };
        let engine = self.clone();
        let id = c.id.clone();
        // Opened now, not on the reader thread: a client that reads the stream only
        // after removing the container (docker-py's `run`) still gets the log.
        // The live file first: a rotation after it is opened leaves its records
        // in the rotated files listed next (or is seen when following), while a
        // live file opened after the listing could be one rotation newer, and
        // the file that was live in between would never be read.
        let live_opened = File::open(&live).ok();
        let opened: Vec<(PathBuf, Box<dyn std::io::Read + Send>)> = logfile::files(&live)
            .into_iter()
            .filter_map(|p| logfile::open(&p).ok().map(|f| (p, f)))
            .collect();
        tokio::task::spawn_blocking(move || {
            // The newest record seen, so that catching up after rotations
            // sends nothing twice.
            let newest = std::cell::Cell::new(i64::MIN);
            let send_all = |records: Vec<Record>| {
                for record in &records {
                    if record.time_nanos <= newest.get() {
                        continue;
                    }
                    newest.set(record.time_nanos);
                    if let Some(b) = fmt.format(record) {
                        if tx.blocking_send(b).is_err() {
                            return false;
                        }
                    }
                }
                true
            };
            let mut last: VecDeque<Bytes> = VecDeque::new();
            // The live file stays open while following: lines written just before
            // the container is removed are still read after its directory is gone.
            let mut live_file: Option<(File, u64)> = None;
            let mut live_reader = RecordReader::default();
            for (path, mut file) in opened {
                let records = if path == live {
                    // Read through the descriptor opened with the others, and
                    // kept for following.
                    let Some(mut f) = live_opened.as_ref().and_then(|f| f.try_clone().ok()) else {
                        continue;
                    };
                    let inode = f.metadata().map(|m| m.ino()).unwrap_or(0);
                    let records = live_reader
                        .read_available(format, &mut f)
                        .unwrap_or_default();
                    live_file = Some((f, inode));
                    records
                } else {
                    RecordReader::default()
                        .read_available(format, &mut file)
                        .unwrap_or_default()
                };
                match fmt.opts.tail {
                    Some(t) => {
                        for record in &records {
                            newest.set(newest.get().max(record.time_nanos));
                            if t == 0 {
                                continue;
                            }
                            if let Some(b) = fmt.format(record) {
                                if last.len() == t {
                                    last.pop_front();
                                }
                                last.push_back(b);
                            }
                        }
                    }
                    None => {
                        if !send_all(records) {
                            return;
                        }
                    }
                }
            }
            for b in last {
                if tx.blocking_send(b).is_err() {
                    return;
                }
            }
            if !fmt.opts.follow {
                return;
            }
            loop {
                let running = engine
                    .container(&id)
                    .map(|c| c.state.running() || c.state.restarting())
                    .unwrap_or(false);
                // Rotated (or not there at first): switch to the file now at the
                // path once the old one is drained.
                let at_path = std::fs::metadata(&live).map(|m| m.ino()).ok();
                let rotated = match (&live_file, at_path) {
                    (Some((_, ino)), Some(now)) => *ino != now,
                    (None, Some(_)) => true,
                    _ => false,
                };
                if let Some((file, _)) = live_file.as_mut() {
                    let records = live_reader.read_available(format, file).unwrap_or_default();
                    if !send_all(records) {
                        return;
                    }
                }
                if rotated {
                    // Several rotations may have passed since the last look:
                    // what went to the rotated files first, then the new file.
                    // The new file is opened before the rotated ones are listed,
                    // so that a rotation in between leaves it among them rather
                    // than unread.
                    let next = File::open(&live).ok();
                    if !send_all(rotated_since(&live, format)) {
                        return;
                    }
                    if let Some(f) = next {
                        let ino = f.metadata().map(|m| m.ino()).unwrap_or(0);
                        live_file = Some((f, ino));
                        live_reader = RecordReader::default();
                        continue;
                    }
                }
                if !running || tx.is_closed() {
                    return;
                }
                if let Some(until) = fmt.opts.until {
                    if (chrono::Utc::now().timestamp() as f64) > until {
                        return;
                    }
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        Ok((c.config.tty, rx))
    }

    /// Opens an attach session with the container's monitor; the caller pumps bytes.
    /// For a container that is not running yet, the session connects when it starts.
    pub async fn attach(
        &self,
        reference: &str,
        stdin: bool,
        stdout: bool,
        stderr: bool,
    ) -> Result<(bool, AttachStream)> {
        let c = self.container(reference)?;
        let request = berth_monitor::Request::Attach {
            stdin,
            stdout,
            stderr,
        };
        if !c.state.running() {
            let (tx, rx) = tokio::sync::oneshot::channel();
            self.lock()
                .pending_attach
                .entry(c.id.clone())
                .or_default()
                .push(PendingAttach { request, tx });
            return Ok((c.config.tty, AttachStream::Pending(rx)));
        }
        let stream = connect_monitor(&self.monitor_socket(&c.id), &request, None)
            .await
            .map_err(|e| crate::EngineError::io(format!("attach to container {}", c.id), e))?;
        Ok((c.config.tty, AttachStream::Ready(stream)))
    }

    pub async fn resize(&self, reference: &str, height: u16, width: u16) -> Result<()> {
        use tokio::io::AsyncWriteExt;
        let c = self.container(reference)?;
        if !c.state.running() {
            return Err(crate::EngineError::Conflict(format!(
                "Container {} is not running",
                c.id
            )));
        }
        if let Ok(mut stream) = tokio::net::UnixStream::connect(self.monitor_socket(&c.id)).await {
            let mut req = serde_json::to_vec(&berth_monitor::Request::Resize { height, width })
                .map_err(|e| crate::EngineError::json("encode resize request", e))?;
            req.push(b'\n');
            let _ = stream.write_all(&req).await;
        }
        Ok(())
    }
}

pub struct PendingAttach {
    pub(crate) request: berth_monitor::Request,
    pub(crate) tx: tokio::sync::oneshot::Sender<tokio::net::UnixStream>,
}

pub enum AttachStream {
    Ready(tokio::net::UnixStream),
    /// Resolves when the container starts; dropped if it never does.
    Pending(tokio::sync::oneshot::Receiver<tokio::net::UnixStream>),
}

/// Connects to a monitor socket and sends one request line. With `retry_for`, keeps
/// trying while the socket does not exist yet (the monitor is starting).
pub(crate) async fn connect_monitor(
    socket: &Path,
    request: &berth_monitor::Request,
    retry_for: Option<Duration>,
) -> std::io::Result<tokio::net::UnixStream> {
    use tokio::io::AsyncWriteExt;
    let deadline = retry_for.map(|d| std::time::Instant::now() + d);
    let mut stream = loop {
        match tokio::net::UnixStream::connect(socket).await {
            Ok(s) => break s,
            Err(e) => match deadline {
                Some(d) if std::time::Instant::now() < d => {
                    tokio::time::sleep(Duration::from_millis(1)).await
                }
                _ => return Err(e),
            },
        }
    };
    let mut req = serde_json::to_vec(request).map_err(std::io::Error::other)?;
    req.push(b'\n');
    stream.write_all(&req).await?;
    Ok(stream)
}
