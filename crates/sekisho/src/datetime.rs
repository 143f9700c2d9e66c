//! RFC 3339 dates, the one place they are parsed and formatted (the `time` crate; no hand-written offsets).

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// `2022-01-10T17:20:59.312+09:00` → Unix milliseconds; `None` when malformed or before 1970.
pub(crate) fn parse_rfc3339_ms(text: &str) -> Option<u64> {
    let parsed = OffsetDateTime::parse(text.trim(), &Rfc3339).ok()?;
    u64::try_from(parsed.unix_timestamp_nanos() / 1_000_000).ok()
}

/// The latest instant formatted: 9999-12-31T23:59:59.000Z (as the envelope always clamped).
const MAX_FORMATTED_MS: u64 = 253_402_300_799_000;

/// Unix milliseconds → `2024-01-02T03:04:05.678Z` (UTC, always three fraction digits). Later than year 9999 is
/// clamped; providers never send that.
pub fn format_rfc3339_ms(unix_ms: u64) -> String {
    let clamped = unix_ms.min(MAX_FORMATTED_MS);
    let Ok(at) = OffsetDateTime::from_unix_timestamp_nanos(i128::from(clamped) * 1_000_000) else {
        return "1970-01-01T00:00:00.000Z".to_owned();
    };
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        at.year(),
        u8::from(at.month()),
        at.day(),
        at.hour(),
        at.minute(),
        at.second(),
        at.millisecond()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_are_applied() {
        assert_eq!(
            parse_rfc3339_ms("2022-01-10T08:20:59.312Z"),
            Some(1_641_802_859_312)
        );
        assert_eq!(
            parse_rfc3339_ms("2022-01-10T17:20:59.312+09:00"),
            Some(1_641_802_859_312)
        );
        assert_eq!(
            parse_rfc3339_ms("2022-01-10T03:20:59.312-05:00"),
            Some(1_641_802_859_312)
        );
        assert_eq!(
            parse_rfc3339_ms(" 2022-01-10T08:20:59Z "),
            Some(1_641_802_859_000)
        );
        assert_eq!(parse_rfc3339_ms("2022-01-10 08:20"), None);
        assert_eq!(parse_rfc3339_ms("+09:00"), None);
        assert_eq!(parse_rfc3339_ms("1970-01-01T00:00:00+01:00"), None);
        assert_eq!(parse_rfc3339_ms(""), None);
    }

    #[test]
    fn formatting_is_utc_with_milliseconds() {
        assert_eq!(format_rfc3339_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            format_rfc3339_ms(1_700_000_000_000),
            "2023-11-14T22:13:20.000Z"
        );
        assert_eq!(
            format_rfc3339_ms(1_641_802_859_312),
            "2022-01-10T08:20:59.312Z"
        );
        assert_eq!(format_rfc3339_ms(u64::MAX), "9999-12-31T23:59:59.000Z");
    }

    #[test]
    fn round_trip() {
        for ms in [0, 1, 999, 1_700_000_000_123, MAX_FORMATTED_MS] {
            assert_eq!(parse_rfc3339_ms(&format_rfc3339_ms(ms)), Some(ms));
        }
    }
}
