//! Rewriting minified browser stack traces with uploaded source maps.
//!
//! [`Map`] is one parsed, validated source map; [`MapCache`] keeps recently used maps within a
//! byte budget; [`rewrite_stack`] maps each V8 or Firefox/Safari frame of a stack back to its
//! original file, line, column and function name. Everything here reads bytes that came from a
//! browser or an upload, so nothing panics and the work per stack is bounded.
//!
//! Function names: a source map cannot name the function that *contains* a position without
//! the minified source, but the token at a call site names the function being *called*. So a
//! frame takes its original name from the token of the frame below it (its caller's call
//! site), as Sentry does; without a mapped, named caller it keeps the minified name.

use serde::de::IgnoredAny;
use serde::Deserialize;
use serde_json::Value;
use sourcemap::{RawToken, SourceMap};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

/// At most this many frames of one stack are parsed and mapped; the rest are kept as they are.
const MAX_FRAMES: usize = 1000;
/// Longer lines are kept as they are, unparsed.
const MAX_LINE: usize = 4096;
/// Lines and columns above this are not positions in a real script: such frames stay unmapped.
const MAX_POSITION: u32 = 100_000_000;
/// Source file and function names from a map longer than this (or with control characters) are
/// not used, so a rewritten stack stays small and keeps its line count.
const MAX_NAME: usize = 1024;

/// A parsed, validated source map (wraps `sourcemap::SourceMap`; also knows its size in bytes
/// for the cache). The sources' contents are dropped after parsing: only mappings are needed.
pub struct Map {
    map: SourceMap,
    weight: usize,
}

/// The top-level fields checked before the map is decoded, to give a clear reason.
#[derive(Deserialize)]
struct Header {
    version: Option<serde_json::Value>,
    sources: Option<IgnoredAny>,
    mappings: Option<serde_json::Value>,
    sections: Option<IgnoredAny>,
}

/// An original position, 1-based.
struct Original<'a> {
    source: &'a str,
    line: u64,
    column: u64,
    name: Option<&'a str>,
}

impl Map {
    /// Parses and validates an uploaded map (source map v3 JSON bytes). `Err(detail)` is a short
    /// human reason for a 400, e.g. "not a source map v3: missing 'mappings'". Index maps (with
    /// `sections`) and Hermes maps are refused: upload the flattened map.
    pub fn parse(bytes: &[u8]) -> Result<Map, String> {
        let header: Header = serde_json::from_slice(bytes).map_err(|e| match e.classify() {
            serde_json::error::Category::Data => {
                "not a source map v3: not a JSON object with unique keys".into()
            }
            _ => format!("not JSON: {e}"),
        })?;
        match header.version {
            None => return Err("not a source map v3: missing 'version'".into()),
            Some(v) if v.as_u64() != Some(3) => {
                return Err("not a source map v3: 'version' must be 3".into());
            }
            Some(_) => {}
        }
        if header.sections.is_some() {
            return Err(
                "index maps ('sections') are not supported: upload the flattened map".into(),
            );
        }
        let separators = match header.mappings {
            None => return Err("not a source map v3: missing 'mappings'".into()),
            Some(serde_json::Value::String(m)) => m.matches([',', ';']).count(),
            Some(_) => return Err("not a source map v3: 'mappings' must be a string".into()),
        };
        if header.sources.is_none() {
            return Err("not a source map v3: missing 'sources'".into());
        }
        let mut map =
            SourceMap::from_slice(bytes).map_err(|e| format!("invalid source map: {e}"))?;
        for idx in 0..map.get_source_count() {
            map.set_source_contents(idx, None);
        }
        // The crate reserves a token per ',' or ';' (plus 10), used or not. Each string is an
        // Arc<str> (two words of counts) behind a fat pointer; a source is also held prefixed
        // with `sourceRoot`, and has a (now empty) contents slot.
        let tokens = (separators + 10) * size_of::<RawToken>();
        let names: usize = map.names().map(|s| s.len() + 32).sum();
        let sources: usize = map.sources().map(|s| 2 * (s.len() + 32) + 16).sum();
        let weight = size_of::<Map>() + tokens + names + sources;
        Ok(Map { map, weight })
    }

    /// Approximate memory it holds, bytes (for the cache bound).
    pub fn weight(&self) -> usize {
        self.weight
    }

