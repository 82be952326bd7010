//! Where a Sentry SDK puts its project's public key: the `X-Sentry-Auth` header (server SDKs),
//! `Authorization: Sentry ...`, or the DSN (in an envelope's header, or configured). Browser
//! SDKs put `sentry_key` in the query string instead, which the handler reads itself.
//!
//! Only the public key is read: the secret part of old DSNs is not a secret any more (Sentry
//! deprecated it) and is ignored.

/// The `sentry_key` of an `X-Sentry-Auth` header value (or `Authorization: Sentry ...`): `Sentry sentry_key=abc, sentry_version=7, sentry_client=x` — tolerant of spaces, order, missing `Sentry ` prefix, quotes.
///
/// Pairs may be separated by commas, spaces or both, with spaces around `=`; the name is
/// matched case-insensitively; the first `sentry_key` counts; an empty key is no key.
pub fn key_from_auth_header(value: &str) -> Option<&str> {
    const NAME: &[u8] = b"sentry_key";
    let is_separator = |c: char| c == ',' || c.is_whitespace();
    let bytes = value.as_bytes();
    // One pass looking for the name at the start of a word (the `Sentry` prefix is just a
    // word without `=`): linear, whatever a hostile header holds.
    for start in 0..bytes.len().saturating_sub(NAME.len() - 1) {
        let word_start = start == 0 || matches!(bytes[start - 1], b',' | b' ' | b'\t');
        if !word_start || !bytes[start..start + NAME.len()].eq_ignore_ascii_case(NAME) {
            continue;
        }
        // The matched bytes are ASCII, so this is a character boundary.
        let Some(rest) = value[start + NAME.len()..].trim_start().strip_prefix('=') else {
            continue;
        };
        let key = rest.trim_start().split(is_separator).next().unwrap_or("");
        let key = key.trim_matches(|c| c == '"' || c == '\'');
        return (!key.is_empty() && !key.contains('=')).then_some(key);
    }
    None
}

/// The public key of a DSN URL `https://<public_key>[:secret]@host[:port]/[path/]<project_id>`.
///
/// Any scheme is accepted (SDKs use `http` and `https`); the key is what precedes the first
/// `:` of the user info and must be non-empty, without whitespace or `/`.
pub fn key_from_dsn(dsn: &str) -> Option<&str> {
    let (_, rest) = dsn.trim().split_once("://")?;
    let authority = rest.split(['/', '?', '#']).next()?;
    let (user_info, host) = authority.rsplit_once('@')?;
    let key = user_info.split(':').next()?;
    let valid = !key.is_empty() && !host.is_empty() && !key.contains(char::is_whitespace);
    valid.then_some(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auth_header_variants() {
        let cases: &[(&str, Option<&str>)] = &[
            // as the Python SDK 2.75.0 sends it (fixtures/sentry/python-chained.request.json)
            (
                "Sentry sentry_key=0123456789abcdef0123456789abcdef, sentry_version=7, sentry_client=sentry.python/2.75.0",
                Some("0123456789abcdef0123456789abcdef"),
            ),
            ("Sentry sentry_version=7,sentry_key=abc,sentry_client=x", Some("abc")),
            ("sentry_key=abc", Some("abc")),
            ("SENTRY  sentry_version=7 , Sentry_Key = abc ", Some("abc")),
            ("sentry sentry_version=7, sentry_key=\"abc\"", Some("abc")),
            ("Sentry sentry_key='abc'", Some("abc")),
            ("Sentry sentry_version=7 sentry_key=abc sentry_timestamp=1", Some("abc")),
            ("  Sentry sentry_key=abc,sentry_secret=s  ", Some("abc")),
            ("Sentry sentry_key=", None),
            ("Sentry sentry_key=\"\"", None),
            ("Sentry sentry_version=7", None),
            ("Sentry", None),
            ("", None),
            ("Bearer abc", None),
            ("Sentry my_sentry_key=abc", None),
            ("Sentry sentry_key", None),
            ("💥 sentry_key=ü", Some("ü")),
            ("Sentry sentry_key= sentry_version=7", None),
            ("Sentry sentry_key=abc sentry_key=def", Some("abc")),
            ("Sentry sentry_keys=abc", None),
            ("sentry_ke", None),
        ];
        for (value, expected) in cases {
            assert_eq!(key_from_auth_header(value), *expected, "{value:?}");
        }
    }

    #[test]
    fn dsn_variants() {
        let cases: &[(&str, Option<&str>)] = &[
            ("https://abc@o1.ingest.sentry.io/42", Some("abc")),
            ("http://abc:secret@localhost:5010/7", Some("abc")),
            ("https://abc@errors.example.com/sentry/42", Some("abc")),
            ("https://abc@host", Some("abc")),
            ("  https://abc@host/1  ", Some("abc")),
            ("https://host/42", None),
            ("https://@host/42", None),
            ("https://abc@/42", None),
            ("abc@host/42", None),
            ("https://a b@host/1", None),
            // an `@` in the path is not user info
            ("https://host/p@x/1", None),
            ("", None),
            ("://@", None),
        ];
        for (dsn, expected) in cases {
            assert_eq!(key_from_dsn(dsn), *expected, "{dsn:?}");
        }
    }
}
