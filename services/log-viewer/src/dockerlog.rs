//! Docker's `json-file` format: one JSON record per line,
//! `{"log":"text\n","stream":"stdout","time":"2026-01-20T10:00:00.123456789Z"}`. A record whose
//! `log` does not end in `\n` is a 16 KiB piece of a longer line (joined by the tailer).

use std::borrow::Cow;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};

use serde::Deserialize;

/// Which stream a record came from; the index of per-stream state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout = 0,
    Stderr = 1,
}

impl Stream {
    /// `stdout` or `stderr`.
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// One decoded record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// The text, JSON-unescaped, without its trailing newline.
    pub text: String,
    pub stream: Stream,
    /// Epoch ms; `None` when the record has no valid time.
    pub time_ms: Option<i64>,
    /// A piece of a longer line (no trailing newline in `log`).
    pub partial: bool,
}

#[derive(Deserialize)]
struct RawRecord<'a> {
    #[serde(borrow)]
    log: Cow<'a, str>,
    #[serde(borrow, default)]
    stream: Cow<'a, str>,
    #[serde(borrow, default)]
    time: Cow<'a, str>,
}

/// Decodes one line of a `json-file` log. A line that is not a valid record is kept as a raw
/// stdout message, never dropped.
pub fn parse_record(line: &[u8]) -> Record {
    match serde_json::from_slice::<RawRecord>(line) {
        Ok(raw) => {
            let (text, partial) = match raw.log.strip_suffix('\n') {
                Some(text) => (text.strip_suffix('\r').unwrap_or(text).to_string(), false),
                None => (raw.log.into_owned(), true),
            };
            Record {
                text,
                stream: if raw.stream == "stderr" {
                    Stream::Stderr
                } else {
                    Stream::Stdout
                },
                time_ms: shared::time::parse_rfc3339_ms(&raw.time),
                partial,
            }
        }
        Err(_) => Record {
            text: String::from_utf8_lossy(line)
                .trim_end_matches(['\r', '\n'])
                .to_string(),
            stream: Stream::Stdout,
            time_ms: None,
            partial: false,
        },
    }
}

/// Complete lines read from a file: `data` holds them back to back, `lines` their ranges
/// within `data` (newline excluded) and `consumed` how many bytes they span.
#[derive(Debug, Default)]
pub struct Lines {
    pub data: Vec<u8>,
    pub lines: Vec<(usize, usize)>,
    pub consumed: u64,
    /// Whether the read reached the end of the file.
    pub at_end: bool,
}

/// Reads the complete lines (ending in `\n`) of `file` from `offset`, at most `budget` bytes.
/// A line still being written is left for a later read — unless it alone fills the budget,
/// then it is taken as it is so that one huge line never stalls the file.
pub fn read_lines(file: &mut File, offset: u64, budget: usize) -> io::Result<Lines> {
    file.seek(SeekFrom::Start(offset))?;
    let mut data = Vec::with_capacity(budget.min(256 * 1024));
    file.take(budget as u64).read_to_end(&mut data)?;
    let at_end = data.len() < budget;
    let complete = match data.iter().rposition(|&b| b == b'\n') {
        Some(last) => last + 1,
        None if !at_end => data.len(),
        None => 0,
    };
    data.truncate(complete);
    let mut lines = Vec::new();
    let mut start = 0;
    for (i, &b) in data.iter().enumerate() {
        if b == b'\n' {
            lines.push((start, i));
            start = i + 1;
        }
    }
    if start < data.len() {
        lines.push((start, data.len()));
    }
    Ok(Lines {
        consumed: complete as u64,
        data,
        lines,
        at_end,
    })
}

/// The offset of the first line that starts at or after `offset` (used to begin a tail
/// buffer at a line start).
pub fn next_line_start(file: &mut File, offset: u64) -> io::Result<u64> {
    if offset == 0 {
        return Ok(0);
    }
    file.seek(SeekFrom::Start(offset - 1))?;
    let mut buf = [0u8; 8192];
    let mut position = offset - 1;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            return Ok(position);
        }
        if let Some(i) = buf[..n].iter().position(|&b| b == b'\n') {
            return Ok(position + i as u64 + 1);
        }
        position += n as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn records_are_unescaped() {
        let record = parse_record(br#"{"log":"say \"hi\"\tto \u003cyou\u003e\n","stream":"stderr","time":"2026-01-20T10:00:00.123456789Z"}"#);
        assert_eq!(record.text, "say \"hi\"\tto <you>");
        assert_eq!(record.stream, Stream::Stderr);
        assert_eq!(
            record.time_ms,
            shared::time::parse_rfc3339_ms("2026-01-20T10:00:00.123Z")
        );
        assert!(!record.partial);
    }

    #[test]
    fn pieces_and_raw_lines() {
        let piece =
            parse_record(br#"{"log":"abc","stream":"stdout","time":"2026-01-20T10:00:00Z"}"#);
        assert!(piece.partial);
        let raw = parse_record(b"not json at all");
        assert_eq!(raw.text, "not json at all");
        assert_eq!(raw.time_ms, None);
    }

    #[test]
    fn only_complete_lines_are_read() {
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(b"one\ntwo\nthr").unwrap();
        let lines = read_lines(&mut file, 0, 1024).unwrap();
        assert_eq!(lines.consumed, 8);
        let texts: Vec<&[u8]> = lines
            .lines
            .iter()
            .map(|&(s, e)| &lines.data[s..e])
            .collect();
        assert_eq!(texts, vec![&b"one"[..], b"two"]);
        assert_eq!(next_line_start(&mut file, 2).unwrap(), 4);
        assert_eq!(next_line_start(&mut file, 4).unwrap(), 4);
    }

    #[test]
    fn a_line_filling_the_budget_is_taken() {
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(&[b'x'; 100]).unwrap();
        let lines = read_lines(&mut file, 0, 10).unwrap();
        assert_eq!(lines.consumed, 10);
        assert_eq!(lines.lines, vec![(0, 10)]);
    }
}
