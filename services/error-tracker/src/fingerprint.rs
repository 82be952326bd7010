//! Error fingerprinting: decides which reported errors are "the same error".
//!
//! A fingerprint is the lower-case hex MD5 of `<project>:<exception_type>:<file>:<line>`,
//! where `<file>:<line>` is where the error was raised, read from the traceback
//! (a CPython traceback, or a V8 / Firefox / Safari JavaScript stack). When no
//! location can be found the key is `<project>:<exception_type>:<traceback>`.
//!
//! Parsing is hand-written, linear in the input size, allocation-free until the
//! result is built, and never panics (any UTF-8 input, including empty text).
//!
//! Rules:
//! - Python: if any line holds `File "<path>", line <n>`, the input is a Python
//!   traceback and the LAST such frame in the whole text (the deepest frame of the
//!   last exception, also for chained tracebacks) is the location. JavaScript
//!   rules are tried only when there is no Python frame at all.
//! - JavaScript: the FIRST line that parses as a frame (the throw site), either
//!   V8 (`at fn (url:line:col)`, `at url:line:col`) or Firefox/Safari
//!   (`fn@url:line:col`, `@url:line:col`). The column is required and ignored.

/// Where an error was raised: the file (path or URL) and the line, as text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// Path (Python, Node) or URL (browsers) of the source file.
    pub file: String,
    /// Line number within `file`, as printed by the runtime.
    pub line: u32,
}

/// Finds the error's location in a Python traceback or a JavaScript stack.
pub fn locate(traceback: &str) -> Option<Location> {
    locate_str(traceback).map(|(file, line)| Location {
        file: file.to_owned(),
        line,
    })
}

/// The group key of an error: lower-case hex MD5 as the spec defines.
///
/// `md5("<project>:<exception_type>:<file>:<line>")`, or
/// `md5("<project>:<exception_type>:<traceback>")` when [`locate`] finds nothing.
pub fn fingerprint(project: &str, exception_type: &str, traceback: &str) -> String {
    // Feeding the parts one by one hashes exactly the same bytes as the joined
    // key, without copying a traceback of up to 128 KiB.
    let mut ctx = md5::Context::new();
    ctx.consume(project);
    ctx.consume(":");
    ctx.consume(exception_type);
    ctx.consume(":");
    match locate_str(traceback) {
        Some((file, line)) => {
            ctx.consume(file);
            ctx.consume(":");
            ctx.consume(line.to_string());
        }
        None => ctx.consume(traceback),
    }
    format!("{:x}", ctx.finalize())
}

/// Borrowing form of [`locate`]: Python first, JavaScript only if no Python frame.
fn locate_str(text: &str) -> Option<(&str, u32)> {
    locate_python(text).or_else(|| locate_javascript(text))
}

// ---------------------------------------------------------------------------
// Python
// ---------------------------------------------------------------------------

const PY_MARK: &str = "File \"";

/// The last `File "<path>", line <n>` in the text (searched from the end).
fn locate_python(text: &str) -> Option<(&str, u32)> {
    text.lines().rev().find_map(last_python_frame_in_line)
}

/// The last valid Python frame marker within one line.
///
/// Linear: each candidate's path runs to the next `"`, and the next candidate's
/// own `"` lies at or after that quote, so the scanned ranges do not overlap.
fn last_python_frame_in_line(line: &str) -> Option<(&str, u32)> {
    let mut found = None;
    let mut from = 0;
    while let Some(rel) = line.get(from..).and_then(|rest| rest.find(PY_MARK)) {
        let start = from + rel;
        let path_start = start + PY_MARK.len();
        from = path_start;
        // `File` must be a word of its own: `MyFile "x", line 1` is no frame.
        let boundary = line[..start]
            .chars()
            .next_back()
            .is_none_or(|c| !(c.is_alphanumeric() || c == '_'));
        if boundary {
            if let Some(frame) = parse_python_frame(&line[path_start..]) {
                found = Some(frame);
            }
        }
    }
    found
}

