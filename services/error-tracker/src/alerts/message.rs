//! The alert message: why it is sent ([`AlertEvent`]), what it carries ([`Alert`], cut to a
//! bounded size when it is made), and every rendering of it — the email's subject and its
//! plain-text and HTML bodies ([`Email`]) and the webhook's one-line text.
//!
//! Every value in an alert comes from a report, so from the public internet: the HTML body
//! escapes each one, the webhook text neutralises Slack/Discord markup and broadcast
//! mentions in it, and the subject is one line (lettre encodes it per RFC 2047). No templates.

use crate::db::ReportStatus;
use crate::ingest::Report;

/// Longest message an alert carries, in bytes.
const MESSAGE_BYTES: usize = 4 * 1024;
/// Longest traceback an alert carries, in bytes.
const TRACEBACK_BYTES: usize = 12 * 1024;
/// Characters of the message shown in the subject.
const SUBJECT_MESSAGE_CHARS: usize = 80;
/// Characters of the message shown in the webhook's text.
const WEBHOOK_MESSAGE_CHARS: usize = 200;

/// Why an alert is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertEvent {
    /// A new group.
    Created,
    /// A resolved group came back: a regression.
    Reopened,
    /// `POST /api/test-alert`.
    Test,
}

impl AlertEvent {
    /// The alert a report's outcome calls for, if any.
    pub fn for_status(status: ReportStatus) -> Option<AlertEvent> {
        match status {
            ReportStatus::Created => Some(AlertEvent::Created),
            ReportStatus::Reopened => Some(AlertEvent::Reopened),
            ReportStatus::Incremented => None,
        }
    }

    /// The webhook's `event` word.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertEvent::Created => "created",
            AlertEvent::Reopened => "reopened",
            AlertEvent::Test => "test",
        }
    }
}

/// One alert: a group as the report that triggered it showed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    /// Why it is sent.
    pub event: AlertEvent,
    /// The group's id (0 for a test alert).
    pub id: i64,
    /// The group's project.
    pub project: String,
    /// The report's environment.
    pub environment: String,
    /// The group's exception type.
    pub exception_type: String,
    /// The report's message, cut at 4 KiB with a note.
    pub message: String,
    /// `METHOD URL` of the failed request, when the report had one.
    pub request: Option<String>,
    /// The report's traceback, cut at 12 KiB with a note.
    pub traceback: String,
    /// Times the group has been seen.
    pub count: i64,
}

impl Alert {
    /// The alert for a report stored in group `id`, now seen `count` times.
    pub fn from_report(event: AlertEvent, id: i64, count: i64, report: &Report) -> Alert {
        let request = match (&report.request_method, &report.request_url) {
            (Some(method), Some(url)) => Some(format!("{method} {url}")),
            (method, url) => method.as_ref().or(url.as_ref()).cloned(),
        };
        Alert {
            event,
            id,
            project: report.project.clone(),
            environment: report.environment.clone(),
            exception_type: report.exception_type.clone(),
            message: clip(&report.message, MESSAGE_BYTES, "message"),
            request,
            traceback: clip(&report.traceback, TRACEBACK_BYTES, "traceback"),
            count,
        }
    }

    /// The alert `POST /api/test-alert` sends.
    pub fn test() -> Alert {
        Alert {
            event: AlertEvent::Test,
            id: 0,
            project: "monlight".to_string(),
            environment: "test".to_string(),
            exception_type: "TestAlert".to_string(),
            message: "This is a test alert from the Monlight error-tracker: alerts reach you."
                .to_string(),
            request: None,
            traceback: String::new(),
            count: 0,
        }
    }

    /// The group's page in the web UI (the list, for a test alert).
    pub fn link(&self, base_url: &str) -> String {
        match self.event {
            AlertEvent::Test => format!("{base_url}/"),
            AlertEvent::Created | AlertEvent::Reopened => format!("{base_url}/errors/{}", self.id),
        }
    }
}

/// `text` cut to at most `max_bytes` bytes at a character boundary, with a line saying so.
fn clip(text: &str, max_bytes: usize, what: &str) -> String {
    if text.len() <= max_bytes {
        return text.to_string();
    }
    let kept = &text[..text.floor_char_boundary(max_bytes)];
    format!("{kept}\n… ({what} cut at {} KiB)", max_bytes / 1024)
}

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

impl Alert {
    /// The webhook's one-line `text` (Slack, Discord, ntfy): what happened, where, the
    /// message's first 200 characters and `link`, with chat markup neutralised: a report
    /// must not be able to ping a channel or forge a link.
    pub fn webhook_text(&self, link: &str) -> String {
        let what = match self.event {
            AlertEvent::Created => "New error",
            AlertEvent::Reopened => "Regression",
            AlertEvent::Test => "Test alert",
        };
        let message: String = self
            .message
            .chars()
            .take(WEBHOOK_MESSAGE_CHARS)
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        chat_escape(&format!(
            "{what} in {} ({}): {}: {message} — {link}",
            self.project, self.environment, self.exception_type
        ))
    }
}