    /// The original position of a minified 1-based `line` and `column`, if the map has a
    /// mapping on that line at or before that column.
    fn lookup(&self, line: u32, column: u32) -> Option<Original<'_>> {
        let valid = 1..=MAX_POSITION;
        if !valid.contains(&line) || !valid.contains(&column) {
            return None;
        }
        let token = self.map.lookup_token(line - 1, column - 1)?;
        if token.get_dst_line() != line - 1 {
            return None; // the nearest mapping is on an earlier line
        }
        Some(Original {
            source: token.get_source().filter(|s| usable(s))?,
            line: u64::from(token.get_src_line()) + 1,
            column: u64::from(token.get_src_col()) + 1,
            name: token.get_name().filter(|s| usable(s)),
        })
    }
}

fn usable(name: &str) -> bool {
    !name.is_empty() && name.len() <= MAX_NAME && !name.chars().any(char::is_control)
}

/// Parsed maps by key (the map's database id), bounded by total weight, least recently used
/// evicted. Thread-safe (`&self` methods, internal Mutex), shared by request threads.
pub struct MapCache {
    max_bytes: usize,
    inner: Mutex<CacheInner>,
}

#[derive(Default)]
struct CacheInner {
    /// Each map with the tick of its last use.
    entries: HashMap<i64, (Arc<Map>, u64)>,
    /// Last use → id, least recently used first.
    by_use: BTreeMap<u64, i64>,
    bytes: usize,
    clock: u64,
    /// Counts `remove` calls, so a map loaded while one ran is not kept (it may be stale).
    removals: u64,
}

impl CacheInner {
    fn touch(&mut self, id: i64) -> Option<Arc<Map>> {
        let (map, used) = self.entries.get_mut(&id)?;
        self.by_use.remove(used);
        self.clock += 1;
        *used = self.clock;
        self.by_use.insert(self.clock, id);
        Some(Arc::clone(map))
    }

    fn forget(&mut self, id: i64) {
        if let Some((map, used)) = self.entries.remove(&id) {
            self.by_use.remove(&used);
            self.bytes = self.bytes.saturating_sub(map.weight());
        }
    }

    fn insert(&mut self, id: i64, map: Arc<Map>, max_bytes: usize) {
        self.forget(id);
        while self.bytes.saturating_add(map.weight()) > max_bytes {
            match self.by_use.pop_first() {
                Some((_, oldest)) => self.forget(oldest),
                None => break,
            }
        }
        self.clock += 1;
        self.bytes += map.weight();
        self.by_use.insert(self.clock, id);
        self.entries.insert(id, (map, self.clock));
    }
}

impl MapCache {
    /// An empty cache that keeps at most `max_bytes` of maps (by [`Map::weight`]).
    pub fn new(max_bytes: usize) -> MapCache {
        MapCache {
            max_bytes,
            inner: Mutex::default(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, CacheInner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The map with `id`, parsing `load()`'s bytes on a miss; None when load() gives None or the
    /// bytes do not parse (logged). A map heavier than max_bytes is used but not kept. `load`
    /// runs without the lock held, so it may query the database.
    pub fn get(&self, id: i64, load: impl FnOnce() -> Option<Vec<u8>>) -> Option<Arc<Map>> {
        let removals = {
            let mut inner = self.lock();
            if let Some(map) = inner.touch(id) {
                return Some(map);
            }
            inner.removals
        };
        let map = match Map::parse(&load()?) {
            Ok(map) => Arc::new(map),
            Err(detail) => {
                log::warn!("source map {id} does not parse, frames stay unmapped: {detail}");
                return None;
            }
        };
        let mut inner = self.lock();
        if map.weight() <= self.max_bytes && inner.removals == removals {
            inner.insert(id, Arc::clone(&map), self.max_bytes);
        }
        Some(map)
    }

    /// Forget a map (deleted or replaced).
    pub fn remove(&self, id: i64) {
        let mut inner = self.lock();
        inner.removals += 1;
        inner.forget(id);
    }
}

/// The path part of a script URL, as source maps are matched by path:
/// "https://cdn.example.com/assets/app.min.js?v=3#x" and "/assets/app.min.js" both give
/// "/assets/app.min.js"; "//cdn.example.com/a.js" gives "/a.js"; a URL without a path gives "/".
/// A relative name ("app.min.js", "./app.js") is kept as it is (without query and fragment):
/// it matches only an upload whose `file_url` is that same relative name.
pub fn file_path(url: &str) -> String {
    let url = url.find(['?', '#']).map_or(url, |end| &url[..end]);
    let is_scheme = |s: &str| {
        s.starts_with(|c: char| c.is_ascii_alphabetic())
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
    };
    let authority_and_path = match url.split_once("://") {
        Some((scheme, rest)) if is_scheme(scheme) => rest,
        _ => match url.strip_prefix("//") {
            Some(rest) => rest,
            None => return url.to_string(),
        },
    };
    authority_and_path
        .find('/')
        .map_or("/", |start| &authority_and_path[start..])
        .to_string()
}

/// One stack frame as a browser printed it, borrowed from its line.
struct Frame<'a> {
    /// Everything before the function name: indentation, "at ", "async ", "new ", Firefox's
    /// "async*" markers.
    prefix: &'a str,
    /// The (minified) function name as printed, "" when there is none.
    name: &'a str,
    url: &'a str,
    line: u32,
    column: u32,
    /// V8 (`at name (url:l:c)` / `at url:l:c`) or Firefox/Safari (`name@url:l:c`).
    v8: bool,
}

impl Frame<'_> {
    fn parse(line: &str) -> Option<Frame<'_>> {
        let trimmed = line.trim_start();
        match trimmed.strip_prefix("at ") {
            Some(rest) => Frame::parse_v8(line, line.len() - rest.len()),
            None if trimmed.len() == line.len() => Frame::parse_gecko(line),
            None => None,
        }
    }