/// Parses `<path>", line <digits>` followed by end of line, `,` or whitespace.
///
/// The path runs to the first `"` (CPython prints file names unescaped, so a
/// path containing `"` cannot be delimited anyway) and must not be empty.
fn parse_python_frame(rest: &str) -> Option<(&str, u32)> {
    let end = rest.find('"')?;
    let path = &rest[..end];
    if path.is_empty() {
        return None;
    }
    let after = rest[end + 1..].strip_prefix(", line ")?;
    let digits_len = after.bytes().take_while(u8::is_ascii_digit).count();
    let (digits, tail) = after.split_at(digits_len);
    match tail.chars().next() {
        None | Some(',') => {}
        Some(c) if c.is_whitespace() => {}
        Some(_) => return None,
    }
    Some((path, parse_u32(digits)?))
}

// ---------------------------------------------------------------------------
// JavaScript
// ---------------------------------------------------------------------------

/// The first line of the text that parses as a V8 or Firefox/Safari frame.
fn locate_javascript(text: &str) -> Option<(&str, u32)> {
    text.lines().find_map(js_frame)
}

fn js_frame(line: &str) -> Option<(&str, u32)> {
    let t = line.trim();
    match t.strip_prefix("at") {
        // V8: `at` must begin the trimmed line and be followed by whitespace,
        // so `Error: connection refused at localhost:5432` is not a frame.
        Some(rest) if rest.starts_with(char::is_whitespace) => v8_frame(rest.trim()),
        _ => gecko_frame(t),
    }
}

/// V8 (Chrome, Node, Edge, Deno) frame, the part after `at `:
/// `fn (loc)`, `async fn (loc)`, `new X (loc)`, `loc`, `async loc`,
/// `eval (eval at fn (loc), <anonymous>:l:c)`.
/// `<anonymous>`, `native`, `index 0` and the like have no `:line:col` and are skipped.
fn v8_frame(rest: &str) -> Option<(&str, u32)> {
    // Node prints ` {` after the last frame when the error has extra properties.
    let rest = rest.strip_suffix('{').unwrap_or(rest).trim_end();
    let loc = if rest.ends_with(')') {
        // `fn (loc)`: the location starts after the first ` (` (function names
        // hold no ` (`, paths may hold `(`, e.g. Next.js `app/(shop)/page.js`)
        // and ends at the final `)`.
        let open = match rest.find(" (") {
            Some(i) => i + 2,
            None if rest.starts_with('(') => 1,
            None => return None,
        };
        rest.get(open..rest.len() - 1)?
    } else {
        rest.strip_prefix("async ").unwrap_or(rest)
    };
    match loc.strip_prefix("eval at ") {
        // Code run by eval()/new Function() has no file of its own; use the
        // location of the script that evaluated it (the innermost `( ... )`).
        Some(eval) => {
            let open = eval.rfind('(')? + 1;
            let inner = &eval[open..];
            let close = inner.find(')')?;
            split_location(&inner[..close])
        }
        None => split_location(loc),
    }
}

/// Firefox / Safari frame: `fn@url:line:col` or `@url:line:col`.
///
/// The URL starts after the FIRST `@` (function names hold no `@`, URLs may:
/// `node_modules/@scope/pkg.js`) and must contain no whitespace, which also
/// rejects Safari's `[native code]` and Firefox's `debugger eval code`.
fn gecko_frame(t: &str) -> Option<(&str, u32)> {
    let at = t.find('@')?;
    let url = &t[at + 1..];
    if url.contains(char::is_whitespace) {
        return None;
    }
    split_location(url)
}

/// Splits `file:line:col` from the right; line and column must be all digits.
///
/// `url:line` without a column is deliberately NOT accepted: V8, Firefox and
/// Safari always print both, and accepting it would be ambiguous with ports
/// (`https://host:8080` would read as file `https://host`, line 8080).
/// The pseudo-file `<anonymous>` is not a location.
fn split_location(loc: &str) -> Option<(&str, u32)> {
    let (rest, col) = loc.rsplit_once(':')?;
    if col.is_empty() || !col.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let (file, line) = rest.rsplit_once(':')?;
    let line = parse_u32(line)?;
    if file.is_empty() || file == "<anonymous>" {
        return None;
    }
    Some((file, line))
}

