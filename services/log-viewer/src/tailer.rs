//! Following one container's `<id>-json.log`: complete lines only, 16 KiB pieces joined,
//! long lines cut, rotation (`<id>-json.log.1`) and truncation handled, and a cursor that
//! says exactly what is stored, so a restart never loses or duplicates a line.
//!
//! The cursor: `position` is where reading resumes after a restart (the start of the oldest
//! line not yet stored), and `done[stream]` is the end of the last stored line of each stream:
//! when re-reading from `position`, a line of that stream starting before it was stored
//! already and is skipped. (Entries still being assembled are not stored yet, and the other
//! stream may have stored lines after them.)

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::dockerlog::{self, Stream};
use crate::multiline::{Assembler, Entry, Line, CUT_MARKER, MAX_ENTRY_BYTES};

/// Rotated files looked at for the rest of a rotated log (`.1` … `.5`).
const ROTATED_FILES: u32 = 5;

/// What is stored of a container's log, saved with the entries in one transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Cursor {
    pub position: u64,
    pub inode: u64,
    pub device: u64,
    /// End of the last stored line, per stream (stdout, stderr).
    pub done: [u64; 2],
}

/// A 16 KiB piece series being joined into one line.
struct Partial {
    text: String,
    time_ms: i64,
    start: u64,
}

/// One followed container.
pub struct Tail {
    pub container_id: String,
    pub name: String,
    path: PathBuf,
    /// The file being read (its inode/device) and the stored state.
    cursor: Cursor,
    /// Where raw reading continues (≥ `cursor.position`).
    read_offset: u64,
    partial: [Option<Partial>; 2],
    assemblers: [Assembler; 2],
}

/// The result of one poll of one container.
pub struct Polled {
    pub entries: Vec<(Stream, Entry)>,
    /// The read stopped at the budget: more is waiting.
    pub more: bool,
}

impl Tail {
    /// Follows `path` from a saved cursor, or — with none — from `start` (the beginning, or a
    /// line start near the end for the first scan's tail buffer).
    pub fn new(
        container_id: String,
        name: String,
        path: PathBuf,
        saved: Option<Cursor>,
        tail_buffer: Option<u64>,
    ) -> Tail {
        let cursor = saved.unwrap_or_else(|| initial_cursor(&path, tail_buffer));
        Tail {
            container_id,
            name,
            path,
            read_offset: cursor.position,
            cursor,
            partial: [None, None],
            assemblers: [Assembler::new("stdout"), Assembler::new("stderr")],
        }
    }

    /// The cursor to store with the entries returned so far.
    pub fn cursor(&self) -> Cursor {
        let mut position = self.read_offset;
        for stream in 0..2 {
            if let Some(start) = self.assemblers[stream].pending_start() {
                position = position.min(start);
            }
            if let Some(partial) = &self.partial[stream] {
                position = position.min(partial.start);
            }
        }
        Cursor {
            position,
            ..self.cursor
        }
    }

