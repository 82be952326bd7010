//! Log level detection on a (reassembled) message, first match wins:
//! 1. JSON messages: `level`, `severity`, `lvl`, `log.level` (strings) or numeric pino/bunyan
//!    levels; 2. logfmt `level=warn`; 3. a bracketed token `[ERROR]`; 4. a leading token,
//!    optionally after a timestamp (`ERROR: ...`, `INFO:     ...`,
//!    `2026-01-20 10:00:00,123 ERROR ...`); 5. otherwise ERROR for stderr, INFO for stdout.

use serde::Serialize;

/// A normalized level. The order is severity: `level >= Warning` means "warning and above".
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Level {
    Debug = 1,
    Info = 2,
    Warning = 3,
    Error = 4,
    Critical = 5,
}

impl Level {
    /// Every level, in order.
    pub const ALL: [Level; 5] = [
        Level::Debug,
        Level::Info,
        Level::Warning,
        Level::Error,
        Level::Critical,
    ];

    /// The stored number (1–5).
    pub fn as_number(self) -> i64 {
        self as i64
    }

    /// The level stored as `number`.
    pub fn from_number(number: i64) -> Option<Level> {
        Level::ALL.into_iter().find(|l| l.as_number() == number)
    }

    /// The level stored as `number`, INFO for a number no version of us writes.
    pub fn from_stored(number: i64) -> Level {
        Level::from_number(number).unwrap_or(Level::Info)
    }

    /// `DEBUG`, `INFO`, `WARNING`, `ERROR`, `CRITICAL`.
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Debug => "DEBUG",
            Level::Info => "INFO",
            Level::Warning => "WARNING",
            Level::Error => "ERROR",
            Level::Critical => "CRITICAL",
        }
    }

    /// Normalizes a level word, case-insensitively (`warn` → WARNING, `fatal` → CRITICAL...).
    pub fn from_word(word: &str) -> Option<Level> {
        let lower = word.trim().to_ascii_lowercase();
        Some(match lower.as_str() {
            "trace" | "debug" | "dbg" | "verbose" => Level::Debug,
            "info" | "information" | "notice" | "inf" | "log" => Level::Info,
            "warn" | "warning" | "wrn" => Level::Warning,
            "error" | "err" | "eror" => Level::Error,
            "fatal" | "crit" | "critical" | "panic" | "emerg" | "emergency" | "alert" => {
                Level::Critical
            }
            _ => return None,
        })
    }

    /// pino/bunyan numeric levels: 10 trace, 20 debug, 30 info, 40 warn, 50 error, 60 fatal.
    fn from_pino(number: f64) -> Option<Level> {
        Some(match number as i64 {
            n if n < 10 => return None,
            10..=29 => Level::Debug,
            30..=39 => Level::Info,
            40..=49 => Level::Warning,
            50..=59 => Level::Error,
            _ => Level::Critical,
        })
    }
}

/// Detects the level of `message` written to `stream` (`stdout` or `stderr`).
pub fn detect(message: &str, stream: &str) -> Level {
    from_json(message)
        .or_else(|| from_logfmt(message))
        .or_else(|| from_brackets(message))
        .or_else(|| from_leading_token(message))
        .unwrap_or(if stream == "stderr" {
            Level::Error
        } else {
            Level::Info
        })
}

fn from_json(message: &str) -> Option<Level> {
    let first_line = message.lines().next()?.trim();
    if !first_line.starts_with('{') {
        return None;
    }
    let value: serde_json::Value = serde_json::from_str(first_line).ok()?;
    for key in ["level", "severity", "lvl"] {
        match value.get(key) {
            Some(serde_json::Value::String(word)) => {
                if let Some(level) = Level::from_word(word) {
                    return Some(level);
                }
            }
            Some(serde_json::Value::Number(n)) => {
                if let Some(level) = n.as_f64().and_then(Level::from_pino) {
                    return Some(level);
                }
            }
            _ => {}
        }
    }
    let nested = value
        .get("log")
        .and_then(|log| log.get("level"))
        .or_else(|| value.get("log.level"));
    nested.and_then(|v| v.as_str()).and_then(Level::from_word)
}

fn from_logfmt(message: &str) -> Option<Level> {
    let first_line = message.lines().next()?;
    for pair in first_line.split_ascii_whitespace() {
        let Some((key, value)) = pair.split_once('=') else {
            continue;
        };
        if key.eq_ignore_ascii_case("level") || key.eq_ignore_ascii_case("lvl") {
            return Level::from_word(value.trim_matches('"'));
        }
    }
    None
}

