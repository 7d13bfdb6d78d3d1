-- MFA (TOTP): the seed sealed under the master key (pending until confirmed), the
-- last accepted time step (a code is accepted once), single-use recovery codes and
-- login challenges (both stored only as SHA-256).
CREATE TABLE mfa_secrets (
    user_id TEXT PRIMARY KEY REFERENCES users(id) ON DELETE CASCADE,
    sealed_seed TEXT NOT NULL,
    confirmed_at BIGINT,
    last_step BIGINT,
    created_at BIGINT NOT NULL
);
CREATE TABLE mfa_recovery_codes (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    code_hash TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    used_at BIGINT
);
CREATE INDEX mfa_recovery_codes_user ON mfa_recovery_codes (user_id);
CREATE TABLE mfa_challenges (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    token_hash TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT,
    failures BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX mfa_challenges_user ON mfa_challenges (user_id);
