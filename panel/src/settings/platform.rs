//! `GET/PUT /v1/settings`: the platform-wide settings document. Every signed-in user may
//! read it (clients show the panel's name and support address); only platform admins may
//! change it, and only they see the provisioning SSH keys in it.

use axum::extract::State;
use serde::{Deserialize, Deserializer, Serialize};

use super::store;
use crate::auth::crypto::normalize_email;
use crate::auth::extract::CurrentUser;
use crate::error::{AppError, AppJson, AppResult};
use crate::state::AppState;

/// The settings group these settings are stored under.
const GROUP: &str = "platform";
/// Longest panel name, in characters.
const NAME_MAX: usize = 64;

/// The stored platform settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default)]
pub struct PlatformSettings {
    /// The name the panel shows in its pages and clients.
    pub panel_name: String,
    /// Where `POST /v1/support/messages` sends mail; none disables support messages.
    pub support_email: Option<String>,
    /// The longest an SSH certificate may be valid, in hours (1 to 720).
    pub ssh_certificate_max_hours: u32,
    /// Whether the `testing` template category (quick offline templates for tests and
    /// demos) is listed and deployable; hidden by default.
    pub show_testing_templates: bool,
}

impl Default for PlatformSettings {
    fn default() -> Self {
        Self {
            panel_name: "Shardlyn".into(),
            support_email: None,
            ssh_certificate_max_hours: 24,
            show_testing_templates: false,
        }
    }
}

/// The current settings (the defaults until an admin saved some).
///
/// # Errors
/// A database failure.
pub async fn current(state: &AppState) -> AppResult<PlatformSettings> {
    Ok(store::load(&state.db.pool, GROUP)
        .await?
        .unwrap_or_default())
}

/// A `PUT /v1/settings` body: every field optional; `support_email: null` clears it.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Update {
    panel_name: Option<String>,
    #[serde(default, deserialize_with = "present")]
    support_email: Option<Option<String>>,
    ssh_certificate_max_hours: Option<u32>,
    show_testing_templates: Option<bool>,
}

/// Distinguishes a field set to `null` (`Some(None)`) from one left out (`None`).
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Option<String>>, D::Error> {
    Option::<String>::deserialize(d).map(Some)
}

impl Update {
    /// Applies the update to `settings`, validating each field given.
    fn apply(self, settings: &mut PlatformSettings) -> AppResult<()> {
        if let Some(name) = self.panel_name {
            let name = name.trim();
            if name.is_empty() || name.chars().count() > NAME_MAX {
                return Err(AppError::invalid_field(
                    "panel_name",
                    format!("panel_name must be 1 to {NAME_MAX} characters"),
                ));
            }
            if name.chars().any(char::is_control) {
                return Err(AppError::invalid_field(
                    "panel_name",
                    "panel_name must not contain control characters",
                ));
            }
            settings.panel_name = name.to_string();
        }
        if let Some(hours) = self.ssh_certificate_max_hours {
            if !(1..=720).contains(&hours) {
                return Err(AppError::invalid_field(
                    "ssh_certificate_max_hours",
                    "ssh_certificate_max_hours must be between 1 and 720",
                ));
            }
            settings.ssh_certificate_max_hours = hours;
        }
        if let Some(show) = self.show_testing_templates {
            settings.show_testing_templates = show;
        }
        match self.support_email {
            None => {}
            Some(None) => settings.support_email = None,
            Some(Some(email)) if email.trim().is_empty() => settings.support_email = None,
            Some(Some(email)) => {
                let email = normalize_email(&email).map_err(|_| {
                    AppError::invalid_field("support_email", "support_email is not a valid address")
                })?;
                settings.support_email = Some(email);
            }
        }
        Ok(())
    }
}

/// The settings as answered; platform admins also get the provisioning SSH keys.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct SettingsView {
    #[serde(flatten)]
    pub settings: PlatformSettings,
    /// The default key's name, null when none is (admins only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_ssh_key: Option<Option<String>>,
    /// The provisioning keys, never their private halves (admins only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ssh_keys: Option<Vec<store::SshKey>>,
}

/// The document the API answers with; admins also get the SSH keys.
async fn view(
    state: &AppState,
    settings: &PlatformSettings,
    admin: bool,
) -> AppResult<SettingsView> {
    let mut doc = SettingsView {
        settings: settings.clone(),
        default_ssh_key: None,
        ssh_keys: None,
    };
    if admin {
        let keys = store::list_keys(&state.db.pool).await?;
        doc.default_ssh_key = Some(keys.iter().find(|k| k.is_default).map(|k| k.name.clone()));
        doc.ssh_keys = Some(keys);
    }
    Ok(doc)
}

/// The platform settings.
pub async fn get(
    State(state): State<AppState>,
    user: CurrentUser,
) -> AppResult<AppJson<SettingsView>> {
    let settings = current(&state).await?;
    Ok(AppJson(view(&state, &settings, user.user.is_admin).await?))
}

/// Changes the platform settings (platform admins).
pub async fn put(
    State(state): State<AppState>,
    crate::auth::extract::SessionAdmin(user): crate::auth::extract::SessionAdmin,
    AppJson(body): AppJson<Update>,
) -> AppResult<AppJson<SettingsView>> {
    let mut tx = state.db.pool.begin().await?;
    let mut settings: PlatformSettings = store::load(&state.db.pool, GROUP)
        .await?
        .unwrap_or_default();
    body.apply(&mut settings)?;
    store::save(&mut tx, GROUP, &settings, &user.user.id).await?;
    tx.commit().await?;
    Ok(AppJson(view(&state, &settings, true).await?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn update(json: &str) -> Update {
        serde_json::from_str(json).expect("parses")
    }

    #[test]
    fn partial_updates_keep_other_fields() {
        let mut s = PlatformSettings::default();
        update(r#"{"support_email": " Help@Example.com "}"#)
            .apply(&mut s)
            .expect("valid");
        assert_eq!(s.support_email.as_deref(), Some("help@example.com"));
        update(r#"{"panel_name": " Acme Panel "}"#)
            .apply(&mut s)
            .expect("valid");
        assert_eq!(s.panel_name, "Acme Panel");
        assert_eq!(s.support_email.as_deref(), Some("help@example.com"));
        update(r#"{"support_email": null}"#)
            .apply(&mut s)
            .expect("valid");
        assert_eq!(s.support_email, None);
    }

    #[test]
    fn invalid_values_are_refused() {
        let mut s = PlatformSettings::default();
        assert!(update(r#"{"panel_name": ""}"#).apply(&mut s).is_err());
        assert!(
            update(r#"{"panel_name": "a\u0007b"}"#)
                .apply(&mut s)
                .is_err()
        );
        assert!(
            update(&format!(r#"{{"panel_name": "{}"}}"#, "x".repeat(65)))
                .apply(&mut s)
                .is_err()
        );
        assert!(
            update(r#"{"support_email": "nope"}"#)
                .apply(&mut s)
                .is_err()
        );
        assert!(serde_json::from_str::<Update>(r#"{"colour": "red"}"#).is_err());
        assert_eq!(s, PlatformSettings::default());
    }
}
