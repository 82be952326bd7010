//! The group key of a Sentry event. Grouping is Sentry's, not `fingerprint.rs`'s: an
//! explicit `fingerprint` wins (with `{{ default }}` standing for the default), else the
//! types of the chain plus the module (or file) and function of its in-app frames, never
//! line numbers, so an edit above the throw site does not open a new group. The key always
//! starts with the project.

use serde_json::{Map, Value};

use super::event::{Exception, Frame, MESSAGE_TYPE};

/// The group key: lower-case hex MD5 of the project and the grouping components, each
/// length-prefixed so no two different lists hash the same bytes.
pub(super) fn grouping(
    project: &str,
    fields: &Map<String, Value>,
    exceptions: &[Exception<'_>],
    message_template: &str,
    is_message_event: bool,
) -> String {
    let default = default_components(exceptions, message_template, is_message_event);
    let custom: Vec<String> = match fields.get("fingerprint") {
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|p| match p {
                Value::String(s) => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                Value::Bool(b) => Some(b.to_string()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    let mut ctx = md5::Context::new();
    let mut consume = |part: &str| {
        ctx.consume(part.len().to_string());
        ctx.consume(":");
        ctx.consume(part);
    };
    consume(project);
    if custom.is_empty() {
        default.iter().for_each(|p| consume(p));
    } else {
        for part in &custom {
            if is_default_marker(part) {
                default.iter().for_each(|p| consume(p));
            } else {
                consume(&format!("custom:{part}"));
            }
        }
    }
    format!("{:x}", ctx.finalize())
}

/// `{{ default }}`, `{{default}}` and other spacings.
fn is_default_marker(part: &str) -> bool {
    part.trim()
        .strip_prefix("{{")
        .and_then(|p| p.strip_suffix("}}"))
        .is_some_and(|p| p.trim() == "default")
}

/// Sentry's default grouping, simplified: every exception's type and the module (else
/// file) and function of its frames — the application's own frames ([`Frame::is_app`]) only
/// when the event has any — never line numbers; with no frame at all, the type and the
/// message.
fn default_components(
    exceptions: &[Exception<'_>],
    message_template: &str,
    is_message_event: bool,
) -> Vec<String> {
    let any_in_app = exceptions.iter().flat_map(|e| &e.frames).any(Frame::is_app);
    let mut parts = Vec::new();
    let mut frames = 0;
    for e in exceptions {
        parts.push(format!("type:{}", e.ty));
        for f in e.frames.iter().filter(|f| !any_in_app || f.is_app()) {
            let place = f.module.or(f.filename).unwrap_or("");
            parts.push(format!("frame:{place}:{}", f.function.unwrap_or("")));
            frames += 1;
        }
    }
    if frames == 0 || is_message_event {
        let ty = exceptions.last().map_or(MESSAGE_TYPE, |e| e.ty);
        parts = vec![format!("type:{ty}"), format!("message:{message_template}")];
    }
    parts
}
