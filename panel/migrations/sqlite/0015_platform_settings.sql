-- Platform settings: one JSON document per group (`platform` for GET/PUT /v1/settings,
-- `logs` for /v1/admin/settings/logs), and the SSH keys the panel provisions machines
-- with (the private half sealed under the master key; at most one default).
CREATE TABLE platform_settings (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    updated_by TEXT REFERENCES users(id) ON DELETE SET NULL,
    updated_at BIGINT NOT NULL
);
CREATE TABLE platform_ssh_keys (
    name TEXT PRIMARY KEY,
    algorithm TEXT NOT NULL,
    fingerprint TEXT NOT NULL UNIQUE,
    public_key TEXT NOT NULL,
    sealed_private_key TEXT NOT NULL,
    is_default BIGINT NOT NULL DEFAULT 0,
    created_by TEXT REFERENCES users(id) ON DELETE SET NULL,
    created_at BIGINT NOT NULL
);
