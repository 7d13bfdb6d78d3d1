-- The platform's SSH certificate authority (see `ssh`): its keys, the private half sealed
-- with the master key; `trusted_until` is set when a key is rotated out (the last expiry
-- of what it signed) and it stays in the CA public key list until then.
CREATE TABLE ssh_ca_keys (
    id TEXT PRIMARY KEY,
    algorithm TEXT NOT NULL,
    public_key TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    sealed_private TEXT NOT NULL,
    active INTEGER NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL,
    retired_at BIGINT,
    trusted_until BIGINT
);
-- Every certificate signed, kept after expiry and revocation (the KRL is built from
-- them). No foreign key to users: a deleted user's certificates stay revoked.
CREATE TABLE ssh_certificates (
    id TEXT PRIMARY KEY,
    serial BIGINT NOT NULL UNIQUE,
    ca_key_id TEXT NOT NULL REFERENCES ssh_ca_keys(id),
    user_id TEXT NOT NULL,
    node_id TEXT,
    key_id TEXT NOT NULL,
    principals TEXT NOT NULL,
    public_key_fingerprint TEXT NOT NULL,
    certificate TEXT NOT NULL,
    force_command TEXT,
    source_address TEXT,
    valid_after BIGINT NOT NULL,
    valid_before BIGINT NOT NULL,
    revoked_at BIGINT,
    revoked_reason TEXT,
    created_at BIGINT NOT NULL
);
CREATE INDEX ssh_certificates_user ON ssh_certificates (user_id, created_at);
CREATE INDEX ssh_certificates_revoked ON ssh_certificates (revoked_at);
CREATE UNIQUE INDEX ssh_ca_keys_one_active ON ssh_ca_keys (active) WHERE active = 1;