/// Mentions that notify a whole channel when they appear as plain text (Slack with
/// `link_names`, Discord), compared without case.
const BROADCAST_MENTIONS: [&str; 3] = ["everyone", "here", "channel"];

/// `text` safe in a Slack or Discord message: `&`, `<` and `>` become entities (Slack's
/// control characters: `<!channel>`, `<@U123>`, `<https://evil|bank>`), and a zero-width
/// space after `@` breaks `@everyone`, `@here` and `@channel`.
fn chat_escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for (at, c) in text.char_indices() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '@' => {
                escaped.push('@');
                let rest = &text.as_bytes()[at + 1..];
                let broadcast = BROADCAST_MENTIONS.iter().any(|word| {
                    rest.get(..word.len())
                        .is_some_and(|start| start.eq_ignore_ascii_case(word.as_bytes()))
                });
                if broadcast {
                    escaped.push('\u{200B}');
                }
            }
            c => escaped.push(c),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::parse_report;
    use serde_json::json;

    fn report(body: serde_json::Value) -> Report {
        parse_report(&body).unwrap()
    }

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
    fn traceback_is_cut_at_12_kib_on_a_character_boundary() {
        let long = format!("a{}", "€".repeat(5000));
        let cut = clip(&long, TRACEBACK_BYTES, "traceback");
        let (kept, note) = cut.rsplit_once('\n').unwrap();
        assert!(kept.len() <= TRACEBACK_BYTES && kept.len() > TRACEBACK_BYTES - 3);
        assert_eq!(note, "… (traceback cut at 12 KiB)");
        assert_eq!(clip("short", TRACEBACK_BYTES, "traceback"), "short");
        let exact = "x".repeat(TRACEBACK_BYTES);
        assert_eq!(clip(&exact, TRACEBACK_BYTES, "traceback"), exact);
    }

    #[test]
    fn alert_takes_the_report_and_joins_method_and_url() {
        let body = json!({"project": "p", "exception_type": "E", "message": "m",
            "traceback": "t".repeat(20_000), "request_method": "GET", "request_url": "https://x/y"});
        let alert = Alert::from_report(AlertEvent::Reopened, 7, 3, &report(body));
        assert_eq!(alert.request.as_deref(), Some("GET https://x/y"));
        assert_eq!(
            (alert.id, alert.count, alert.environment.as_str()),
            (7, 3, "prod")
        );
        assert!(alert.traceback.ends_with("(traceback cut at 12 KiB)"));
        assert_eq!(alert.link("http://h:1"), "http://h:1/errors/7");
        assert_eq!(Alert::test().link("http://h:1"), "http://h:1/");
        let url_only = json!({"project": "p", "exception_type": "E", "message": "m",
            "traceback": "", "request_url": "https://x/y"});
        let alert = Alert::from_report(AlertEvent::Created, 1, 1, &report(url_only));
        assert_eq!(alert.request.as_deref(), Some("https://x/y"));
    }

    #[test]
    fn only_new_and_reopened_groups_alert() {
        assert_eq!(
            AlertEvent::for_status(ReportStatus::Created),
            Some(AlertEvent::Created)
        );
        assert_eq!(
            AlertEvent::for_status(ReportStatus::Reopened),
            Some(AlertEvent::Reopened)
        );
        assert_eq!(AlertEvent::for_status(ReportStatus::Incremented), None);
    }

    #[test]
    fn chat_escape_neutralises_entities_and_broadcast_mentions() {
        let cases = [
            ("a & b < c > d", "a &amp; b &lt; c &gt; d"),
            ("<!channel> <!here|x>", "&lt;!channel&gt; &lt;!here|x&gt;"),
            (
                "<https://evil.example|Your bank>",
                "&lt;https://evil.example|Your bank&gt;",
            ),
            ("hi @everyone", "hi @\u{200B}everyone"),
            ("@HERE and @Channel", "@\u{200B}HERE and @\u{200B}Channel"),
            ("mail ops@example.org", "mail ops@example.org"),
            ("@", "@"),
            ("@her", "@her"),
            ("&amp;", "&amp;amp;"),
            ("école ü", "école ü"),
        ];
        for (text, expected) in cases {
            assert_eq!(chat_escape(text), expected, "{text:?}");
        }
    }

    #[test]
    fn webhook_text_escapes_every_value_from_the_report() {
        let mut evil = alert(
            AlertEvent::Created,
            "<!channel> @everyone look: <https://x|y>",
        );
        evil.project = "<@U123>".to_string();
        evil.environment = "@here".to_string();
        evil.exception_type = "A&B".to_string();
        let text = evil.webhook_text("http://errors.local/errors/42");
        assert_eq!(
            text,
            "New error in &lt;@U123&gt; (@\u{200B}here): A&amp;B: &lt;!channel&gt; \
             @\u{200B}everyone look: &lt;https://x|y&gt; — http://errors.local/errors/42"
        );
    }
}
