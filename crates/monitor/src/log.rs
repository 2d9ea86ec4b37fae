//! Docker's json-file log format: one JSON object per line,
//! `{"log":"text\n","stream":"stdout","time":"2024-01-01T00:00:00.000000000Z"}`,
//! with size-based rotation (`container.log`, `container.log.1`, ...).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};

use berth_monitor::{LogConfig, STDERR};
use serde::Serialize;

/// Log files are readable by root and the owning group only, as docker's
/// json-file logs: container output often carries secrets.
const LOG_MODE: u32 = 0o640;

/// Docker cuts a line that grows past this without a newline into partial messages.
const MAX_LINE: usize = 16 * 1024;

#[derive(Serialize)]
struct Line<'a> {
    log: &'a str,
    stream: &'a str,
    time: String,
}

pub struct JsonLog {
    config: LogConfig,
    file: File,
    size: u64,
    partial: [Vec<u8>; 3],
}

impl JsonLog {
    pub fn open(config: LogConfig) -> std::io::Result<JsonLog> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .mode(LOG_MODE)
            .open(&config.path)?;
        // A file left by an older berth may be world-readable.
        file.set_permissions(std::fs::Permissions::from_mode(LOG_MODE))?;
        let size = file.metadata()?.len();
        Ok(JsonLog {
            config,
            file,
            size,
            partial: Default::default(),
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

    fn emit(&mut self, stream: u8, bytes: &[u8]) {
        let text = String::from_utf8_lossy(bytes);
        let line = Line {
            log: &text,
            stream: if stream == STDERR { "stderr" } else { "stdout" },
            time: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Nanos, true),
        };
        let Ok(mut encoded) = serde_json::to_vec(&line) else {
            return;
        };
        encoded.push(b'\n');
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
        let base = self.config.path.display().to_string();
        let keep = self.config.max_files.max(1);
        if keep > 1 {
            for i in (1..keep - 1).rev() {
                let _ = std::fs::rename(format!("{base}.{i}"), format!("{base}.{}", i + 1));
            }
            let _ = std::fs::rename(&base, format!("{base}.1"));
        }
        match OpenOptions::new()
            .create(true)
            .write(true)
            .truncate(true)
            .mode(LOG_MODE)
            .open(&self.config.path)
        {
            Ok(f) => {
                self.file = f;
                self.size = 0;
            }
            Err(e) => tracing::warn!(path = %base, error = %e, "log rotation failed"),
        }
    }
}
