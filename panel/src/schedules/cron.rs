//! When a schedule runs: a 5-field cron expression (minute, hour, day of month, month,
//! day of week, as in Pterodactyl and Vixie cron) read in an IANA time zone.
//!
//! Parsing and the DST rules come from `croner` (OCPS semantics): a fixed-time job whose
//! wall-clock time falls in a spring-forward gap runs at the first instant after the
//! gap; in a fall-back overlap it runs once; interval jobs (`*/15 * * * *`) follow real
//! time on both sides.

use std::str::FromStr;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};

/// Longest accepted expression, in bytes.
const MAX_LEN: usize = 255;

/// A parsed expression and the zone it is read in.
#[derive(Debug, Clone)]
pub struct When {
    cron: Cron,
    tz: Tz,
}

impl When {
    /// Parses and checks `expr` and `timezone`; the error names the field at fault.
    ///
    /// # Errors
    /// `("cron", why)` for an expression that is malformed, not 5 fields, or never
    /// matches; `("timezone", why)` for a name not in the IANA database.
    pub fn parse(expr: &str, timezone: &str) -> Result<Self, (&'static str, String)> {
        let cron = parse_cron(expr).map_err(|e| ("cron", e))?;
        let tz = parse_timezone(timezone).map_err(|e| ("timezone", e))?;
        let when = Self { cron, tz };
        if when.next_after(crate::db::now_ms()).is_none() {
            return Err(("cron", format!("`{expr}` never matches a real date")));
        }
        Ok(when)
    }

    /// The first run strictly after `after_ms` (unix ms), in unix ms; `None` when the
    /// expression matches no date (e.g. February 30).
    #[must_use]
    pub fn next_after(&self, after_ms: i64) -> Option<i64> {
        let start = DateTime::<Utc>::from_timestamp_millis(after_ms)?.with_timezone(&self.tz);
        self.cron
            .find_next_occurrence(&start, false)
            .ok()
            .map(|t| t.timestamp_millis())
    }
}

/// Parses a 5-field expression.
///
/// # Errors
/// A message saying what is wrong.
pub fn parse_cron(expr: &str) -> Result<Cron, String> {
    let expr = expr.trim();
    if expr.len() > MAX_LEN {
        return Err(format!("cron is longer than {MAX_LEN} bytes"));
    }
    let fields = expr.split_whitespace().count();
    if fields != 5 {
        return Err(format!(
            "cron has 5 fields (minute hour day-of-month month day-of-week), not {fields}"
        ));
    }
    CronParser::builder()
        .seconds(Seconds::Disallowed)
        .year(Year::Disallowed)
        .build()
        .parse(expr)
        .map_err(|e| format!("invalid cron expression `{expr}`: {e}"))
}

