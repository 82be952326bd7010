//! The SMTP channel: alert emails through an SMTP server (lettre over rustls), one
//! connection per email.

use std::time::Duration;

use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{Message, SmtpTransport, Transport};
use shared::config::ConfigError;

use super::channel::DeliveryError;
use super::message::Email;
use crate::config::{SmtpConfig, SmtpTls};

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alerts::message::Alert;

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