    /// `    at [async ][new ]name (url:l:c)` or `    at [async ]url:l:c`; `prefix_len` ends
    /// after "at ".
    fn parse_v8(line: &str, mut prefix_len: usize) -> Option<Frame<'_>> {
        for keyword in ["async ", "new "] {
            if line[prefix_len..].starts_with(keyword) {
                prefix_len += keyword.len();
            }
        }
        let (prefix, rest) = line.split_at(prefix_len);
        let (name, location) = match rest.strip_suffix(')').and_then(|r| r.rsplit_once(" (")) {
            Some((name, location)) if !name.is_empty() => (name, location),
            _ => ("", rest),
        };
        let (url, line, column) = parse_location(location)?;
        Some(Frame {
            prefix,
            name,
            url,
            line,
            column,
            v8: true,
        })
    }

    /// `name@url:l:c` or `@url:l:c`; Firefox may prefix the name with "async*" and the like.
    fn parse_gecko(line: &str) -> Option<Frame<'_>> {
        let (before, location) = line.split_once('@')?;
        let (url, line, column) = parse_location(location)?;
        let (prefix, name) = before.split_at(before.rfind('*').map_or(0, |star| star + 1));
        Some(Frame {
            prefix,
            name,
            url,
            line,
            column,
            v8: false,
        })
    }

    /// The frame in its own format, pointing at `original`, named `name` ("" for none).
    fn render(&self, name: &str, original: &Original<'_>) -> String {
        let location = format!("{}:{}:{}", original.source, original.line, original.column);
        match (self.v8, name.is_empty()) {
            (false, _) => format!("{}{name}@{location}", self.prefix),
            (true, true) => format!("{}{location}", self.prefix),
            (true, false) => format!("{}{name} ({location})", self.prefix),
        }
    }
}

/// Splits `url:line:column` from the right (URLs may hold a port). The URL must be non-empty
/// without spaces or parentheses: eval frames ("eval at f (…), <anonymous>:1:1",
/// "app.js line 2 > eval:1:1") are not frames we can map.
fn parse_location(location: &str) -> Option<(&str, u32, u32)> {
    let (rest, column) = location.rsplit_once(':')?;
    let (url, line) = rest.rsplit_once(':')?;
    let number = |s: &str| match s.bytes().all(|b| b.is_ascii_digit()) {
        true => s.parse::<u32>().ok(),
        false => None,
    };
    let bad_url = url.is_empty() || url.contains(|c: char| c.is_whitespace() || "()".contains(c));
    if bad_url {
        return None;
    }
    Some((url, number(line)?, number(column)?))
}

