-- A source message no trigger flow takes ends 'unmatched': finished, as 'done' is, so the index of
-- the messages that hold their group leaves it out too.

DROP INDEX messages_by_group;
CREATE INDEX messages_by_group ON messages (project, queue, group_key, seq) WHERE state NOT IN ('done', 'unmatched');
