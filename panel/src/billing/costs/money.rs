//! Money of the cloud-cost ledger: prices kept as integer nano-units (10^-9) of their
//! currency, so hours × price never drifts the way floats do; answered as decimal
//! strings with exactly four places (`"0.0060"`, `"3.9900"`), the precision providers
//! quote hourly prices in.

/// Nano-units in one unit of currency.
pub const NANOS: i64 = 1_000_000_000;

/// Nano-units of a non-negative decimal string (`"0.0064"`, `"3.99"`, `"0.0060000000"`,
/// `"12"`); places beyond the ninth round half up. `None` for anything else (a sign,
/// an exponent, letters, an empty string, an amount beyond a billion).
#[must_use]
pub fn parse(s: &str) -> Option<i64> {
    let s = s.trim();
    let (whole, frac) = s.split_once('.').unwrap_or((s, ""));
    if whole.is_empty() && frac.is_empty() {
        return None;
    }
    if !whole.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let whole = whole.trim_start_matches('0');
    if whole.len() > 9 {
        return None;
    }
    let units: i64 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let mut nanos: i64 = 0;
    for (i, d) in frac.bytes().take(9).enumerate() {
        nanos += i64::from(d - b'0') * 10_i64.pow(8 - u32::try_from(i).ok()?);
    }
    if frac.as_bytes().get(9).is_some_and(|d| *d >= b'5') {
        nanos += 1;
    }
    units.checked_mul(NANOS)?.checked_add(nanos)
}

/// `nanos` as a decimal string with four places, rounded half up (`6_000_000` →
/// `"0.0060"`).
#[must_use]
pub fn format(nanos: i64) -> String {
    const STEP: i64 = NANOS / 10_000;
    let negative = nanos < 0;
    let abs = nanos.unsigned_abs();
    let step = STEP.unsigned_abs();
    let tenths_of_milli = (abs + step / 2) / step;
    let units = tenths_of_milli / 10_000;
    let places = tenths_of_milli % 10_000;
    format!("{}{units}.{places:04}", if negative { "-" } else { "" })
}

/// `hours` started hours at `hourly`, capped at `monthly` (no cap when `None`); zero
/// when the hourly price is unknown.
#[must_use]
pub fn capped(hours: i64, hourly: Option<i64>, monthly: Option<i64>) -> i64 {
    let Some(hourly) = hourly else { return 0 };
    let cost = hours.max(0).saturating_mul(hourly);
    monthly.map_or(cost, |cap| cost.min(cap))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_strings_are_read_exactly() {
        assert_eq!(parse("0.0064"), Some(6_400_000));
        assert_eq!(parse("3.99"), Some(3_990_000_000));
        assert_eq!(parse("0.0060000000"), Some(6_000_000));
        assert_eq!(parse("12"), Some(12 * NANOS));
        assert_eq!(parse(".5"), Some(NANOS / 2));
        assert_eq!(
            parse("0.0000000015"),
            Some(2),
            "the tenth place rounds half up"
        );
        assert_eq!(parse("0.0000000014"), Some(1));
        for bad in ["", ".", "-1", "1e3", "abc", "1.2.3", "1,5", "10000000000"] {
            assert_eq!(parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn amounts_are_answered_with_four_places() {
        assert_eq!(format(6_000_000), "0.0060");
        assert_eq!(format(3_990_000_000), "3.9900");
        assert_eq!(format(0), "0.0000");
        assert_eq!(format(50_000), "0.0001", "half a step rounds up");
        assert_eq!(format(49_999), "0.0000");
        assert_eq!(format(123 * NANOS + 456_789_000), "123.4568");
    }

    #[test]
    fn hours_are_capped_at_the_monthly_price() {
        let hourly = parse("0.01");
        assert_eq!(capped(10, hourly, parse("5")), parse("0.1").unwrap());
        assert_eq!(capped(744, hourly, parse("5")), 5 * NANOS);
        assert_eq!(capped(744, hourly, None), parse("7.44").unwrap());
        assert_eq!(capped(744, None, parse("5")), 0);
    }
}
