-- Flow control (flowbus.limits): each message carries its concurrency and rate keys and limits,
-- worked out when it was sent, and its priority; `held` says why a ready message waits.
ALTER TABLE messages ADD COLUMN priority INTEGER NOT NULL DEFAULT 5;
ALTER TABLE messages ADD COLUMN concurrency_key TEXT;
ALTER TABLE messages ADD COLUMN concurrency_limit INTEGER;
ALTER TABLE messages ADD COLUMN rate_key TEXT;
ALTER TABLE messages ADD COLUMN rate_interval_s REAL;
ALTER TABLE messages ADD COLUMN held TEXT;

-- A claim walks the open messages by priority, then in queue order: with every message at one
-- priority, the same walk as before.
DROP INDEX messages_open;
CREATE INDEX messages_open ON messages (project, priority DESC, seq) WHERE state IN ('ready', 'leased');

-- The leased messages of a concurrency key, counted by a claim: the slots taken.
CREATE INDEX messages_leased_by_key ON messages (project, concurrency_key, lease_expires_at)
WHERE state = 'leased' AND concurrency_key IS NOT NULL;

-- The theoretical arrival time (seconds since the epoch) of each rate key: the earliest a claim
-- admits its next message. Moved by the claim that admits one.
CREATE TABLE flow_rate_limits (
    project TEXT NOT NULL,
    key TEXT NOT NULL,
    arrival REAL NOT NULL,
    PRIMARY KEY (project, key)
) WITHOUT ROWID;
