//! Container log files, in docker's two on-disk formats, written by the monitor
//! and read by berthd's `logs`: one place for both sides of the format.
//!
//! - `json-file`: one JSON object per line,
//!   `{"log":"text\n","stream":"stdout","time":"2024-01-01T00:00:00.000000000Z"}`.
//! - `local`: docker's `local` driver records: a 4-byte big-endian length, a
//!   protobuf `LogEntry` (source = 1, time_nano = 2, line = 3, partial = 4), the
//!   length again. The line is kept without its newline; `partial` marks a line
//!   that was cut (docker's rule).
//!
//! Rotation keeps `container.log`, `container.log.1`, ... (`.N.gz` when
//! compressed); [`files`] lists them oldest first and [`open`] reads either.

use std::io::Read;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::{STDERR, STDOUT};

/// How a container's log is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
pub enum LogFormat {
    #[default]
    #[serde(rename = "json-file")]
    JsonFile,
    #[serde(rename = "local")]
    Local,
}

/// One logged line (or piece of a cut line).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub stream: u8,
    /// Nanoseconds since the epoch.
    pub time_nanos: i64,
    /// The bytes as the reader shows them (with the newline of a whole line).
    pub line: Vec<u8>,
}

impl Record {
    /// docker's RFC 3339 time with nanoseconds.
    pub fn time(&self) -> String {
        chrono::DateTime::from_timestamp_nanos(self.time_nanos)
            .to_rfc3339_opts(chrono::SecondsFormat::Nanos, true)
    }
}

#[derive(Serialize, Deserialize)]
struct JsonLine<'a> {
    #[serde(borrow)]
    log: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    stream: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    time: std::borrow::Cow<'a, str>,
}

fn stream_name(stream: u8) -> &'static str {
    if stream == STDERR {
        "stderr"
    } else {
        "stdout"
    }
}

