//! Multiline reassembly: lines of one container and stream that continue the previous entry
//! (indented lines, blank lines, Python tracebacks, Java `Caused by:`/`... N more`,
//! PostgreSQL's `DETAIL:`/`HINT:`/`STATEMENT:`/`CONTEXT:` lines) are joined to it with `\n`. An entry closes when the next line is not a continuation, when it grows too
//! large, or when a poll finds nothing new for it and [`IDLE_CLOSE`] has passed since its last
//! line — so a traceback written across two polls is still one entry.

use std::time::{Duration, Instant};

use crate::level::{self, Level};

/// An entry closes when no line arrived for it this long (checked at each poll).
pub const IDLE_CLOSE: Duration = Duration::from_secs(1);
/// Lines per entry at most; a longer run is split into several entries.
const MAX_LINES: usize = 2000;
/// Bytes per entry at most (the same cap as one line).
pub const MAX_ENTRY_BYTES: usize = 256 * 1024;
/// Appended where a line or entry was cut.
pub const CUT_MARKER: &str = " … [cut: longer than 256 KiB]";

/// One complete log line of a stream, with the byte range it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    pub text: String,
    /// Docker's `time`, epoch ms.
    pub time_ms: i64,
    /// Byte offset of the line's first JSON record in the log file.
    pub start: u64,
    /// Byte offset just past the line's last JSON record.
    pub end: u64,
}

/// A reassembled entry, ready to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub time_ms: i64,
    pub message: String,
    pub level: Level,
    /// Byte range in the log file, from the first line's start to the last line's end.
    pub start: u64,
    pub end: u64,
}

struct Pending {
    time_ms: i64,
    message: String,
    start: u64,
    end: u64,
    lines: usize,
    /// Inside a Python traceback, waiting for its closing `ExceptionType: message` line.
    in_traceback: bool,
    last_line_at: Instant,
}

/// Reassembles the lines of one container's stream (`stdout` or `stderr`).
pub struct Assembler {
    stream: &'static str,
    pending: Option<Pending>,
}

impl Assembler {
    /// An assembler for `stream` (used for the stderr → ERROR default).
    pub fn new(stream: &'static str) -> Assembler {
        Assembler {
            stream,
            pending: None,
        }
    }

    /// Adds a line read at `now`; returns the entry it closed, if any.
    pub fn push(&mut self, line: Line, now: Instant) -> Option<Entry> {
        if let Some(pending) = &mut self.pending {
            let fits = pending.lines < MAX_LINES
                && pending.message.len() + line.text.len() < MAX_ENTRY_BYTES;
            if fits && is_continuation(&line.text, pending.in_traceback) {
                pending.in_traceback = traceback_state(&line.text, pending.in_traceback);
                pending.message.push('\n');
                pending.message.push_str(&line.text);
                pending.end = line.end;
                pending.lines += 1;
                pending.last_line_at = now;
                return None;
            }
        }
        let closed = self.flush();
        self.pending = Some(Pending {
            time_ms: line.time_ms,
            in_traceback: traceback_state(&line.text, false),
            message: line.text,
            start: line.start,
            end: line.end,
            lines: 1,
            last_line_at: now,
        });
        closed
    }

    /// Closes the pending entry if no line arrived for it for [`IDLE_CLOSE`].
    pub fn close_if_idle(&mut self, now: Instant) -> Option<Entry> {
        match &self.pending {
            Some(p) if now.duration_since(p.last_line_at) >= IDLE_CLOSE => self.flush(),
            _ => None,
        }
    }

    /// Closes the pending entry now (rotation, truncation, shutdown).
    pub fn flush(&mut self) -> Option<Entry> {
        let pending = self.pending.take()?;
        Some(Entry {
            level: level::detect(&pending.message, self.stream),
            time_ms: pending.time_ms,
            message: pending.message,
            start: pending.start,
            end: pending.end,
        })
    }

