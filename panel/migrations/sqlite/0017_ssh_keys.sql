-- SFTP: the SSH public keys each user may log in to SFTP with (Pterodactyl's account
-- SSH keys). `public_key` is the OpenSSH text without its comment; `fingerprint` is
-- `SHA256:...`, unique per user.
CREATE TABLE user_ssh_keys (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    algorithm TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    public_key TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    last_used_at BIGINT,
    UNIQUE (user_id, fingerprint)
);
CREATE INDEX user_ssh_keys_user ON user_ssh_keys (user_id, created_at);
