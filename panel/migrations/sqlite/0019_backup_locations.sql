-- Where each S3 backup was written: the endpoint (empty: AWS's default), region and
-- bucket of its storage config at the time. Downloads, restores and deletes go there,
-- not to whatever the config says now, so changing a config's endpoint cannot send a
-- backup's reads elsewhere. Existing S3 backups take their config's current values.
ALTER TABLE backups ADD COLUMN s3_endpoint TEXT NOT NULL DEFAULT '';
ALTER TABLE backups ADD COLUMN s3_region TEXT NOT NULL DEFAULT '';
ALTER TABLE backups ADD COLUMN s3_bucket TEXT NOT NULL DEFAULT '';
UPDATE backups SET
    s3_endpoint = COALESCE((SELECT c.endpoint FROM backup_configs c WHERE c.id = backups.config_id), ''),
    s3_region = COALESCE((SELECT c.region FROM backup_configs c WHERE c.id = backups.config_id), ''),
    s3_bucket = COALESCE((SELECT c.bucket FROM backup_configs c WHERE c.id = backups.config_id), '')
WHERE target = 's3';