    /// Where the pending (not yet stored) entry starts in the file.
    pub fn pending_start(&self) -> Option<u64> {
        self.pending.as_ref().map(|p| p.start)
    }
}

/// Whether `line` continues the previous entry.
pub fn is_continuation(line: &str, in_traceback: bool) -> bool {
    const PREFIXES: [&str; 6] = [
        "Traceback (most recent call last)",
        "File \"",
        "During handling of the above exception",
        "The above exception was the direct cause",
        "Caused by:",
        "...",
    ];
    if line.is_empty() || line.starts_with(char::is_whitespace) {
        return true;
    }
    if let Some(rest) = line.strip_prefix("... ") {
        // Java's "... 12 more".
        return rest.trim_end().ends_with("more") && rest.starts_with(|c: char| c.is_ascii_digit());
    }
    if PREFIXES[..5].iter().any(|p| line.starts_with(p)) {
        return true;
    }
    is_postgres_detail(line) || (in_traceback && is_exception_line(line))
}

/// The lines PostgreSQL writes after an `ERROR:`/`FATAL:`/`LOG:` line about that same message,
/// each with the usual prefix (`2026-01-20 10:04:12.532 UTC [93] DETAIL:  Key (id)=(42)
/// already exists.`). Alone, each would be an entry of its own (and an ERROR, from stderr).
const POSTGRES_DETAILS: [&str; 6] = [
    "DETAIL:",
    "HINT:",
    "STATEMENT:",
    "CONTEXT:",
    "QUERY:",
    "LOCATION:",
];

fn is_postgres_detail(line: &str) -> bool {
    let rest = level::after_time_prefix(line);
    POSTGRES_DETAILS.iter().any(|p| rest.starts_with(p))
}

/// Whether the entry is inside a Python traceback after `line`.
fn traceback_state(line: &str, was: bool) -> bool {
    if line.starts_with("Traceback (most recent call last)") {
        return true;
    }
    if was && is_exception_line(line) {
        return false;
    }
    was
}

