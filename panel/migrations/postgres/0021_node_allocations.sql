-- Per-node allocation settings: the address and the port range automatic ports of new
-- servers on the node come from (NULL: the panel's [instances] defaults). Several
-- agents on one machine need ranges of their own.
ALTER TABLE nodes ADD COLUMN allocation_ip TEXT;
ALTER TABLE nodes ADD COLUMN port_range_start BIGINT;
ALTER TABLE nodes ADD COLUMN port_range_end BIGINT;
