//! The messages the panel sends, rendered from the tera templates in `templates/email/`
//! (an HTML and a text part each, both extending a shared layout). The templates are
//! embedded at compile time, so the binary needs no files at run time.

use std::sync::LazyLock;

use serde::Serialize;

/// Every template file, by the name `{% extends %}` and [`Template::name`] use.
const FILES: &[(&str, &str)] = &[
    (
        "layout.html.tera",
        include_str!("../../../templates/email/layout.html.tera"),
    ),
    (
        "layout.txt.tera",
        include_str!("../../../templates/email/layout.txt.tera"),
    ),
    (
        "password_reset.html.tera",
        include_str!("../../../templates/email/password_reset.html.tera"),
    ),
    (
        "password_reset.txt.tera",
        include_str!("../../../templates/email/password_reset.txt.tera"),
    ),
    (
        "verify_email.html.tera",
        include_str!("../../../templates/email/verify_email.html.tera"),
    ),
    (
        "verify_email.txt.tera",
        include_str!("../../../templates/email/verify_email.txt.tera"),
    ),
    (
        "org_invite.html.tera",
        include_str!("../../../templates/email/org_invite.html.tera"),
    ),
    (
        "org_invite.txt.tera",
        include_str!("../../../templates/email/org_invite.txt.tera"),
    ),
    (
        "mfa_enabled.html.tera",
        include_str!("../../../templates/email/mfa_enabled.html.tera"),
    ),
    (
        "mfa_enabled.txt.tera",
        include_str!("../../../templates/email/mfa_enabled.txt.tera"),
    ),
    (
        "mfa_disabled.html.tera",
        include_str!("../../../templates/email/mfa_disabled.html.tera"),
    ),
    (
        "mfa_disabled.txt.tera",
        include_str!("../../../templates/email/mfa_disabled.txt.tera"),
    ),
    (
        "new_login.html.tera",
        include_str!("../../../templates/email/new_login.html.tera"),
    ),
    (
        "new_login.txt.tera",
        include_str!("../../../templates/email/new_login.txt.tera"),
    ),
    (
        "alert.html.tera",
        include_str!("../../../templates/email/alert.html.tera"),
    ),
    (
        "alert.txt.tera",
        include_str!("../../../templates/email/alert.txt.tera"),
    ),
    (
        "support_message.html.tera",
        include_str!("../../../templates/email/support_message.html.tera"),
    ),
    (
        "support_message.txt.tera",
        include_str!("../../../templates/email/support_message.txt.tera"),
    ),
    (
        "account_moved.html.tera",
        include_str!("../../../templates/email/account_moved.html.tera"),
    ),
    (
        "account_moved.txt.tera",
        include_str!("../../../templates/email/account_moved.txt.tera"),
    ),
    (
        "payment_overdue.html.tera",
        include_str!("../../../templates/email/payment_overdue.html.tera"),
    ),
    (
        "payment_overdue.txt.tera",
        include_str!("../../../templates/email/payment_overdue.txt.tera"),
    ),
];

/// The parsed templates: immutable, built on first use (no connection, no state).
static TERA: LazyLock<Result<tera::Tera, String>> = LazyLock::new(|| {
    let mut tera = tera::Tera::default();
    // HTML parts escape what they interpolate; text parts print it as it is.
    tera.autoescape_on(vec![".html.tera"]);
    tera.set_escape_fn(escape_html);
    tera.add_raw_templates(FILES.iter().copied())
        .map_err(|e| format!("{e:?}"))?;
    Ok(tera)
});

/// HTML escaping for text and attribute values. Unlike tera's default it leaves `/`
/// alone, so links stay readable in the HTML source (a `/` cannot end an attribute).
fn escape_html(input: &str) -> String {
    let mut out = String::with_capacity(input.len());
    for c in input.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            c => out.push(c),
        }
    }
    out
}

