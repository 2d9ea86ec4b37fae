//! The container's log as the monitor writes it: docker's json-file or local
//! format (`berth_monitor::logfile`), rotated by size (`container.log`,
//! `container.log.1`, ...), rotated files gzipped when `compress` is set.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use berth_monitor::logfile;
use berth_monitor::LogConfig;

/// Log files are readable by root and the owning group only, as docker's
/// logs: container output often carries secrets.
const LOG_MODE: u32 = 0o640;

/// Docker cuts a line that grows past this without a newline into partial messages.
const MAX_LINE: usize = 16 * 1024;

pub struct LogWriter {
    config: LogConfig,
    file: File,
    size: u64,
    partial: [Vec<u8>; 3],
    /// The compression of the last rotated file, finished before the next
    /// rotation renames what it writes.
    compressing: Option<std::thread::JoinHandle<()>>,
}

impl LogWriter {
    pub fn open(config: LogConfig) -> std::io::Result<LogWriter> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(LOG_MODE)
            .open(&config.path)?;
        // A file left by an older berth may be world-readable.
        file.set_permissions(std::fs::Permissions::from_mode(LOG_MODE))?;
        let size = file.metadata()?.len();
        Ok(LogWriter {
            config,
            file,
            size,
            partial: Default::default(),
            compressing: None,
        })
    }

    pub fn write(&mut self, stream: u8, data: &[u8]) {
        let idx = stream.min(2) as usize;
        let mut rest = data;
        while let Some(pos) = rest.iter().position(|&b| b == b'\n') {
            let mut line = std::mem::take(&mut self.partial[idx]);
            line.extend_from_slice(&rest[..=pos]);
            self.emit(stream, &line);
            rest = &rest[pos + 1..];
        }
        self.partial[idx].extend_from_slice(rest);
        if self.partial[idx].len() >= MAX_LINE {
            let line = std::mem::take(&mut self.partial[idx]);
            self.emit(stream, &line);
        }
    }

    pub fn flush_partial(&mut self, stream: u8) {
        let idx = stream.min(2) as usize;
        if !self.partial[idx].is_empty() {
            let line = std::mem::take(&mut self.partial[idx]);
            self.emit(stream, &line);
        }
    }

    /// Waits for a compression in progress (the monitor is exiting).
    pub fn finish(&mut self) {
        if let Some(handle) = self.compressing.take() {
            let _ = handle.join();
        }
    }

    fn emit(&mut self, stream: u8, line: &[u8]) {
        let now = chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default();
        let encoded = logfile::encode(self.config.format, stream, line, now);
        if self.config.max_size > 0
            && self.size + encoded.len() as u64 > self.config.max_size
            && self.size > 0
        {
            self.rotate();
        }
        if self.file.write_all(&encoded).is_ok() {
            self.size += encoded.len() as u64;
        }
    }

    fn rotate(&mut self) {
        self.finish();
        let live = self.config.path.clone();
        let keep = self.config.max_files.max(1);
        if keep > 1 {
            // Oldest first out of the way: N-1 → N ... 1 → 2, then live → 1.
            for i in (1..keep - 1).rev() {
                for (from, to) in [
                    (logfile::rotated(&live, i), logfile::rotated(&live, i + 1)),
                    (
                        logfile::rotated_gz(&live, i),
                        logfile::rotated_gz(&live, i + 1),
                    ),
                ] {
                    if from.exists() {
                        let _ = std::fs::rename(from, to);
                    }
                }
            }
            let first = logfile::rotated(&live, 1);
            let _ = std::fs::rename(&live, &first);
            if self.config.compress {
                self.compressing = Some(std::thread::spawn(move || compress(&first)));
            }
        }
        match OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .mode(LOG_MODE)
            .open(&live)
        {
            Ok(f) => {
                self.file = f;
                self.size = 0;
            }
            Err(e) => tracing::warn!(path = %live.display(), error = %e, "log rotation failed"),
        }
    }
}

/// `FILE` → `FILE.gz` (written aside, then renamed), then `FILE` goes; a
/// reader sees one or the other whole (`logfile::files` prefers `FILE`).
fn compress(path: &Path) {
    let gz = PathBuf::from(format!("{}.gz", path.display()));
    let tmp = PathBuf::from(format!("{}.gz.tmp", path.display()));
    let result = (|| -> std::io::Result<()> {
        let mut source = File::open(path)?;
        let out = OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .mode(LOG_MODE)
            .open(&tmp)?;
        let mut encoder = flate2::write::GzEncoder::new(out, flate2::Compression::default());
        std::io::copy(&mut source, &mut encoder)?;
        encoder.finish()?.sync_all()?;
        std::fs::rename(&tmp, &gz)?;
        std::fs::remove_file(path)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        tracing::warn!(path = %path.display(), error = %e, "log compression failed");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_monitor::logfile::LogFormat;

    #[test]
    fn rotation_keeps_max_files_compressed_and_readable() {
        for format in [LogFormat::JsonFile, LogFormat::Local] {
            let dir = tempfile::tempdir().unwrap();
            let live = dir.path().join("container.log");
            let mut log = LogWriter::open(LogConfig {
                path: live.clone(),
                max_size: 1024,
                max_files: 3,
                format,
                compress: true,
            })
            .unwrap();
            for i in 0..2000 {
                log.write(berth_monitor::STDOUT, format!("line {i:05}\n").as_bytes());
            }
            log.finish();
            let files = logfile::files(&live);
            let names: Vec<String> = files
                .iter()
                .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
                .collect();
            assert_eq!(
                names,
                ["container.log.2.gz", "container.log.1.gz", "container.log"],
                "{format:?}"
            );
            let mut lines = Vec::new();
            for f in &files {
                let mut reader = logfile::RecordReader::default();
                lines.extend(
                    reader
                        .read_available(format, &mut logfile::open(f).unwrap())
                        .unwrap(),
                );
            }
            // The newest lines, in order, none lost between the kept files.
            let last = lines.last().unwrap();
            assert_eq!(last.line, b"line 01999\n");
            for pair in lines.windows(2) {
                let n = |r: &logfile::Record| {
                    String::from_utf8_lossy(&r.line[5..10])
                        .parse::<u32>()
                        .unwrap()
                };
                assert_eq!(n(&pair[0]) + 1, n(&pair[1]));
            }
            let compressed = std::fs::metadata(&files[0]).unwrap().len();
            assert!(
                compressed < 1024,
                "{format:?}: a rotated file of ~1 KiB gzips smaller ({compressed})"
            );
        }
    }
}