/// Rewrites every frame of `stack` it can map: `map_for(file_path)` returns the map for a
/// frame's script (the caller looks it up by project+release+path; it is asked once per path).
/// V8 frames `    at fn (url:line:col)`, `    at url:line:col`, `    at async fn (url:l:c)`,
/// `    at new Foo (url:l:c)`, and Firefox/Safari `fn@url:line:col` / `@url:line:col`; line and
/// column are 1-based as browsers print them.
///
/// A mapped frame keeps its format but names the original source file, line and column
/// (1-based) and the original function name: the name of the token at its caller's call site
/// (the next line, when that is a mapped frame whose token has a name), else the minified name.
/// Unmapped frames and other lines are kept exactly as they were. At most 1000 frames are
/// mapped, lines over 4 KiB are kept as they are, lines and columns over 10^8 are unmapped.
pub fn rewrite_stack(stack: &str, map_for: impl FnMut(&str) -> Option<Arc<Map>>) -> String {
    let lines: Vec<(&str, &str)> = stack
        .split('\n')
        .map(|line| match line.strip_suffix('\r') {
            Some(body) => (body, "\r"),
            None => (line, ""),
        })
        .collect();

    let mut maps = MapsByPath::new(map_for);
    let mut budget = MAX_FRAMES;
    let frames: Vec<Option<(Frame<'_>, Arc<Map>)>> = lines
        .iter()
        .map(|(line, _)| {
            if budget == 0 || line.len() > MAX_LINE {
                return None;
            }
            let frame = Frame::parse(line)?;
            budget -= 1;
            let map = maps.get(frame.url)?;
            Some((frame, map))
        })
        .collect();
    let originals: Vec<Option<Original<'_>>> = frames
        .iter()
        .map(|f| {
            f.as_ref()
                .and_then(|(frame, map)| map.lookup(frame.line, frame.column))
        })
        .collect();

    let mut out = String::with_capacity(stack.len() + stack.len() / 2);
    for (i, (line, cr)) in lines.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        match (&frames[i], &originals[i]) {
            (Some((frame, _)), Some(original)) => {
                let caller = originals.get(i + 1).and_then(|o| o.as_ref()?.name);
                out.push_str(&frame.render(caller.unwrap_or(frame.name), original));
            }
            _ => out.push_str(line),
        }
        out.push_str(cr);
    }
    out
}

/// Rewrites Sentry stack frames in place (JSON objects, outermost first as Sentry orders
/// them), by the rules of [`rewrite_stack`]: a frame whose `abs_path` (or `filename`),
/// `lineno` and `colno` a map covers gets the original source as `abs_path` and `filename`,
/// the original `lineno` and `colno`, and as `function` the name of the token at its caller's
/// call site (the frame before it), when there is one. Other frames are kept as they are; at
/// most 1000 frames are mapped.
pub fn rewrite_frames(frames: &mut [Value], map_for: impl FnMut(&str) -> Option<Arc<Map>>) {
    let mapped = frames.len().min(MAX_FRAMES);
    let frames = &mut frames[..mapped];
    let mut maps = MapsByPath::new(map_for);
    let located: Vec<Option<(Arc<Map>, u32, u32)>> = frames
        .iter()
        .map(|frame| {
            let url = frame
                .get("abs_path")
                .or_else(|| frame.get("filename"))?
                .as_str()?;
            let position = |name| u32::try_from(frame.get(name)?.as_u64()?).ok();
            let (line, column) = (position("lineno")?, position("colno")?);
            Some((maps.get(url)?, line, column))
        })
        .collect();
    let originals: Vec<Option<Original<'_>>> = located
        .iter()
        .map(|l| {
            l.as_ref()
                .and_then(|(map, line, col)| map.lookup(*line, *col))
        })
        .collect();
    for (i, frame) in frames.iter_mut().enumerate() {
        let (Some(original), Value::Object(fields)) = (&originals[i], frame) else {
            continue;
        };
        fields.insert("abs_path".into(), original.source.into());
        fields.insert("filename".into(), original.source.into());
        fields.insert("lineno".into(), original.line.into());
        fields.insert("colno".into(), original.column.into());
        let caller = i.checked_sub(1).and_then(|c| originals[c].as_ref()?.name);
        if let Some(name) = caller {
            fields.insert("function".into(), name.into());
        }
    }
}

/// The map of each script path, asked of `map_for` once per path.
struct MapsByPath<F> {
    map_for: F,
    maps: HashMap<String, Option<Arc<Map>>>,
}