/// A message the panel knows how to write; its fields are the template's variables.
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Template {
    /// A password-reset link (and its token, for API clients).
    PasswordReset {
        link: String,
        token: String,
        valid_minutes: i64,
    },
    /// An account moved from another panel (`from`, e.g. `Pterodactyl`) without its
    /// password: a password-reset link (and its token) to choose one.
    AccountMoved {
        from: String,
        email: String,
        link: String,
        token: String,
        valid_days: i64,
    },
    /// A link verifying the address of a newly registered account (and its token).
    VerifyEmail {
        link: String,
        token: String,
        valid_hours: i64,
    },
    /// An invitation to an organization.
    OrgInvite {
        org_name: String,
        /// Who invited, e.g. `Ada (ada@example.com)`.
        inviter: String,
        role: String,
        link: String,
        token: String,
        /// RFC 3339.
        expires_at: String,
    },
    /// MFA was turned on (`time` RFC 3339, `ip` of the request).
    MfaEnabled { time: String, ip: Option<String> },
    /// MFA was turned off.
    MfaDisabled { time: String, ip: Option<String> },
    /// A sign-in from an IP address the account has not used before.
    NewLogin {
        ip: String,
        user_agent: Option<String>,
        time: String,
    },
    /// An alert fired (`severity`: `info`, `warning` or `critical`).
    Alert {
        title: String,
        severity: String,
        details: String,
        link: Option<String>,
    },
    /// A message to the support address.
    SupportMessage {
        from: String,
        subject: String,
        body: String,
    },
    /// An organization's payment is overdue (`billing::dunning`): before the suspension,
    /// `deadline` (RFC 3339) is when its servers are suspended; once `suspended`, when
    /// they are deleted (`None`: never).
    PaymentOverdue {
        org_name: String,
        suspended: bool,
        deadline: Option<String>,
        link: String,
    },
}

impl Template {
    /// The file stem of the template: `templates/email/{name}.{html,txt}.tera`.
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            Self::PasswordReset { .. } => "password_reset",
            Self::AccountMoved { .. } => "account_moved",
            Self::VerifyEmail { .. } => "verify_email",
            Self::OrgInvite { .. } => "org_invite",
            Self::MfaEnabled { .. } => "mfa_enabled",
            Self::MfaDisabled { .. } => "mfa_disabled",
            Self::NewLogin { .. } => "new_login",
            Self::Alert { .. } => "alert",
            Self::SupportMessage { .. } => "support_message",
            Self::PaymentOverdue { .. } => "payment_overdue",
        }
    }

    /// The subject line (one line: user-supplied parts lose their line breaks).
    #[must_use]
    pub fn subject(&self) -> String {
        let subject = match self {
            Self::PasswordReset { .. } => "Reset your Shardlyn password".to_string(),
            Self::AccountMoved { .. } => {
                "Your account has moved to Shardlyn: choose your password".to_string()
            }
            Self::VerifyEmail { .. } => "Verify your email address for Shardlyn".to_string(),
            Self::OrgInvite { org_name, .. } => {
                format!("You are invited to {org_name} on Shardlyn")
            }
            Self::MfaEnabled { .. } => {
                "Two-factor authentication enabled on your Shardlyn account".to_string()
            }
            Self::MfaDisabled { .. } => {
                "Two-factor authentication disabled on your Shardlyn account".to_string()
            }
            Self::NewLogin { ip, .. } => {
                format!("New sign-in to your Shardlyn account from {ip}")
            }
            Self::Alert {
                title, severity, ..
            } => format!("[Shardlyn] [{severity}] {title}"),
            Self::SupportMessage { subject, .. } => format!("[Shardlyn support] {subject}"),
            Self::PaymentOverdue {
                org_name,
                suspended: false,
                ..
            } => format!("Payment overdue for {org_name} on Shardlyn"),
            Self::PaymentOverdue { org_name, .. } => {
                format!("Servers of {org_name} suspended: payment overdue")
            }
        };
        subject.split_whitespace().collect::<Vec<_>>().join(" ")
    }

    /// Renders the HTML and the text part.
    ///
    /// # Errors
    /// A template that does not parse or render (a bug; the unit tests render them all).
    pub fn render(&self) -> Result<(String, String), RenderError> {
        let tera = TERA.as_ref().map_err(|e| RenderError(e.clone()))?;
        let context =
            tera::Context::from_serialize(self).map_err(|e| RenderError(e.to_string()))?;
        let render = |ext: &str| {
            tera.render(&format!("{}.{ext}.tera", self.name()), &context)
                .map_err(|e| RenderError(format!("{}.{ext}.tera: {e:?}", self.name())))
        };
        Ok((render("html")?, render("txt")?))
    }
}

/// A template failed to render.
#[derive(Debug, thiserror::Error)]
#[error("rendering an email template: {0}")]
pub struct RenderError(String);

