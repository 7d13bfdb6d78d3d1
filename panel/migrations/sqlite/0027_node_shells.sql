-- Shells on nodes through the panel (`GET /v1/nodes/{id}/ssh` and `/terminal`): the
-- single-use tickets browsers open them with, one row per session, and its asciicast v2
-- recording, written in chunks as the session runs (at most a second behind).
CREATE TABLE node_shell_tickets (
    id TEXT PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    node_id TEXT NOT NULL REFERENCES nodes(id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    session_id TEXT,
    api_token_id TEXT,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT
);
CREATE INDEX node_shell_tickets_expiry ON node_shell_tickets (expires_at);
-- No foreign key to users: a deleted user's sessions stay on record.
CREATE TABLE shell_sessions (
    id TEXT PRIMARY KEY,
    node_id TEXT NOT NULL REFERENCES nodes(id) ON DELETE CASCADE,
    user_id TEXT NOT NULL,
    user_email TEXT NOT NULL,
    kind TEXT NOT NULL,
    login TEXT,
    command TEXT,
    certificate_id TEXT,
    remote_ip TEXT,
    term TEXT NOT NULL,
    cols INTEGER NOT NULL,
    rows INTEGER NOT NULL,
    started_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    ended_at BIGINT,
    exit_status INTEGER,
    end_reason TEXT,
    recorded_bytes BIGINT NOT NULL DEFAULT 0,
    truncated INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX shell_sessions_node ON shell_sessions (node_id, started_at);
-- The recording's event lines (asciicast v2, one JSON array per line), in order.
CREATE TABLE shell_recording_chunks (
    session_id TEXT NOT NULL REFERENCES shell_sessions(id) ON DELETE CASCADE,
    seq INTEGER NOT NULL,
    events TEXT NOT NULL,
    PRIMARY KEY (session_id, seq)
);
