//! MFA (decision 7): TOTP (SHA-1, 6 digits, 30 s, ±1 step) with single-use recovery
//! codes. The seed is sealed under the master key; a code is accepted once (the last
//! accepted time step is stored); a login of an MFA user yields a short-lived,
//! single-use challenge that `/v1/auth/mfa/challenge` trades for the token pair.

use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;
use totp_rs::{Algorithm, Secret, TOTP};

use super::crypto::{random_hex, sha256_hex};
use super::extract::{ClientMeta, SessionUser};
use super::sessions::{self, TokenPair};
use crate::audit::AuditSlot;
use crate::db::row::{Flag, IsSet};
use crate::db::{new_id, now_ms, rfc3339};
use crate::error::{AppError, AppJson, AppResult};
use crate::mailer::Template;
use crate::sealed;
use crate::state::AppState;
use crate::users::store as users;

/// Seconds a login challenge lives.
pub const CHALLENGE_TTL_SECS: i64 = 300;
/// Wrong codes a challenge survives.
const CHALLENGE_MAX_FAILURES: i64 = 5;
/// Recovery codes handed out on enrollment.
const RECOVERY_CODES: usize = 10;
const STEP_SECS: u64 = 30;
const SEED_BYTES: usize = 20;
const ISSUER: &str = "Shardlyn";
/// Alphabet of recovery codes: 32 symbols without the look-alikes `l`, `o`, `0`, `1`.
const RECOVERY_ALPHABET: &[u8; 32] = b"abcdefghijkmnpqrstuvwxyz23456789";

fn totp(seed: Vec<u8>) -> TOTP {
    TOTP::new_unchecked(Algorithm::SHA1, 6, 1, STEP_SECS, seed)
}

fn current_step() -> i64 {
    now_ms().div_euclid(1000) / 30
}

/// The time step (within ±1 of now) whose code is `code`, if any.
fn matching_step(seed: &[u8], code: &str) -> Option<i64> {
    let code = code.trim();
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let totp = totp(seed.to_vec());
    let now = current_step();
    let mut found = None;
    for step in [now - 1, now, now + 1] {
        let Ok(at) = u64::try_from(step) else {
            continue;
        };
        let expected = totp.generate(at * STEP_SECS);
        if bool::from(expected.as_bytes().ct_eq(code.as_bytes())) {
            found = Some(step);
        }
    }
    found
}

fn is_totp_shaped(code: &str) -> bool {
    let code = code.trim();
    code.len() == 6 && code.bytes().all(|b| b.is_ascii_digit())
}

fn new_recovery_code() -> String {
    let mut bytes = [0u8; 8];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let chars: String = bytes
        .iter()
        .map(|b| char::from(RECOVERY_ALPHABET[usize::from(b % 32)]))
        .collect();
    format!("{}-{}", &chars[..4], &chars[4..])
}

/// The canonical `xxxx-xxxx` form of a typed recovery code.
fn normalize_recovery(code: &str) -> String {
    let compact: String = code
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .flat_map(char::to_lowercase)
        .collect();
    if compact.len() == 8 && compact.is_ascii() {
        format!("{}-{}", &compact[..4], &compact[4..])
    } else {
        compact
    }
}

/// Percent-encodes a label component of the otpauth URI.
fn uri_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~@".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[derive(sqlx::FromRow)]
struct SecretRow {
    sealed_seed: String,
    #[sqlx(rename = "confirmed_at", try_from = "IsSet")]
    confirmed: bool,
}

async fn load_secret(state: &AppState, user_id: &str) -> AppResult<Option<SecretRow>> {
    let row =
        sqlx::query_as("SELECT sealed_seed, confirmed_at FROM mfa_secrets WHERE user_id = $1")
            .bind(user_id)
            .fetch_optional(&state.db.pool)
            .await?;
    Ok(row)
}

async fn mfa_enabled(state: &AppState, user_id: &str) -> AppResult<bool> {
    let enabled: Option<Flag> = sqlx::query_scalar("SELECT mfa_enabled FROM users WHERE id = $1")
        .bind(user_id)
        .fetch_optional(&state.db.pool)
        .await?;
    Ok(enabled.is_some_and(bool::from))
}

