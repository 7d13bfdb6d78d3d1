-- Per-server access and Pterodactyl imports (issue 20).
--
-- org_members.scoped: a member whose access is limited to the servers named in
-- server_grants (each grant with its own instance permission keys, a JSON list); such a
-- member sees the organization and nothing else in it. A grant goes with its server and
-- with the membership.
ALTER TABLE org_members ADD COLUMN scoped BIGINT NOT NULL DEFAULT 0;

CREATE TABLE server_grants (
    org_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    instance_id TEXT NOT NULL REFERENCES instances(id) ON DELETE CASCADE,
    permissions TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, instance_id),
    FOREIGN KEY (org_id, user_id) REFERENCES org_members(org_id, user_id) ON DELETE CASCADE
);
CREATE INDEX server_grants_instance ON server_grants (instance_id);
CREATE INDEX server_grants_member ON server_grants (org_id, user_id);

-- One import from a Pterodactyl panel: a persisted, re-runnable job. sealed_secrets holds
-- the API key or the database password and APP_KEY (and the SFTP login for files),
-- sealed under the master key; NULL once the import ended (purged). allowed_hosts: the
-- hosts the admin entered, let through the outbound guard for this import only.
CREATE TABLE pterodactyl_imports (
    id TEXT PRIMARY KEY,
    mode TEXT NOT NULL,
    source TEXT NOT NULL,
    status TEXT NOT NULL,
    dry_run BIGINT NOT NULL,
    options TEXT NOT NULL,
    sealed_secrets TEXT,
    allowed_hosts TEXT NOT NULL,
    phase TEXT NOT NULL DEFAULT '',
    counts TEXT NOT NULL DEFAULT '{}',
    error TEXT,
    created_by TEXT NOT NULL,
    lease_owner TEXT,
    lease_until BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    finished_at BIGINT
);
CREATE INDEX pterodactyl_imports_status ON pterodactyl_imports (status);

-- What one import did with each thing it read (its report), keyed by Pterodactyl UUID.
CREATE TABLE pterodactyl_import_items (
    import_id TEXT NOT NULL REFERENCES pterodactyl_imports(id) ON DELETE CASCADE,
    kind TEXT NOT NULL,
    source_uuid TEXT NOT NULL,
    name TEXT NOT NULL,
    status TEXT NOT NULL,
    target_id TEXT,
    message TEXT NOT NULL DEFAULT '',
    detail TEXT NOT NULL DEFAULT '{}',
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (import_id, kind, source_uuid)
);

-- Every object an import made, by kind and Pterodactyl UUID: a re-run finds it here and
-- makes nothing twice.
CREATE TABLE pterodactyl_map (
    kind TEXT NOT NULL,
    source_uuid TEXT NOT NULL,
    target_id TEXT NOT NULL,
    import_id TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (kind, source_uuid)
);

-- What the file copy (pterodactyl::files) sent of each imported server, by path: the
-- source's size, mtime (s) and mode when read and the SHA-256 of the bytes sent (empty
-- for a directory). A re-run skips a file whose source is unchanged and whose target
-- still has that checksum, and removes from the target what the source no longer has.
CREATE TABLE pterodactyl_files (
    instance_id TEXT NOT NULL REFERENCES instances(id) ON DELETE CASCADE,
    path TEXT NOT NULL,
    is_dir BIGINT NOT NULL,
    size BIGINT NOT NULL,
    mtime BIGINT NOT NULL,
    mode BIGINT NOT NULL,
    sha256 TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (instance_id, path)
);
