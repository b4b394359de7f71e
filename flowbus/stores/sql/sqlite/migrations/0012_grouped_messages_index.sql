-- The index of the messages that hold their FIFO group is read for messages with a group only (a
-- claim's check for an earlier open message of its group, the groups view), and every such read
-- compares group_key, which implies it is not NULL. Messages without a group, most of them, were
-- entered in it when sent and moved in it on every lease and acknowledgement for nothing.

DROP INDEX messages_by_group;
CREATE INDEX messages_by_group ON messages (project, queue, group_key, seq)
WHERE state NOT IN ('done', 'unmatched') AND group_key IS NOT NULL;