/// Accepts a TOTP code of `user_id`'s seed once: the step must be newer than the last
/// accepted one (claimed with a conditional update, so racing requests cannot both win).
async fn accept_totp(
    state: &AppState,
    user_id: &str,
    sealed_seed: &str,
    code: &str,
) -> AppResult<bool> {
    let seed = sealed::open(&state.master_key, sealed_seed)?;
    let Some(step) = matching_step(&seed, code) else {
        return Ok(false);
    };
    let claimed = sqlx::query(
        "UPDATE mfa_secrets SET last_step = $1 \
         WHERE user_id = $2 AND (last_step IS NULL OR last_step < $1)",
    )
    .bind(step)
    .bind(user_id)
    .execute(&state.db.pool)
    .await?;
    Ok(claimed.rows_affected() == 1)
}

/// Spends an unused recovery code of `user_id`.
async fn accept_recovery(state: &AppState, user_id: &str, code: &str) -> AppResult<bool> {
    let used = sqlx::query(
        "UPDATE mfa_recovery_codes SET used_at = $1 \
         WHERE user_id = $2 AND code_hash = $3 AND used_at IS NULL",
    )
    .bind(now_ms())
    .bind(user_id)
    .bind(sha256_hex(&normalize_recovery(code)))
    .execute(&state.db.pool)
    .await?;
    Ok(used.rows_affected() >= 1)
}

/// Checks a second factor (a TOTP code or a recovery code) of an MFA-enabled user.
async fn accept_second_factor(state: &AppState, user_id: &str, code: &str) -> AppResult<bool> {
    if code.len() > 64 {
        return Ok(false);
    }
    if is_totp_shaped(code) {
        match load_secret(state, user_id).await? {
            Some(secret) if secret.confirmed => {
                accept_totp(state, user_id, &secret.sealed_seed, code).await
            }
            _ => Ok(false),
        }
    } else {
        accept_recovery(state, user_id, code).await
    }
}

/// Whether the caller has MFA on, and how many recovery codes are left.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct MfaStatus {
    pub enabled: bool,
    /// Unused recovery codes (only when enabled).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recovery_codes_remaining: Option<i64>,
}

/// The recovery codes, shown once when MFA is enabled.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RecoveryCodes {
    pub recovery_codes: Vec<String>,
}

/// `GET /v1/auth/mfa/status`.
pub async fn status(
    State(state): State<AppState>,
    SessionUser(current): SessionUser,
) -> AppResult<AppJson<MfaStatus>> {
    if !mfa_enabled(&state, &current.user.id).await? {
        return Ok(AppJson(MfaStatus {
            enabled: false,
            recovery_codes_remaining: None,
        }));
    }
    let remaining: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) AS n FROM mfa_recovery_codes WHERE user_id = $1 AND used_at IS NULL",
    )
    .bind(&current.user.id)
    .fetch_one(&state.db.pool)
    .await?;
    Ok(AppJson(MfaStatus {
        enabled: true,
        recovery_codes_remaining: Some(remaining),
    }))
}

#[derive(Serialize, Deserialize, schemars::JsonSchema)]
pub struct EnrollResponse {
    pub secret: String,
    pub otpauth_uri: String,
    pub qr_svg: String,
}

