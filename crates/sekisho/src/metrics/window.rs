//! Time buckets and the windows read from them. Every counter is written twice: into a 5-minute bucket,
//! kept for 24 hours, and into an hourly bucket, kept for 8 days. The `1h` window reads the last 12
//! five-minute buckets, `24h` and `7d` the last 24 and 168 hourly buckets (each including the current,
//! partial one).

use serde::{Deserialize, Serialize};

const MINUTE_MS: u64 = 60_000;
const HOUR_MS: u64 = 60 * MINUTE_MS;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Resolution {
    FiveMinutes,
    Hour,
}

impl Resolution {
    pub const ALL: [Resolution; 2] = [Resolution::FiveMinutes, Resolution::Hour];

    pub fn bucket_ms(self) -> u64 {
        match self {
            Resolution::FiveMinutes => 5 * MINUTE_MS,
            Resolution::Hour => HOUR_MS,
        }
    }

    /// How long buckets of this resolution are kept.
    pub fn retention_ms(self) -> u64 {
        match self {
            Resolution::FiveMinutes => 24 * HOUR_MS,
            Resolution::Hour => 8 * 24 * HOUR_MS,
        }
    }

    pub fn bucket_start(self, at_ms: u64) -> u64 {
        at_ms - at_ms % self.bucket_ms()
    }

    /// Buckets that start before this are purged.
    pub fn purge_before(self, now_ms: u64) -> u64 {
        self.bucket_start(now_ms.saturating_sub(self.retention_ms()))
    }

    /// The store's code for the resolution (its bucket length in seconds).
    pub fn code(self) -> i64 {
        (self.bucket_ms() / 1000) as i64
    }

    pub fn from_code(code: i64) -> Option<Resolution> {
        Resolution::ALL.into_iter().find(|r| r.code() == code)
    }
}

/// A window of the admin API (`?window=1h|24h|7d`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Window {
    #[serde(rename = "1h")]
    Hour,
    #[default]
    #[serde(rename = "24h")]
    Day,
    #[serde(rename = "7d")]
    Week,
}

impl Window {
    pub fn parse(raw: &str) -> Option<Window> {
        match raw {
            "1h" => Some(Window::Hour),
            "24h" => Some(Window::Day),
            "7d" => Some(Window::Week),
            _ => None,
        }
    }

    pub fn resolution(self) -> Resolution {
        match self {
            Window::Hour => Resolution::FiveMinutes,
            Window::Day | Window::Week => Resolution::Hour,
        }
    }

    pub fn points(self) -> usize {
        match self {
            Window::Hour => 12,
            Window::Day => 24,
            Window::Week => 168,
        }
    }

    /// The start of every bucket of the window, oldest first; the last is the current bucket.
    pub fn bucket_starts(self, now_ms: u64) -> Vec<u64> {
        let resolution = self.resolution();
        let current = resolution.bucket_start(now_ms);
        let step = resolution.bucket_ms();
        (0..self.points() as u64)
            .rev()
            .filter_map(|back| current.checked_sub(back * step))
            .collect()
    }

    /// The first bucket start the window reads.
    pub fn since_ms(self, now_ms: u64) -> u64 {
        self.bucket_starts(now_ms).first().copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T: u64 = 1_764_633_600_000; // 2025-12-02T00:00:00Z

    #[test]
    fn buckets_align_to_their_resolution() {
        assert_eq!(Resolution::FiveMinutes.bucket_start(T + 299_999), T);
        assert_eq!(
            Resolution::FiveMinutes.bucket_start(T + 300_000),
            T + 300_000
        );
        assert_eq!(Resolution::Hour.bucket_start(T + 3_599_999), T);
        assert_eq!(Resolution::from_code(300), Some(Resolution::FiveMinutes));
        assert_eq!(Resolution::from_code(3600), Some(Resolution::Hour));
        assert_eq!(Resolution::from_code(60), None);
    }

    #[test]
    fn windows_cover_their_length_ending_with_the_current_bucket() {
        let now = T + 10 * 60_000 + 7;
        let hour = Window::Hour.bucket_starts(now);
        assert_eq!(hour.len(), 12);
        assert_eq!(hour.last(), Some(&(T + 600_000)));
        assert_eq!(hour.first(), Some(&(T + 600_000 - 11 * 300_000)));
        assert_eq!(Window::Day.bucket_starts(now).len(), 24);
        assert_eq!(
            Window::Week.bucket_starts(now).first(),
            Some(&(T - 167 * 3_600_000))
        );
        assert_eq!(Window::Week.since_ms(now), T - 167 * 3_600_000);
        assert_eq!(Window::parse("7d"), Some(Window::Week));
        assert_eq!(Window::parse("1d"), None);
    }

    #[test]
    fn retention_keeps_what_the_longest_window_reads() {
        let now = T;
        for window in [Window::Hour, Window::Day, Window::Week] {
            assert!(
                window.resolution().purge_before(now) <= window.since_ms(now),
                "{window:?}"
            );
        }
        assert_eq!(Resolution::FiveMinutes.purge_before(now), T - 86_400_000);
    }
}
