-- name: read_entity
SELECT data, version FROM entities WHERE project = :project AND entity = :entity AND key = :key;

-- name: list_entities
SELECT key, data FROM entities WHERE project = :project AND entity = :entity ORDER BY key LIMIT :limit;

-- name: entity_page
-- Records in key order above the key `after` (the last of the previous page), walking the
-- primary key. `where` is a JSON object of field -> text: a record matches when each of those
-- top-level fields has that text, as protocols.field_text says (a string as it is, an integer in
-- decimal, true/false, and a decimal, time or date, a one-key tagged object of codec.py, as the
-- text of its tag).
SELECT key, data, version FROM entities AS e
WHERE e.project = :project AND e.entity = :entity AND e.key > :after
  AND NOT EXISTS (
    SELECT 1 FROM json_each(:where) AS w
    WHERE NOT EXISTS (
      SELECT 1 FROM json_each(e.data) AS f
      WHERE f.key = w.key
        AND CASE f.type
              WHEN 'text' THEN f.atom
              WHEN 'integer' THEN CAST(f.atom AS TEXT)
              WHEN 'true' THEN 'true'
              WHEN 'false' THEN 'false'
              WHEN 'object' THEN (
                SELECT t.atom FROM json_each(f.value) AS t
                WHERE t.key IN ('$decimal', '$datetime', '$date') AND t.type = 'text'
                  AND (SELECT count(*) FROM json_each(f.value)) = 1)
            END = w.value))
ORDER BY e.key LIMIT :limit;

-- name: upsert_entity
INSERT INTO entities (project, entity, key, data, version) VALUES (:project, :entity, :key, :data, 1)
ON CONFLICT (project, entity, key) DO UPDATE SET data = excluded.data, version = entities.version + 1;

-- name: insert_entity
INSERT INTO entities (project, entity, key, data, version) VALUES (:project, :entity, :key, :data, 1)
ON CONFLICT DO NOTHING;

-- name: update_entity
UPDATE entities SET data = :data, version = version + 1
WHERE project = :project AND entity = :entity AND key = :key AND version = :expected;

-- name: delete_entity
DELETE FROM entities WHERE project = :project AND entity = :entity AND key = :key;

-- name: delete_entity_at
DELETE FROM entities WHERE project = :project AND entity = :entity AND key = :key AND version = :expected;

-- name: entity_exists
SELECT 1 FROM entities WHERE project = :project AND entity = :entity AND key = :key;

-- name: insert_event
INSERT INTO events (project, id, type, version, source, time, data, correlation_id, causation_id, depth)
VALUES (:project, :id, :type, :version, :source, :time, :data, :correlation_id, :causation_id, :depth);

-- name: get_event
SELECT id, type, version, source, time, data, correlation_id, causation_id, depth
FROM events WHERE project = :project AND id = :id;

-- name: get_events
SELECT id, type, version, source, time, data, correlation_id, causation_id, depth
FROM events WHERE project = :project AND id IN (SELECT value FROM json_each(:ids));

-- name: event_chain
SELECT id, type, version, source, time, data, correlation_id, causation_id, depth
FROM events WHERE project = :project AND correlation_id = :correlation_id ORDER BY id;

-- name: chain_events
SELECT events FROM chain_counts WHERE project = :project AND correlation_id = :correlation_id;

-- name: count_in_chain
INSERT INTO chain_counts (project, correlation_id, events) VALUES (:project, :correlation_id, :events)
ON CONFLICT (project, correlation_id) DO UPDATE SET events = chain_counts.events + excluded.events;

-- name: list_events
SELECT id, type, version, source, time, data, correlation_id, causation_id, depth
FROM events
WHERE project = :project AND id < :before
  AND (:type IS NULL OR type = :type)
  AND (:source IS NULL OR source = :source)
  AND (:correlation_id IS NULL OR correlation_id = :correlation_id)
  AND (:since IS NULL OR time >= :since)
  AND (:until IS NULL OR time < :until)
ORDER BY id DESC LIMIT :limit;

-- name: count_events
SELECT count(*) AS count FROM events WHERE project = :project;