fn from_brackets(message: &str) -> Option<Level> {
    let first_line = message.lines().next()?;
    let mut rest = first_line;
    while let Some(open) = rest.find('[') {
        let after = &rest[open + 1..];
        let close = after.find(']')?;
        if let Some(level) = Level::from_word(&after[..close]) {
            return Some(level);
        }
        rest = &after[close + 1..];
    }
    None
}

/// The first word, or the first word after a leading timestamp (date, time, fraction and
/// zone tokens made of digits and `-:.,TZ+/`).
fn from_leading_token(message: &str) -> Option<Level> {
    let first_line = message.lines().next()?;
    for token in first_line.split_ascii_whitespace().take(6) {
        let word = token
            .trim_end_matches([':', '|', '-', ']'])
            .trim_start_matches('[');
        if let Some(level) = Level::from_word(word) {
            return Some(level);
        }
        if !looks_like_time(token) && !is_zone_or_pid(token) {
            return None;
        }
    }
    None
}

/// `line` after a leading timestamp, zone and process id (`2026-01-20 10:00:00.123 UTC [81] `,
/// PostgreSQL's default prefix), or `line` itself when it has none.
pub fn after_time_prefix(line: &str) -> &str {
    let mut rest = line.trim_start();
    for _ in 0..6 {
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        let token = &rest[..end];
        if token.is_empty() || !(looks_like_time(token) || is_zone_or_pid(token)) {
            break;
        }
        rest = rest[end..].trim_start();
    }
    rest
}

/// `UTC`, `GMT` or a bracketed process id like `[81]` (PostgreSQL's prefix).
fn is_zone_or_pid(token: &str) -> bool {
    matches!(token, "UTC" | "GMT")
        || token
            .strip_prefix('[')
            .and_then(|t| t.strip_suffix(']'))
            .is_some_and(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()))
}

fn looks_like_time(token: &str) -> bool {
    token.bytes().any(|b| b.is_ascii_digit())
        && token
            .bytes()
            .all(|b| b.is_ascii_digit() || b"-:.,TZ+/[]".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(message: &str, stream: &str, expected: Level) {
        assert_eq!(detect(message, stream), expected, "{message:?} on {stream}");
    }

    #[test]
    fn rules_in_order() {
        let cases = [
            (r#"{"level":"warn","msg":"disk"}"#, "stdout", Level::Warning),
            (
                r#"{"severity":"ERROR","message":"x"}"#,
                "stdout",
                Level::Error,
            ),
            (r#"{"lvl":"dbug"}"#, "stderr", Level::Error),
            (r#"{"level":30,"msg":"pino info"}"#, "stderr", Level::Info),
            (
                r#"{"level":60,"msg":"pino fatal"}"#,
                "stdout",
                Level::Critical,
            ),
            (
                r#"{"log":{"level":"debug"},"message":"ecs"}"#,
                "stdout",
                Level::Debug,
            ),
            (r#"{"log.level":"error"}"#, "stdout", Level::Error),
            (
                "time=2026-01-20 level=warn msg=\"slow query\"",
                "stdout",
                Level::Warning,
            ),
            ("ts=1 level=\"error\" msg=x", "stdout", Level::Error),
            ("[2026-01-20 10:00:00] [ERROR] boom", "stdout", Level::Error),
            ("app [warn] retrying", "stdout", Level::Warning),
            ("ERROR: connection refused", "stdout", Level::Error),
            (
                "INFO:     Uvicorn running on http://0.0.0.0:8000",
                "stderr",
                Level::Info,
            ),
            (
                "2026-01-20 10:00:00,123 ERROR django.request failed",
                "stdout",
                Level::Error,
            ),
            (
                "2026-01-20T10:00:00.123Z WARN  slow",
                "stdout",
                Level::Warning,
            ),
            ("fatal: not a git repository", "stdout", Level::Critical),
            ("panic: runtime error", "stdout", Level::Critical),
            (
                "Traceback (most recent call last):\n  File \"x\", line 1",
                "stderr",
                Level::Error,
            ),
            ("GET /health 200", "stdout", Level::Info),
            (
                "2026-01-20 10:00:00.123 UTC [81] ERROR:  duplicate key",
                "stderr",
                Level::Error,
            ),
            (
                "2026-01-20 10:00:00.123 UTC [1] LOG:  checkpoint complete",
                "stderr",
                Level::Info,
            ),
            ("something went to stderr", "stderr", Level::Error),
            ("the error was handled", "stdout", Level::Info),
            ("{not json", "stdout", Level::Info),
        ];
        for (message, stream, expected) in cases {
            check(message, stream, expected);
        }
    }

    #[test]
    fn numbers_round_trip() {
        for level in Level::ALL {
            assert_eq!(Level::from_number(level.as_number()), Some(level));
            assert_eq!(Level::from_word(level.as_str()), Some(level));
        }
        assert!(Level::Warning < Level::Error);
    }
}