#[cfg(test)]
mod tests {
    use super::*;

    fn samples() -> Vec<Template> {
        vec![
            Template::PasswordReset {
                link: "https://panel.test/reset-password?token=abc".into(),
                token: "abc".into(),
                valid_minutes: 60,
            },
            Template::OrgInvite {
                org_name: "Acme <Games>".into(),
                inviter: "Ada (ada@example.com)".into(),
                role: "operator".into(),
                link: "https://panel.test/invites/def".into(),
                token: "def".into(),
                expires_at: "2030-01-01T00:00:00Z".into(),
            },
            Template::MfaEnabled {
                time: "2030-01-01T00:00:00Z".into(),
                ip: Some("203.0.113.9".into()),
            },
            Template::MfaDisabled {
                time: "2030-01-01T00:00:00Z".into(),
                ip: None,
            },
            Template::NewLogin {
                ip: "198.51.100.7".into(),
                user_agent: Some("curl/8.0".into()),
                time: "2030-01-01T00:00:00Z".into(),
            },
            Template::Alert {
                title: "CPU above 90% on node-1".into(),
                severity: "critical".into(),
                details: "cpu.percent = 97 for 5 minutes".into(),
                link: Some("https://panel.test/alerts/1".into()),
            },
            Template::SupportMessage {
                from: "ada@example.com".into(),
                subject: "Server won't\nstart".into(),
                body: "It says <error>.".into(),
            },
            Template::VerifyEmail {
                link: "https://panel.test/verify-email?token=ghi".into(),
                token: "ghi".into(),
                valid_hours: 24,
            },
            Template::PaymentOverdue {
                org_name: "Acme".into(),
                suspended: false,
                deadline: Some("2030-01-08T00:00:00Z".into()),
                link: "https://panel.test/billing".into(),
            },
            Template::PaymentOverdue {
                org_name: "Acme".into(),
                suspended: true,
                deadline: None,
                link: "https://panel.test/billing".into(),
            },
            Template::AccountMoved {
                from: "Pterodactyl".into(),
                email: "ada@example.com".into(),
                link: "https://panel.test/reset-password?token=jkl".into(),
                token: "jkl".into(),
                valid_days: 14,
            },
        ]
    }

    #[test]
    fn every_template_parses() {
        let tera = TERA.as_ref().expect("templates parse");
        for (name, _) in FILES {
            assert!(tera.get_template(name).is_ok(), "{name}");
        }
    }

    #[test]
    fn every_message_renders_both_parts() {
        for t in samples() {
            let (html, text) = t.render().unwrap_or_else(|e| panic!("{}: {e}", t.name()));
            assert!(html.starts_with("<!DOCTYPE html>"), "{}: {html}", t.name());
            assert!(html.contains("</html>"), "{}", t.name());
            assert!(!text.contains("<p>"), "{}: {text}", t.name());
            assert!(text.contains("Shardlyn"), "{}: {text}", t.name());
            assert!(!t.subject().contains('\n'));
        }
    }

    #[test]
    fn html_escapes_and_text_does_not() {
        let t = &samples()[6];
        let (html, text) = t.render().expect("renders");
        assert!(html.contains("It says &lt;error&gt;."), "{html}");
        assert!(text.contains("It says <error>."), "{text}");
        assert_eq!(t.subject(), "[Shardlyn support] Server won't start");
    }

    #[test]
    fn variables_reach_the_parts() {
        let (html, text) = samples()[0].render().expect("renders");
        assert!(text.contains("token=abc\n"), "{text}");
        assert!(text.contains("the token abc to"), "{text}");
        assert!(
            html.contains("href=\"https://panel.test/reset-password?token=abc\""),
            "{html}"
        );
        let (html, text) = samples()[5].render().expect("renders");
        assert!(
            text.contains("Severity: critical") && text.contains("https://panel.test/alerts/1")
        );
        assert!(html.contains("CPU above 90% on node-1"));
        let (_, text) = samples()[3].render().expect("renders");
        assert!(!text.contains("From:"), "{text}");
        let (_, text) = Template::NewLogin {
            ip: "192.0.2.1".into(),
            user_agent: None,
            time: "2030-01-01T00:00:00Z".into(),
        }
        .render()
        .expect("renders");
        assert!(text.contains("Browser or client: unknown"), "{text}");
    }
}