/// Encodes one record; `line` includes its newline unless it was cut.
pub fn encode(format: LogFormat, stream: u8, line: &[u8], time_nanos: i64) -> Vec<u8> {
    match format {
        LogFormat::JsonFile => {
            let time = chrono::DateTime::from_timestamp_nanos(time_nanos)
                .to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
            let entry = JsonLine {
                log: String::from_utf8_lossy(line),
                stream: stream_name(stream).into(),
                time: time.into(),
            };
            let mut out = serde_json::to_vec(&entry).unwrap_or_default();
            out.push(b'\n');
            out
        }
        LogFormat::Local => {
            let (text, partial) = match line.strip_suffix(b"\n") {
                Some(t) => (t, false),
                None => (line, true),
            };
            let mut msg = Vec::with_capacity(text.len() + 32);
            let source = stream_name(stream).as_bytes();
            msg.push(0x0a); // 1: source, length-delimited
            put_varint(&mut msg, source.len() as u64);
            msg.extend_from_slice(source);
            msg.push(0x10); // 2: time_nano, varint
            put_varint(&mut msg, time_nanos as u64);
            msg.push(0x1a); // 3: line, length-delimited
            put_varint(&mut msg, text.len() as u64);
            msg.extend_from_slice(text);
            if partial {
                msg.push(0x20); // 4: partial, varint
                msg.push(1);
            }
            let size = (msg.len() as u32).to_be_bytes();
            let mut out = Vec::with_capacity(msg.len() + 8);
            out.extend_from_slice(&size);
            out.extend_from_slice(&msg);
            out.extend_from_slice(&size);
            out
        }
    }
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn get_varint(buf: &[u8], pos: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for shift in (0..64).step_by(7) {
        let b = *buf.get(*pos)?;
        *pos += 1;
        v |= u64::from(b & 0x7f) << shift;
        if b < 0x80 {
            return Some(v);
        }
    }
    None
}

/// Largest local record accepted when reading (docker cuts lines at 16 KiB; a
/// bigger length means a damaged file, which ends the read there).
const MAX_LOCAL_RECORD: usize = 1 << 20;

/// Why decoding stopped.
#[derive(Debug, PartialEq, Eq)]
pub enum Decoded {
    /// A record and the bytes it took (`None`: a damaged record, skipped).
    Record(Option<Record>, usize),
    /// The buffer ends inside a record: read more.
    Incomplete,
    /// The file is damaged past repair from here on.
    Corrupt,
}

/// Decodes the record at the start of `buf`.
pub fn decode(format: LogFormat, buf: &[u8]) -> Decoded {
    match format {
        LogFormat::JsonFile => {
            let Some(end) = buf.iter().position(|&b| b == b'\n') else {
                return Decoded::Incomplete;
            };
            let record = serde_json::from_slice::<JsonLine>(&buf[..end])
                .ok()
                .and_then(|l| {
                    let time = chrono::DateTime::parse_from_rfc3339(&l.time).ok()?;
                    Some(Record {
                        stream: if l.stream == "stderr" { STDERR } else { STDOUT },
                        time_nanos: time.timestamp_nanos_opt()?,
                        line: l.log.as_bytes().to_vec(),
                    })
                });
            Decoded::Record(record, end + 1)
        }
        LogFormat::Local => {
            let Some(size) = buf.get(..4) else {
                return Decoded::Incomplete;
            };
            let size = u32::from_be_bytes([size[0], size[1], size[2], size[3]]) as usize;
            if size > MAX_LOCAL_RECORD {
                return Decoded::Corrupt;
            }
            if buf.len() < size + 8 {
                return Decoded::Incomplete;
            }
            if buf[4 + size..8 + size] != buf[..4] {
                return Decoded::Corrupt;
            }
            Decoded::Record(decode_entry(&buf[4..4 + size]), size + 8)
        }
    }
}

/// A protobuf `LogEntry`; unknown fields are skipped.
fn decode_entry(msg: &[u8]) -> Option<Record> {
    let mut pos = 0;
    let mut record = Record {
        stream: STDOUT,
        time_nanos: 0,
        line: Vec::new(),
    };
    let mut partial = false;
    while pos < msg.len() {
        let key = get_varint(msg, &mut pos)?;
        let (field, wire) = (key >> 3, key & 7);
        match wire {
            0 => {
                let v = get_varint(msg, &mut pos)?;
                match field {
                    2 => record.time_nanos = v as i64,
                    4 => partial = v != 0,
                    _ => {}
                }
            }
            2 => {
                let len = get_varint(msg, &mut pos)? as usize;
                let bytes = msg.get(pos..pos.checked_add(len)?)?;
                pos += len;
                match field {
                    1 if bytes == b"stderr" => record.stream = STDERR,
                    3 => record.line = bytes.to_vec(),
                    _ => {}
                }
            }
            1 => pos += 8,
            5 => pos += 4,
            _ => return None,
        }
    }
    if pos != msg.len() {
        return None;
    }
    if !partial {
        record.line.push(b'\n');
    }
    Some(record)
}

/// Reads records out of a byte stream that may grow (the live file).
#[derive(Default)]
pub struct RecordReader {
    buf: Vec<u8>,
    corrupt: bool,
}

impl RecordReader {
    /// Reads what `source` has now and returns the whole records in it; a
    /// record cut by the end of what was written waits for the next call.
    pub fn read_available(
        &mut self,
        format: LogFormat,
        source: &mut dyn Read,
    ) -> std::io::Result<Vec<Record>> {
        let mut chunk = [0u8; 64 * 1024];
        let mut out = Vec::new();
        loop {
            let n = match source.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            if self.corrupt {
                continue;
            }
            self.buf.extend_from_slice(&chunk[..n]);
            let mut start = 0;
            loop {
                match decode(format, &self.buf[start..]) {
                    Decoded::Record(record, used) => {
                        out.extend(record);
                        start += used;
                    }
                    Decoded::Incomplete => break,
                    Decoded::Corrupt => {
                        self.corrupt = true;
                        start = self.buf.len();
                        break;
                    }
                }
            }
            self.buf.drain(..start);
        }
        Ok(out)
    }
}

/// The files of the log whose live file is `live`, oldest first: `live.N`
/// (or `live.N.gz`) by descending N, then `live`. A number present both
/// compressed and not (compression under way) is read from the plain file.
pub fn files(live: &Path) -> Vec<PathBuf> {
    let mut rotated: std::collections::BTreeMap<u32, PathBuf> = Default::default();
    if let (Some(dir), Some(name)) = (live.parent(), live.file_name().and_then(|n| n.to_str())) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let file_name = entry.file_name();
            let Some(rest) = file_name
                .to_str()
                .and_then(|f| f.strip_prefix(name))
                .and_then(|s| s.strip_prefix('.'))
            else {
                continue;
            };
            let (number, gz) = match rest.strip_suffix(".gz") {
                Some(n) => (n, true),
                None => (rest, false),
            };
            let Ok(n) = number.parse::<u32>() else {
                continue;
            };
            if gz && rotated.contains_key(&n) {
                continue;
            }
            rotated.insert(n, entry.path());
        }
    }
    let mut out: Vec<PathBuf> = rotated.into_values().rev().collect();
    out.push(live.to_path_buf());
    out
}

