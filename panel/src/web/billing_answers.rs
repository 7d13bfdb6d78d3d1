//! What the billing pages share (web layer, issue 19): the billing API's answers, read
//! as the API's own response types (`crate::billing`, `crate::nodes::platform`), under
//! the names the pages use, and money shown from Stripe's minor units.

pub use crate::billing::admin::{AdminSubscription, AdminSubscriptionList};
pub use crate::billing::costs::{CostsView, ForecastView};
pub use crate::billing::org::{
    InvoiceList, InvoiceView as Invoice, LimitsView as Limits, SubscribeAnswer,
    SubscriptionView as Subscription, UrlAnswer as PortalAnswer,
};
pub use crate::billing::plans::{Plan, PlanLimits, PlanList};
pub use crate::nodes::platform::{AdminPlatformNode, AdminPlatformNodeList};

/// Stripe's zero-decimal currencies: their minor unit is the major one.
const ZERO_DECIMAL: &[&str] = &[
    "bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx", "vnd", "vuv",
    "xaf", "xof", "xpf",
];

/// Decimal places of `currency`'s minor unit.
fn decimals(currency: &str) -> u32 {
    if ZERO_DECIMAL.contains(&currency.to_ascii_lowercase().as_str()) {
        0
    } else {
        2
    }
}

/// `amount` minor units of `currency` as people read it: `USD 9.00`, `JPY 500`.
#[must_use]
pub fn money(amount: i64, currency: &str) -> String {
    let code = currency.to_ascii_uppercase();
    let places = decimals(currency);
    if places == 0 {
        return format!("{code} {amount}");
    }
    let unit = 10_i64.pow(places);
    let sign = if amount < 0 { "-" } else { "" };
    let abs = amount.unsigned_abs();
    let unit = unit.unsigned_abs();
    format!(
        "{code} {sign}{}.{:0width$}",
        abs / unit,
        abs % unit,
        width = places as usize
    )
}

/// A price typed in major units (`9.99`, `10`, `10,5`) as minor units of `currency`.
///
/// # Errors
/// A message for the field when it is not a non-negative amount with at most as many
/// decimals as the currency has.
pub fn minor_units(typed: &str, currency: &str) -> Result<i64, String> {
    let typed = typed.trim().replace(',', ".");
    if typed.is_empty() {
        return Ok(0);
    }
    let places = decimals(currency) as usize;
    let (whole, fraction) = typed.split_once('.').unwrap_or((typed.as_str(), ""));
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() && fraction.is_empty() || !digits(whole) || !digits(fraction) {
        return Err("an amount such as 9.99".into());
    }
    if fraction.len() > places {
        return Err(if places == 0 {
            format!("{} has no decimals", currency.to_ascii_uppercase())
        } else {
            format!("at most {places} decimals")
        });
    }
    let whole: i64 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| "too large".to_owned())?
    };
    let fraction: i64 = format!("{fraction:0<places$}").parse().unwrap_or(0);
    whole
        .checked_mul(10_i64.pow(u32::try_from(places).unwrap_or(2)))
        .and_then(|w| w.checked_add(fraction))
        .ok_or_else(|| "too large".to_owned())
}

/// Minor units as the admin form shows them in major units (`999` → `9.99`).
#[must_use]
pub fn major_units(amount: i64, currency: &str) -> String {
    money(amount, currency)
        .split_once(' ')
        .map_or_else(String::new, |(_, n)| n.to_owned())
}

/// What a limit is called on the pages.
#[must_use]
pub fn limit_label(limit: &str) -> &'static str {
    match limit {
        "servers" => "Servers",
        "memory_mb" => "Memory (MB)",
        "cpu_percent" => "CPU (%)",
        "disk_mb" => "Disk (MB)",
        "nodes" => "Nodes",
        "backups_per_server" => "Backups per server",
        "members" => "Members",
        _ => "Limit",
    }
}

/// The singular and plural of what a limit counts, for the "over" explanation.
fn limit_noun(limit: &str, n: i64) -> String {
    let (one, many) = match limit {
        "servers" => ("server", "servers"),
        "memory_mb" => ("MB of memory", "MB of memory"),
        "cpu_percent" => ("% of CPU", "% of CPU"),
        "disk_mb" => ("MB of disk", "MB of disk"),
        "nodes" => ("node", "nodes"),
        "backups_per_server" => ("backup on a server", "backups on a server"),
        "members" => ("member", "members"),
        _ => ("unit", "units"),
    };
    let noun = if n == 1 { one } else { many };
    if noun.starts_with('%') {
        format!("{n}{noun}")
    } else {
        format!("{n} {noun}")
    }
}

/// Why a limit is over its cap, in words: "Your plan allows 1 server; you have 2. ...".
#[must_use]
pub fn over_text(limit: &str, cap: i64, usage: i64) -> String {
    let what = match limit {
        "members" => "new invitations are refused",
        "backups_per_server" => "new backups are refused",
        "nodes" => "new nodes are refused",
        "servers" => "new servers are refused",
        _ => "new servers and larger limits are refused",
    };
    format!(
        "Your plan allows {}; you have {usage}. Nothing is deleted; {what} until you are under the cap.",
        limit_noun(limit, cap)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minor_units_are_shown_in_the_currencys_decimals() {
        assert_eq!(money(999, "usd"), "USD 9.99");
        assert_eq!(money(1000, "eur"), "EUR 10.00");
        assert_eq!(money(5, "gbp"), "GBP 0.05");
        assert_eq!(money(500, "jpy"), "JPY 500");
        assert_eq!(money(-250, "usd"), "USD -2.50");
        assert_eq!(major_units(999, "usd"), "9.99");
        assert_eq!(major_units(0, "usd"), "0.00");
    }

    #[test]
    fn typed_prices_become_minor_units_without_floats() {
        assert_eq!(minor_units("9.99", "usd"), Ok(999));
        assert_eq!(minor_units("10", "usd"), Ok(1000));
        assert_eq!(minor_units("10,5", "eur"), Ok(1050));
        assert_eq!(minor_units(".5", "usd"), Ok(50));
        assert_eq!(minor_units("", "usd"), Ok(0));
        assert_eq!(minor_units("500", "jpy"), Ok(500));
        assert!(minor_units("5.5", "jpy").is_err());
        assert!(minor_units("9.999", "usd").is_err());
        assert!(minor_units("-1", "usd").is_err());
        assert!(minor_units("1e3", "usd").is_err());
        assert!(minor_units(".", "usd").is_err());
        assert!(minor_units("99999999999999999999", "usd").is_err());
    }

    #[test]
    fn over_rows_say_what_is_refused() {
        assert_eq!(
            over_text("servers", 1, 2),
            "Your plan allows 1 server; you have 2. Nothing is deleted; new servers are refused until you are under the cap."
        );
        assert!(over_text("members", 3, 5).contains("allows 3 members; you have 5"));
        assert!(over_text("cpu_percent", 100, 150).contains("allows 100% of CPU"));
    }
}