-- name: insert_run
INSERT OR REPLACE INTO runs (project, id, flow, trigger, status, started_at, duration_s, inputs, outputs, steps,
                             error, handler, event_id, message_id, parent_run_id, config_version, attempt)
VALUES (:project, :id, :flow, :trigger, :status, :started_at, :duration_s, :inputs, :outputs, :steps,
        :error, :handler, :event_id, :message_id, :parent_run_id, :config_version, :attempt);

-- name: get_run
SELECT * FROM runs WHERE project = :project AND id = :id;

-- name: list_runs
SELECT * FROM runs
WHERE project = :project AND id < :before
  AND (:flow IS NULL OR flow = :flow)
  AND (:handler IS NULL OR handler = :handler)
  AND (:status IS NULL OR status = :status)
  AND (:trigger IS NULL OR trigger = :trigger)
  AND (:config_version IS NULL OR config_version = :config_version)
  AND (:source IS NULL
       OR EXISTS (SELECT 1 FROM messages AS m WHERE m.id = runs.message_id AND m.project = runs.project
                  AND m.kind = 'source' AND json_extract(m.body, '$.source') = :source)
       OR EXISTS (SELECT 1 FROM events AS e WHERE e.project = runs.project AND e.id = runs.event_id
                  AND e.source = :source))
  AND (:event_type IS NULL
       OR EXISTS (SELECT 1 FROM messages AS m WHERE m.id = runs.message_id AND m.project = runs.project
                  AND m.kind = 'source' AND json_extract(m.body, '$.type') = :event_type)
       OR EXISTS (SELECT 1 FROM events AS e WHERE e.project = runs.project AND e.id = runs.event_id
                  AND e.type = :event_type))
ORDER BY id DESC LIMIT :limit;

-- name: run_points
SELECT id, status, duration_s FROM runs WHERE project = :project AND id >= :since ORDER BY id DESC LIMIT :limit;

-- name: runs_for_event
SELECT * FROM runs WHERE project = :project AND event_id = :key ORDER BY started_at, id;

-- name: runs_for_message
SELECT * FROM runs WHERE project = :project AND message_id = :key ORDER BY started_at, id;

-- name: child_runs
SELECT * FROM runs WHERE project = :project AND parent_run_id = :key ORDER BY started_at, id;

-- name: journaled_output
SELECT output FROM step_journal WHERE project = :project AND execution_key = :execution_key AND step_key = :step_key;

-- name: journal_step
INSERT OR REPLACE INTO step_journal (project, execution_key, step_key, output)
VALUES (:project, :execution_key, :step_key, :output);

-- name: remember_dedup
-- The message id a de-duplication id stands for, unless one it stood for is still in its window;
-- insert_message then writes the message only if it won. Neither reads first, so a batch sends
-- them without waiting for an answer.
INSERT INTO dedup (project, queue, dedup_id, message_id, expires_at)
VALUES (:project, :queue, :dedup_id, :message_id, :expires_at)
ON CONFLICT (project, queue, dedup_id) DO UPDATE SET message_id = excluded.message_id, expires_at = excluded.expires_at
WHERE dedup.expires_at <= :now;

-- name: insert_message
-- A message without a de-duplication id, or one whose id remember_dedup gave to it.
INSERT INTO messages (project, id, queue, kind, body, group_key, dedup_id, state, attempts, config_version,
                      created_at, available_at, trace_context, priority, concurrency_key, concurrency_limit,
                      rate_key, rate_interval_s)
SELECT :project, :id, :queue, :kind, :body, :group_key, :dedup_id, :state, 0, :config_version,
       :created_at, :available_at, :trace_context, :priority, :concurrency_key, :concurrency_limit,
       :rate_key, :rate_interval_s
WHERE CAST(:dedup_id AS text) IS NULL
   OR EXISTS (SELECT 1 FROM dedup AS d
              WHERE d.project = :project AND d.queue = :queue AND d.dedup_id = :dedup_id
                AND d.message_id = :id);

-- name: dedup_messages
-- The message each of these de-duplication ids stands for, in these queues (on the key: an index
-- look-up each; pairs of the two lists that were not sent come back too and are not asked for).
SELECT queue, dedup_id, message_id FROM dedup
WHERE project = :project AND queue IN (SELECT value FROM json_each(:queues))
  AND dedup_id IN (SELECT value FROM json_each(:dedup_ids));

