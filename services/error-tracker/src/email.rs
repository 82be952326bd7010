//! Alert emails: the subject and the plain-text and HTML bodies, and sending them by SMTP
//! (lettre over rustls) or through Postmark's HTTP email API.
//!
//! Every value from a report is HTML-escaped in the HTML part; the subject is one line
//! (lettre encodes it per RFC 2047). No templates, no attachments.

use std::time::Duration;

use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{Message, SmtpTransport, Transport};
use serde_json::json;
use shared::config::ConfigError;

use crate::alerts::{Alert, AlertEvent, DeliveryError};
use crate::config::{PostmarkConfig, SmtpConfig, SmtpTls};
use crate::webhook::JsonEndpoint;

/// Characters of the message shown in the subject.
const SUBJECT_MESSAGE_CHARS: usize = 80;

/// An alert as an email.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email {
    /// `[regression] [<project>] <type>: <message, 80 chars> (#<id>)`.
    pub subject: String,
    /// The plain-text part.
    pub text: String,
    /// The HTML part.
    pub html: String,
}

impl Email {
    /// The email for `alert`, linking to the group under `base_url`.
    pub fn new(alert: &Alert, base_url: &str) -> Email {
        let link = alert.link(base_url);
        Email {
            subject: subject(alert),
            text: text_body(alert, &link),
            html: html_body(alert, &link),
        }
    }
}

fn subject(alert: &Alert) -> String {
    let prefix = match alert.event {
        AlertEvent::Created => "",
        AlertEvent::Reopened => "[regression] ",
        AlertEvent::Test => "[test] ",
    };
    let message = match alert.message.char_indices().nth(SUBJECT_MESSAGE_CHARS) {
        Some((end, _)) => format!("{}…", &alert.message[..end]),
        None => alert.message.clone(),
    };
    let subject = format!(
        "{prefix}[{}] {}: {message} (#{})",
        alert.project, alert.exception_type, alert.id
    );
    // A header is one line: newlines and other control characters become spaces.
    subject
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

fn heading(alert: &Alert) -> String {
    match alert.event {
        AlertEvent::Created => format!("New error in {} ({})", alert.project, alert.environment),
        AlertEvent::Reopened => format!(
            "Regression in {} ({}): a resolved error is back",
            alert.project, alert.environment
        ),
        AlertEvent::Test => "Test alert: alerts from the Monlight error-tracker reach you".into(),
    }
}

/// The labelled values both bodies show, in order.
fn fields<'a>(alert: &'a Alert, count: &'a str) -> Vec<(&'static str, &'a str)> {
    let mut fields = vec![
        ("Project", alert.project.as_str()),
        ("Environment", alert.environment.as_str()),
        ("Type", alert.exception_type.as_str()),
        ("Message", alert.message.as_str()),
    ];
    if let Some(request) = &alert.request {
        fields.push(("Request", request.as_str()));
    }
    fields.push(("Seen", count));
    fields
}

fn times(count: i64) -> String {
    match count {
        1 => "once".to_string(),
        n => format!("{n} times"),
    }
}

fn text_body(alert: &Alert, link: &str) -> String {
    let count = times(alert.count);
    let mut text = format!("{}\n\n", heading(alert));
    for (label, value) in fields(alert, &count) {
        text.push_str(&format!("{:<12} {value}\n", format!("{label}:")));
    }
    text.push_str(&format!("\n{link}\n"));
    if !alert.traceback.is_empty() {
        text.push_str(&format!("\nTraceback:\n{}\n", alert.traceback));
    }
    text
}

fn html_body(alert: &Alert, link: &str) -> String {
    let count = times(alert.count);
    let mut rows = String::new();
    for (label, value) in fields(alert, &count) {
        rows.push_str(&format!(
            "<tr><th align=\"left\" valign=\"top\">{label}</th><td style=\"white-space:pre-wrap\">{}</td></tr>\n",
            html_escape(value)
        ));
    }
    let traceback = if alert.traceback.is_empty() {
        String::new()
    } else {
        format!(
            "<h3>Traceback</h3>\n<pre style=\"background:#f6f8fa;padding:8px;white-space:pre-wrap\">{}</pre>\n",
            html_escape(&alert.traceback)
        )
    };
    format!(
        "<!DOCTYPE html>\n<html><body style=\"font-family:sans-serif\">\n\
         <h2>{}</h2>\n<table cellpadding=\"4\">\n{rows}</table>\n\
         <p><a href=\"{link}\">{link}</a></p>\n{traceback}</body></html>\n",
        html_escape(&heading(alert)),
        link = html_escape(link),
    )
}

/// `text` safe inside HTML text and double- or single-quoted attributes.
fn html_escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            c => escaped.push(c),
        }
    }
    escaped
}

/// What an SMTP connection does about TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TlsMode {
    /// TLS from the first byte.
    Implicit,
    /// STARTTLS or fail.
    Required,
    /// STARTTLS when the server offers it.
    Opportunistic,
    /// Never TLS.
    Plain,
}

