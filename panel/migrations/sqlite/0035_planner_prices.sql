-- The planner's price tables read from a provider's API (issue 17): Hetzner's
-- GET /pricing and GET /server_types, read with the organization's credential, kept for
-- an hour so every replica answers from the same copy. table is the price table as the
-- planner serves it (JSON); read_at is when it was read (ms).
CREATE TABLE planner_prices (
    org_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    provider TEXT NOT NULL,
    price_table TEXT NOT NULL,
    read_at BIGINT NOT NULL,
    PRIMARY KEY (org_id, provider)
);
