-- Debounced messages (flowbus.queue.Debounce). A debounced message is sent scheduled, with the
-- key of its burst: while it is still scheduled, the next message of the same key takes its place
-- (its body replaced, its time moved on, its count raised) rather than queueing a second one. The
-- unique index below is what the send's INSERT ... ON CONFLICT meets, so that concurrent senders
-- of one key fold into one message; once a claim has made the message ready, the index no longer
-- holds it and the next message of the key starts a new burst.
--   debounce_key: the burst (the handler and the key's value); NULL: not debounced
--   debounce_deadline: the latest time the burst may become due (its first send plus max_wait,
--     seconds since the epoch); NULL: no bound
--   debounced: the messages folded into this one, itself included

ALTER TABLE messages ADD COLUMN debounce_key text;
ALTER TABLE messages ADD COLUMN debounce_deadline double precision;
ALTER TABLE messages ADD COLUMN debounced integer NOT NULL DEFAULT 0;

CREATE UNIQUE INDEX messages_debounce ON messages (project, queue, debounce_key)
WHERE state = 'scheduled' AND debounce_key IS NOT NULL;
