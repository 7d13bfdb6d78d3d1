-- tus resumable uploads into an instance's files (`uploads` area). The agent holds the
-- bytes and decides offsets; upload_offset is the last offset it reported (a cache for
-- listings). path is the target relative to the server's files, metadata the client's
-- Upload-Metadata header as sent. Rows past expires_at are removed with their data.

CREATE TABLE uploads (
    id TEXT PRIMARY KEY,
    instance_id TEXT NOT NULL REFERENCES instances(id) ON DELETE CASCADE,
    user_id TEXT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    path TEXT NOT NULL,
    length BIGINT NOT NULL,
    upload_offset BIGINT NOT NULL DEFAULT 0,
    metadata TEXT NOT NULL DEFAULT '',
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    completed_at BIGINT
);
CREATE INDEX uploads_instance ON uploads (instance_id);
CREATE INDEX uploads_expires ON uploads (expires_at);
