-- Retention: an event instance may be removed, whole, once past its age (it is still never
-- edited); finished messages are found for removal oldest first on an index of their own; and
-- one worker at a time sweeps a project, holding the project's row of retention_sweeps.

DROP TRIGGER events_are_not_deleted;

CREATE INDEX messages_finished ON messages (project, seq) WHERE state IN ('done', 'unmatched');

CREATE TABLE retention_sweeps (
    project TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    lease_expires_at REAL NOT NULL,
    steps_through TEXT NOT NULL DEFAULT ''
) WITHOUT ROWID;