    /// Reads what is new (at most `budget` bytes) and returns the entries it completed.
    pub fn poll(&mut self, budget: usize, now: Instant) -> io::Result<Polled> {
        let mut out = Vec::new();
        let meta = match std::fs::metadata(&self.path) {
            Ok(meta) => meta,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return Ok(self.finish_poll(out, false, now))
            }
            Err(e) => return Err(e),
        };
        if self.cursor.inode == 0 {
            self.cursor.inode = meta.ino();
            self.cursor.device = meta.dev();
        }
        // Rotated (once or more since the last poll): finish the file we were reading, then
        // every newer rotated file from its start, then the current one.
        while meta.ino() != self.cursor.inode || meta.dev() != self.cursor.device {
            let Some((number, mut old)) = self.find_rotated() else {
                log::warn!(
                    "{}: log rotated and the old file is gone; lines after offset {} of it are lost",
                    self.name, self.read_offset
                );
                self.restart_file(meta.ino(), meta.dev(), &mut out);
                break;
            };
            if self.read_from(&mut old, budget, now, &mut out)? {
                return Ok(self.finish_poll(out, true, now));
            }
            self.take_unterminated_rest(&mut old, now, &mut out)?;
            let newer = match number {
                1 => None,
                n => File::open(rotated_path(&self.path, n - 1))
                    .and_then(|f| f.metadata())
                    .ok(),
            };
            match newer {
                Some(newer) => self.restart_file(newer.ino(), newer.dev(), &mut out),
                None => self.restart_file(meta.ino(), meta.dev(), &mut out),
            }
        }
        if meta.len() < self.read_offset {
            log::info!("{}: log truncated; reading it from the start", self.name);
            self.restart_file(meta.ino(), meta.dev(), &mut out);
        }
        let mut file = File::open(&self.path)?;
        let more = self.read_from(&mut file, budget, now, &mut out)?;
        Ok(self.finish_poll(out, more, now))
    }

    /// Closes whatever is pending (the file rotated or the container is gone): returns those
    /// entries.
    pub fn flush(&mut self) -> Vec<(Stream, Entry)> {
        let mut out = Vec::new();
        for stream in [Stream::Stdout, Stream::Stderr] {
            if let Some(partial) = self.partial[stream as usize].take() {
                let line = Line {
                    text: partial.text,
                    time_ms: partial.time_ms,
                    start: partial.start,
                    end: self.read_offset,
                };
                self.push_line(stream, line, Instant::now(), &mut out);
            }
            if let Some(entry) = self.assemblers[stream as usize].flush() {
                self.record(stream, entry, &mut out);
            }
        }
        out
    }

    fn finish_poll(&mut self, mut out: Vec<(Stream, Entry)>, more: bool, now: Instant) -> Polled {
        for stream in [Stream::Stdout, Stream::Stderr] {
            if let Some(entry) = self.assemblers[stream as usize].close_if_idle(now) {
                self.record(stream, entry, &mut out);
            }
        }
        Polled { entries: out, more }
    }

    /// The rotated file (`.1` … `.5`) that is the one we were reading, with its number.
    fn find_rotated(&self) -> Option<(u32, File)> {
        (1..=ROTATED_FILES).find_map(|n| {
            let file = File::open(rotated_path(&self.path, n)).ok()?;
            let meta = file.metadata().ok()?;
            (meta.ino() == self.cursor.inode && meta.dev() == self.cursor.device)
                .then_some((n, file))
        })
    }

    /// A rotated file's last line without `\n` (it will not grow any more).
    fn take_unterminated_rest(
        &mut self,
        file: &mut File,
        now: Instant,
        out: &mut Vec<(Stream, Entry)>,
    ) -> io::Result<()> {
        file.seek(SeekFrom::Start(self.read_offset))?;
        let mut rest = Vec::new();
        file.take(2 * MAX_ENTRY_BYTES as u64)
            .read_to_end(&mut rest)?;
        if !rest.is_empty() {
            let end = self.read_offset + rest.len() as u64;
            self.handle_record(&rest, self.read_offset, end, now, out);
            self.read_offset = end;
        }
        Ok(())
    }

    /// Everything pending belongs to the old file: close it, then follow the new file.
    fn restart_file(&mut self, inode: u64, device: u64, out: &mut Vec<(Stream, Entry)>) {
        out.extend(self.flush());
        self.cursor = Cursor {
            position: 0,
            inode,
            device,
            done: [0, 0],
        };
        self.read_offset = 0;
    }

    fn read_from(
        &mut self,
        file: &mut File,
        budget: usize,
        now: Instant,
        out: &mut Vec<(Stream, Entry)>,
    ) -> io::Result<bool> {
        let lines = dockerlog::read_lines(file, self.read_offset, budget)?;
        let base = self.read_offset;
        for &(start, end) in &lines.lines {
            // Each range is followed by its `\n` (or ends the consumed bytes).
            let line_end = (end as u64 + 1).min(lines.consumed);
            self.handle_record(
                &lines.data[start..end],
                base + start as u64,
                base + line_end,
                now,
                out,
            );
        }
        self.read_offset = base + lines.consumed;
        Ok(!lines.at_end)
    }

    fn handle_record(
        &mut self,
        bytes: &[u8],
        start: u64,
        end: u64,
        now: Instant,
        out: &mut Vec<(Stream, Entry)>,
    ) {
        let record = dockerlog::parse_record(bytes);
        let stream = record.stream;
        let time_ms = record.time_ms.unwrap_or_else(shared::time::now_ms);
        let slot = &mut self.partial[stream as usize];
        if record.partial {
            let partial = slot.get_or_insert_with(|| Partial {
                text: String::new(),
                time_ms,
                start,
            });
            append_capped(&mut partial.text, &record.text);
            return;
        }
        let line = match slot.take() {
            Some(mut partial) => {
                append_capped(&mut partial.text, &record.text);
                Line {
                    text: partial.text,
                    time_ms: partial.time_ms,
                    start: partial.start,
                    end,
                }
            }
            None => {
                let mut text = String::new();
                append_capped(&mut text, &record.text);
                Line {
                    text,
                    time_ms,
                    start,
                    end,
                }
            }
        };
        if line.start < self.cursor.done[stream as usize] {
            return; // stored before a restart
        }
        self.push_line(stream, line, now, out);
    }

    fn push_line(
        &mut self,
        stream: Stream,
        line: Line,
        now: Instant,
        out: &mut Vec<(Stream, Entry)>,
    ) {
        if let Some(entry) = self.assemblers[stream as usize].push(line, now) {
            self.record(stream, entry, out);
        }
    }

    fn record(&mut self, stream: Stream, entry: Entry, out: &mut Vec<(Stream, Entry)>) {
        let done = &mut self.cursor.done[stream as usize];
        *done = (*done).max(entry.end);
        out.push((stream, entry));
    }
}

