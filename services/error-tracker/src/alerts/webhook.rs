//! The webhook channel: a JSON POST per alert with a Slack/Discord/ntfy-style `text` line
//! plus the structured fields.

use std::time::Duration;

use serde_json::{json, Value};

use super::channel::{DeliveryError, JsonEndpoint};
use super::message::Alert;

/// The whole webhook call, connect to last byte.
const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(5);

/// Posts alerts to `ALERT_WEBHOOK_URL`.
pub struct Webhook {
    endpoint: JsonEndpoint,
}

impl Webhook {
    /// A webhook at `url` (checked by the config).
    pub fn new(url: &str) -> Webhook {
        Webhook {
            endpoint: JsonEndpoint::new("webhook", url, WEBHOOK_TIMEOUT),
        }
    }

    /// Posts `alert` → where it went.
    pub fn send(&self, alert: &Alert, base_url: &str) -> Result<String, DeliveryError> {
        self.endpoint.post(&[], &payload(alert, base_url))
    }
}

/// `{"text", "allowed_mentions", "event", "error": {id, project, environment, exception_type, message, count, url}}`.
fn payload(alert: &Alert, base_url: &str) -> Value {
    let url = alert.link(base_url);
    let text = alert.webhook_text(&url);
    json!({
        "text": text,
        // Discord: no mention in the text notifies anyone, whatever slips past the escaping.
        "allowed_mentions": {"parse": []},
        "event": alert.event.as_str(),
        "error": {
            "id": alert.id,
            "project": alert.project,
            "environment": alert.environment,
            "exception_type": alert.exception_type,
            "message": alert.message,
            "count": alert.count,
            "url": url,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::message::AlertEvent;

    #[test]
    fn payload_has_the_summary_line_and_the_fields() {
        let mut alert = Alert::test();
        alert.event = AlertEvent::Reopened;
        alert.id = 9;
        alert.message = "line 1\nline 2".to_string();
        let body = payload(&alert, "http://errors.local");
        assert_eq!(
            body["text"],
            "Regression in monlight (test): TestAlert: line 1 line 2 — http://errors.local/errors/9"
        );
        assert_eq!(body["event"], "reopened");
        assert_eq!(body["allowed_mentions"], json!({"parse": []}));
        assert_eq!(body["error"]["url"], "http://errors.local/errors/9");
        assert_eq!(body["error"]["message"], "line 1\nline 2");
        assert_eq!(body["error"]["id"], 9);
    }
}
