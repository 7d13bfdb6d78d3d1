-- Leases of the jobs that run once per cluster: the replica named `holder` runs job
-- group `name` until `expires_at` (unix ms) and renews it while it lives; another
-- replica takes it over once it lapses (see `jobs::lease`).
CREATE TABLE job_leases (
    name TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