/// Appends `piece` to `text`, cutting at [`MAX_ENTRY_BYTES`] (on a character boundary) with a
/// marker; once cut, further pieces are dropped.
fn append_capped(text: &mut String, piece: &str) {
    if text.ends_with(CUT_MARKER) {
        return;
    }
    if text.len() + piece.len() <= MAX_ENTRY_BYTES {
        text.push_str(piece);
        return;
    }
    let mut room = MAX_ENTRY_BYTES.saturating_sub(text.len());
    while !piece.is_char_boundary(room) {
        room -= 1;
    }
    text.push_str(&piece[..room]);
    text.push_str(CUT_MARKER);
}

/// `<id>-json.log.<n>`.
fn rotated_path(path: &Path, n: u32) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".{n}"));
    PathBuf::from(name)
}

fn initial_cursor(path: &Path, tail_buffer: Option<u64>) -> Cursor {
    let mut cursor = Cursor::default();
    let Ok(mut file) = File::open(path) else {
        return cursor;
    };
    let Ok(meta) = file.metadata() else {
        return cursor;
    };
    cursor.inode = meta.ino();
    cursor.device = meta.dev();
    if let Some(buffer) = tail_buffer {
        let start = meta.len().saturating_sub(buffer);
        cursor.position = dockerlog::next_line_start(&mut file, start).unwrap_or(0);
    }
    cursor.done = [cursor.position; 2];
    cursor
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::time::Duration;

    fn record(text: &str, stream: &str) -> String {
        let log = serde_json::to_string(text).unwrap();
        format!("{{\"log\":{log},\"stream\":\"{stream}\",\"time\":\"2026-01-20T10:00:00.000000001Z\"}}\n")
    }

    fn append(path: &Path, text: &str) {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap();
        file.write_all(text.as_bytes()).unwrap();
    }

    fn messages(polled: &Polled) -> Vec<String> {
        polled
            .entries
            .iter()
            .map(|(_, e)| e.message.clone())
            .collect()
    }

    /// Polls now, then once more after the idle time so pending entries close.
    fn drain(tail: &mut Tail) -> Vec<String> {
        let now = Instant::now();
        let mut out = messages(&tail.poll(1 << 20, now).unwrap());
        out.extend(messages(
            &tail.poll(1 << 20, now + Duration::from_secs(5)).unwrap(),
        ));
        out
    }

    #[test]
    fn pieces_join_and_incomplete_lines_wait() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c-json.log");
        append(&path, &record("hello\n", "stdout"));
        append(&path, &record("first half ", "stdout"));
        append(&path, "{\"log\":\"second ha");
        let mut tail = Tail::new("c".into(), "c".into(), path.clone(), None, None);
        assert_eq!(drain(&mut tail), vec!["hello"]);
        append(
            &path,
            "lf\\n\",\"stream\":\"stdout\",\"time\":\"2026-01-20T10:00:01Z\"}\n",
        );
        assert_eq!(drain(&mut tail), vec!["first half second half"]);
    }

    #[test]
    fn restart_from_cursor_neither_loses_nor_duplicates() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c-json.log");
        append(&path, &record("out 1\n", "stdout"));
        append(
            &path,
            &record("Traceback (most recent call last):\n", "stderr"),
        );
        append(&path, &record("out 2\n", "stdout"));
        append(&path, &record("out 3\n", "stdout"));
        let mut tail = Tail::new("c".into(), "c".into(), path.clone(), None, None);
        let now = Instant::now();
        // The stderr traceback and "out 3" are still pending; "out 1", "out 2" are stored.
        assert_eq!(
            messages(&tail.poll(1 << 20, now).unwrap()),
            vec!["out 1", "out 2"]
        );
        let saved = tail.cursor();
        // Crash: a new tail from the saved cursor sees the rest exactly once.
        append(&path, &record("  File \"x.py\", line 1\n", "stderr"));
        let mut again = Tail::new("c".into(), "c".into(), path.clone(), Some(saved), None);
        let mut rest = drain(&mut again);
        rest.sort();
        assert_eq!(
            rest,
            vec![
                "Traceback (most recent call last):\n  File \"x.py\", line 1",
                "out 3"
            ]
        );
    }

    #[test]
    fn rotation_finishes_the_old_file_first() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c-json.log");
        append(&path, &record("a\n", "stdout"));
        let mut tail = Tail::new("c".into(), "c".into(), path.clone(), None, None);
        assert_eq!(drain(&mut tail), vec!["a"]);
        append(&path, &record("b\n", "stdout"));
        std::fs::rename(&path, dir.path().join("c-json.log.1")).unwrap();
        append(&path, &record("c\n", "stdout"));
        assert_eq!(drain(&mut tail), vec!["b", "c"]);
        assert_eq!(
            tail.cursor().position,
            std::fs::metadata(&path).unwrap().len()
        );
    }

    #[test]
    fn two_rotations_between_polls_lose_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c-json.log");
        append(&path, &record("a\n", "stdout"));
        let mut tail = Tail::new("c".into(), "c".into(), path.clone(), None, None);
        assert_eq!(drain(&mut tail), vec!["a"]);
        append(&path, &record("b\n", "stdout"));
        std::fs::rename(&path, rotated_path(&path, 1)).unwrap();
        append(&path, &record("c\n", "stdout"));
        std::fs::rename(rotated_path(&path, 1), rotated_path(&path, 2)).unwrap();
        std::fs::rename(&path, rotated_path(&path, 1)).unwrap();
        append(&path, &record("d\n", "stdout"));
        assert_eq!(drain(&mut tail), vec!["b", "c", "d"]);
    }

    #[test]
    fn truncation_reads_from_zero() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c-json.log");
        append(&path, &record("long line number one\n", "stdout"));
        let mut tail = Tail::new("c".into(), "c".into(), path.clone(), None, None);
        assert_eq!(drain(&mut tail).len(), 1);
        std::fs::write(&path, record("x\n", "stdout")).unwrap();
        assert_eq!(drain(&mut tail), vec!["x"]);
    }

    #[test]
    fn long_lines_are_cut() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c-json.log");
        let piece = "y".repeat(16 * 1024);
        for _ in 0..20 {
            append(&path, &record(&piece, "stdout"));
        }
        append(&path, &record("end\n", "stdout"));
        let mut tail = Tail::new("c".into(), "c".into(), path.clone(), None, None);
        let entries = drain(&mut tail);
        assert_eq!(entries.len(), 1);
        assert!(entries[0].ends_with(CUT_MARKER));
        assert!(entries[0].len() <= MAX_ENTRY_BYTES + CUT_MARKER.len());
    }

    #[test]
    fn tail_buffer_starts_at_a_line_start() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c-json.log");
        for i in 0..100 {
            append(&path, &record(&format!("line {i}\n"), "stdout"));
        }
        let mut tail = Tail::new("c".into(), "c".into(), path.clone(), None, Some(200));
        let entries = drain(&mut tail);
        assert!(!entries.is_empty() && entries.len() < 5, "{entries:?}");
        assert_eq!(entries.last().unwrap(), "line 99");
    }
}
