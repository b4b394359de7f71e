-- How many events each root (a source message or a root event) has caused so far: the events of
-- its chain past the root. Raised in the transaction that stores the events, so that the engine
-- can bound a chain (max_chain_events) by reading one row.

CREATE TABLE chain_counts (
    project TEXT NOT NULL,
    correlation_id TEXT NOT NULL,
    events INTEGER NOT NULL,
    PRIMARY KEY (project, correlation_id)
) WITHOUT ROWID;
