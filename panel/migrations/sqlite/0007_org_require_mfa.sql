-- Organizations can require MFA of every member.
ALTER TABLE organizations ADD COLUMN require_mfa BIGINT NOT NULL DEFAULT 0;