-- name: debounce_message
-- A debounced message (queue.Debounce): inserted scheduled, unless the scheduled message of its
-- burst is there; then that one takes its body (the latest event), its config version and trace
-- context, and its time moves to this one's, but never past the burst's deadline; and its count
-- goes up. One statement, so that concurrent senders of a key fold into one message (the unique
-- index of migration 0011 makes the second one update what the first inserted). Not read back.
INSERT INTO messages (project, id, queue, kind, body, group_key, dedup_id, state, attempts, config_version,
                      created_at, available_at, trace_context, debounce_key, debounce_deadline, debounced,
                      priority)
VALUES (:project, :id, :queue, :kind, :body, :group_key, NULL, 'scheduled', 0, :config_version,
        :created_at, :available_at, :trace_context, :debounce_key, :debounce_deadline, 1, :priority)
ON CONFLICT (project, queue, debounce_key) WHERE state = 'scheduled' AND debounce_key IS NOT NULL
DO UPDATE SET body = excluded.body, config_version = excluded.config_version, trace_context = excluded.trace_context,
    available_at = min(excluded.available_at, coalesce(messages.debounce_deadline, excluded.available_at)),
    debounced = messages.debounced + 1;

-- name: debounced_messages
-- The scheduled message of each of these bursts (on the unique index of migration 0011), read in
-- the transaction that sent to them: what a debounced message's id is, once folded.
SELECT queue, debounce_key, id FROM messages
WHERE project = :project AND state = 'scheduled' AND debounce_key IS NOT NULL
  AND queue IN (SELECT value FROM json_each(:queues)) AND debounce_key IN (SELECT value FROM json_each(:keys));

