//! A Sentry event's exception chain as text, as the language itself prints a traceback.
//! The dialect is picked by the event's `platform` (else the frames' own `platform`, else
//! their file extensions):
//! - `python`: CPython's text (`Traceback (most recent call last):` / `  File "...", line N,
//!   in f` / the source line / `Type: message`), chained exceptions oldest first. Sentry does
//!   not say (SDK 2.x) whether `raise ... from` or an implicit context linked them, so the
//!   separator is CPython's "During handling of the above exception, another exception
//!   occurred:" — true of both usual patterns (`raise X from e` is nearly always written in an
//!   `except` block) — unless the exception's `mechanism.source` says `__cause__`.
//! - `javascript`, `node`: V8's (`TypeError: msg` / `    at fn (url:line:col)`), innermost
//!   frame first; linked errors (`cause`) follow as `Caused by: ...` blocks.
//! - `java`: the JVM's (`pkg.Type: msg` / `\tat pkg.Class.method(File.java:12)`), causes as
//!   `Caused by: ...`.
//! - `go`: a Go panic's frame pairs (`pkg.func(...)` / `\t/path/file.go:12`).
//! - anything else: `Type: msg` / `  at module.function (file:line:col)`, innermost first.
//!
//! The Python and V8 forms stay readable by [`crate::fingerprint::locate`]. Frames outside
//! the application (`in_app: false`) are printed like the others, as the runtimes do.

use serde_json::{Map, Value};

use super::event::{str_field, Exception, Frame};

/// The traceback dialect of an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Style {
    Python,
    V8,
    Java,
    Go,
    Generic,
}

impl Style {
    /// The dialect of an event's `platform`, its frames' `platform`, or their extensions.
    pub(super) fn of(fields: &Map<String, Value>, exceptions: &[Exception<'_>]) -> Style {
        let from_platform = |p: &str| match p {
            "python" => Some(Style::Python),
            "javascript" | "node" => Some(Style::V8),
            "java" => Some(Style::Java),
            "go" => Some(Style::Go),
            _ => None,
        };
        if let Some(style) = str_field(fields, "platform").and_then(from_platform) {
            return style;
        }
        let frames = || exceptions.iter().flat_map(|e| &e.frames);
        if let Some(style) = frames().find_map(|f| f.platform.and_then(from_platform)) {
            return style;
        }
        let by_extension = |f: &Frame<'_>| {
            let path = f.path();
            let ext = path.rsplit_once('.').map_or("", |(_, ext)| ext);
            let ext = ext.split(['?', '#', ':']).next().unwrap_or("");
            match ext {
                "py" => Some(Style::Python),
                "js" | "mjs" | "cjs" | "ts" | "jsx" | "tsx" => Some(Style::V8),
                "java" | "kt" | "scala" | "groovy" => Some(Style::Java),
                "go" => Some(Style::Go),
                _ => None,
            }
        };
        frames().find_map(by_extension).unwrap_or(Style::Generic)
    }
}