/// `POST /v1/auth/mfa/enroll`: a new pending seed (replacing a pending one).
pub async fn enroll(
    State(state): State<AppState>,
    SessionUser(current): SessionUser,
    audit: Option<Extension<AuditSlot>>,
) -> AppResult<AppJson<EnrollResponse>> {
    let user_id = &current.user.id;
    if mfa_enabled(&state, user_id).await? {
        return Err(AppError::Conflict("MFA is already enabled".into()));
    }
    let mut seed = vec![0u8; SEED_BYTES];
    rand::rngs::OsRng.fill_bytes(&mut seed);
    let secret = match Secret::Raw(seed.clone()).to_encoded() {
        Secret::Encoded(s) => s,
        Secret::Raw(_) => return Err(anyhow::anyhow!("base32 encoding failed").into()),
    };
    let sealed_seed = sealed::seal(&state.master_key, &seed);
    let mut tx = state.db.pool.begin().await?;
    sqlx::query("DELETE FROM mfa_secrets WHERE user_id = $1")
        .bind(user_id)
        .execute(&mut *tx)
        .await?;
    sqlx::query("INSERT INTO mfa_secrets (user_id, sealed_seed, created_at) VALUES ($1, $2, $3)")
        .bind(user_id)
        .bind(&sealed_seed)
        .bind(now_ms())
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    let otpauth_uri = format!(
        "otpauth://totp/{ISSUER}:{}?secret={secret}&issuer={ISSUER}&algorithm=SHA1&digits=6&period=30",
        uri_escape(&current.user.email)
    );
    let qr_svg = qrcode::QrCode::new(otpauth_uri.as_bytes())
        .map_err(|e| anyhow::anyhow!("QR code: {e}"))?
        .render::<qrcode::render::svg::Color>()
        .min_dimensions(200, 200)
        .build();
    if let Some(Extension(slot)) = &audit {
        slot.set_action("auth.mfa.enroll", Some(user_id));
    }
    Ok(AppJson(EnrollResponse {
        secret,
        otpauth_uri,
        qr_svg,
    }))
}

/// A TOTP code (or, to disable, a recovery code).
#[derive(Serialize, Deserialize, schemars::JsonSchema)]
pub struct CodeRequest {
    pub code: String,
}