impl<F: FnMut(&str) -> Option<Arc<Map>>> MapsByPath<F> {
    fn new(map_for: F) -> Self {
        MapsByPath {
            map_for,
            maps: HashMap::new(),
        }
    }

    /// The map of the script at `url`.
    fn get(&mut self, url: &str) -> Option<Arc<Map>> {
        let path = file_path(url);
        if let Some(map) = self.maps.get(&path) {
            return map.clone();
        }
        let map = (self.map_for)(&path);
        self.maps.insert(path, map.clone());
        map
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sourcemap::SourceMapBuilder;
    use std::cell::Cell;

    const MINIFIED: &str = r#"function a(b){throw new Error(b)}function c(){a("x")}c();"#;
    const URL: &str = "https://cdn.example.com:8443/assets/app.min.js?v=3";

    /// The map of MINIFIED for the original `src/app.ts`:
    /// ```text
    /// 1 function fail(message) {
    /// 2   throw new Error(message);
    /// 3 }
    /// 4 function main() {
    /// 5   fail("x");
    /// 6 }
    /// 7 main();
    /// ```
    fn app_map_json() -> Vec<u8> {
        let col = |needle: &str| MINIFIED.find(needle).unwrap() as u32;
        let mut builder = SourceMapBuilder::new(Some("app.min.js"));
        let src = Some("src/app.ts");
        builder.add(0, col("a("), 0, 9, src, Some("fail"), false);
        builder.add(0, col("throw"), 1, 2, src, None, false);
        builder.add(0, col("c()"), 3, 9, src, Some("main"), false);
        builder.add(0, col(r#"a("x")"#), 4, 2, src, Some("fail"), false);
        builder.add(0, col("c();"), 6, 0, src, Some("main"), false);
        builder.set_source_contents(0, Some("function fail(message) {…"));
        let mut json = Vec::new();
        builder.into_sourcemap().to_writer(&mut json).unwrap();
        json
    }

    fn app_map() -> Arc<Map> {
        Arc::new(Map::parse(&app_map_json()).unwrap())
    }

    /// Rewrites with the app map for "/assets/app.min.js" and no map for other paths.
    fn rewrite(stack: &str) -> String {
        let map = app_map();
        rewrite_stack(stack, |path| {
            (path == "/assets/app.min.js").then(|| map.clone())
        })
    }

    /// 1-based column of `needle` in MINIFIED.
    fn at(needle: &str) -> usize {
        MINIFIED.find(needle).unwrap() + 1
    }

    /// A frame as "prefix|name|url|line|column".
    fn parsed(line: &str) -> Option<String> {
        let f = Frame::parse(line)?;
        Some(format!(
            "{}|{}|{}|{}|{}",
            f.prefix, f.name, f.url, f.line, f.column
        ))
    }

    #[test]
    fn parses_v8_firefox_and_safari_frames() {
        let frames = [
            (
                "    at f (http://h:8080/a.js:10:5)",
                "    at |f|http://h:8080/a.js|10|5",
            ),
            (
                "    at http://h:8080/a.js:10:5",
                "    at ||http://h:8080/a.js|10|5",
            ),
            (
                "    at async Foo.run (/a.js:1:2)",
                "    at async |Foo.run|/a.js|1|2",
            ),
            ("    at new Foo (/a.js:3:4)", "    at new |Foo|/a.js|3|4"),
            ("    at async /a.js:3:4", "    at async ||/a.js|3|4"),
            ("  at t.a [as b] (/a.js:3:4)", "  at |t.a [as b]|/a.js|3|4"),
            (
                "f@https://cdn/pkg@1.2.3/x.js:1:2",
                "|f|https://cdn/pkg@1.2.3/x.js|1|2",
            ),
            ("@http://h:8080/a.js:1:2", "||http://h:8080/a.js|1|2"),
            ("async*g/<@/a.js:1:2", "async*|g/<|/a.js|1|2"),
            ("global code@/a.js:1:2", "|global code|/a.js|1|2"),
        ];
        for (line, frame) in frames {
            assert_eq!(parsed(line).as_deref(), Some(frame), "{line}");
        }
        for line in [
            "TypeError: x is undefined",
            "    at Array.map (<anonymous>)",
            "    at async Promise.all (index 0)",
            "    at eval (eval at f (http://x/app.js:1:2), <anonymous>:1:1)",
            "@http://x/app.js line 2 > eval:1:1",
            "    at f (http://x/app.js:1)",
            "    at f (http://x/app.js:+1:2)",
            "    at f (http://x/app.js:1:99999999999)",
            "    at f (:1:2)",
            "    f@/a.js:1:2",
            "[native code]",
            "",
        ] {
            assert_eq!(parsed(line), None, "{line}");
        }
    }

    #[test]
    fn rewrites_v8_stack_to_original_positions_and_names() {
        let stack = format!(
            "Error: x\n    at a ({URL}:1:{})\n    at c ({URL}:1:{})\n    at {URL}:1:{}",
            at("throw"),
            at(r#"a("x")"#),
            at("c();")
        );
        assert_eq!(
            rewrite(&stack),
            "Error: x\n    at fail (src/app.ts:2:3)\n    at main (src/app.ts:5:3)\n    at src/app.ts:7:1"
        );
    }

    #[test]
    fn rewrites_sentry_frames_outermost_first() {
        let frame = |function: &str, needle: &str| {
            serde_json::json!({"function": function, "abs_path": URL, "filename": "app.min.js",
                "lineno": 1, "colno": at(needle), "in_app": true})
        };
        let mut frames = vec![
            frame("?", "c();"),
            frame("c", r#"a("x")"#),
            frame("a", "throw"),
            serde_json::json!({"function": "native", "abs_path": "https://other/x.js", "lineno": 1, "colno": 2}),
            serde_json::json!({"function": "no_position", "abs_path": URL}),
        ];
        let kept = frames[3..].to_vec();
        let map = app_map();
        rewrite_frames(&mut frames, |path| {
            (path == "/assets/app.min.js").then(|| map.clone())
        });
        let summary: Vec<String> = frames[..3]
            .iter()
            .map(|f| {
                format!(
                    "{} {} {}:{}:{}",
                    f["function"], f["abs_path"], f["filename"], f["lineno"], f["colno"]
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                r#""?" "src/app.ts" "src/app.ts":7:1"#,
                r#""main" "src/app.ts" "src/app.ts":5:3"#,
                r#""fail" "src/app.ts" "src/app.ts":2:3"#,
            ]
        );
        assert_eq!(frames[2]["in_app"], true);
        assert_eq!(
            frames[3..],
            kept[..],
            "unmapped frames are kept as they are"
        );
    }

    #[test]
    fn rewrites_firefox_stack_keeping_its_format() {
        let stack = format!(
            "a@{URL}:1:{}\r\nc@{URL}:1:{}\r\n",
            at("throw") + 2,
            at(r#"a("x")"#)
        );
        // A column inside a mapping maps to that mapping's start.
        assert_eq!(
            rewrite(&stack),
            "fail@src/app.ts:2:3\r\nc@src/app.ts:5:3\r\n"
        );
    }

    #[test]
    fn unmapped_frames_are_kept_exactly() {
        let stack = format!(
            "Error\n    at x (https://other.example.com/lib.js:1:{0})\n    at a ({URL}:2:1)\n    at \
             a ({URL}:1:1)\n  at q (app.min.js:1:{0})",
            at("throw")
        );
        // Another script, a line without mappings, before the first mapping, a relative name.
        assert_eq!(rewrite(&stack), stack);
    }

    #[test]
    fn hostile_frames_stay_unmapped() {
        let lines = [
            format!("    at a ({URL}:1000000000:15)"),
            format!("    at a ({URL}:1:1000000000)"),
            format!("    at a ({URL}:0:15)"),
            format!("    at a ({URL}:1:0)"),
            format!("    at a ({URL}:4294967295:4294967295)"),
            format!("    at a ({URL}:99999999999999999999:1)"),
        ];
        for line in lines {
            assert_eq!(rewrite(&line), line);
        }
        let long = format!("    at a ({URL}{}:1:{})", "#".repeat(MAX_LINE), at("throw"));
        assert_eq!(rewrite(&long), long);
    }

    #[test]
    fn unicode_names_are_fine() {
        let mut builder = SourceMapBuilder::new(None);
        builder.add(0, 0, 4, 1, Some("src/ünïcödé/☃.ts"), Some("größe"), false);
        let mut json = Vec::new();
        builder.into_sourcemap().to_writer(&mut json).unwrap();
        let map = Arc::new(Map::parse(&json).unwrap());
        let mut asked = Vec::new();
        let out = rewrite_stack(
            "    at x (https://ex.com/ä/☃.js:1:5)\n    at ☃ (https://ex.com/ä/☃.js:1:1)",
            |p| {
                asked.push(p.to_string());
                Some(map.clone())
            },
        );
        assert_eq!(
            out,
            "    at größe (src/ünïcödé/☃.ts:5:2)\n    at ☃ (src/ünïcödé/☃.ts:5:2)"
        );
        assert_eq!(asked, ["/ä/☃.js"]);
    }

    #[test]
    fn maps_at_most_1000_frames_and_asks_once_per_path() {
        let frame = format!("    at a ({URL}:1:{})", at("throw"));
        let stack = vec![frame.as_str(); 10_000].join("\n");
        let map = app_map();
        let asked = Cell::new(0);
        let out = rewrite_stack(&stack, |_| {
            asked.set(asked.get() + 1);
            Some(map.clone())
        });
        let out: Vec<&str> = out.split('\n').collect();
        assert_eq!((out.len(), asked.get()), (10_000, 1));
        assert!(out[..1000]
            .iter()
            .all(|l| *l == "    at a (src/app.ts:2:3)"));
        assert!(out[1000..].iter().all(|l| *l == frame));
    }

    #[test]
    fn parse_refuses_what_is_not_a_plain_v3_map() {
        let refused = [
            ("\u{0}garbage", "not JSON"),
            ("", "not JSON"),
            ("[1,2,3]", "not a JSON object"),
            (r#"{"hello":"world"}"#, "missing 'version'"),
            (r#"{"version":2,"sources":[],"mappings":""}"#, "must be 3"),
            (r#"{"version":3,"sources":[]}"#, "missing 'mappings'"),
            (r#"{"version":3,"mappings":""}"#, "missing 'sources'"),
            (r#"{"version":3,"sections":[]}"#, "index maps"),
            (r#"{"version":3,"sources":[],"mappings":"AAAA"}"#, "invalid"),
            (
                r#"{"version":3,"sources":["a"],"mappings":"A!"}"#,
                "invalid",
            ),
            (
                r#"{"version":3,"sources":["a"],"mappings":"AAAAA"}"#,
                "invalid",
            ),
            (r#"{"version":3,"sources":"a","mappings":""}"#, "invalid"),
            (
                r#"{"version":3,"sources":[],"mappings":5}"#,
                "must be a string",
            ),
            (
                r#"{"version":3,"version":3,"sources":[],"mappings":""}"#,
                "unique keys",
            ),
        ];
        assert!(Map::parse(b"\xff\xfe garbage").is_err());
        for (bytes, reason) in refused {
            let detail = Map::parse(bytes.as_bytes()).err().unwrap();
            assert!(detail.contains(reason), "{detail:?} for {bytes}");
        }
        let literal = br#"{"version":3,"sources":["coolstuff.js"],"names":["x","alert"],
            "mappings":"AAAA,GAAIA,GAAI,EACR,IAAIA,GAAK,EAAG,CACVC,MAAM"}"#;
        assert!(Map::parse(literal).unwrap().weight() > 0);
        // Weight counts the token slots the crate reserves, even unused ones.
        let empty_lines = format!(
            r#"{{"version":3,"sources":[],"mappings":"{}"}}"#,
            ";".repeat(9999)
        );
        let weight = Map::parse(empty_lines.as_bytes()).unwrap().weight();
        assert!(weight >= 10_000 * size_of::<RawToken>(), "{weight}");
    }

    /// A map of `tokens` tokens, about 12 bytes of weight per token.
    fn sized_map(tokens: u32) -> Vec<u8> {
        let mut builder = SourceMapBuilder::new(None);
        for col in 0..tokens {
            builder.add(0, col, 0, col, Some("a.js"), None, false);
        }
        let mut json = Vec::new();
        builder.into_sourcemap().to_writer(&mut json).unwrap();
        json
    }

    #[test]
    fn cache_is_bounded_by_weight_and_evicts_least_recently_used() {
        let weight = Map::parse(&sized_map(100)).unwrap().weight();
        let cache = MapCache::new(weight * 5 / 2);
        let loads = Cell::new(0);
        let get = |id| {
            cache.get(id, || {
                loads.set(loads.get() + 1);
                Some(sized_map(100))
            })
        };
        assert!(get(1).is_some() && get(2).is_some() && get(1).is_some());
        assert_eq!(loads.get(), 2);
        get(3); // evicts 2, the least recently used
        assert_eq!(loads.get(), 3);
        get(1);
        get(3);
        assert_eq!(loads.get(), 3);
        get(2);
        assert_eq!(loads.get(), 4);
        cache.remove(2);
        get(2);
        assert_eq!(loads.get(), 5);

        // Too heavy to keep, but used; missing or broken maps give None.
        let heavy = || Some(sized_map(1000));
        assert!(cache.get(9, heavy).is_some());
        assert!(cache.get(9, || None).is_none());
        assert!(cache.get(8, || Some(b"{}".to_vec())).is_none());
        assert!(cache.lock().bytes <= weight * 5 / 2);

        // A map loaded while a removal ran may be stale: used, not kept.
        assert!(cache
            .get(7, || {
                cache.remove(7);
                Some(sized_map(1))
            })
            .is_some());
        assert!(cache.get(7, || None).is_none());
    }

    #[test]
    fn file_paths() {
        for (url, path) in [
            ("https://cdn.example.com/assets/a.js?v=3#x", "/assets/a.js"),
            ("/assets/app.min.js", "/assets/app.min.js"),
            ("http://localhost:8080/app.js", "/app.js"),
            ("//cdn.example.com/a.js", "/a.js"),
            ("https://example.com", "/"),
            ("https://example.com?x=1", "/"),
            ("file:///home/u/app.js", "/home/u/app.js"),
            ("app.min.js", "app.min.js"),
            ("./app.js#top", "./app.js"),
            ("/redirect/https://x/a.js", "/redirect/https://x/a.js"),
            ("https://ex.com/ä/☃.js", "/ä/☃.js"),
            ("", ""),
        ] {
            assert_eq!(file_path(url), path, "{url}");
        }
    }

    /// Deterministic xorshift, so failures reproduce.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self, below: usize) -> usize {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 % below as u64) as usize
        }
    }

    #[test]
    fn random_stacks_never_panic_and_keep_their_lines() {
        let pieces: Vec<&str> =
            "    at |at |async |new |a|c| (|)|@|*|:|1|15|0|4294967296|999999999|\
            /assets/app.min.js|http://localhost:8080/app.min.js|eval at |<anonymous>| |\r|é☃|\0|\
            TypeError: |[as b]|\t"
                .split('|')
                .chain([URL])
                .collect();
        let map = app_map();
        let (mut rng, mut rewritten) = (Rng(0x5eed_1234_abcd_0001), 0);
        for _ in 0..3000 {
            let mut stack = String::new();
            for _ in 0..rng.next(40) {
                match rng.next(4) {
                    0 => stack.push('\n'),
                    1 => stack.push_str(&format!("\n    at a ({URL}:1:{})", rng.next(70))),
                    _ => stack.push_str(pieces[rng.next(pieces.len())]),
                }
            }
            let out = rewrite_stack(&stack, |path| {
                (path == "/assets/app.min.js").then(|| map.clone())
            });
            assert_eq!(
                out.split('\n').count(),
                stack.split('\n').count(),
                "{stack:?}"
            );
            assert_eq!(rewrite_stack(&stack, |_| None), stack);
            rewritten += usize::from(out != stack);
        }
        assert!(rewritten > 1000, "{rewritten}");
    }

    #[test]
    fn mutated_maps_never_panic() {
        let json = String::from_utf8(app_map_json()).unwrap();
        let alphabet = b"AZaz09+/gf,;\"{}[]:-1 ";
        let (mut rng, mut parsed) = (Rng(42), 0);
        for _ in 0..3000 {
            let mut bytes = json.clone().into_bytes();
            for _ in 0..1 + rng.next(4) {
                let i = rng.next(bytes.len());
                bytes[i] = alphabet[rng.next(alphabet.len())];
            }
            if let Ok(map) = Map::parse(&bytes) {
                let map = Arc::new(map);
                let stack = format!(
                    "    at a ({URL}:1:{})\n    at c ({URL}:1:{})",
                    rng.next(70),
                    rng.next(70)
                );
                rewrite_stack(&stack, |_| Some(map.clone()));
                parsed += 1;
            }
        }
        assert!(parsed > 100, "{parsed}");
    }
}
