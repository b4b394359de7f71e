-- The last tick each schedule fired (seconds since the epoch). A worker fires a tick by moving
-- this row forward, in the transaction that queues the tick's message: the row moves only
-- forward, so of all the workers that see a tick due, one moves it and the others find it moved.

CREATE TABLE schedule_ticks (
    project TEXT NOT NULL,
    schedule TEXT NOT NULL,
    tick REAL NOT NULL,
    PRIMARY KEY (project, schedule)
) WITHOUT ROWID;

-- Delayed messages wait as `scheduled`, outside the open-messages index a claim walks, so that
-- any number of them costs a claim nothing; a claim makes the due ones ready, found on this index.
CREATE INDEX messages_scheduled ON messages (project, available_at) WHERE state = 'scheduled';