/// `ValueError: bad`, `requests.exceptions.HTTPError: 500`, `KeyboardInterrupt`.
fn is_exception_line(line: &str) -> bool {
    let name = line.split(':').next().unwrap_or("");
    let has_message = line.len() > name.len();
    !name.is_empty()
        && name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
        && (has_message
            || name.ends_with("Error")
            || name.ends_with("Exception")
            || name.ends_with("Interrupt"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(text: &str, start: u64) -> Line {
        Line {
            text: text.to_string(),
            time_ms: 1000 + start as i64,
            start,
            end: start + 10,
        }
    }

    fn feed(lines: &[&str]) -> Vec<String> {
        let mut assembler = Assembler::new("stderr");
        let now = Instant::now();
        let mut out: Vec<String> = Vec::new();
        for (i, text) in lines.iter().enumerate() {
            out.extend(
                assembler
                    .push(line(text, i as u64 * 10), now)
                    .map(|e| e.message),
            );
        }
        out.extend(assembler.flush().map(|e| e.message));
        out
    }

    #[test]
    fn python_traceback_is_one_entry() {
        let entries = feed(&[
            "ERROR:app:request failed",
            "Traceback (most recent call last):",
            "  File \"/app/main.py\", line 10, in handler",
            "    run()",
            "ValueError: bad input",
            "INFO:app:next request",
        ]);
        assert_eq!(entries.len(), 2, "{entries:?}");
        assert!(entries[0].ends_with("ValueError: bad input"));
        assert_eq!(entries[1], "INFO:app:next request");
    }

    #[test]
    fn chained_traceback_stays_together() {
        let entries = feed(&[
            "Traceback (most recent call last):",
            "  File \"a.py\", line 1, in <module>",
            "KeyError: 'x'",
            "",
            "During handling of the above exception, another exception occurred:",
            "",
            "Traceback (most recent call last):",
            "  File \"a.py\", line 3, in <module>",
            "RuntimeError: wrapped",
            "next line",
        ]);
        assert_eq!(entries.len(), 2, "{entries:?}");
        assert!(entries[0].ends_with("RuntimeError: wrapped"));
    }

    #[test]
    fn java_stack_continues() {
        let entries = feed(&[
            "Exception in thread \"main\" java.lang.IllegalStateException: boom",
            "\tat com.example.App.main(App.java:5)",
            "Caused by: java.io.IOException: disk",
            "\t... 3 more",
            "done",
        ]);
        assert_eq!(entries.len(), 2, "{entries:?}");
    }

    #[test]
    fn postgres_details_join_the_message_they_belong_to() {
        let fixture = include_str!("../tests/fixtures/postgres.log");
        let mut assembler = Assembler::new("stderr");
        let now = Instant::now();
        let mut entries: Vec<Entry> = Vec::new();
        for (i, text) in fixture.lines().enumerate() {
            entries.extend(assembler.push(line(text, i as u64 * 10), now));
        }
        entries.extend(assembler.flush());
        let summary: Vec<(Level, usize, &str)> = entries
            .iter()
            .map(|e| {
                let first = e.message.lines().next().unwrap_or("");
                (
                    e.level,
                    e.message.lines().count(),
                    level::after_time_prefix(first),
                )
            })
            .collect();
        let errors: Vec<_> = summary.iter().filter(|s| s.0 >= Level::Error).collect();
        assert_eq!(errors.len(), 4, "three ERRORs and a FATAL: {summary:#?}");
        assert_eq!(entries.len(), 10, "{summary:#?}");
        assert!(
            summary.iter().all(|s| !is_postgres_detail(s.2)),
            "no entry starts with a detail line: {summary:#?}"
        );
        let duplicate = &entries[3].message;
        assert!(
            duplicate.contains("ERROR:  duplicate key value"),
            "{duplicate}"
        );
        assert!(duplicate.contains("DETAIL:  Key (id)=(42) already exists."));
        assert!(duplicate.ends_with("VALUES (42, 7, 9.99)"), "{duplicate}");
        // A multi-line STATEMENT keeps its indented lines; CONTEXT and QUERY join too.
        assert_eq!(
            entries[4].message.lines().count(),
            5,
            "{}",
            entries[4].message
        );
        assert_eq!(
            entries[5].message.lines().count(),
            4,
            "{}",
            entries[5].message
        );
        assert_eq!(entries[7].level, Level::Critical);
        assert_eq!(entries[7].message.lines().count(), 2);
        // Without the prefix too, and a word that only looks like one does not join.
        assert!(is_postgres_detail(
            "HINT:  No function matches the given name."
        ));
        assert!(!is_postgres_detail(
            "2026-01-20 10:00:00 UTC [1] LOG:  DETAIL: later"
        ));
        assert!(!is_postgres_detail("DETAILS: none"));
    }

    #[test]
    fn exception_line_outside_a_traceback_starts_an_entry() {
        let entries = feed(&["first", "Note: this is new"]);
        assert_eq!(entries.len(), 2);
    }

    #[test]
    fn idle_entry_closes_only_after_the_idle_time() {
        let mut assembler = Assembler::new("stdout");
        let t0 = Instant::now();
        assert!(assembler
            .push(line("Traceback (most recent call last):", 0), t0)
            .is_none());
        assert!(assembler
            .close_if_idle(t0 + Duration::from_millis(500))
            .is_none());
        // The second half arrives on a later poll and joins.
        assert!(assembler
            .push(
                line("  File \"x.py\", line 1", 10),
                t0 + Duration::from_millis(600)
            )
            .is_none());
        assert!(assembler
            .close_if_idle(t0 + Duration::from_millis(1500))
            .is_none());
        let entry = assembler
            .close_if_idle(t0 + Duration::from_millis(1600))
            .unwrap();
        assert_eq!(entry.message.lines().count(), 2);
        assert_eq!((entry.start, entry.end), (0, 20));
        assert_eq!(entry.level, Level::Info);
    }
}