/// Parses a non-empty run of ASCII digits (no sign) that fits in a `u32`.
fn parse_u32(digits: &str) -> Option<u32> {
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Asserts what [`locate`] finds in `input`.
    fn check(input: &str, expected: Option<(&str, u32)>) {
        let got = locate(input);
        let want = expected.map(|(file, line)| Location {
            file: file.to_owned(),
            line,
        });
        assert_eq!(got, want, "input: {input:?}");
    }

    fn md5_hex(key: &str) -> String {
        format!("{:x}", md5::compute(key.as_bytes()))
    }

    #[test]
    fn table() {
        let cases: &[(&str, Option<(&str, u32)>)] = &[
            // --- Python ---
            ("  File \"/app/main.py\", line 10, in <module>", Some(("/app/main.py", 10))),
            ("File \"/app/main.py\", line 10", Some(("/app/main.py", 10))),
            // deepest (last) frame wins
            (
                "Traceback (most recent call last):\n  File \"/a.py\", line 1, in <module>\n    f()\n  File \"/b.py\", line 2, in f\n    g()\nValueError: x",
                Some(("/b.py", 2)),
            ),
            // CRLF line endings
            ("Traceback:\r\n  File \"/a.py\", line 3, in f\r\nE: x\r\n", Some(("/a.py", 3))),
            // SyntaxError frames have no `, in ...`
            ("  File \"/app/x.py\", line 7\n    def f(:\n          ^\nSyntaxError: invalid syntax", Some(("/app/x.py", 7))),
            ("  File \"<frozen importlib._bootstrap>\", line 1204, in _gcd_import", Some(("<frozen importlib._bootstrap>", 1204))),
            ("  File \"C:\\app\\main.py\", line 4, in <module>", Some(("C:\\app\\main.py", 4))),
            // exception groups (3.11) prefix frames with `|`
            ("  | Traceback (most recent call last):\n  |   File \"/g.py\", line 5, in h\n  | ValueError", Some(("/g.py", 5))),
            // not Python frames
            ("File \"x\", line notanumber", None),
            ("File \"x\", line 12abc", None),
            ("File \"x\", line ", None),
            ("File \"x\", line +5", None),
            ("File \"\", line 3", None),
            ("MyFile \"x.py\", line 3", None),
            ("File \"x.py\" line 3", None),
            ("File \"x.py\", line 99999999999999999999", None),
            // a bad Python marker after a good one on the same line does not hide it
            ("File \"a.py\", line 1, File \"b.py\", line zz", Some(("a.py", 1))),
            // a Python frame anywhere wins over JavaScript frames
            ("    at f (/x.js:1:2)\n  File \"/p.py\", line 9, in g", Some(("/p.py", 9))),
            // --- V8 / Node ---
            ("Error: boom\n    at fn (https://x.com/a.js:3:14)", Some(("https://x.com/a.js", 3))),
            ("    at https://x.com/a.js:3:14", Some(("https://x.com/a.js", 3))),
            ("    at async run (/srv/app.js:20:5)", Some(("/srv/app.js", 20))),
            ("    at async /srv/app.mjs:7:1", Some(("/srv/app.mjs", 7))),
            ("    at new Client (/srv/client.js:8:11)", Some(("/srv/client.js", 8))),
            ("    at Object.<anonymous> (/srv/index.js:1:7)", Some(("/srv/index.js", 1))),
            ("    at Foo.bar [as baz] (/srv/foo.js:2:3)", Some(("/srv/foo.js", 2))),
            ("    at TCPConnectWrap.afterConnect [as oncomplete] (node:net:1555:16)", Some(("node:net", 1555))),
            ("    at process.processTicksAndRejections (node:internal/process/task_queues:95:5)", Some(("node:internal/process/task_queues", 95))),
            ("    at main (file:///home/u/x.js:1:2)", Some(("file:///home/u/x.js", 1))),
            ("    at f (https://host:8080/static/app.js:1:234)", Some(("https://host:8080/static/app.js", 1))),
            ("    at Page (/app/.next/server/app/(shop)/page.js:1:2)", Some(("/app/.next/server/app/(shop)/page.js", 1))),
            ("    at /My Files (old)/a.js:4:2", Some(("/My Files (old)/a.js", 4))),
            ("    at C:\\proj\\index.js:5:9", Some(("C:\\proj\\index.js", 5))),
            ("    at async main (/app/src/server.js:11:3) {", Some(("/app/src/server.js", 11))),
            ("    at eval (eval at load (https://x.com/a.js:3:5), <anonymous>:1:1)", Some(("https://x.com/a.js", 3))),
            // skipped V8 frames, the next one is used
            ("    at <anonymous>\n    at g (/g.js:2:2)", Some(("/g.js", 2))),
            ("    at <anonymous>:1:5\n    at g (/g.js:2:2)", Some(("/g.js", 2))),
            ("    at Array.map (<anonymous>)\n    at g (/g.js:2:2)", Some(("/g.js", 2))),
            ("    at async Promise.all (index 0)\n    at g (/g.js:2:2)", Some(("/g.js", 2))),
            ("    at Array.forEach (native)", None),
            ("    at <anonymous>", None),
            // column is required (documented), digits only
            ("    at f (/a.js:3)", None),
            ("    at f (/a.js:3:x)", None),
            ("    at f (/a.js:x:3)", None),
            ("    at f (:3:4)", None),
            ("    at https://host:8080", None),
            // message lines are not frames
            ("Error: connection refused at localhost:5432", None),
            ("Error: connection refused at localhost:5432:1", None),
            ("attempt /a.js:1:2", None),
            ("at", None),
            ("at ", None),
            // --- Firefox / Safari ---
            ("f@https://x.com/a.js:10:5", Some(("https://x.com/a.js", 10))),
            ("@https://x.com/a.js:10:5", Some(("https://x.com/a.js", 10))),
            ("global code@https://x.com/a.js:41:2", Some(("https://x.com/a.js", 41))),
            ("async*load@https://x.com/a.js:4:8", Some(("https://x.com/a.js", 4))),
            ("promise callback*load@https://x.com/a.js:4:8", Some(("https://x.com/a.js", 4))),
            ("Foo/<@http://localhost:5173/node_modules/@scope/pkg/x.js?v=1a2b:7:3", Some(("http://localhost:5173/node_modules/@scope/pkg/x.js?v=1a2b", 7))),
            ("map@[native code]\n[native code]\nf@https://x.com/a.js:2:1", Some(("https://x.com/a.js", 2))),
            ("@debugger eval code:1:5", None),
            ("f@https://x.com/a.js line 2 > eval:1:5", None),
            ("f@https://x.com/a.js", None),
            ("user@example.com", None),
            ("f@", None),
            // first JavaScript frame wins, whatever its dialect
            ("f@https://x.com/one.js:1:1\n    at g (/two.js:2:2)", Some(("https://x.com/one.js", 1))),
            ("    at g (/two.js:2:2)\nf@https://x.com/one.js:1:1", Some(("/two.js", 2))),
            // --- edge cases ---
            ("", None),
            ("\n\n\r\n", None),
            ("ValueError: bad value", None),
            ("ünïcødé 💥 File \"/ü/ñ.py\", line 3 ✓", Some(("/ü/ñ.py", 3))),
            ("💥@💥:1:2", Some(("💥", 1))),
            ("File \"", None),
            ("File \"💥", None),
            ("File \"a\"", None),
            ("at (", None),
            ("at )", None),
            ("at  (x)", None),
            ("@::", None),
            ("@:1:2", None),
            ("\u{0}\u{ffff}@@@:::", None),
        ];
        for (input, expected) in cases {
            check(input, *expected);
        }
    }

    #[test]
    fn spec_example() {
        let tb = "Traceback (most recent call last):\n  File \"/app/main.py\", line 10, in <module>\n    main()\nValueError: bad";
        assert_eq!(
            fingerprint("p1", "ValueError", tb),
            "d640c720cde4360c190e74c212247c51"
        );
    }

    #[test]
    fn fingerprint_matches_joined_key() {
        let tb = "Error: x\n    at f (https://host:8080/static/app.js:1:234)";
        assert_eq!(
            fingerprint("web", "Error", tb),
            md5_hex("web:Error:https://host:8080/static/app.js:1")
        );
    }

    #[test]
    fn fallback_uses_whole_traceback() {
        let tb = "Error: connection refused at localhost:5432\nsomething else";
        assert_eq!(locate(tb), None);
        assert_eq!(
            fingerprint("p1", "ConnError", tb),
            md5_hex(&format!("p1:ConnError:{tb}"))
        );
    }

    #[test]
    fn empty_traceback() {
        assert_eq!(locate(""), None);
        assert_eq!(fingerprint("p1", "E", ""), md5_hex("p1:E:"));
        assert_eq!(fingerprint("", "", ""), md5_hex("::"));
    }

    #[test]
    fn fingerprint_is_lowercase_hex() {
        let fp = fingerprint("p", "E", "💥\u{0}garbage");
        assert_eq!(fp.len(), 32);
        assert!(fp.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')));
    }

    #[test]
    fn same_location_same_fingerprint() {
        let a = "Traceback (most recent call last):\n  File \"/app/a.py\", line 5, in f\nValueError: user 1";
        let b = "Traceback (most recent call last):\n  File \"/app/a.py\", line 5, in f\nValueError: user 2";
        assert_eq!(
            fingerprint("p", "ValueError", a),
            fingerprint("p", "ValueError", b)
        );
        assert_ne!(
            fingerprint("p", "ValueError", a),
            fingerprint("q", "ValueError", a)
        );
        assert_ne!(
            fingerprint("p", "ValueError", a),
            fingerprint("p", "KeyError", a)
        );
    }

    #[test]
    fn garbage_and_unicode() {
        let tb = "\u{feff}💥 Ошибка: 失败\n\t\u{0}\u{7f} at\u{a0}x @ : :: @@\n\u{10ffff}File \"\"\"\", line \n    at (\n";
        assert_eq!(locate(tb), None);
        assert_eq!(fingerprint("p", "E", tb), md5_hex(&format!("p:E:{tb}")));
    }

    #[test]
    fn huge_inputs() {
        const SIZE: usize = 128 * 1024;
        let patterns = [
            "File \"",
            "File \"x",
            "@",
            ":",
            "at (",
            "at ",
            " (",
            "💥",
            "a",
            "\n",
            "File \"a\", line 1",
            "@a:1:",
        ];
        for p in patterns {
            let s = p.repeat(SIZE / p.len());
            let _ = locate(&s);
            let _ = fingerprint("p", "E", &s);
        }
        // a real frame after a huge amount of noise is still found
        let mut s = "x".repeat(SIZE);
        s.push_str("\n  File \"/deep.py\", line 77, in f\n");
        check(&s, Some(("/deep.py", 77)));
        let mut s = ":".repeat(SIZE);
        s.push_str("\n    at f (/a.js:1:2)");
        check(&s, Some(("/a.js", 1)));
    }

    #[test]
    fn fixture_python_plain() {
        let tb = include_str!("../tests/fixtures/python_plain.txt");
        check(tb, Some(("/app/orders/pricing.py", 5)));
    }

    #[test]
    fn fixture_python_django() {
        // Library frames first (site-packages), the application's last: the deepest wins.
        let tb = include_str!("../tests/fixtures/python_django.txt");
        check(tb, Some(("/app/shop/orders/services.py", 87)));
    }

    #[test]
    fn fixture_python_chained() {
        let tb = include_str!("../tests/fixtures/python_chained.txt");
        assert!(tb.contains("During handling of the above exception, another exception occurred:"));
        check(tb, Some(("/app/orders/service.py", 25)));
    }

    #[test]
    fn fixture_python_cause() {
        let tb = include_str!("../tests/fixtures/python_cause.txt");
        assert!(tb.contains("The above exception was the direct cause of the following exception:"));
        check(tb, Some(("/app/orders/service.py", 33)));
    }

    #[test]
    fn fixture_node() {
        let tb = include_str!("../tests/fixtures/node.txt");
        check(tb, Some(("node:internal/url", 806)));
    }

    #[test]
    fn fixture_chrome() {
        let tb = include_str!("../tests/fixtures/chrome.txt");
        check(tb, Some(("https://host:8080/static/app.js", 1)));
    }

    #[test]
    fn fixture_firefox() {
        let tb = include_str!("../tests/fixtures/firefox.txt");
        check(
            tb,
            Some(("https://shop.example.com/static/js/main.4f2c1e9a.js", 2)),
        );
    }

    #[test]
    fn fixture_safari() {
        let tb = include_str!("../tests/fixtures/safari.txt");
        check(
            tb,
            Some(("https://app.example.com/assets/index-5d2f8a1c.js", 41)),
        );
    }
}