impl TlsMode {
    fn of(config: &SmtpConfig) -> TlsMode {
        match config.tls {
            SmtpTls::Auto if config.port == 465 => TlsMode::Implicit,
            // Credentials never cross an unencrypted connection unless SMTP_TLS=none says so.
            SmtpTls::Auto if config.credentials.is_some() => TlsMode::Required,
            SmtpTls::Auto => TlsMode::Opportunistic,
            SmtpTls::Implicit => TlsMode::Implicit,
            SmtpTls::StartTls => TlsMode::Required,
            SmtpTls::None => TlsMode::Plain,
        }
    }

    fn describe(self) -> &'static str {
        match self {
            TlsMode::Implicit => "implicit TLS",
            TlsMode::Required => "STARTTLS required",
            TlsMode::Opportunistic => "STARTTLS when offered",
            TlsMode::Plain => "plain text",
        }
    }
}

/// Sends alert emails through an SMTP server; one connection per email.
pub struct Smtp {
    transport: SmtpTransport,
    from: Mailbox,
    to: Vec<Mailbox>,
    target: String,
}

impl Smtp {
    /// A sender for `config`: `timeout` bounds the connect and every read and write.
    pub fn new(
        config: &SmtpConfig,
        to: &[Mailbox],
        timeout: Duration,
    ) -> Result<Smtp, ConfigError> {
        let mode = TlsMode::of(config);
        let tls = if mode == TlsMode::Plain {
            Tls::None
        } else {
            let parameters = TlsParameters::new(config.host.clone()).map_err(|e| {
                ConfigError(format!(
                    "cannot set up TLS for SMTP_HOST {:?}: {e}",
                    config.host
                ))
            })?;
            match mode {
                TlsMode::Implicit => Tls::Wrapper(parameters),
                TlsMode::Required => Tls::Required(parameters),
                TlsMode::Opportunistic | TlsMode::Plain => Tls::Opportunistic(parameters),
            }
        };
        let mut builder = SmtpTransport::builder_dangerous(&config.host)
            .port(config.port)
            .tls(tls)
            .timeout(Some(timeout));
        if let Some((username, password)) = &config.credentials {
            builder = builder.credentials(Credentials::new(
                username.clone(),
                password.expose().to_string(),
            ));
        }
        let target = format!("{}:{}", config.host, config.port);
        log::info!(
            "SMTP alerts via {target} ({}{})",
            mode.describe(),
            if config.credentials.is_some() {
                ", AUTH"
            } else {
                ""
            }
        );
        Ok(Smtp {
            transport: builder.build(),
            from: config.from.clone(),
            to: to.to_vec(),
            target,
        })
    }

    /// Sends `email` to every recipient → where it went.
    pub fn send(&self, email: &Email) -> Result<String, DeliveryError> {
        let error = |reason: String| DeliveryError {
            channel: "smtp",
            target: self.target.clone(),
            reason,
        };
        let mut message = Message::builder()
            .from(self.from.clone())
            .subject(email.subject.clone())
            .message_id(None);
        for to in &self.to {
            message = message.to(to.clone());
        }
        let message = message
            .multipart(MultiPart::alternative_plain_html(
                email.text.clone(),
                email.html.clone(),
            ))
            .map_err(|e| error(format!("cannot build the message: {e}")))?;
        self.transport
            .send(&message)
            .map_err(|e| error(e.to_string()))?;
        Ok(format!("smtp to {}", self.target))
    }
}

/// Sends alert emails through Postmark's HTTP API (`POST {api_url}/email`).
pub struct Postmark {
    endpoint: JsonEndpoint,
    token: String,
    from: String,
    to: String,
}

