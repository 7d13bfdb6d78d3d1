-- GitHub login: external identities linked to users, the pending OAuth states (bound to
-- a browser cookie, PKCE verifier sealed under the master key) and the single-use codes
-- the web UI trades for tokens after the callback. Secrets are stored only as SHA-256.
CREATE TABLE user_identities (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    provider TEXT NOT NULL,
    provider_user_id TEXT NOT NULL,
    login TEXT NOT NULL,
    email TEXT,
    created_at BIGINT NOT NULL,
    last_login_at BIGINT,
    UNIQUE (provider, provider_user_id),
    UNIQUE (user_id, provider)
);
CREATE TABLE oauth_states (
    id TEXT PRIMARY KEY,
    provider TEXT NOT NULL,
    state_hash TEXT NOT NULL UNIQUE,
    browser_hash TEXT NOT NULL,
    sealed_verifier TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT
);
CREATE INDEX oauth_states_expires ON oauth_states (expires_at);
CREATE TABLE oauth_login_codes (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    code_hash TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT
);
CREATE INDEX oauth_login_codes_expires ON oauth_login_codes (expires_at);
