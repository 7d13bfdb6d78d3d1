//! `POST /v1/support/messages`: a signed-in user writes to the support address (the
//! `support_email` platform setting). The mail is queued through the mailer, so a slow or
//! failing SMTP server never fails the request; each user may send
//! `support.messages_per_hour` messages an hour.

use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use crate::auth::extract::CurrentUser;
use crate::error::{AppError, AppJson, AppResult};
use crate::mailer::Template;
use crate::state::AppState;

/// Longest subject, in characters.
const SUBJECT_MAX: usize = 200;
/// Longest message, in characters.
const MESSAGE_MAX: usize = 10_000;

#[derive(Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewMessage {
    subject: String,
    message: String,
}

impl NewMessage {
    /// The trimmed subject and message, once checked.
    fn validated(&self) -> AppResult<(&str, &str)> {
        let subject = self.subject.trim();
        if subject.is_empty() || subject.chars().count() > SUBJECT_MAX {
            return Err(AppError::invalid_field(
                "subject",
                format!("subject must be 1 to {SUBJECT_MAX} characters"),
            ));
        }
        if subject.chars().any(char::is_control) {
            return Err(AppError::invalid_field(
                "subject",
                "subject must be one line without control characters",
            ));
        }
        let message = self.message.trim();
        if message.is_empty() || message.chars().count() > MESSAGE_MAX {
            return Err(AppError::invalid_field(
                "message",
                format!("message must be 1 to {MESSAGE_MAX} characters"),
            ));
        }
        if message
            .chars()
            .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
        {
            return Err(AppError::invalid_field(
                "message",
                "message must not contain control characters",
            ));
        }
        Ok((subject, message))
    }
}

/// Counts one message of `user_id` against the hourly limit.
async fn check_rate(state: &AppState, user_id: &str) -> AppResult<()> {
    let limit = state.config.support.messages_per_hour;
    let decision = state
        .limiter
        .hit(&format!("support:{user_id}"), limit, 3600)
        .await;
    if decision.allowed {
        return Ok(());
    }
    let now = u64::try_from(chrono::Utc::now().timestamp()).unwrap_or(0);
    Err(AppError::RateLimited {
        retry_after: decision.reset.saturating_sub(now).max(1),
    })
}

/// The message was handed to the mailer.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Queued {
    pub queued: bool,
}

/// Queues a message to the support address: 202.
pub async fn send(
    State(state): State<AppState>,
    user: CurrentUser,
    AppJson(body): AppJson<NewMessage>,
) -> AppResult<(StatusCode, AppJson<Queued>)> {
    let (subject, message) = body.validated()?;
    let Some(to) = crate::settings::platform::current(&state)
        .await?
        .support_email
    else {
        return Err(AppError::coded(
            StatusCode::CONFLICT,
            "SUPPORT_NOT_CONFIGURED",
            "no support address is configured: a platform admin sets support_email with PUT /v1/settings",
        ));
    };
    check_rate(&state, &user.user.id).await?;
    let from = if user.user.name.is_empty() {
        user.user.email.clone()
    } else {
        format!("{} ({})", user.user.name, user.user.email)
    };
    state.mailer.send_template(
        &to,
        &Template::SupportMessage {
            from,
            subject: subject.to_string(),
            body: message.to_string(),
        },
    );
    Ok((StatusCode::ACCEPTED, AppJson(Queued { queued: true })))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(subject: &str, message: &str) -> NewMessage {
        NewMessage {
            subject: subject.into(),
            message: message.into(),
        }
    }

    #[test]
    fn fields_are_checked() {
        assert!(msg("Help", "My server\nwon't start.\n").validated().is_ok());
        assert!(msg("  ", "x").validated().is_err());
        assert!(msg("a\nb", "x").validated().is_err());
        assert!(msg("x", "").validated().is_err());
        assert!(msg("x", "bell\u{7}").validated().is_err());
        assert!(msg(&"s".repeat(201), "x").validated().is_err());
        assert!(msg("x", &"m".repeat(10_001)).validated().is_err());
    }
}
