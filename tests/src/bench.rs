//! Helpers the benchmarks share: settings from the environment, quantiles and console
//! floods.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::console::Console;

/// The number in variable `name`, or `default`.
#[must_use]
pub fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The `p` quantile (0..=1) of ascending `sorted` (0 when empty).
#[must_use]
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss,
        reason = "an index into a short vector"
    )]
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i]
}

/// What one console flood measured.
pub struct Flood {
    pub elapsed: f64,
    pub lost: u64,
    pub notices: u64,
    pub agent_notices: u64,
}

impl Flood {
    /// Lines that arrived per second.
    #[must_use]
    #[expect(clippy::cast_precision_loss, reason = "a rate")]
    pub fn rate(&self, lines: u64) -> f64 {
        (lines - self.lost) as f64 / self.elapsed
    }
}

/// Sends `command` (which prints the numbers 1..=`lines`, one per line) and reads the
/// console until the last line, counting the numbers that never arrived.
pub async fn flood(c: &mut Console, command: &str, lines: u64) -> Flood {
    const LINE: &str = "{\"event\":\"console output\",\"args\":[\"";
    c.send("send command", &[command]).await;
    let began = Instant::now();
    let mut expected = 1u64;
    let mut result = Flood {
        elapsed: 0.0,
        lost: 0,
        notices: 0,
        agent_notices: 0,
    };
    while expected <= lines {
        let Some(text) = c.next_text(Duration::from_secs(20)).await else {
            break;
        };
        if let Some(rest) = text.strip_prefix(LINE) {
            let Ok(n) = rest.trim_end_matches("\"]}").parse::<u64>() else {
                continue;
            };
            if n > expected {
                result.lost += n - expected;
            }
            expected = expected.max(n + 1);
        } else if text.contains("dropped") {
            result.notices += 1;
            if text.contains("console lines dropped") {
                result.agent_notices += 1;
            }
        }
    }
    result.elapsed = began.elapsed().as_secs_f64();
    result.lost += (lines + 1).saturating_sub(expected);
    result
}

/// A console URL of instance `id` with a fresh ticket.
///
/// # Panics
/// When the panel refuses the ticket.
pub async fn console_url(app: &crate::TestApp, access: &str, id: &str) -> String {
    let r = app
        .post(
            &format!("/v1/instances/{id}/console/tickets"),
            Some(access),
            json!({}),
        )
        .await
        .expect(201);
    format!(
        "{}/v1/instances/{id}/console?ticket={}",
        app.base,
        r.body["ticket"].as_str().expect("ticket")
    )
}