/// Parses an IANA zone name such as `Europe/Paris` or `UTC`.
///
/// # Errors
/// A message when the name is unknown.
pub fn parse_timezone(name: &str) -> Result<Tz, String> {
    Tz::from_str(name.trim())
        .map_err(|_| format!("`{name}` is not an IANA time zone (e.g. Europe/Paris, UTC)"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn ms(tz: Tz, y: i32, mo: u32, d: u32, h: u32, mi: u32) -> i64 {
        tz.with_ymd_and_hms(y, mo, d, h, mi, 0)
            .earliest()
            .expect("valid local time")
            .timestamp_millis()
    }

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> i64 {
        ms(Tz::UTC, y, mo, d, h, mi)
    }

    fn when(expr: &str, tz: &str) -> When {
        When::parse(expr, tz).expect("valid")
    }

    #[test]
    fn five_fields_are_required_and_checked() {
        assert!(parse_cron("*/5 * * * *").is_ok());
        assert!(parse_cron("0 4 * * 1-5").is_ok());
        assert!(parse_cron("30 2 1 JAN,JUL MON").is_ok());
        assert!(parse_cron("* * * *").is_err(), "4 fields");
        assert!(parse_cron("0 * * * * *").is_err(), "6 fields (seconds)");
        assert!(parse_cron("61 * * * *").is_err(), "minute out of range");
        assert!(parse_cron("* 24 * * *").is_err(), "hour out of range");
        assert!(parse_cron("* * 32 * *").is_err(), "day out of range");
        assert!(parse_cron("* * * 13 *").is_err(), "month out of range");
        assert!(parse_cron("not a cron at all").is_err());
        assert!(parse_cron("").is_err());
        assert!(parse_cron(&"1,".repeat(200)).is_err(), "too long");
        assert_eq!(
            When::parse("0 0 30 2 *", "UTC").expect_err("never").0,
            "cron"
        );
    }

    #[test]
    fn time_zones_are_iana_names() {
        assert!(parse_timezone("UTC").is_ok());
        assert!(parse_timezone("Europe/Paris").is_ok());
        assert!(parse_timezone("America/New_York").is_ok());
        assert!(parse_timezone("Mars/Olympus").is_err());
        assert!(parse_timezone("").is_err());
        assert_eq!(
            When::parse("* * * * *", "Nowhere").expect_err("tz").0,
            "timezone"
        );
    }

    #[test]
    fn next_run_is_strictly_after_and_in_the_zone() {
        let every5 = when("*/5 * * * *", "UTC");
        let t = utc(2026, 3, 10, 12, 0);
        assert_eq!(every5.next_after(t), Some(utc(2026, 3, 10, 12, 5)));
        assert_eq!(every5.next_after(t - 1), Some(t));
        // 04:00 in Paris (UTC+1 in winter) is 03:00 UTC.
        let paris = when("0 4 * * *", "Europe/Paris");
        assert_eq!(
            paris.next_after(utc(2026, 1, 15, 12, 0)),
            Some(utc(2026, 1, 16, 3, 0))
        );
        // ... and 02:00 UTC in summer (UTC+2).
        assert_eq!(
            paris.next_after(utc(2026, 7, 15, 12, 0)),
            Some(utc(2026, 7, 16, 2, 0))
        );
        // Tokyo has no DST: 09:00 JST is 00:00 UTC all year.
        let tokyo = when("0 9 * * 1", "Asia/Tokyo");
        assert_eq!(
            tokyo.next_after(utc(2026, 6, 1, 0, 0)),
            Some(utc(2026, 6, 8, 0, 0)),
            "2026-06-01 is a Monday; 09:00 JST then is exactly the start, so the next Monday"
        );
    }

    #[test]
    fn daily_job_across_spring_forward() {
        // New York springs forward on 2026-03-08: 02:00 EST becomes 03:00 EDT.
        let ny: Tz = "America/New_York".parse().expect("tz");
        let nine = when("0 9 * * *", "America/New_York");
        // 09:00 EST (UTC-5) on the 7th, 09:00 EDT (UTC-4) on the 8th: 23 hours apart.
        let sat = nine.next_after(ms(ny, 2026, 3, 7, 0, 0)).expect("next");
        assert_eq!(sat, utc(2026, 3, 7, 14, 0));
        let sun = nine.next_after(sat).expect("next");
        assert_eq!(sun, utc(2026, 3, 8, 13, 0));
        assert_eq!(sun - sat, 23 * 3600 * 1000);
        // A job at 02:30, a wall time that does not exist that day, runs right after
        // the gap (03:00 EDT = 07:00 UTC), once.
        let gap = when("30 2 * * *", "America/New_York");
        let run = gap.next_after(ms(ny, 2026, 3, 8, 0, 0)).expect("next");
        assert_eq!(run, utc(2026, 3, 8, 7, 0));
        let after = gap.next_after(run).expect("next");
        assert_eq!(after, utc(2026, 3, 9, 6, 30), "02:30 EDT the next day");
    }

    #[test]
    fn fall_back_runs_a_fixed_time_job_once() {
        // Paris falls back on 2026-10-25: 03:00 CEST becomes 02:00 CET, so 02:30
        // happens twice. A daily 02:30 job runs once that night.
        let paris: Tz = "Europe/Paris".parse().expect("tz");
        let job = when("30 2 * * *", "Europe/Paris");
        let first = job.next_after(ms(paris, 2026, 10, 25, 0, 0)).expect("next");
        assert_eq!(first, utc(2026, 10, 25, 0, 30), "02:30 CEST");
        let second = job.next_after(first).expect("next");
        assert_eq!(second, utc(2026, 10, 26, 1, 30), "the next day's 02:30 CET");
        // An hourly job follows real time through the repeated hour: 24 + 1 runs.
        let hourly = when("0 * * * *", "Europe/Paris");
        let mut t = ms(paris, 2026, 10, 25, 0, 0) - 1;
        let end = ms(paris, 2026, 10, 26, 0, 0);
        let mut runs = 0;
        while let Some(next) = hourly.next_after(t) {
            if next >= end {
                break;
            }
            runs += 1;
            t = next;
        }
        assert_eq!(runs, 25, "the fall-back day has 25 hours");
    }
}