/// Opens a log file for reading, decompressing a `.gz` one.
pub fn open(path: &Path) -> std::io::Result<Box<dyn Read + Send>> {
    let file = std::fs::File::open(path)?;
    if path.extension().is_some_and(|e| e == "gz") {
        Ok(Box::new(flate2::read::GzDecoder::new(file)))
    } else {
        Ok(Box::new(file))
    }
}

/// The rotated file `n` of `live`, plain.
pub fn rotated(live: &Path, n: u32) -> PathBuf {
    let mut name = live.as_os_str().to_owned();
    name.push(format!(".{n}"));
    PathBuf::from(name)
}

/// The rotated file `n` of `live`, compressed.
pub fn rotated_gz(live: &Path, n: u32) -> PathBuf {
    let mut name = live.as_os_str().to_owned();
    name.push(format!(".{n}.gz"));
    PathBuf::from(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(format: LogFormat, stream: u8, line: &[u8]) -> Record {
        let bytes = encode(format, stream, line, 1_700_000_000_123_456_789);
        match decode(format, &bytes) {
            Decoded::Record(Some(r), used) => {
                assert_eq!(used, bytes.len());
                r
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn both_formats_keep_stream_time_and_line() {
        for format in [LogFormat::JsonFile, LogFormat::Local] {
            for (stream, line) in [
                (STDOUT, &b"hello\n"[..]),
                (STDERR, b"cut without newline"),
                (STDOUT, b"\n"),
            ] {
                let r = round_trip(format, stream, line);
                assert_eq!((r.stream, r.line.as_slice()), (stream, line), "{format:?}");
                assert_eq!(r.time(), "2023-11-14T22:13:20.123456789Z");
            }
        }
    }

    #[test]
    fn local_is_dockers_framing() {
        let bytes = encode(LogFormat::Local, STDOUT, b"hi\n", 5);
        // size | 0a 06 "stdout" | 10 05 | 1a 02 "hi" | size
        assert_eq!(
            bytes,
            [
                &[0, 0, 0, 14][..],
                &[0x0a, 6],
                b"stdout",
                &[0x10, 5, 0x1a, 2],
                b"hi",
                &[0, 0, 0, 14]
            ]
            .concat()
        );
    }

    #[test]
    fn a_growing_file_is_read_in_whole_records() {
        for format in [LogFormat::JsonFile, LogFormat::Local] {
            let all: Vec<u8> = (0..50)
                .flat_map(|i| encode(format, STDOUT, format!("line {i}\n").as_bytes(), i))
                .collect();
            let mut reader = RecordReader::default();
            let mut got = Vec::new();
            for piece in all.chunks(7) {
                got.extend(reader.read_available(format, &mut &piece[..]).unwrap());
            }
            assert_eq!(got.len(), 50, "{format:?}");
            assert_eq!(got[49].line, b"line 49\n");
        }
    }

    #[test]
    fn damage_stops_local_reading_and_skips_a_json_line() {
        let mut bytes = encode(LogFormat::Local, STDOUT, b"ok\n", 1);
        bytes.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 1, 2, 3]);
        let mut reader = RecordReader::default();
        let got = reader
            .read_available(LogFormat::Local, &mut &bytes[..])
            .unwrap();
        assert_eq!(got.len(), 1);
        let mut json = b"not json\n".to_vec();
        json.extend(encode(LogFormat::JsonFile, STDERR, b"after\n", 1));
        let got = RecordReader::default()
            .read_available(LogFormat::JsonFile, &mut &json[..])
            .unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].stream, STDERR);
    }

    #[test]
    fn files_are_listed_oldest_first_preferring_plain() {
        let dir = tempfile::tempdir().unwrap();
        let live = dir.path().join("container.log");
        for name in [
            "container.log",
            "container.log.1",
            "container.log.1.gz",
            "container.log.2.gz",
            "container.log.10.gz",
            "container.log.x",
            "other.log.3",
        ] {
            std::fs::write(dir.path().join(name), b"").unwrap();
        }
        let names: Vec<String> = files(&live)
            .iter()
            .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            names,
            [
                "container.log.10.gz",
                "container.log.2.gz",
                "container.log.1",
                "container.log"
            ]
        );
    }
}
