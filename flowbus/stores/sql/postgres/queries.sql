-- name: read_entity
SELECT data, version FROM entities WHERE project = %(project)s AND entity = %(entity)s AND key = %(key)s;

-- name: list_entities
SELECT key, data FROM entities WHERE project = %(project)s AND entity = %(entity)s ORDER BY key LIMIT %(limit)s;

-- name: entity_page
-- Records in key order above the key `after` (the last of the previous page), walking the
-- primary key. `where` is a JSON object of field -> text: a record matches when each of those
-- top-level fields has that text, as protocols.field_text says (a string as it is, an integer in
-- decimal, true/false, and a decimal, time or date, a one-key tagged object of codec.py, as the
-- text of its tag).
SELECT key, data, version FROM entities AS e
WHERE e.project = %(project)s AND e.entity = %(entity)s AND e.key > %(after)s
  AND NOT EXISTS (
    SELECT 1 FROM jsonb_each_text(%(where)s::jsonb) AS w
    CROSS JOIN LATERAL (SELECT e.data::jsonb -> w.key AS v) AS f
    WHERE CASE jsonb_typeof(f.v)
            WHEN 'string' THEN f.v #>> '{}'
            WHEN 'boolean' THEN f.v #>> '{}'
            WHEN 'number' THEN substring(f.v #>> '{}' FROM '^-?[0-9]+$')
            WHEN 'object' THEN (
              SELECT t.value #>> '{}' FROM jsonb_each(f.v) AS t
              WHERE t.key IN ('$decimal', '$datetime', '$date') AND jsonb_typeof(t.value) = 'string'
                AND (SELECT count(*) FROM jsonb_object_keys(f.v)) = 1)
          END IS DISTINCT FROM w.value)
ORDER BY e.key LIMIT %(limit)s;

-- name: upsert_entity
INSERT INTO entities (project, entity, key, data, version) VALUES (%(project)s, %(entity)s, %(key)s, %(data)s, 1)
ON CONFLICT (project, entity, key) DO UPDATE SET data = excluded.data, version = entities.version + 1;

-- name: upsert_entity_bulk
-- upsert_entity for many records in one statement (parameters: arrays, an element a record, keys
-- distinct; sent in binary, which spares escaping every element): a statement costs the worker
-- more than a row does
INSERT INTO entities (project, entity, key, data, version)
SELECT v.project, v.entity, v.key, v.data, 1
FROM unnest(%(project)b::text[], %(entity)b::text[], %(key)b::text[], %(data)b::text[]) AS v (project, entity, key, data)
ON CONFLICT (project, entity, key) DO UPDATE SET data = excluded.data, version = entities.version + 1;

-- name: insert_entity
INSERT INTO entities (project, entity, key, data, version) VALUES (%(project)s, %(entity)s, %(key)s, %(data)s, 1)
ON CONFLICT DO NOTHING;

-- name: insert_entity_bulk
INSERT INTO entities (project, entity, key, data, version)
SELECT v.project, v.entity, v.key, v.data, 1
FROM unnest(%(project)b::text[], %(entity)b::text[], %(key)b::text[], %(data)b::text[]) AS v (project, entity, key, data)
ON CONFLICT DO NOTHING;

-- name: update_entity
UPDATE entities SET data = %(data)s, version = version + 1
WHERE project = %(project)s AND entity = %(entity)s AND key = %(key)s AND version = %(expected)s;

-- name: delete_entity
DELETE FROM entities WHERE project = %(project)s AND entity = %(entity)s AND key = %(key)s;

-- name: delete_entity_at
DELETE FROM entities WHERE project = %(project)s AND entity = %(entity)s AND key = %(key)s AND version = %(expected)s;

-- name: lock_entities
SELECT 1 FROM entities AS e
JOIN unnest(%(entities)s::text[], %(keys)s::text[]) AS wanted (entity, key)
  ON e.entity = wanted.entity AND e.key = wanted.key
WHERE e.project = %(project)s
ORDER BY e.entity, e.key
FOR UPDATE OF e;

-- name: lock_bursts
-- The advisory locks of the debounce bursts a transaction folds into (sql_backend._burst_locks:
-- the project, queue and key hashed to 64 bits), taken in ascending order (the function runs
-- after the sort), so that two transactions folding two bursts in opposite orders queue on the
-- first instead of deadlocking on each other's rows. Held until the transaction ends.
SELECT pg_advisory_xact_lock(k) FROM unnest(%(keys)s::bigint[]) AS k ORDER BY k;

-- name: entity_exists
SELECT 1 FROM entities WHERE project = %(project)s AND entity = %(entity)s AND key = %(key)s;

-- name: insert_event
INSERT INTO events (project, id, type, version, source, time, data, correlation_id, causation_id, depth)
VALUES (%(project)s, %(id)s, %(type)s, %(version)s, %(source)s, %(time)s, %(data)s, %(correlation_id)s,
        %(causation_id)s, %(depth)s);

-- name: get_event
SELECT id, type, version, source, time, data, correlation_id, causation_id, depth
FROM events WHERE project = %(project)s AND id = %(id)s;

-- name: get_events
SELECT id, type, version, source, time, data, correlation_id, causation_id, depth
FROM events WHERE project = %(project)s AND id = ANY(%(ids)s);

-- name: event_chain
SELECT id, type, version, source, time, data, correlation_id, causation_id, depth
FROM events WHERE project = %(project)s AND correlation_id = %(correlation_id)s ORDER BY id;

-- name: chain_events
SELECT events FROM chain_counts WHERE project = %(project)s AND correlation_id = %(correlation_id)s;

-- name: count_in_chain
INSERT INTO chain_counts (project, correlation_id, events) VALUES (%(project)s, %(correlation_id)s, %(events)s)
ON CONFLICT (project, correlation_id) DO UPDATE SET events = chain_counts.events + excluded.events;

-- name: list_events
SELECT id, type, version, source, time, data, correlation_id, causation_id, depth
FROM events
WHERE project = %(project)s AND id < %(before)s
  AND (%(type)s::text IS NULL OR type = %(type)s)
  AND (%(source)s::text IS NULL OR source = %(source)s)
  AND (%(correlation_id)s::text IS NULL OR correlation_id = %(correlation_id)s)
  AND (%(since)s::timestamptz IS NULL OR time >= %(since)s)
  AND (%(until)s::timestamptz IS NULL OR time < %(until)s)
ORDER BY id DESC LIMIT %(limit)s;

-- name: count_events
SELECT count(*) AS count FROM events WHERE project = %(project)s;

-- name: insert_run
INSERT INTO runs (project, id, flow, trigger, status, started_at, duration_s, inputs, outputs, steps,
                  error, handler, event_id, message_id, parent_run_id, config_version, attempt)
VALUES (%(project)s, %(id)s, %(flow)s, %(trigger)s, %(status)s, %(started_at)s, %(duration_s)s, %(inputs)s,
        %(outputs)s, %(steps)s, %(error)s, %(handler)s, %(event_id)s, %(message_id)s, %(parent_run_id)s,
        %(config_version)s, %(attempt)s)
ON CONFLICT (project, id) DO UPDATE SET status = excluded.status, error = excluded.error;

-- name: insert_run_bulk
INSERT INTO runs (project, id, flow, trigger, status, started_at, duration_s, inputs, outputs, steps,
                  error, handler, event_id, message_id, parent_run_id, config_version, attempt)
SELECT * FROM unnest(
    %(project)b::text[], %(id)b::text[], %(flow)b::text[], %(trigger)b::text[], %(status)b::text[],
    %(started_at)b::timestamptz[], %(duration_s)b::float8[], %(inputs)b::text[], %(outputs)b::text[],
    %(steps)b::text[], %(error)b::text[], %(handler)b::text[], %(event_id)b::text[], %(message_id)b::text[],
    %(parent_run_id)b::text[], %(config_version)b::integer[], %(attempt)b::integer[])
ON CONFLICT (project, id) DO UPDATE SET status = excluded.status, error = excluded.error;

-- name: get_run
SELECT * FROM runs WHERE project = %(project)s AND id = %(id)s;

-- name: list_runs
SELECT * FROM runs
WHERE project = %(project)s AND id < %(before)s
  AND (%(flow)s::text IS NULL OR flow = %(flow)s)
  AND (%(handler)s::text IS NULL OR handler = %(handler)s)
  AND (%(status)s::text IS NULL OR status = %(status)s)
  AND (%(trigger)s::text IS NULL OR trigger = %(trigger)s)
  AND (%(config_version)s::integer IS NULL OR config_version = %(config_version)s)
  AND (%(source)s::text IS NULL
       OR EXISTS (SELECT 1 FROM messages AS m WHERE m.id = runs.message_id AND m.project = runs.project
                  AND m.kind = 'source' AND m.body::jsonb->>'source' = %(source)s)
       OR EXISTS (SELECT 1 FROM events AS e WHERE e.project = runs.project AND e.id = runs.event_id
                  AND e.source = %(source)s))
  AND (%(event_type)s::text IS NULL
       OR EXISTS (SELECT 1 FROM messages AS m WHERE m.id = runs.message_id AND m.project = runs.project
                  AND m.kind = 'source' AND m.body::jsonb->>'type' = %(event_type)s)
       OR EXISTS (SELECT 1 FROM events AS e WHERE e.project = runs.project AND e.id = runs.event_id
                  AND e.type = %(event_type)s))
ORDER BY id DESC LIMIT %(limit)s;

-- name: run_points
SELECT id, status, duration_s FROM runs
WHERE project = %(project)s AND id >= %(since)s ORDER BY id DESC LIMIT %(limit)s;

-- name: runs_for_event
SELECT * FROM runs WHERE project = %(project)s AND event_id = %(key)s ORDER BY started_at, id;

-- name: runs_for_message
SELECT * FROM runs WHERE project = %(project)s AND message_id = %(key)s ORDER BY started_at, id;

-- name: child_runs
SELECT * FROM runs WHERE project = %(project)s AND parent_run_id = %(key)s ORDER BY started_at, id;

-- name: journaled_output
SELECT output FROM step_journal
WHERE project = %(project)s AND execution_key = %(execution_key)s AND step_key = %(step_key)s;

-- name: journal_step
INSERT INTO step_journal (project, execution_key, step_key, output)
VALUES (%(project)s, %(execution_key)s, %(step_key)s, %(output)s)
ON CONFLICT (project, execution_key, step_key) DO UPDATE SET output = excluded.output;

-- name: remember_dedup
-- The message id a de-duplication id stands for, unless one it stood for is still in its window;
-- insert_message then writes the message only if it won. Neither reads first, so a batch sends
-- them without waiting for an answer.
INSERT INTO dedup (project, queue, dedup_id, message_id, expires_at)
VALUES (%(project)s, %(queue)s, %(dedup_id)s, %(message_id)s, %(expires_at)s)
ON CONFLICT (project, queue, dedup_id) DO UPDATE SET message_id = excluded.message_id, expires_at = excluded.expires_at
WHERE dedup.expires_at <= %(now)s;

-- name: insert_message
-- A message without a de-duplication id, or one whose id remember_dedup gave to it.
INSERT INTO messages (project, id, queue, kind, body, group_key, dedup_id, state, attempts, config_version,
                      created_at, available_at, trace_context, priority, concurrency_key, concurrency_limit,
                      rate_key, rate_interval_s)
SELECT %(project)s, %(id)s, %(queue)s, %(kind)s, %(body)s, %(group_key)s, %(dedup_id)s, %(state)s, 0, %(config_version)s,
       %(created_at)s, %(available_at)s, %(trace_context)s, %(priority)s, %(concurrency_key)s, %(concurrency_limit)s,
       %(rate_key)s, %(rate_interval_s)s
WHERE CAST(%(dedup_id)s AS text) IS NULL
   OR EXISTS (SELECT 1 FROM dedup AS d
              WHERE d.project = %(project)s AND d.queue = %(queue)s AND d.dedup_id = %(dedup_id)s
                AND d.message_id = %(id)s);

-- name: dedup_messages
-- The message each of these de-duplication ids stands for, in these queues (on the key: an index
-- look-up each; pairs of the two lists that were not sent come back too and are not asked for).
SELECT queue, dedup_id, message_id FROM dedup
WHERE project = %(project)s AND queue = ANY(%(queues)s) AND dedup_id = ANY(%(dedup_ids)s);

-- name: debounce_message
-- A debounced message (queue.Debounce): inserted scheduled, unless the scheduled message of its
-- burst is there; then that one takes its body (the latest event), its config version and trace
-- context, and its time moves to this one's, but never past the burst's deadline; and its count
-- goes up. One statement, so that concurrent senders of a key fold into one message (the unique
-- index of migration 0011 makes the second one update what the first inserted). Not read back.
INSERT INTO messages (project, id, queue, kind, body, group_key, dedup_id, state, attempts, config_version,
                      created_at, available_at, trace_context, debounce_key, debounce_deadline, debounced,
                      priority)
VALUES (%(project)s, %(id)s, %(queue)s, %(kind)s, %(body)s, %(group_key)s, NULL, 'scheduled', 0, %(config_version)s,
        %(created_at)s, %(available_at)s, %(trace_context)s, %(debounce_key)s, %(debounce_deadline)s, 1, %(priority)s)
ON CONFLICT (project, queue, debounce_key) WHERE state = 'scheduled' AND debounce_key IS NOT NULL
DO UPDATE SET body = excluded.body, config_version = excluded.config_version, trace_context = excluded.trace_context,
    available_at = LEAST(excluded.available_at, coalesce(messages.debounce_deadline, excluded.available_at)),
    debounced = messages.debounced + 1;

-- name: debounced_messages
-- The scheduled message of each of these bursts (on the unique index of migration 0011), read in
-- the transaction that sent to them: what a debounced message's id is, once folded.
SELECT queue, debounce_key, id FROM messages
WHERE project = %(project)s AND state = 'scheduled' AND debounce_key IS NOT NULL
  AND queue = ANY(%(queues)s) AND debounce_key = ANY(%(keys)s);

-- name: promote_due
-- Delayed messages that are due become ready (before each claim, which then sees them). A row
-- another transaction holds (a publisher folding an event into its burst) is skipped, for the
-- next claim: a claim never waits for a publisher, nor deadlocks with one folding two bursts.
WITH due AS (
    SELECT seq FROM messages
    WHERE project = %(project)s AND state = 'scheduled' AND available_at <= %(now)s
    FOR UPDATE SKIP LOCKED
)
UPDATE messages SET state = 'ready' FROM due WHERE messages.seq = due.seq;

-- name: claim
-- Deliverable messages, by priority then oldest first, skipping rows another worker has locked:
-- ready and due, or leased by a worker whose lease ran out; a message with a group only when no
-- earlier message of its group is open (or dead and blocking); a message with a concurrency key
-- only while its key has a slot free, one with a rate key only when its key's next turn has come.
-- Those without limits are leased in the same statement; those
-- with limits come back unleased (`limited`), for flowbus.limits.admit under their keys' locks.
WITH claimable AS (
    SELECT m.seq, m.concurrency_key IS NOT NULL OR m.rate_key IS NOT NULL AS limited FROM messages AS m
    WHERE m.project = %(project)s
      AND m.state IN ('ready', 'leased')
      AND m.queue = ANY(%(queues)s)
      AND ((m.state = 'ready' AND m.available_at <= %(now)s) OR (m.state = 'leased' AND m.lease_expires_at <= %(now)s))
      AND (m.group_key IS NULL OR NOT EXISTS (
            SELECT 1 FROM messages AS h
            WHERE h.project = m.project AND h.queue = m.queue AND h.group_key = m.group_key
              AND h.state NOT IN ('done', 'unmatched') AND h.seq < m.seq
              AND (h.state <> 'dead' OR h.blocking)))
      AND (m.concurrency_key IS NULL OR (
            SELECT count(*) FROM messages AS l
            WHERE l.project = m.project AND l.concurrency_key = m.concurrency_key
              AND l.state = 'leased' AND l.lease_expires_at > %(now)s) < m.concurrency_limit)
      AND (m.rate_key IS NULL OR NOT EXISTS (
            SELECT 1 FROM flow_rate_limits AS r
            WHERE r.project = m.project AND r.key = m.rate_key AND r.arrival > %(now)s))
    ORDER BY m.priority DESC, m.seq
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
), leased AS (
    UPDATE messages SET state = 'leased', lease_owner = %(owner)s, lease_expires_at = %(until)s, held = NULL
    FROM claimable WHERE messages.seq = claimable.seq AND NOT claimable.limited
    RETURNING messages.*
)
SELECT leased.*, false AS limited FROM leased
UNION ALL
SELECT m.*, true FROM messages AS m JOIN claimable AS c ON m.seq = c.seq WHERE c.limited;

-- name: lock_flow_keys
-- One claim at a time per concurrency or rate key (keys given sorted, so that claims never
-- deadlock), held to the end of the claim's transaction.
SELECT pg_advisory_xact_lock(hashtextextended(%(project)s || chr(31) || k, 0))
FROM unnest(%(keys)s::text[]) WITH ORDINALITY AS t (k, n) ORDER BY n;

-- name: limited_candidates
-- The limited candidates of a claim again, under their keys' locks: those still deliverable (and
-- still their group's head), locked; what another claim took meanwhile is gone.
SELECT m.seq, m.concurrency_key, m.concurrency_limit, m.rate_key, m.rate_interval_s, m.priority FROM messages AS m
WHERE m.seq = ANY(%(seqs)s)
  AND ((m.state = 'ready' AND m.available_at <= %(now)s) OR (m.state = 'leased' AND m.lease_expires_at <= %(now)s))
  AND (m.group_key IS NULL OR NOT EXISTS (
        SELECT 1 FROM messages AS h
        WHERE h.project = m.project AND h.queue = m.queue AND h.group_key = m.group_key
          AND h.state NOT IN ('done', 'unmatched') AND h.seq < m.seq
          AND (h.state <> 'dead' OR h.blocking)))
ORDER BY m.priority DESC, m.seq
FOR UPDATE SKIP LOCKED;

-- name: leased_by_key
-- The slots taken of each of these concurrency keys: their leased, unexpired messages.
SELECT concurrency_key AS key, count(*) AS n FROM messages
WHERE project = %(project)s AND concurrency_key = ANY(%(keys)s) AND state = 'leased' AND lease_expires_at > %(now)s
GROUP BY concurrency_key;

-- name: rate_arrivals
SELECT key, arrival FROM flow_rate_limits WHERE project = %(project)s AND key = ANY(%(keys)s);

-- name: set_arrival
INSERT INTO flow_rate_limits (project, key, arrival) VALUES (%(project)s, %(key)s, %(arrival)s)
ON CONFLICT (project, key) DO UPDATE SET arrival = excluded.arrival;

-- name: throttle
-- A message its rate limit holds back: scheduled for its turn (out of the way of claims, as a
-- delayed message is, and holding its group), and shown throttled until then.
UPDATE messages SET state = 'scheduled', available_at = %(available_at)s, held = 'throttled', lease_owner = NULL,
                    lease_expires_at = NULL
WHERE seq = %(seq)s;

-- name: lease
UPDATE messages SET state = 'leased', lease_owner = %(owner)s, lease_expires_at = %(until)s, held = NULL
WHERE seq = ANY(%(seqs)s)
RETURNING *;

-- name: extend_leases
UPDATE messages SET lease_expires_at = %(until)s
WHERE project = %(project)s AND id = ANY(%(ids)s) AND state = 'leased' AND lease_owner = %(owner)s;

-- name: release
UPDATE messages SET state = 'ready', lease_owner = NULL, lease_expires_at = NULL
WHERE project = %(project)s AND id = ANY(%(ids)s) AND state = 'leased' AND lease_owner = %(owner)s;

-- name: ack
UPDATE messages SET state = %(state)s, lease_owner = NULL, lease_expires_at = NULL
WHERE project = %(project)s AND id = %(id)s AND state = 'leased' AND lease_owner = %(owner)s;

-- name: ack_bulk
UPDATE messages AS m SET state = a.state, lease_owner = NULL, lease_expires_at = NULL
FROM unnest(%(project)b::text[], %(id)b::text[], %(owner)b::text[], %(state)b::text[]) AS a (project, id, owner, state)
WHERE m.project = a.project AND m.id = a.id AND m.state = 'leased' AND m.lease_owner = a.owner;

-- name: retry
UPDATE messages
SET state = %(state)s, attempts = attempts + 1, errors = (errors::jsonb || jsonb_build_array(%(error)s::jsonb))::text,
    available_at = %(available_at)s, lease_owner = NULL, lease_expires_at = NULL, blocking = %(blocking)s,
    throttled = false
WHERE project = %(project)s AND id = %(id)s AND state = 'leased' AND lease_owner = %(owner)s;

-- name: defer
-- give a leased message back until a time without spending an attempt (throttled)
UPDATE messages
SET state = 'ready', available_at = %(available_at)s, lease_owner = NULL, lease_expires_at = NULL,
    throttled = true, deferrals = deferrals + %(counted)s
WHERE project = %(project)s AND id = %(id)s AND state = 'leased' AND lease_owner = %(owner)s;

-- name: take_rate
-- a turn of a rate limiter (GCRA): taken when it starts at most max_wait after now; the new time
-- it returns is the turn's start plus the interval (no row: the turn was not taken)
INSERT INTO rate_limits AS r (project, key, tat)
SELECT %(project)s, %(key)s, GREATEST(%(now)s, %(not_before)s) + %(interval)s
WHERE GREATEST(%(now)s, %(not_before)s) - %(now)s <= %(max_wait)s
ON CONFLICT (project, key) DO UPDATE SET tat = GREATEST(r.tat, %(now)s, %(not_before)s) + %(interval)s
WHERE GREATEST(r.tat, %(now)s, %(not_before)s) - %(now)s <= %(max_wait)s
RETURNING tat;

-- name: rate_time
SELECT tat FROM rate_limits WHERE project = %(project)s AND key = %(key)s;

-- name: get_message
-- with `held` as a user sees it: a ready, due message whose concurrency key has no slot free waits
-- for one; one whose rate key's next turn is ahead (the claims skip it) is throttled
SELECT m.*, CASE WHEN m.state = 'ready' AND m.available_at <= %(now)s THEN
         CASE WHEN m.concurrency_key IS NOT NULL AND (
                SELECT count(*) FROM messages AS l
                WHERE l.project = m.project AND l.concurrency_key = m.concurrency_key
                  AND l.state = 'leased' AND l.lease_expires_at > %(now)s) >= m.concurrency_limit
              THEN 'waiting_for_slot'
              WHEN m.rate_key IS NOT NULL AND EXISTS (
                SELECT 1 FROM flow_rate_limits AS r
                WHERE r.project = m.project AND r.key = m.rate_key AND r.arrival > %(now)s)
              THEN 'throttled' END
       ELSE m.held END AS held_now
FROM messages AS m WHERE m.project = %(project)s AND m.id = %(id)s;

-- name: held_stats
-- Messages held back, per queue: throttled ones (scheduled by their rate limit, given back by a
-- target until available_at, or due while their rate key's next turn is ahead) and ready, due
-- ones whose concurrency key has no slot free
SELECT m.queue,
       CASE WHEN m.state = 'scheduled' OR m.available_at > %(now)s OR (m.rate_key IS NOT NULL AND EXISTS (
              SELECT 1 FROM flow_rate_limits AS r
              WHERE r.project = m.project AND r.key = m.rate_key AND r.arrival > %(now)s))
            THEN 'throttled' ELSE 'waiting_for_slot' END AS held,
       count(*) AS n, min(m.created_at) AS oldest
FROM messages AS m
WHERE m.project = %(project)s
  AND ((m.state = 'scheduled' AND m.held = 'throttled')
       OR (m.state = 'ready' AND m.throttled AND m.available_at > %(now)s)
       OR (m.state = 'ready' AND m.rate_key IS NOT NULL AND m.available_at <= %(now)s AND EXISTS (
             SELECT 1 FROM flow_rate_limits AS r
             WHERE r.project = m.project AND r.key = m.rate_key AND r.arrival > %(now)s))
       OR (m.state = 'ready' AND m.concurrency_key IS NOT NULL AND m.available_at <= %(now)s AND (
             SELECT count(*) FROM messages AS l
             WHERE l.project = m.project AND l.concurrency_key = m.concurrency_key
               AND l.state = 'leased' AND l.lease_expires_at > %(now)s) >= m.concurrency_limit))
GROUP BY m.queue, 2;

-- name: queue_depth
-- a scheduled message holding a debounce burst is counted as debounced (queue.MessageState)
SELECT queue, CASE WHEN state = 'scheduled' AND debounce_key IS NOT NULL THEN 'debounced' ELSE state END AS state,
       count(*) AS n
FROM messages WHERE project = %(project)s GROUP BY 1, 2;

-- name: queue_stats
-- each half reads one partial index (open messages, dead ones): the done history is never scanned
SELECT queue, state, count(*) AS n, min(created_at) AS oldest FROM messages
WHERE project = %(project)s AND state IN ('ready', 'leased') GROUP BY queue, state
UNION ALL
SELECT queue, state, count(*) AS n, min(created_at) AS oldest FROM messages
WHERE project = %(project)s AND state = 'dead' GROUP BY queue, state;

-- name: group_stats
-- open messages per FIFO group (the open-messages index), each with the dead message that blocks
-- the group, looked up on the group index
SELECT * FROM (
SELECT m.queue, m.group_key, count(*) AS n, min(m.created_at) AS oldest,
       (SELECT h.id FROM messages AS h
        WHERE h.project = m.project AND h.queue = m.queue AND h.group_key = m.group_key
          AND h.state NOT IN ('done', 'unmatched') AND h.state = 'dead' AND h.blocking = true
        ORDER BY h.seq LIMIT 1) AS blocked_by
FROM messages AS m
WHERE m.project = %(project)s AND m.state IN ('ready', 'leased') AND m.group_key IS NOT NULL
GROUP BY m.project, m.queue, m.group_key
) AS g
ORDER BY blocked_by IS NULL, oldest
LIMIT %(limit)s;

-- name: dead_letters
SELECT * FROM messages
WHERE project = %(project)s AND state = 'dead'
  AND (%(queue)s::text IS NULL OR queue = %(queue)s)
  AND (%(group_key)s::text IS NULL OR group_key = %(group_key)s)
  AND (%(name)s::text IS NULL OR body::jsonb->>'handler' = %(name)s OR body::jsonb->>'source' = %(name)s)
  AND id > %(after)s
ORDER BY id LIMIT %(limit)s;

-- name: redrive
UPDATE messages
SET state = 'ready', attempts = 0, available_at = %(now)s, blocking = false, deferrals = 0, throttled = false,
    config_version = coalesce(%(config_version)s, config_version)
WHERE project = %(project)s AND id = %(id)s AND state = 'dead';

-- name: save_draft
INSERT INTO drafts (project, text, file, updated_at) VALUES (%(project)s, %(text)s, %(file)s, now())
ON CONFLICT (project) DO UPDATE SET text = excluded.text, file = excluded.file, updated_at = excluded.updated_at;

-- name: get_draft
SELECT text, file FROM drafts WHERE project = %(project)s;

-- name: lock_versions
SELECT pg_advisory_xact_lock(hashtext('flowbus config ' || %(project)s));

-- name: next_version
SELECT coalesce(max(number), 0) + 1 AS number FROM config_versions WHERE project = %(project)s;

-- name: insert_version
INSERT INTO config_versions (project, number, text, file, content_hash, created_at, summary)
VALUES (%(project)s, %(number)s, %(text)s, %(file)s, %(content_hash)s, %(created_at)s, %(summary)s);

-- name: insert_manifest
INSERT INTO manifests (project, version, routes, handlers) VALUES (%(project)s, %(version)s, %(routes)s, %(handlers)s);

-- name: insert_outbox
INSERT INTO config_outbox (project, version, created_at) VALUES (%(project)s, %(version)s, now());

-- name: versions
SELECT number, text, file, content_hash, created_at, summary FROM config_versions
WHERE project = %(project)s ORDER BY number;

-- name: get_version
SELECT number, text, file, content_hash, created_at, summary FROM config_versions
WHERE project = %(project)s AND number = %(number)s;

-- name: pending_outbox_peek
SELECT 1 FROM config_outbox WHERE project = %(project)s AND processed_at IS NULL LIMIT 1;

-- name: pending_outbox
SELECT id, version FROM config_outbox WHERE project = %(project)s AND processed_at IS NULL ORDER BY id FOR UPDATE;

-- name: activate
INSERT INTO active_config (project, version, activated_at) VALUES (%(project)s, %(version)s, now())
ON CONFLICT (project) DO UPDATE SET version = excluded.version, activated_at = excluded.activated_at;

-- name: outbox_done
UPDATE config_outbox SET processed_at = now() WHERE id = %(id)s;

-- name: active_version
SELECT version FROM active_config WHERE project = %(project)s;

-- name: get_manifest
SELECT version, routes, handlers FROM manifests WHERE project = %(project)s AND version = %(version)s;

-- name: projects
SELECT DISTINCT project FROM config_versions ORDER BY project;

-- name: insert_key
INSERT INTO api_keys (project, id, name, scopes, secret_hash, created_at)
VALUES (%(project)s, %(id)s, %(name)s, %(scopes)s, %(secret_hash)s, %(created_at)s);

-- name: get_key
SELECT * FROM api_keys WHERE project = %(project)s AND id = %(id)s;

-- name: list_keys
SELECT * FROM api_keys WHERE project = %(project)s ORDER BY created_at, id;

-- name: revoke_key
UPDATE api_keys SET revoked_at = now() WHERE project = %(project)s AND id = %(id)s AND revoked_at IS NULL;

-- name: find_key
-- any project's key by id (ids are random and unique): only to answer 403 rather than 401
SELECT * FROM api_keys WHERE id = %(id)s AND %(project)s::text IS NOT NULL;

-- name: advance_schedule
-- Moves a schedule's last tick forward to the tick given; a row comes back only when it moved (a
-- worker that finds it there or later already has its answer: another worker fired the tick).
INSERT INTO schedule_ticks (project, schedule, tick) VALUES (%(project)s, %(schedule)s, %(tick)s)
ON CONFLICT (project, schedule) DO UPDATE SET tick = excluded.tick WHERE schedule_ticks.tick < excluded.tick
RETURNING tick;

-- name: schedule_ticks
SELECT schedule, tick FROM schedule_ticks WHERE project = %(project)s;

-- Retention (flowbus.retention): each purge is one batch, taken oldest first from an index, so
-- that a sweep holds the write lock for a moment at a time. Run ids and event ids order by time.

-- name: purge_events
DELETE FROM events WHERE project = %(project)s AND id IN (
    SELECT id FROM events WHERE project = %(project)s AND id < %(below)s ORDER BY id LIMIT %(limit)s);

-- name: purgeable_events
SELECT count(*) AS n FROM events WHERE project = %(project)s AND id < %(below)s;

-- name: purge_runs
DELETE FROM runs WHERE project = %(project)s AND id IN (
    SELECT id FROM runs WHERE project = %(project)s AND id < %(below)s ORDER BY id LIMIT %(limit)s);

-- name: purgeable_runs
SELECT count(*) AS n FROM runs WHERE project = %(project)s AND id < %(below)s;

-- name: runs_with_steps
-- the runs whose step runs are past their age and still held: those after the sweep's mark
SELECT id, steps FROM runs WHERE project = %(project)s AND id > %(after)s AND id < %(below)s ORDER BY id LIMIT %(limit)s;

-- name: purgeable_steps
SELECT count(*) AS n FROM runs WHERE project = %(project)s AND id > %(after)s AND id < %(below)s;

-- name: expire_steps
UPDATE runs SET steps = %(steps)s WHERE project = %(project)s AND id = %(id)s;

-- name: steps_through
SELECT steps_through FROM retention_sweeps WHERE project = %(project)s;

-- name: mark_steps_through
INSERT INTO retention_sweeps (project, owner, lease_expires_at, steps_through) VALUES (%(project)s, '', 0, %(through)s)
ON CONFLICT (project) DO UPDATE SET steps_through = excluded.steps_through;

-- name: forget_dedup_of_messages
-- the de-duplication entries of the messages purge_messages removes next, once expired
DELETE FROM dedup WHERE project = %(project)s AND expires_at < %(now)s AND (queue, dedup_id) IN (
    SELECT queue, dedup_id FROM (
        SELECT seq, queue, dedup_id, created_at, available_at FROM messages
        WHERE project = %(project)s AND state IN ('done', 'unmatched') ORDER BY seq LIMIT %(limit)s) AS oldest
    WHERE created_at < %(before)s AND available_at < %(before_s)s AND dedup_id IS NOT NULL);

-- name: forget_dedup_of_dead_letters
DELETE FROM dedup WHERE project = %(project)s AND expires_at < %(now)s AND (queue, dedup_id) IN (
    SELECT queue, dedup_id FROM messages WHERE project = %(project)s AND state = 'dead' AND NOT blocking
      AND created_at < %(before)s AND available_at < %(before_s)s AND dedup_id IS NOT NULL ORDER BY seq LIMIT %(limit)s);

-- name: purge_messages
-- the oldest finished messages (their own index), of which those sent before the cut: a bounded
-- walk even when none is due
DELETE FROM messages WHERE seq IN (
    SELECT seq FROM (
        SELECT seq, created_at, available_at FROM messages
        WHERE project = %(project)s AND state IN ('done', 'unmatched') ORDER BY seq LIMIT %(limit)s) AS oldest
    WHERE created_at < %(before)s AND available_at < %(before_s)s);

-- name: purgeable_messages
SELECT count(*) AS n FROM messages
WHERE project = %(project)s AND state IN ('done', 'unmatched') AND created_at < %(before)s AND available_at < %(before_s)s;

-- name: purge_dead_letters
-- never a dead message that blocks its group: removing it would let the group go on unseen
DELETE FROM messages WHERE seq IN (
    SELECT seq FROM messages WHERE project = %(project)s AND state = 'dead' AND NOT blocking
      AND created_at < %(before)s AND available_at < %(before_s)s ORDER BY seq LIMIT %(limit)s);

-- name: purgeable_dead_letters
SELECT count(*) AS n FROM messages
WHERE project = %(project)s AND state = 'dead' AND NOT blocking AND created_at < %(before)s AND available_at < %(before_s)s;

-- name: kept
-- the ids of events and runs tell when they were made; each kind read from its own index
SELECT 'events' AS kind, count(*) AS n, min(id) AS oldest_id, NULL::timestamptz AS oldest FROM events WHERE project = %(project)s
UNION ALL
SELECT 'runs', count(*), min(id), NULL FROM runs WHERE project = %(project)s
UNION ALL
SELECT 'steps', count(*), min(id), NULL FROM runs
WHERE project = %(project)s AND id > coalesce((SELECT steps_through FROM retention_sweeps WHERE project = %(project)s), '')
UNION ALL
SELECT 'messages', count(*), NULL, min(created_at) FROM messages
WHERE project = %(project)s AND state IN ('done', 'unmatched')
UNION ALL
SELECT 'dead_letters', count(*), NULL, min(created_at) FROM messages WHERE project = %(project)s AND state = 'dead';

-- name: take_sweep
INSERT INTO retention_sweeps (project, owner, lease_expires_at) VALUES (%(project)s, %(owner)s, %(expires_at)s)
ON CONFLICT (project) DO UPDATE SET owner = excluded.owner, lease_expires_at = excluded.lease_expires_at
WHERE retention_sweeps.owner = excluded.owner OR retention_sweeps.lease_expires_at < %(now)s;
