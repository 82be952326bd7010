//! What every channel shares: [`DeliveryError`], what a failed delivery reports, and
//! [`JsonEndpoint`], the bounded JSON POST behind Postmark and the webhook.

use std::fmt;
use std::io::Read;
use std::time::Duration;

use serde_json::Value;
use ureq::http::Uri;
use ureq::Agent;

/// Connecting to any HTTP endpoint.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Bytes of an error answer quoted in the log.
const ANSWER_QUOTED: u64 = 300;

/// A delivery that failed: the channel, where it went (host and port) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryError {
    /// `smtp`, `postmark` or `webhook`.
    pub channel: &'static str,
    /// `host:port` (never a whole URL: webhook URLs often hold a secret).
    pub target: String,
    /// The underlying error.
    pub reason: String,
}

impl fmt::Display for DeliveryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} to {}: {}", self.channel, self.target, self.reason)
    }
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
    fn logs_name_host_and_port_only() {
        assert_eq!(
            host_and_port("https://hooks.example/T/secret"),
            "hooks.example:443"
        );
        assert_eq!(host_and_port("http://127.0.0.1:8080/x"), "127.0.0.1:8080");
        assert_eq!(host_and_port("http://h/x"), "h:80");
    }
}
