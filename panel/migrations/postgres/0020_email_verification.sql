-- With open registration an address is verified by a mailed link before it can sign in
-- or be linked by a GitHub login. Accounts that exist already were made by an admin, an
-- invite, bootstrap or GitHub, or registered before verification existed: verified.
ALTER TABLE users ADD COLUMN email_verified_at BIGINT;
UPDATE users SET email_verified_at = created_at;

-- Verification links: single use, expiring, stored as the SHA-256 of the token.
CREATE TABLE email_verifications (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    token_hash TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT
);
CREATE INDEX email_verifications_user ON email_verifications (user_id, created_at);
