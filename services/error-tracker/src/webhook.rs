//! The webhook channel — a JSON POST per alert with a Slack/Discord/ntfy-style `text` line
//! plus the structured fields — and [`JsonEndpoint`], the bounded JSON POST that Postmark
//! uses too.

use std::io::Read;
use std::time::Duration;

use serde_json::{json, Value};
use ureq::http::Uri;
use ureq::Agent;

use crate::alerts::{Alert, AlertEvent, DeliveryError};

/// The whole webhook call, connect to last byte.
const WEBHOOK_TIMEOUT: Duration = Duration::from_secs(5);
/// Connecting to any HTTP endpoint.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Bytes of an error answer quoted in the log.
const ANSWER_QUOTED: u64 = 300;

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

/// `{"text", "event", "error": {id, project, environment, exception_type, message, count, url}}`.
fn payload(alert: &Alert, base_url: &str) -> Value {
    let url = alert.link(base_url);
    let what = match alert.event {
        AlertEvent::Created => "New error",
        AlertEvent::Reopened => "Regression",
        AlertEvent::Test => "Test alert",
    };
    let message: String = alert
        .message
        .chars()
        .take(200)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let text = format!(
        "{what} in {} ({}): {}: {message} — {url}",
        alert.project, alert.environment, alert.exception_type
    );
    json!({
        "text": text,
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

/// An HTTP endpoint that takes JSON POSTs, every call bounded in time.
pub struct JsonEndpoint {
    agent: Agent,
    channel: &'static str,
    url: String,
    target: String,
}

impl JsonEndpoint {
    /// `url` for `channel` (`postmark`, `webhook`); `timeout` bounds each whole call.
    pub fn new(channel: &'static str, url: &str, timeout: Duration) -> JsonEndpoint {
        let agent = Agent::config_builder()
            .timeout_connect(Some(CONNECT_TIMEOUT.min(timeout)))
            .timeout_global(Some(timeout))
            // An error answer is read for the log rather than turned into a bare status.
            .http_status_as_error(false)
            .max_redirects(0)
            .build()
            .new_agent();
        JsonEndpoint {
            agent,
            channel,
            url: url.to_string(),
            target: host_and_port(url),
        }
    }

    /// POSTs `body` with extra headers; anything but a 2xx answer is an error quoting the
    /// start of the answer → where it went.
    pub fn post(&self, headers: &[(&str, &str)], body: &Value) -> Result<String, DeliveryError> {
        let error = |reason: String| DeliveryError {
            channel: self.channel,
            target: self.target.clone(),
            reason,
        };
        let mut request = self
            .agent
            .post(&self.url)
            .header("Content-Type", "application/json")
            .header("Accept", "application/json");
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let mut response = request
            .send(body.to_string())
            .map_err(|e| error(e.to_string()))?;
        let status = response.status();
        if status.is_success() {
            return Ok(format!("{} to {}", self.channel, self.target));
        }
        let mut answer = Vec::new();
        // The answer only decorates the log line; an unreadable one is left out.
        let _ = response
            .body_mut()
            .as_reader()
            .take(ANSWER_QUOTED)
            .read_to_end(&mut answer);
        Err(error(format!(
            "HTTP {status}: {}",
            String::from_utf8_lossy(&answer).trim()
        )))
    }
}

/// `host:port` of a URL for logs; never the path, which often holds a secret.
fn host_and_port(url: &str) -> String {
    match url.parse::<Uri>() {
        Ok(uri) => {
            let port = uri.port_u16().unwrap_or(match uri.scheme_str() {
                Some("https") => 443,
                _ => 80,
            });
            format!("{}:{port}", uri.host().unwrap_or("?"))
        }
        Err(_) => "?".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        assert_eq!(body["error"]["url"], "http://errors.local/errors/9");
        assert_eq!(body["error"]["message"], "line 1\nline 2");
        assert_eq!(body["error"]["id"], 9);
    }

    #[test]
    fn logs_name_host_and_port_only() {
        assert_eq!(
            host_and_port("https://hooks.example/T/secret"),
            "hooks.example:443"
        );
        assert_eq!(host_and_port("http://127.0.0.1:8080/x"), "127.0.0.1:8080");
        assert_eq!(host_and_port("http://h/x"), "h:80");
    }
}
