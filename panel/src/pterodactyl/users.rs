//! Pterodactyl users become Shardlyn accounts (domain layer, called by the import job for
//! each [`model::User`]). An account is made the way registration makes one (the user and
//! their personal organization, `users::insert_account`), with the address verified
//! (Pterodactyl had it). Database mode keeps the bcrypt hash as it is (login checks it
//! with bcrypt once, then re-hashes it with argon2id: `auth::login::upgrade_bcrypt`) and
//! carries a TOTP secret over as a confirmed MFA seed; API mode has no hash, so the
//! account gets an unusable password and a set-your-password mail. An email already
//! taken by another account is reported, never merged; `pterodactyl_map` (kind `user`),
//! written in the same transaction as the account, makes a re-run add nothing twice.

use serde::Serialize;
use totp_rs::Secret;

use super::model::{self, Mode};
use crate::auth::crypto::{hash_password, is_bcrypt, normalize_email, random_hex};
use crate::auth::password_reset;
use crate::db::now_ms;
use crate::error::{AppError, AppResult};
use crate::mailer::Template;
use crate::sealed;
use crate::state::AppState;

/// The `pterodactyl_map` kind of users.
const KIND: &str = "user";
/// How long the set-your-password link of a moved account stays valid: longer than a
/// reset link, since the mail arrives unasked.
const MOVED_LINK_TTL_MS: i64 = 14 * 24 * 3600 * 1000;
/// Longest account name (as registration checks it).
const NAME_MAX_CHARS: usize = 100;

/// How users are imported.
#[derive(Debug, Clone, Copy)]
pub struct UserOptions {
    pub mode: Mode,
    pub dry_run: bool,
    /// Whether Pterodactyl's `root_admin` users become platform admins.
    pub root_admins_become_platform_admins: bool,
}

/// What became of one Pterodactyl user (a line of the import's report).
#[derive(Debug, Clone, Serialize)]
pub struct UserOutcome {
    pub source_uuid: String,
    pub email: String,
    pub status: Outcome,
    pub user_id: Option<String>,
    /// The account's personal organization.
    pub org_id: Option<String>,
    pub message: String,
}

#[derive(Debug, Serialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Dry run: would be imported.
    Planned,
    Imported,
    /// Imported before (by this import or an earlier one); nothing changed.
    Exists,
    /// The email belongs to another account; not merged.
    Clash,
    /// Cannot be imported (an unusable email or TOTP secret).
    Failed,
}

/// How the account's password comes over.
enum Password {
    /// Database mode: the bcrypt hash, kept as it is.
    Bcrypt(String),
    /// No usable hash: an unusable one, and a set-your-password mail.
    Mail,
}