impl Postmark {
    /// A sender for `config`; `timeout` bounds each whole call.
    pub fn new(config: &PostmarkConfig, to: &[Mailbox], timeout: Duration) -> Postmark {
        let to: Vec<String> = to.iter().map(Mailbox::to_string).collect();
        Postmark {
            endpoint: JsonEndpoint::new("postmark", &format!("{}/email", config.api_url), timeout),
            token: config.token.expose().to_string(),
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
            .post(&[("X-Postmark-Server-Token", &self.token)], &body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::Alert;

    fn alert(event: AlertEvent, message: &str) -> Alert {
        Alert {
            event,
            id: 42,
            project: "shop".to_string(),
            environment: "prod".to_string(),
            exception_type: "ValueError".to_string(),
            message: message.to_string(),
            request: Some("POST https://shop.example/cart?a=1&b=<2>".to_string()),
            traceback: "File \"/app/x.py\", line 1\n  raise ValueError('<b>')".to_string(),
            count: 1,
        }
    }

    #[test]
    fn subject_cuts_the_message_at_80_characters() {
        let short = alert(AlertEvent::Created, "bad input");
        assert_eq!(subject(&short), "[shop] ValueError: bad input (#42)");
        let long = alert(AlertEvent::Created, &"é".repeat(100));
        assert_eq!(
            subject(&long),
            format!("[shop] ValueError: {}… (#42)", "é".repeat(80))
        );
        let exactly = alert(AlertEvent::Created, &"x".repeat(80));
        assert_eq!(
            subject(&exactly),
            format!("[shop] ValueError: {} (#42)", "x".repeat(80))
        );
    }

    #[test]
    fn subject_of_a_reopen_says_regression_and_stays_on_one_line() {
        let reopened = alert(AlertEvent::Reopened, "line one\nline two\r\n");
        assert_eq!(
            subject(&reopened),
            "[regression] [shop] ValueError: line one line two   (#42)"
        );
        assert!(subject(&Alert::test()).starts_with("[test] [monlight] TestAlert: "));
    }

    #[test]
    fn html_escape_covers_text_and_attributes() {
        assert_eq!(
            html_escape(r#"<script>alert("x" & 'y')</script>"#),
            "&lt;script&gt;alert(&quot;x&quot; &amp; &#39;y&#39;)&lt;/script&gt;"
        );
        assert_eq!(html_escape("plain ü"), "plain ü");
    }

    #[test]
    fn html_part_escapes_every_value() {
        let mut evil = alert(AlertEvent::Created, "<script>alert(1)</script>");
        evil.project = "<em>".to_string();
        let email = Email::new(&evil, "http://h\"x");
        assert!(!email.html.contains("<script>") && !email.html.contains("<em>"));
        assert!(email
            .html
            .contains("<td style=\"white-space:pre-wrap\">&lt;em&gt;</td>"));
        assert!(email.html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(email.html.contains("a=1&amp;b=&lt;2&gt;"));
        assert!(email.html.contains("raise ValueError(&#39;&lt;b&gt;&#39;)"));
        assert!(email
            .html
            .contains("<a href=\"http://h&quot;x/errors/42\">"));
        assert!(email.text.contains("<script>alert(1)</script>"));
    }

    #[test]
    fn bodies_hold_every_field_and_the_link() {
        let email = Email::new(&alert(AlertEvent::Reopened, "m"), "http://errors.local");
        let shared = [
            "Regression in shop (prod)",
            "ValueError",
            "POST https://shop.example/cart",
            "http://errors.local/errors/42",
        ];
        for needle in shared {
            assert!(
                email.text.contains(needle),
                "{needle:?} missing from {}",
                email.text
            );
            assert!(
                email.html.contains(needle),
                "{needle:?} missing from {}",
                email.html
            );
        }
        assert!(email
            .text
            .contains("Project:     shop\nEnvironment: prod\n"));
        assert!(email.text.contains("Seen:        once\n"));
        assert!(email
            .text
            .contains("Traceback:\nFile \"/app/x.py\", line 1\n"));
        assert!(email.html.contains("<th align=\"left\" valign=\"top\">Project</th><td style=\"white-space:pre-wrap\">shop</td>"));
        assert!(email.html.contains("<pre style="));
    }

    #[test]
    fn tls_mode_follows_port_and_credentials() {
        let config = |port, tls, auth: bool| SmtpConfig {
            host: "mail.example.org".to_string(),
            port,
            tls,
            credentials: auth.then(|| ("u".to_string(), shared::secret::Secret::new("p"))),
            from: "a@b.org".parse().unwrap(),
        };
        let cases = [
            (465, SmtpTls::Auto, false, TlsMode::Implicit),
            (465, SmtpTls::Auto, true, TlsMode::Implicit),
            (25, SmtpTls::Auto, false, TlsMode::Opportunistic),
            (587, SmtpTls::Auto, true, TlsMode::Required),
            (2465, SmtpTls::Implicit, true, TlsMode::Implicit),
            (25, SmtpTls::StartTls, false, TlsMode::Required),
            (25, SmtpTls::None, true, TlsMode::Plain),
        ];
        for (port, tls, auth, expected) in cases {
            assert_eq!(
                TlsMode::of(&config(port, tls, auth)),
                expected,
                "{port} {tls:?} {auth}"
            );
        }
    }

    #[test]
    fn an_unreachable_server_is_an_error_naming_host_and_port() {
        let config = SmtpConfig {
            host: "127.0.0.1".to_string(),
            port: 1,
            tls: SmtpTls::Auto,
            credentials: None,
            from: "a@b.org".parse().unwrap(),
        };
        let to = ["c@d.org".parse().unwrap()];
        let smtp = Smtp::new(&config, &to, Duration::from_secs(2)).unwrap();
        let err = smtp
            .send(&Email::new(&Alert::test(), "http://h"))
            .unwrap_err();
        assert_eq!((err.channel, err.target.as_str()), ("smtp", "127.0.0.1:1"));
        assert!(
            err.to_string().starts_with("smtp to 127.0.0.1:1: "),
            "{err}"
        );
        assert!(err.reason.contains("refused"), "{err}");
    }
}
