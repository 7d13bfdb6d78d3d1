//! Months and hours of the cloud-cost ledger: a month is `[first day 00:00 UTC, next
//! month's first day)`; an entry's hours in a month are the hours it ran in it, each
//! started hour counted whole (Hetzner bills per started hour), and its cost in the
//! month is those hours × its hourly price, capped at its monthly price.

use chrono::{Datelike as _, NaiveDate, TimeZone as _, Utc};

use super::money;

const HOUR_MS: i64 = 3_600_000;

/// One calendar month (UTC), as unix milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Month {
    pub year: i32,
    pub month: u32,
    pub start: i64,
    pub end: i64,
}

impl Month {
    /// The month `year`-`month`; `None` when out of range.
    #[must_use]
    pub fn new(year: i32, month: u32) -> Option<Self> {
        let first = NaiveDate::from_ymd_opt(year, month, 1)?;
        let next = if month == 12 {
            NaiveDate::from_ymd_opt(year.checked_add(1)?, 1, 1)?
        } else {
            NaiveDate::from_ymd_opt(year, month + 1, 1)?
        };
        let ms = |d: NaiveDate| {
            Some(
                Utc.from_utc_datetime(&d.and_hms_opt(0, 0, 0)?)
                    .timestamp_millis(),
            )
        };
        Some(Self {
            year,
            month,
            start: ms(first)?,
            end: ms(next)?,
        })
    }

    /// The month holding unix millisecond `ms`.
    #[must_use]
    pub fn of(ms: i64) -> Option<Self> {
        let at = Utc.timestamp_millis_opt(ms).single()?;
        Self::new(at.year(), at.month())
    }

    /// `YYYY-MM`, years 1970 to 9999.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        let (y, m) = s.trim().split_once('-')?;
        if y.len() != 4 || m.len() != 2 {
            return None;
        }
        let year: i32 = y.parse().ok()?;
        let month: u32 = m.parse().ok()?;
        if year < 1970 {
            return None;
        }
        Self::new(year, month)
    }

    /// `YYYY-MM`.
    #[must_use]
    pub fn label(&self) -> String {
        format!("{:04}-{:02}", self.year, self.month)
    }
}

/// Started hours in `[from, to)`: a millisecond into an hour counts it whole.
#[must_use]
pub fn started_hours(from: i64, to: i64) -> i64 {
    if to <= from {
        0
    } else {
        (to - from + HOUR_MS - 1) / HOUR_MS
    }
}

/// What one ledger entry costs in a month.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Share {
    /// Started hours in the month up to now (or its end, or the entry's end).
    pub hours: i64,
    /// Their cost, nano-units.
    pub cost: i64,
    /// Started hours to the month's end, if it keeps running.
    pub hours_forecast: i64,
    /// Their cost, nano-units.
    pub forecast: i64,
}

/// The share of the entry `[started_at, ended_at or running)` in `month` at `now`.
#[must_use]
pub fn share(
    month: &Month,
    now: i64,
    started_at: i64,
    ended_at: Option<i64>,
    hourly: Option<i64>,
    monthly: Option<i64>,
) -> Share {
    let from = started_at.max(month.start);
    let until = ended_at.unwrap_or(now).min(now).min(month.end);
    let hours = started_hours(from, until);
    let hours_forecast = match ended_at {
        None => started_hours(from, month.end),
        Some(_) => hours,
    }
    .max(hours);
    Share {
        hours,
        cost: money::capped(hours, hourly, monthly),
        hours_forecast,
        forecast: money::capped(hours_forecast, hourly, monthly),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_parse_and_bound() {
        let dec = Month::parse("2026-12").expect("month");
        assert_eq!(dec.label(), "2026-12");
        assert_eq!(dec.end - dec.start, 31 * 24 * HOUR_MS);
        let feb = Month::parse("2028-02").expect("leap February");
        assert_eq!(feb.end - feb.start, 29 * 24 * HOUR_MS);
        assert_eq!(Month::of(dec.start), Some(dec));
        assert_eq!(Month::of(dec.end - 1), Some(dec));
        assert_eq!(
            Month::of(dec.end).map(|m| m.label()),
            Some("2027-01".into())
        );
        for bad in [
            "2026-13", "2026-00", "26-12", "2026-1", "1969-12", "x", "2026/12",
        ] {
            assert_eq!(Month::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn started_hours_count_whole() {
        assert_eq!(started_hours(0, 0), 0);
        assert_eq!(started_hours(0, 1), 1);
        assert_eq!(started_hours(0, HOUR_MS), 1);
        assert_eq!(started_hours(0, HOUR_MS + 1), 2);
        assert_eq!(started_hours(10, 5), 0);
    }

    #[test]
    fn an_entry_is_split_at_month_bounds_and_forecast_to_the_end() {
        let m = Month::parse("2026-12").expect("month");
        let hourly = money::parse("0.01");
        let cap = money::parse("5");
        // Started the month before, still running 10 h into the month.
        let s = share(
            &m,
            m.start + 10 * HOUR_MS,
            m.start - HOUR_MS,
            None,
            hourly,
            cap,
        );
        assert_eq!(s.hours, 10);
        assert_eq!(s.cost, money::parse("0.1").unwrap());
        assert_eq!(s.hours_forecast, 744);
        assert_eq!(s.forecast, 5 * money::NANOS, "capped at the monthly price");
        // Ended 5 h in: the forecast is what it cost.
        let s = share(
            &m,
            m.end - 1,
            m.start,
            Some(m.start + 5 * HOUR_MS),
            hourly,
            cap,
        );
        assert_eq!((s.hours, s.hours_forecast), (5, 5));
        assert_eq!(s.cost, s.forecast);
        // A month looked at before it began costs nothing yet.
        let s = share(&m, m.start - 1, m.start - 2 * HOUR_MS, None, hourly, cap);
        assert_eq!((s.hours, s.cost), (0, 0));
    }
}