/// Imports one user (see the module doc); re-running it for the same UUID answers
/// [`Outcome::Exists`].
///
/// # Errors
/// Database failures only: whatever is wrong with the user is an outcome.
pub async fn import_user(
    state: &AppState,
    import_id: &str,
    u: &model::User,
    opts: &UserOptions,
) -> AppResult<UserOutcome> {
    let mut out = UserOutcome {
        source_uuid: u.uuid.clone(),
        email: u.email.clone(),
        status: Outcome::Failed,
        user_id: None,
        org_id: None,
        message: String::new(),
    };
    if let Some(user_id) = mapped(state, &u.uuid).await? {
        return exists(state, out, user_id).await;
    }
    let Ok(email) = normalize_email(&u.email) else {
        out.message = format!("the email {:?} is not a valid address", u.email);
        return Ok(out);
    };
    out.email.clone_from(&email);
    if let Some(message) = clash(state, &email).await? {
        out.status = Outcome::Clash;
        out.message = message;
        return Ok(out);
    }
    let seed = match totp_seed(u, opts.mode) {
        Ok(seed) => seed,
        Err(message) => {
            out.message = message;
            return Ok(out);
        }
    };
    let password = match &u.password_hash {
        Some(hash) if opts.mode == Mode::Database && is_bcrypt(hash) => {
            Password::Bcrypt(hash.clone())
        }
        _ => Password::Mail,
    };
    let is_admin = u.root_admin && opts.root_admins_become_platform_admins;
    let message = describe(u, opts, &password, seed.is_some());
    if opts.dry_run {
        out.status = Outcome::Planned;
        out.message = format!("would be imported: {message}");
        return Ok(out);
    }
    let hash = match &password {
        Password::Bcrypt(hash) => hash.clone(),
        Password::Mail => hash_password(random_hex(32)).await?,
    };
    let mut tx = state.db.pool.begin().await?;
    let created =
        crate::users::insert_account(&mut tx, &email, &display_name(u), &hash, is_admin, true)
            .await;
    let (user, org_id) = match created {
        Ok(created) => created,
        Err(AppError::Conflict(_)) => {
            // Taken between the check and the insert.
            drop(tx);
            out.status = Outcome::Clash;
            out.message = clash(state, &email).await?.unwrap_or_else(clash_message);
            return Ok(out);
        }
        Err(e) => return Err(e),
    };
    let now = now_ms();
    if let Some(seed) = &seed {
        sqlx::query(
            "INSERT INTO mfa_secrets (user_id, sealed_seed, confirmed_at, created_at) \
             VALUES ($1, $2, $3, $3)",
        )
        .bind(&user.id)
        .bind(sealed::seal(&state.master_key, seed))
        .bind(now)
        .execute(&mut *tx)
        .await?;
        sqlx::query("UPDATE users SET mfa_enabled = 1, updated_at = $1 WHERE id = $2")
            .bind(now)
            .bind(&user.id)
            .execute(&mut *tx)
            .await?;
    }
    let token = match password {
        Password::Mail => Some(password_reset::issue(&mut *tx, &user.id, MOVED_LINK_TTL_MS).await?),
        Password::Bcrypt(_) => None,
    };
    let mapped_now = sqlx::query(
        "INSERT INTO pterodactyl_map (kind, source_uuid, target_id, import_id, created_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(KIND)
    .bind(&u.uuid)
    .bind(&user.id)
    .bind(import_id)
    .bind(now)
    .execute(&mut *tx)
    .await;
    match mapped_now {
        Ok(_) => {}
        Err(e)
            if e.as_database_error()
                .is_some_and(|d| d.is_unique_violation()) =>
        {
            // A concurrent run imported this UUID first: keep its account.
            drop(tx);
            let user_id = mapped(state, &u.uuid).await?.unwrap_or_default();
            return exists(state, out, user_id).await;
        }
        Err(e) => return Err(e.into()),
    }
    tx.commit().await?;
    crate::readcache::changed();
    if let Some(token) = token {
        state.mailer.send_template(
            &email,
            &Template::AccountMoved {
                from: "Pterodactyl".into(),
                email: email.clone(),
                link: password_reset::link(state, &token),
                token,
                valid_days: MOVED_LINK_TTL_MS / (24 * 3600 * 1000),
            },
        );
    }
    out.status = Outcome::Imported;
    out.user_id = Some(user.id);
    out.org_id = Some(org_id);
    out.message = message;
    Ok(out)
}

/// The account an import made for `source_uuid`, if any.
async fn mapped(state: &AppState, source_uuid: &str) -> AppResult<Option<String>> {
    Ok(sqlx::query_scalar(
        "SELECT target_id FROM pterodactyl_map WHERE kind = $1 AND source_uuid = $2",
    )
    .bind(KIND)
    .bind(source_uuid)
    .fetch_optional(&state.db.pool)
    .await?)
}

/// [`Outcome::Exists`] with the account and its personal organization.
async fn exists(state: &AppState, mut out: UserOutcome, user_id: String) -> AppResult<UserOutcome> {
    let org_id: Option<String> = sqlx::query_scalar(
        "SELECT o.id FROM organizations o JOIN org_members m ON m.org_id = o.id \
         WHERE m.user_id = $1 AND o.created_by = $1 AND o.personal <> 0 \
         ORDER BY o.created_at, o.id LIMIT 1",
    )
    .bind(&user_id)
    .fetch_optional(&state.db.pool)
    .await?;
    out.status = Outcome::Exists;
    out.message = "imported before; nothing changed".into();
    out.user_id = Some(user_id);
    out.org_id = org_id;
    Ok(out)
}

fn clash_message() -> String {
    "an account with this email exists; not merged".into()
}

/// Why `email` cannot be used, when an account has it: one made by hand (or by
/// registration), or one imported for another Pterodactyl user (another panel, or a user
/// deleted and made again there). Either way nothing is merged.
async fn clash(state: &AppState, email: &str) -> AppResult<Option<String>> {
    // Emails are stored normalized (lower case), so equality is case-insensitive.
    let Some(user_id): Option<String> = sqlx::query_scalar("SELECT id FROM users WHERE email = $1")
        .bind(email)
        .fetch_optional(&state.db.pool)
        .await?
    else {
        return Ok(None);
    };
    let imported_for: Option<String> = sqlx::query_scalar(
        "SELECT source_uuid FROM pterodactyl_map WHERE kind = $1 AND target_id = $2",
    )
    .bind(KIND)
    .bind(&user_id)
    .fetch_optional(&state.db.pool)
    .await?;
    Ok(Some(match imported_for {
        Some(other) => format!(
            "an account with this email was imported for another Pterodactyl user ({other}); \
             not merged"
        ),
        None => clash_message(),
    }))
}

/// The TOTP seed to carry over: database mode, `use_totp` and a secret. A secret that is
/// not base32 fails the user rather than import them without their second factor.
fn totp_seed(u: &model::User, mode: Mode) -> Result<Option<Vec<u8>>, String> {
    let Some(secret) = u.totp_secret.as_deref().filter(|_| u.use_totp) else {
        return Ok(None);
    };
    if mode != Mode::Database {
        return Ok(None);
    }
    let compact: String = secret
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '=')
        .flat_map(char::to_uppercase)
        .collect();
    match Secret::Encoded(compact).to_bytes() {
        Ok(seed) if !seed.is_empty() => Ok(Some(seed)),
        _ => Err(
            "the two-factor (TOTP) secret is not base32; the user was not imported, \
                  so that the account does not lose its second factor"
                .into(),
        ),
    }
}