-- name: promote_due
-- Delayed messages that are due become ready (in the claim's transaction, before it looks).
UPDATE messages SET state = 'ready' WHERE project = :project AND state = 'scheduled' AND available_at <= :now;

-- name: claimable
-- Deliverable messages, by priority then oldest first: ready and due, or leased by a worker whose
-- lease ran out; a message with a group only when no earlier message of its group is open (or dead
-- and blocking); a message with a concurrency key only while its key has a slot free (its leased,
-- unexpired messages fewer than its limit); one with a rate key only when its key's next turn has
-- come (else the messages of a key at its rate filled every batch, each throttled in turn, and the
-- claims behind them came back empty). `limited`: it has a limit (see limited_candidates).
SELECT m.seq, m.concurrency_key IS NOT NULL OR m.rate_key IS NOT NULL AS limited FROM messages AS m
WHERE m.project = :project
  AND m.state IN ('ready', 'leased')
  AND m.queue IN (SELECT value FROM json_each(:queues))
  AND ((m.state = 'ready' AND m.available_at <= :now) OR (m.state = 'leased' AND m.lease_expires_at <= :now))
  AND (m.group_key IS NULL OR NOT EXISTS (
        SELECT 1 FROM messages AS h
        WHERE h.project = m.project AND h.queue = m.queue AND h.group_key = m.group_key
          AND h.state NOT IN ('done', 'unmatched') AND h.seq < m.seq
          AND (h.state <> 'dead' OR h.blocking = 1)))
  AND (m.concurrency_key IS NULL OR (
        SELECT count(*) FROM messages AS l
        WHERE l.project = m.project AND l.concurrency_key = m.concurrency_key
          AND l.state = 'leased' AND l.lease_expires_at > :now) < m.concurrency_limit)
  AND (m.rate_key IS NULL OR NOT EXISTS (
        SELECT 1 FROM flow_rate_limits AS r WHERE r.project = m.project AND r.key = m.rate_key AND r.arrival > :now))
ORDER BY m.priority DESC, m.seq
LIMIT :limit;

-- name: limited_candidates
-- The limits of a claim's candidates, in its order, for flowbus.limits.admit.
SELECT m.seq, m.concurrency_key, m.concurrency_limit, m.rate_key, m.rate_interval_s
FROM json_each(:seqs) AS c JOIN messages AS m ON m.seq = c.value
ORDER BY c.key;

-- name: leased_by_key
-- The slots taken of each of these concurrency keys: their leased, unexpired messages.
SELECT concurrency_key AS key, count(*) AS n FROM messages
WHERE project = :project AND concurrency_key IN (SELECT value FROM json_each(:keys))
  AND state = 'leased' AND lease_expires_at > :now
GROUP BY concurrency_key;

-- name: rate_arrivals
SELECT key, arrival FROM flow_rate_limits WHERE project = :project AND key IN (SELECT value FROM json_each(:keys));

-- name: set_arrival
INSERT INTO flow_rate_limits (project, key, arrival) VALUES (:project, :key, :arrival)
ON CONFLICT (project, key) DO UPDATE SET arrival = excluded.arrival;

-- name: throttle
-- A message its rate limit holds back: scheduled for its turn (out of the way of claims, as a
-- delayed message is, and holding its group), and shown throttled until then.
UPDATE messages SET state = 'scheduled', available_at = :available_at, held = 'throttled', lease_owner = NULL,
                    lease_expires_at = NULL
WHERE seq = :seq;

-- name: lease
UPDATE messages SET state = 'leased', lease_owner = :owner, lease_expires_at = :until, held = NULL
WHERE seq IN (SELECT value FROM json_each(:seqs))
RETURNING *;

-- name: extend_leases
UPDATE messages SET lease_expires_at = :until
WHERE project = :project AND id IN (SELECT value FROM json_each(:ids)) AND state = 'leased' AND lease_owner = :owner;

-- name: release
UPDATE messages SET state = 'ready', lease_owner = NULL, lease_expires_at = NULL
WHERE project = :project AND id IN (SELECT value FROM json_each(:ids)) AND state = 'leased' AND lease_owner = :owner;

-- name: ack
UPDATE messages SET state = :state, lease_owner = NULL, lease_expires_at = NULL
WHERE project = :project AND id = :id AND state = 'leased' AND lease_owner = :owner;

-- name: retry
UPDATE messages
SET state = :state, attempts = attempts + 1, errors = json_insert(errors, '$[#]', json(:error)),
    available_at = :available_at, lease_owner = NULL, lease_expires_at = NULL, blocking = :blocking,
    throttled = 0
WHERE project = :project AND id = :id AND state = 'leased' AND lease_owner = :owner;

-- name: defer
-- give a leased message back until a time without spending an attempt (throttled)
UPDATE messages
SET state = 'ready', available_at = :available_at, lease_owner = NULL, lease_expires_at = NULL,
    throttled = 1, deferrals = deferrals + :counted
WHERE project = :project AND id = :id AND state = 'leased' AND lease_owner = :owner;

-- name: take_rate
-- a turn of a rate limiter (GCRA): taken when it starts at most max_wait after now; the new time
-- it returns is the turn's start plus the interval (no row: the turn was not taken)
INSERT INTO rate_limits AS r (project, key, tat)
SELECT :project, :key, max(:now, :not_before) + :interval
WHERE max(:now, :not_before) - :now <= :max_wait
ON CONFLICT (project, key) DO UPDATE SET tat = max(r.tat, :now, :not_before) + :interval
WHERE max(r.tat, :now, :not_before) - :now <= :max_wait
RETURNING tat;

-- name: rate_time
SELECT tat FROM rate_limits WHERE project = :project AND key = :key;

-- name: get_message
-- with `held` as a user sees it: a ready, due message whose concurrency key has no slot free waits
-- for one; one whose rate key's next turn is ahead (the claims skip it) is throttled
SELECT m.*, CASE WHEN m.state = 'ready' AND m.available_at <= :now THEN
         CASE WHEN m.concurrency_key IS NOT NULL AND (
                SELECT count(*) FROM messages AS l
                WHERE l.project = m.project AND l.concurrency_key = m.concurrency_key
                  AND l.state = 'leased' AND l.lease_expires_at > :now) >= m.concurrency_limit
              THEN 'waiting_for_slot'
              WHEN m.rate_key IS NOT NULL AND EXISTS (
                SELECT 1 FROM flow_rate_limits AS r
                WHERE r.project = m.project AND r.key = m.rate_key AND r.arrival > :now)
              THEN 'throttled' END
       ELSE m.held END AS held_now
FROM messages AS m WHERE m.project = :project AND m.id = :id;

-- name: held_stats
-- Messages held back, per queue: throttled ones (scheduled by their rate limit, given back by a
-- target until available_at, or due while their rate key's next turn is ahead) and ready, due
-- ones whose concurrency key has no slot free
SELECT m.queue,
       CASE WHEN m.state = 'scheduled' OR m.available_at > :now OR (m.rate_key IS NOT NULL AND EXISTS (
              SELECT 1 FROM flow_rate_limits AS r
              WHERE r.project = m.project AND r.key = m.rate_key AND r.arrival > :now))
            THEN 'throttled' ELSE 'waiting_for_slot' END AS held,
       count(*) AS n, min(m.created_at) AS oldest
FROM messages AS m
WHERE m.project = :project
  AND ((m.state = 'scheduled' AND m.held = 'throttled')
       OR (m.state = 'ready' AND m.throttled = 1 AND m.available_at > :now)
       OR (m.state = 'ready' AND m.rate_key IS NOT NULL AND m.available_at <= :now AND EXISTS (
             SELECT 1 FROM flow_rate_limits AS r
             WHERE r.project = m.project AND r.key = m.rate_key AND r.arrival > :now))
       OR (m.state = 'ready' AND m.concurrency_key IS NOT NULL AND m.available_at <= :now AND (
             SELECT count(*) FROM messages AS l
             WHERE l.project = m.project AND l.concurrency_key = m.concurrency_key
               AND l.state = 'leased' AND l.lease_expires_at > :now) >= m.concurrency_limit))
GROUP BY m.queue, 2;

-- name: queue_depth
-- a scheduled message holding a debounce burst is counted as debounced (queue.MessageState)
SELECT queue, CASE WHEN state = 'scheduled' AND debounce_key IS NOT NULL THEN 'debounced' ELSE state END AS state,
       count(*) AS n
FROM messages WHERE project = :project GROUP BY 1, 2;

-- name: queue_stats
-- each half reads one partial index (open messages, dead ones): the done history is never scanned
SELECT queue, state, count(*) AS n, min(created_at) AS oldest FROM messages
WHERE project = :project AND state IN ('ready', 'leased') GROUP BY queue, state
UNION ALL
SELECT queue, state, count(*) AS n, min(created_at) AS oldest FROM messages
WHERE project = :project AND state = 'dead' GROUP BY queue, state;

-- name: group_stats
-- open messages per FIFO group (the open-messages index), each with the dead message that blocks
-- the group, looked up on the group index
SELECT * FROM (
SELECT m.queue, m.group_key, count(*) AS n, min(m.created_at) AS oldest,
       (SELECT h.id FROM messages AS h
        WHERE h.project = m.project AND h.queue = m.queue AND h.group_key = m.group_key
          AND h.state NOT IN ('done', 'unmatched') AND h.state = 'dead' AND h.blocking = 1
        ORDER BY h.seq LIMIT 1) AS blocked_by
FROM messages AS m
WHERE m.project = :project AND m.state IN ('ready', 'leased') AND m.group_key IS NOT NULL
GROUP BY m.project, m.queue, m.group_key
) AS g
ORDER BY blocked_by IS NULL, oldest
LIMIT :limit;

-- name: dead_letters
SELECT * FROM messages
WHERE project = :project AND state = 'dead'
  AND (:queue IS NULL OR queue = :queue)
  AND (:group_key IS NULL OR group_key = :group_key)
  AND (:name IS NULL OR json_extract(body, '$.handler') = :name OR json_extract(body, '$.source') = :name)
  AND id > :after
ORDER BY id LIMIT :limit;

-- name: redrive
UPDATE messages
SET state = 'ready', attempts = 0, available_at = :now, blocking = 0, deferrals = 0, throttled = 0,
    config_version = coalesce(:config_version, config_version)
WHERE project = :project AND id = :id AND state = 'dead';

-- name: save_draft
INSERT INTO drafts (project, text, file, updated_at) VALUES (:project, :text, :file, :now)
ON CONFLICT (project) DO UPDATE SET text = excluded.text, file = excluded.file, updated_at = excluded.updated_at;

-- name: get_draft
SELECT text, file FROM drafts WHERE project = :project;

-- name: next_version
SELECT coalesce(max(number), 0) + 1 AS number FROM config_versions WHERE project = :project;

-- name: insert_version
INSERT INTO config_versions (project, number, text, file, content_hash, created_at, summary)
VALUES (:project, :number, :text, :file, :content_hash, :created_at, :summary);

-- name: insert_manifest
INSERT INTO manifests (project, version, routes, handlers) VALUES (:project, :version, :routes, :handlers);

-- name: insert_outbox
INSERT INTO config_outbox (project, version, created_at) VALUES (:project, :version, :now);

-- name: versions
SELECT number, text, file, content_hash, created_at, summary FROM config_versions
WHERE project = :project ORDER BY number;

-- name: get_version
SELECT number, text, file, content_hash, created_at, summary FROM config_versions
WHERE project = :project AND number = :number;

-- name: pending_outbox_peek
SELECT 1 FROM config_outbox WHERE project = :project AND processed_at IS NULL LIMIT 1;

-- name: pending_outbox
SELECT id, version FROM config_outbox WHERE project = :project AND processed_at IS NULL ORDER BY id;

-- name: activate
INSERT INTO active_config (project, version, activated_at) VALUES (:project, :version, :now)
ON CONFLICT (project) DO UPDATE SET version = excluded.version, activated_at = excluded.activated_at;

-- name: outbox_done
UPDATE config_outbox SET processed_at = :now WHERE id = :id;

-- name: active_version
SELECT version FROM active_config WHERE project = :project;

-- name: get_manifest
SELECT version, routes, handlers FROM manifests WHERE project = :project AND version = :version;

-- name: projects
SELECT DISTINCT project FROM config_versions ORDER BY project;

-- name: insert_key
INSERT INTO api_keys (project, id, name, scopes, secret_hash, created_at)
VALUES (:project, :id, :name, :scopes, :secret_hash, :created_at);

-- name: get_key
SELECT * FROM api_keys WHERE project = :project AND id = :id;

-- name: list_keys
SELECT * FROM api_keys WHERE project = :project ORDER BY created_at, id;

-- name: revoke_key
UPDATE api_keys SET revoked_at = :now WHERE project = :project AND id = :id AND revoked_at IS NULL;

-- name: find_key
-- any project's key by id (ids are random and unique): only to answer 403 rather than 401
SELECT * FROM api_keys WHERE id = :id AND :project IS NOT NULL;

-- name: advance_schedule
-- Moves a schedule's last tick forward to the tick given; a row comes back only when it moved (a
-- worker that finds it there or later already has its answer: another worker fired the tick).
INSERT INTO schedule_ticks (project, schedule, tick) VALUES (:project, :schedule, :tick)
ON CONFLICT (project, schedule) DO UPDATE SET tick = excluded.tick WHERE schedule_ticks.tick < excluded.tick
RETURNING tick;

-- name: schedule_ticks
SELECT schedule, tick FROM schedule_ticks WHERE project = :project;

-- Retention (flowbus.retention): each purge is one batch, taken oldest first from an index, so
-- that a sweep holds the write lock for a moment at a time. Run ids and event ids order by time.

-- name: purge_events
DELETE FROM events WHERE project = :project AND id IN (
    SELECT id FROM events WHERE project = :project AND id < :below ORDER BY id LIMIT :limit);

-- name: purgeable_events
SELECT count(*) AS n FROM events WHERE project = :project AND id < :below;

-- name: purge_runs
DELETE FROM runs WHERE project = :project AND id IN (
    SELECT id FROM runs WHERE project = :project AND id < :below ORDER BY id LIMIT :limit);

-- name: purgeable_runs
SELECT count(*) AS n FROM runs WHERE project = :project AND id < :below;

-- name: runs_with_steps
-- the runs whose step runs are past their age and still held: those after the sweep's mark
SELECT id, steps FROM runs WHERE project = :project AND id > :after AND id < :below ORDER BY id LIMIT :limit;

-- name: purgeable_steps
SELECT count(*) AS n FROM runs WHERE project = :project AND id > :after AND id < :below;

-- name: expire_steps
UPDATE runs SET steps = :steps WHERE project = :project AND id = :id;

-- name: steps_through
SELECT steps_through FROM retention_sweeps WHERE project = :project;

-- name: mark_steps_through
INSERT INTO retention_sweeps (project, owner, lease_expires_at, steps_through) VALUES (:project, '', 0, :through)
ON CONFLICT (project) DO UPDATE SET steps_through = excluded.steps_through;

-- name: forget_dedup_of_messages
-- the de-duplication entries of the messages purge_messages removes next, once expired
DELETE FROM dedup WHERE project = :project AND expires_at < :now AND (queue, dedup_id) IN (
    SELECT queue, dedup_id FROM (
        SELECT seq, queue, dedup_id, created_at, available_at FROM messages
        WHERE project = :project AND state IN ('done', 'unmatched') ORDER BY seq LIMIT :limit)
    WHERE created_at < :before AND available_at < :before_s AND dedup_id IS NOT NULL);

-- name: forget_dedup_of_dead_letters
DELETE FROM dedup WHERE project = :project AND expires_at < :now AND (queue, dedup_id) IN (
    SELECT queue, dedup_id FROM messages WHERE project = :project AND state = 'dead' AND blocking = 0
      AND created_at < :before AND available_at < :before_s AND dedup_id IS NOT NULL ORDER BY seq LIMIT :limit);

-- name: purge_messages
-- the oldest finished messages (their own index), of which those sent before the cut: a bounded
-- walk even when none is due
DELETE FROM messages WHERE seq IN (
    SELECT seq FROM (
        SELECT seq, created_at, available_at FROM messages
        WHERE project = :project AND state IN ('done', 'unmatched') ORDER BY seq LIMIT :limit)
    WHERE created_at < :before AND available_at < :before_s);

-- name: purgeable_messages
SELECT count(*) AS n FROM messages
WHERE project = :project AND state IN ('done', 'unmatched') AND created_at < :before AND available_at < :before_s;

-- name: purge_dead_letters
-- never a dead message that blocks its group: removing it would let the group go on unseen
DELETE FROM messages WHERE seq IN (
    SELECT seq FROM messages WHERE project = :project AND state = 'dead' AND blocking = 0
      AND created_at < :before AND available_at < :before_s ORDER BY seq LIMIT :limit);

-- name: purgeable_dead_letters
SELECT count(*) AS n FROM messages
WHERE project = :project AND state = 'dead' AND blocking = 0 AND created_at < :before AND available_at < :before_s;

-- name: kept
-- the ids of events and runs tell when they were made; each kind read from its own index
SELECT 'events' AS kind, count(*) AS n, min(id) AS oldest_id, NULL AS oldest FROM events WHERE project = :project
UNION ALL
SELECT 'runs', count(*), min(id), NULL FROM runs WHERE project = :project
UNION ALL
SELECT 'steps', count(*), min(id), NULL FROM runs
WHERE project = :project AND id > coalesce((SELECT steps_through FROM retention_sweeps WHERE project = :project), '')
UNION ALL
SELECT 'messages', count(*), NULL, min(created_at) FROM messages
WHERE project = :project AND state IN ('done', 'unmatched')
UNION ALL
SELECT 'dead_letters', count(*), NULL, min(created_at) FROM messages WHERE project = :project AND state = 'dead';

-- name: take_sweep
INSERT INTO retention_sweeps (project, owner, lease_expires_at) VALUES (:project, :owner, :expires_at)
ON CONFLICT (project) DO UPDATE SET owner = excluded.owner, lease_expires_at = excluded.lease_expires_at
WHERE retention_sweeps.owner = excluded.owner OR retention_sweeps.lease_expires_at < :now;

-- name: reclaim_space
-- free pages given back to the file system a bounded number at a time (auto_vacuum = INCREMENTAL;
-- a no-op in a file made before it was set: see docs/deploy.md); run as a script
PRAGMA incremental_vacuum(2048);
