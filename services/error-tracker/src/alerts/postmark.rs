//! The Postmark channel: alert emails through Postmark's HTTP email API.

use std::time::Duration;

use lettre::message::Mailbox;
use serde_json::json;
use shared::secret::Secret;

use super::channel::{DeliveryError, JsonEndpoint};
use super::message::Email;
use crate::config::PostmarkConfig;

/// Sends alert emails through Postmark's HTTP API (`POST {api_url}/email`).
pub struct Postmark {
    endpoint: JsonEndpoint,
    token: Secret,
    from: String,
    to: String,
}

impl Postmark {
    /// A sender for `config`; `timeout` bounds each whole call.
    pub fn new(config: &PostmarkConfig, to: &[Mailbox], timeout: Duration) -> Postmark {
        let to: Vec<String> = to.iter().map(Mailbox::to_string).collect();
        Postmark {
            endpoint: JsonEndpoint::new("postmark", &format!("{}/email", config.api_url), timeout),
            token: config.token.clone(),
            from: config.from.to_string(),
            to: to.join(", "),
        }
    }

    /// Sends `email` to every recipient in one call → where it went.
    pub fn send(&self, email: &Email) -> Result<String, DeliveryError> {
        let body = json!({
            "From": self.from,
            "To": self.to,
            "Subject": email.subject,
            "TextBody": email.text,
            "HtmlBody": email.html,
            "MessageStream": "outbound",
        });
        self.endpoint
            .post(&[("X-Postmark-Server-Token", self.token.expose())], &body)
    }
}
