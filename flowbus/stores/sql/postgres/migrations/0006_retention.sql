-- Retention: an event instance may be removed, whole, once past its age (it is still never
-- edited); finished messages are found for removal oldest first on an index of their own; and
-- one worker at a time sweeps a project, holding the project's row of retention_sweeps.

DROP TRIGGER events_are_immutable ON events;
CREATE TRIGGER events_are_immutable BEFORE UPDATE ON events
    FOR EACH ROW EXECUTE FUNCTION flowbus_refuse_change();

CREATE INDEX messages_finished ON messages (project, seq) WHERE state IN ('done', 'unmatched');

CREATE TABLE retention_sweeps (
    project text PRIMARY KEY,
    owner text NOT NULL,
    lease_expires_at double precision NOT NULL,
    steps_through text NOT NULL DEFAULT ''
);
