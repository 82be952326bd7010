//! Timestamps: milliseconds since the Unix epoch inside, RFC 3339 UTC with `Z` outside.

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// Milliseconds since the Unix epoch, now.
pub fn now_ms() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    now.as_millis() as i64
}

/// Formats epoch milliseconds as `2026-01-01T12:00:00.123Z` (or without the fraction when
/// it is zero).
pub fn format_ms(ms: i64) -> String {
    let Ok(dt) = OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000) else {
        return String::new();
    };
    let millis = ms.rem_euclid(1000);
    let base = format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        dt.year(),
        dt.month() as u8,
        dt.day(),
        dt.hour(),
        dt.minute(),
        dt.second()
    );
    if millis == 0 {
        format!("{base}Z")
    } else {
        format!("{base}.{millis:03}Z")
    }
}

/// An HTTP `Date` value (RFC 9110 IMF-fixdate): `Tue, 01 Dec 2026 14:00:00 GMT`.
pub fn http_date(at: std::time::SystemTime) -> String {
    let dt = OffsetDateTime::from(at);
    const DAYS: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{}, {:02} {} {:04} {:02}:{:02}:{:02} GMT",
        DAYS[dt.weekday().number_days_from_monday() as usize],
        dt.day(),
        MONTHS[dt.month() as usize - 1],
        dt.year(),
        dt.hour(),
        dt.minute(),
        dt.second()
    )
}

/// Parses an RFC 3339 timestamp with any offset into epoch milliseconds (UTC).
pub fn parse_rfc3339_ms(text: &str) -> Option<i64> {
    let dt = OffsetDateTime::parse(text.trim(), &Rfc3339).ok()?;
    i64::try_from(dt.unix_timestamp_nanos() / 1_000_000).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_offsets() {
        let ms = parse_rfc3339_ms("2026-01-01T12:00:00Z").unwrap();
        assert_eq!(format_ms(ms), "2026-01-01T12:00:00Z");
        let with_offset = parse_rfc3339_ms("2026-01-01T14:00:00.250+02:00").unwrap();
        assert_eq!(format_ms(with_offset), "2026-01-01T12:00:00.250Z");
        assert_eq!(parse_rfc3339_ms("yesterday"), None);
        assert_eq!(parse_rfc3339_ms("2026-01-01"), None);
    }

    #[test]
    fn http_dates_are_imf_fixdate() {
        let at = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_796_133_600);
        assert_eq!(http_date(at), "Tue, 01 Dec 2026 14:00:00 GMT");
    }
}
