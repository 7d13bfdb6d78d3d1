-- The version of the state an agent last reported for an instance (microseconds of the
-- agent's clock, strictly increasing per agent): a report older than the recorded one
-- (a power call's answer arriving after the event of a later change) is ignored.
ALTER TABLE instances ADD COLUMN state_version BIGINT NOT NULL DEFAULT 0;
