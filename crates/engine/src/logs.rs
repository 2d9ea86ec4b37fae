//! `logs`: reads the json-file log the monitor writes, optionally following it.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{BufRead, BufReader, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde::Deserialize;
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

#[derive(Deserialize)]
struct Entry {
    log: String,
    stream: String,
    time: String,
}

struct Formatter {
    tty: bool,
    opts: LogOptions,
}

impl Formatter {
    /// Formats one log line, or `None` if the options filter it out.
    fn format(&self, line: &[u8]) -> Option<Bytes> {
        let entry: Entry = serde_json::from_slice(line).ok()?;
        let stream = if entry.stream == "stderr" {
            berth_monitor::STDERR
        } else {
            berth_monitor::STDOUT
        };
        if (stream == berth_monitor::STDOUT && !self.opts.stdout)
            || (stream == berth_monitor::STDERR && !self.opts.stderr)
        {
            return None;
        }
        if self.opts.since.is_some() || self.opts.until.is_some() {
            let t = chrono::DateTime::parse_from_rfc3339(&entry.time).ok()?;
            let secs = t.timestamp() as f64 + t.timestamp_subsec_nanos() as f64 / 1e9;
            if self.opts.since.is_some_and(|s| secs < s)
                || self.opts.until.is_some_and(|u| secs > u)
            {
                return None;
            }
        }
        let mut payload = Vec::with_capacity(entry.log.len() + 40);
        if self.opts.timestamps {
            payload.extend_from_slice(entry.time.as_bytes());
            payload.push(b' ');
        }
        payload.extend_from_slice(entry.log.as_bytes());
        if self.tty {
            return Some(Bytes::from(payload));
        }
        let mut framed = berth_monitor::frame_header(stream, payload.len()).to_vec();
        framed.extend_from_slice(&payload);
        Some(Bytes::from(framed))
    }
}

fn log_files(live: &Path) -> Vec<PathBuf> {
    let mut rotated: Vec<(u32, PathBuf)> = Vec::new();
    if let (Some(dir), Some(name)) = (live.parent(), live.file_name().and_then(|n| n.to_str())) {
        if let Ok(entries) = std::fs::read_dir(dir) {
            for e in entries.flatten() {
                let fname = e.file_name();
                let Some(fname) = fname.to_str() else {
                    continue;
                };
                if let Some(n) = fname
                    .strip_prefix(name)
                    .and_then(|s| s.strip_prefix('.'))
                    .and_then(|s| s.parse().ok())
                {
                    rotated.push((n, e.path()));
                }
            }
        }
    }
    rotated.sort_by_key(|r| std::cmp::Reverse(r.0));
    let mut files: Vec<PathBuf> = rotated.into_iter().map(|(_, p)| p).collect();
    files.push(live.to_path_buf());
    files
}

impl Engine {
    /// Streams the container's log as docker does: stdcopy frames without a TTY, raw
    /// bytes with one. Returns whether the container has a TTY, and the stream.
    pub fn logs(
        self: &Arc<Self>,
        reference: &str,
        opts: LogOptions,
    ) -> Result<(bool, mpsc::Receiver<Bytes>)> {
        let c = self.container(reference)?;
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
        let opened: Vec<(PathBuf, File)> = log_files(&live)
            .into_iter()
            .filter_map(|p| File::open(&p).ok().map(|f| (p, f)))
            .collect();
        tokio::task::spawn_blocking(move || {
            let mut last: VecDeque<Bytes> = VecDeque::new();
            // The live file stays open while following: lines written just before
            // the container is removed are still read after its directory is gone.
            let mut live_file: Option<(File, u64)> = None;
            let mut offset = 0u64;
            for (path, file) in opened {
                let is_live = path == live;
                let inode = file.metadata().map(|m| m.ino()).unwrap_or(0);
                let mut reader = BufReader::new(file);
                let mut line = Vec::new();
                let mut read = 0u64;
                while let Ok(n) = reader.read_until(b'\n', &mut line) {
                    if n == 0 || line.last() != Some(&b'\n') {
                        break;
                    }
                    read += n as u64;
                    if let Some(b) = fmt.format(&line) {
                        match fmt.opts.tail {
                            Some(0) => {}
                            Some(t) => {
                                if last.len() == t {
                                    last.pop_front();
                                }
                                last.push_back(b);
                            }
                            None => {
                                if tx.blocking_send(b).is_err() {
                                    return;
                                }
                            }
                        }
                    }
                    line.clear();
                }
                if is_live {
                    offset = read;
                    live_file = Some((reader.into_inner(), inode));
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
                    .map(|c| c.state.running || c.state.restarting)
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
                    if file.seek(SeekFrom::Start(offset)).is_ok() {
                        let mut reader = BufReader::new(&mut *file);
                        let mut line = Vec::new();
                        while let Ok(n) = reader.read_until(b'\n', &mut line) {
                            if n == 0 || line.last() != Some(&b'\n') {
                                break;
                            }
                            offset += n as u64;
                            if let Some(b) = fmt.format(&line) {
                                if tx.blocking_send(b).is_err() {
                                    return;
                                }
                            }
                            line.clear();
                        }
                    }
                }
                if rotated {
                    if let Ok(f) = File::open(&live) {
                        let ino = f.metadata().map(|m| m.ino()).unwrap_or(0);
                        live_file = Some((f, ino));
                        offset = 0;
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
        if !c.state.running {
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
            .map_err(|e| crate::EngineError::Internal(format!("attach to {}: {e}", c.id)))?;
        Ok((c.config.tty, AttachStream::Ready(stream)))
    }

    pub async fn resize(&self, reference: &str, height: u16, width: u16) -> Result<()> {
        use tokio::io::AsyncWriteExt;
        let c = self.container(reference)?;
        if !c.state.running {
            return Err(crate::EngineError::Conflict(format!(
                "Container {} is not running",
                c.id
            )));
        }
        if let Ok(mut stream) = tokio::net::UnixStream::connect(self.monitor_socket(&c.id)).await {
            let mut req = serde_json::to_vec(&berth_monitor::Request::Resize { height, width })
                .map_err(|e| crate::EngineError::Internal(e.to_string()))?;
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