/// The account's name: first and last name, else the username; without control
/// characters, at most [`NAME_MAX_CHARS`].
fn display_name(u: &model::User) -> String {
    let clean = |s: &str| -> String {
        s.chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect::<String>()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    let full = clean(&format!("{} {}", u.name_first, u.name_last));
    let name = if full.is_empty() {
        clean(&u.username)
    } else {
        full
    };
    name.chars().take(NAME_MAX_CHARS).collect()
}

/// What importing `u` does, for the report.
fn describe(u: &model::User, opts: &UserOptions, password: &Password, totp: bool) -> String {
    let mut parts = vec![match password {
        Password::Bcrypt(_) => "the old password keeps working".to_string(),
        Password::Mail => "a set-your-password mail goes to the address".to_string(),
    }];
    if totp {
        parts.push("two-factor authentication carried over".into());
    } else if u.use_totp {
        parts.push(
            "two-factor authentication could not come over (no secret): the user enrolls again"
                .into(),
        );
    }
    if u.root_admin {
        parts.push(if opts.root_admins_become_platform_admins {
            "root admin: becomes a platform admin".into()
        } else {
            "root admin on the old panel: not a platform admin here".into()
        });
    }
    parts.join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user() -> model::User {
        model::User {
            id: 1,
            uuid: "9f2b7c1e-0000-4000-8000-000000000001".into(),
            username: "ada".into(),
            email: "Ada@Example.com".into(),
            name_first: "Ada".into(),
            name_last: "Lovelace".into(),
            root_admin: false,
            password_hash: None,
            totp_secret: None,
            use_totp: false,
        }
    }

    #[test]
    fn names_come_from_first_and_last_else_the_username() {
        assert_eq!(display_name(&user()), "Ada Lovelace");
        let mut u = user();
        u.name_first = " \t".into();
        u.name_last = String::new();
        assert_eq!(display_name(&u), "ada");
        u.name_first = "A\u{7}da\nB".into();
        assert_eq!(display_name(&u), "A da B");
        u.name_first = "x".repeat(300);
        assert_eq!(display_name(&u).chars().count(), NAME_MAX_CHARS);
    }

    #[test]
    fn totp_secrets_are_read_as_base32_in_database_mode_only() {
        let mut u = user();
        u.use_totp = true;
        u.totp_secret = Some("jbsw y3dp ehpk 3pxp".into());
        assert_eq!(
            totp_seed(&u, Mode::Database).expect("base32"),
            Some(b"Hello!\xde\xad\xbe\xef".to_vec())
        );
        assert_eq!(totp_seed(&u, Mode::Api).expect("api"), None);
        u.use_totp = false;
        assert_eq!(totp_seed(&u, Mode::Database).expect("off"), None);
        u.use_totp = true;
        u.totp_secret = Some("not base32!".into());
        assert!(totp_seed(&u, Mode::Database).is_err());
    }
}