/// The whole chain as text in `style`.
pub(super) fn render(style: Style, exceptions: &[Exception<'_>]) -> String {
    let mut out = String::new();
    match style {
        Style::Python => {
            for (i, e) in exceptions.iter().enumerate() {
                if i > 0 {
                    out.push_str(if exceptions[i - 1].cause {
                        "\nThe above exception was the direct cause of the following exception:\n\n"
                    } else {
                        "\nDuring handling of the above exception, another exception occurred:\n\n"
                    });
                }
                render_python(&mut out, e);
            }
        }
        // The others print the most recent exception first and its causes after it.
        _ => {
            for (i, e) in exceptions.iter().rev().enumerate() {
                if i > 0 {
                    out.push_str("Caused by: ");
                }
                match style {
                    Style::V8 => render_v8(&mut out, e),
                    Style::Java => render_java(&mut out, e),
                    Style::Go => render_go(&mut out, e),
                    _ => render_generic(&mut out, e),
                }
            }
        }
    }
    while out.ends_with('\n') {
        out.pop();
    }
    out
}

/// `Type: value`, or `Type` alone when the value is empty (as CPython, V8 and the JVM print).
fn headline(out: &mut String, ty: &str, value: &str) {
    out.push_str(ty);
    if !value.is_empty() {
        out.push_str(": ");
        out.push_str(value);
    }
    out.push('\n');
}

fn push_line_number(out: &mut String, n: Option<u64>) {
    match n {
        Some(n) => out.push_str(&n.to_string()),
        None => out.push('?'),
    }
}

fn render_python(out: &mut String, e: &Exception<'_>) {
    if !e.frames.is_empty() {
        out.push_str("Traceback (most recent call last):\n");
    }
    for f in &e.frames {
        out.push_str("  File \"");
        out.push_str(f.path());
        out.push_str("\", line ");
        push_line_number(out, f.lineno);
        out.push_str(", in ");
        out.push_str(f.function.unwrap_or("<module>"));
        out.push('\n');
        if let Some(code) = f.context_line.map(str::trim).filter(|c| !c.is_empty()) {
            out.push_str("    ");
            out.push_str(code);
            out.push('\n');
        }
    }
    // CPython names classes outside `builtins` with their module: `shop.errors.PaymentError`.
    match e.module.filter(|m| *m != "builtins") {
        Some(module) => headline(out, &format!("{module}.{}", e.ty), e.value),
        None => headline(out, e.ty, e.value),
    }
}

fn render_v8(out: &mut String, e: &Exception<'_>) {
    headline(out, e.ty, e.value);
    for f in e.frames.iter().rev() {
        out.push_str("    at ");
        let function = f.function.filter(|f| !f.is_empty());
        if let Some(function) = function {
            out.push_str(function);
            out.push_str(" (");
        }
        out.push_str(f.path());
        if let Some(line) = f.lineno {
            out.push_str(&format!(":{line}"));
            if let Some(col) = f.colno {
                out.push_str(&format!(":{col}"));
            }
        }
        if function.is_some() {
            out.push(')');
        }
        out.push('\n');
    }
}

fn render_java(out: &mut String, e: &Exception<'_>) {
    match e.module {
        Some(module) => headline(out, &format!("{module}.{}", e.ty), e.value),
        None => headline(out, e.ty, e.value),
    }
    for f in e.frames.iter().rev() {
        out.push_str("\tat ");
        if let Some(module) = f.module {
            out.push_str(module);
            out.push('.');
        }
        out.push_str(f.function.unwrap_or("<unknown>"));
        out.push('(');
        match (f.filename, f.lineno) {
            (Some(file), Some(line)) => out.push_str(&format!("{file}:{line}")),
            (Some(file), None) => out.push_str(file),
            (None, _) => out.push_str("Unknown Source"),
        }
        out.push_str(")\n");
    }
}

fn render_go(out: &mut String, e: &Exception<'_>) {
    headline(out, e.ty, e.value);
    for f in e.frames.iter().rev() {
        out.push('\n');
        if let Some(module) = f.module {
            out.push_str(module);
            out.push('.');
        }
        out.push_str(f.function.unwrap_or("<unknown>"));
        out.push_str("(...)\n\t");
        out.push_str(f.path());
        out.push(':');
        push_line_number(out, f.lineno);
    }
    if !e.frames.is_empty() {
        out.push('\n');
    }
}

fn render_generic(out: &mut String, e: &Exception<'_>) {
    headline(out, e.ty, e.value);
    for f in e.frames.iter().rev() {
        out.push_str("  at ");
        if let Some(module) = f.module {
            out.push_str(module);
            out.push('.');
        }
        out.push_str(f.function.unwrap_or("<unknown>"));
        out.push_str(" (");
        out.push_str(f.path());
        out.push(':');
        push_line_number(out, f.lineno);
        if let Some(col) = f.colno {
            out.push_str(&format!(":{col}"));
        }
        out.push_str(")\n");
    }
}