/// `POST /v1/auth/mfa/verify`: confirms the pending seed, enables MFA and hands out
/// the recovery codes (once).
pub async fn verify(
    State(state): State<AppState>,
    SessionUser(current): SessionUser,
    ClientMeta(client): ClientMeta,
    audit: Option<Extension<AuditSlot>>,
    AppJson(body): AppJson<CodeRequest>,
) -> AppResult<AppJson<RecoveryCodes>> {
    let user_id = &current.user.id;
    if mfa_enabled(&state, user_id).await? {
        return Err(AppError::Conflict("MFA is already enabled".into()));
    }
    let Some(secret) = load_secret(&state, user_id).await?.filter(|s| !s.confirmed) else {
        return Err(AppError::Validation(
            "no pending MFA enrollment: call /v1/auth/mfa/enroll first".into(),
        ));
    };
    if !accept_totp(&state, user_id, &secret.sealed_seed, &body.code).await? {
        return Err(AppError::InvalidMfaCode { login: false });
    }
    let codes: Vec<String> = (0..RECOVERY_CODES).map(|_| new_recovery_code()).collect();
    let now = now_ms();
    let mut tx = state.db.pool.begin().await?;
    let confirmed = sqlx::query(
        "UPDATE mfa_secrets SET confirmed_at = $1 \
         WHERE user_id = $2 AND sealed_seed = $3 AND confirmed_at IS NULL",
    )
    .bind(now)
    .bind(user_id)
    .bind(&secret.sealed_seed)
    .execute(&mut *tx)
    .await?;
    if confirmed.rows_affected() != 1 {
        tx.rollback().await?;
        return Err(AppError::Conflict(
            "the enrollment changed meanwhile: enroll again".into(),
        ));
    }
    sqlx::query("DELETE FROM mfa_recovery_codes WHERE user_id = $1")
        .bind(user_id)
        .execute(&mut *tx)
        .await?;
    for code in &codes {
        sqlx::query(
            "INSERT INTO mfa_recovery_codes (id, user_id, code_hash, created_at) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind(new_id())
        .bind(user_id)
        .bind(sha256_hex(code))
        .bind(now)
        .execute(&mut *tx)
        .await?;
    }
    sqlx::query("UPDATE users SET mfa_enabled = 1, updated_at = $1 WHERE id = $2")
        .bind(now)
        .bind(user_id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    state.auth_cache.invalidate_all();
    if let Some(Extension(slot)) = &audit {
        slot.set_action("auth.mfa.enable", Some(user_id));
    }
    state.mailer.send_template(
        &current.user.email,
        &Template::MfaEnabled {
            time: rfc3339(now),
            ip: client.ip,
        },
    );
    Ok(AppJson(RecoveryCodes {
        recovery_codes: codes,
    }))
}

/// `POST /v1/auth/mfa/disable`: needs a current TOTP code or an unused recovery code.
pub async fn disable(
    State(state): State<AppState>,
    SessionUser(current): SessionUser,
    ClientMeta(client): ClientMeta,
    audit: Option<Extension<AuditSlot>>,
    AppJson(body): AppJson<CodeRequest>,
) -> AppResult<StatusCode> {
    let user_id = &current.user.id;
    if !mfa_enabled(&state, user_id).await? {
        return Err(AppError::Validation("MFA is not enabled".into()));
    }
    if !accept_second_factor(&state, user_id, &body.code).await? {
        return Err(AppError::InvalidMfaCode { login: false });
    }
    let mut tx = state.db.pool.begin().await?;
    for sql in [
        "DELETE FROM mfa_secrets WHERE user_id = $1",
        "DELETE FROM mfa_recovery_codes WHERE user_id = $1",
        "DELETE FROM mfa_challenges WHERE user_id = $1",
    ] {
        sqlx::query(sql).bind(user_id).execute(&mut *tx).await?;
    }
    sqlx::query("UPDATE users SET mfa_enabled = 0, updated_at = $1 WHERE id = $2")
        .bind(now_ms())
        .bind(user_id)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    state.auth_cache.invalidate_all();
    if let Some(Extension(slot)) = &audit {
        slot.set_action("auth.mfa.disable", Some(user_id));
    }
    state.mailer.send_template(
        &current.user.email,
        &Template::MfaDisabled {
            time: rfc3339(now_ms()),
            ip: client.ip,
        },
    );
    Ok(StatusCode::NO_CONTENT)
}

/// The login answer for a user with MFA: no tokens, a challenge instead.
#[derive(Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct MfaRequired {
    pub mfa_required: bool,
    pub challenge_token: String,
    pub expires_in: i64,
}

/// Issues a login challenge for `user_id` (after the password was checked).
///
/// # Errors
/// Database failures.
pub async fn issue_challenge(state: &AppState, user_id: &str) -> AppResult<MfaRequired> {
    let token = format!("shardlyn_mfa_{}", random_hex(32));
    let now = now_ms();
    // Spent and stale challenges of this user are of no further use.
    sqlx::query(
        "DELETE FROM mfa_challenges \
         WHERE user_id = $1 AND (used_at IS NOT NULL OR expires_at <= $2)",
    )
    .bind(user_id)
    .bind(now)
    .execute(&state.db.pool)
    .await?;
    sqlx::query(
        "INSERT INTO mfa_challenges (id, user_id, token_hash, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(new_id())
    .bind(user_id)
    .bind(sha256_hex(&token))
    .bind(now)
    .bind(now + CHALLENGE_TTL_SECS * 1000)
    .execute(&state.db.pool)
    .await?;
    Ok(MfaRequired {
        mfa_required: true,
        challenge_token: token,
        expires_in: CHALLENGE_TTL_SECS,
    })
}

#[derive(Deserialize, schemars::JsonSchema)]
pub struct ChallengeRequest {
    challenge_token: String,
    code: String,
}

/// A pending MFA challenge as stored.
#[derive(sqlx::FromRow)]
struct ChallengeRow {
    id: String,
    user_id: String,
    expires_at: i64,
    #[sqlx(rename = "used_at", try_from = "IsSet")]
    used: bool,
    failures: i64,
}

/// `POST /v1/auth/mfa/challenge`: a login challenge and a code for the token pair.
pub async fn challenge(
    State(state): State<AppState>,
    ClientMeta(client): ClientMeta,
    audit: Option<Extension<AuditSlot>>,
    AppJson(body): AppJson<ChallengeRequest>,
) -> AppResult<AppJson<TokenPair>> {
    let invalid = || AppError::unauthorized("invalid or expired MFA challenge");
    let now = now_ms();
    let row: ChallengeRow = sqlx::query_as(
        "SELECT id, user_id, expires_at, used_at, failures FROM mfa_challenges \
         WHERE token_hash = $1",
    )
    .bind(sha256_hex(body.challenge_token.trim()))
    .fetch_optional(&state.db.pool)
    .await?
    .ok_or_else(invalid)?;
    if row.used || row.expires_at <= now || row.failures >= CHALLENGE_MAX_FAILURES {
        return Err(invalid());
    }
    let ChallengeRow {
        id: challenge_id,
        user_id,
        ..
    } = row;
    let user = users::find(&state.db.pool, &user_id)
        .await?
        .ok_or_else(invalid)?;
    if let Some(Extension(slot)) = &audit {
        slot.set_actor(&user.id, &user.email);
    }
    if !user.mfa_enabled {
        return Err(invalid());
    }
    if !accept_second_factor(&state, &user_id, &body.code).await? {
        sqlx::query("UPDATE mfa_challenges SET failures = failures + 1 WHERE id = $1")
            .bind(&challenge_id)
            .execute(&state.db.pool)
            .await?;
        return Err(AppError::InvalidMfaCode { login: true });
    }
    // Conditional, so a challenge is traded for tokens once even under racing requests.
    let claimed = sqlx::query(
        "UPDATE mfa_challenges SET used_at = $1 \
         WHERE id = $2 AND used_at IS NULL AND failures < $3 AND expires_at > $1",
    )
    .bind(now_ms())
    .bind(&challenge_id)
    .bind(CHALLENGE_MAX_FAILURES)
    .execute(&state.db.pool)
    .await?;
    if claimed.rows_affected() != 1 {
        return Err(invalid());
    }
    if user.suspended {
        return Err(AppError::Forbidden("account suspended".into()));
    }
    if let Some(Extension(slot)) = &audit {
        slot.set_action("auth.login", Some(&user.id));
    }
    Ok(AppJson(sessions::start(&state, &user.id, &client).await?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recovery_codes_are_shaped_and_normalized() {
        let code = new_recovery_code();
        assert_eq!(code.len(), 9);
        assert_eq!(&code[4..5], "-");
        assert_eq!(normalize_recovery(&code.to_uppercase()), code);
        assert_eq!(normalize_recovery(&code.replace('-', "")), code);
        assert_eq!(normalize_recovery(&format!(" {code} ")), code);
    }

    #[test]
    fn totp_matches_rfc6238_sha1_vectors() {
        // RFC 6238 appendix B, seed "12345678901234567890", truncated to 6 digits.
        let t = totp(b"12345678901234567890".to_vec());
        assert_eq!(t.generate(59), "287082");
        assert_eq!(t.generate(1_111_111_109), "081804");
        assert_eq!(t.generate(1_234_567_890), "005924");
    }

    #[test]
    fn only_six_digit_codes_of_nearby_steps_match() {
        let seed = b"12345678901234567890";
        let t = totp(seed.to_vec());
        let now = current_step();
        let at = |s: i64| u64::try_from(s).expect("positive") * STEP_SECS;
        assert_eq!(matching_step(seed, &t.generate(at(now))), Some(now));
        assert_eq!(matching_step(seed, &t.generate(at(now - 1))), Some(now - 1));
        assert_eq!(matching_step(seed, &t.generate(at(now + 1))), Some(now + 1));
        let stale = t.generate(at(now - 5));
        if [now - 1, now, now + 1]
            .iter()
            .all(|s| t.generate(at(*s)) != stale)
        {
            assert_eq!(matching_step(seed, &stale), None);
        }
        assert_eq!(matching_step(seed, "12345"), None);
        assert_eq!(matching_step(seed, "abcdef"), None);
    }

    #[test]
    fn labels_are_escaped() {
        assert_eq!(uri_escape("a+b@example.com"), "a%2Bb@example.com");
    }
}
