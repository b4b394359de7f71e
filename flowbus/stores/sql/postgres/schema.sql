-- The whole schema as the migrations leave it (a test holds them to each other).

CREATE TABLE entities (
    project text NOT NULL,
    entity text NOT NULL,
    key text NOT NULL,
    data text NOT NULL,
    version bigint NOT NULL,
    PRIMARY KEY (project, entity, key)
);

CREATE TABLE events (
    project text NOT NULL,
    id text NOT NULL,
    type text NOT NULL,
    version integer NOT NULL,
    source text NOT NULL,
    time timestamptz NOT NULL,
    data text NOT NULL,
    correlation_id text NOT NULL,
    causation_id text,
    depth integer NOT NULL,
    PRIMARY KEY (project, id)
);

CREATE INDEX events_by_correlation ON events (project, correlation_id, id);

CREATE TABLE chain_counts (
    project text NOT NULL,
    correlation_id text NOT NULL,
    events bigint NOT NULL,
    PRIMARY KEY (project, correlation_id)
);

CREATE FUNCTION flowbus_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% rows are immutable: % refused', TG_TABLE_NAME, TG_OP;
END;
$$;

CREATE TRIGGER events_are_immutable BEFORE UPDATE ON events
    FOR EACH ROW EXECUTE FUNCTION flowbus_refuse_change();

CREATE TABLE runs (
    project text NOT NULL,
    id text NOT NULL,
    flow text NOT NULL,
    trigger text NOT NULL,
    status text NOT NULL,
    started_at timestamptz NOT NULL,
    duration_s double precision NOT NULL,
    inputs text NOT NULL,
    outputs text NOT NULL,
    steps text NOT NULL,
    error text,
    handler text,
    event_id text,
    message_id text,
    parent_run_id text,
    config_version integer,
    attempt integer NOT NULL,
    PRIMARY KEY (project, id)
);

CREATE INDEX runs_by_event ON runs (project, event_id) WHERE event_id IS NOT NULL;
CREATE INDEX runs_by_message ON runs (project, message_id) WHERE message_id IS NOT NULL;
CREATE INDEX runs_by_parent ON runs (project, parent_run_id) WHERE parent_run_id IS NOT NULL;

CREATE TABLE step_journal (
    project text NOT NULL,
    execution_key text NOT NULL,
    step_key text NOT NULL,
    output text NOT NULL,
    PRIMARY KEY (project, execution_key, step_key)
);

CREATE TABLE messages (
    seq bigserial PRIMARY KEY,
    project text NOT NULL,
    id text NOT NULL UNIQUE,
    queue text NOT NULL,
    kind text NOT NULL,
    body text NOT NULL,
    group_key text,
    dedup_id text,
    state text NOT NULL,
    attempts integer NOT NULL DEFAULT 0,
    config_version integer,
    created_at timestamptz NOT NULL,
    available_at double precision NOT NULL,
    lease_owner text,
    lease_expires_at double precision,
    errors text NOT NULL DEFAULT '[]',
    blocking boolean NOT NULL DEFAULT false,
    trace_context text,
    priority smallint NOT NULL DEFAULT 5,
    concurrency_key text,
    concurrency_limit integer,
    rate_key text,
    rate_interval_s double precision,
    held text,
    deferrals integer NOT NULL DEFAULT 0,
    throttled boolean NOT NULL DEFAULT false,
    debounce_key text,
    debounce_deadline double precision,
    debounced integer NOT NULL DEFAULT 0
);

CREATE INDEX messages_open ON messages (project, priority DESC, seq) WHERE state IN ('ready', 'leased');
CREATE INDEX messages_leased_by_key ON messages (project, concurrency_key, lease_expires_at)
WHERE state = 'leased' AND concurrency_key IS NOT NULL;
CREATE INDEX messages_by_group ON messages (project, queue, group_key, seq)
WHERE state NOT IN ('done', 'unmatched') AND group_key IS NOT NULL;
CREATE INDEX messages_dead ON messages (project, seq) WHERE state = 'dead';
CREATE INDEX messages_finished ON messages (project, seq) WHERE state IN ('done', 'unmatched');

CREATE TABLE dedup (
    project text NOT NULL,
    queue text NOT NULL,
    dedup_id text NOT NULL,
    message_id text NOT NULL,
    expires_at double precision NOT NULL,
    PRIMARY KEY (project, queue, dedup_id)
);

CREATE TABLE drafts (
    project text PRIMARY KEY,
    text text NOT NULL,
    file text NOT NULL,
    updated_at timestamptz NOT NULL
);

CREATE TABLE config_versions (
    project text NOT NULL,
    number integer NOT NULL,
    text text NOT NULL,
    file text NOT NULL,
    content_hash text NOT NULL,
    created_at timestamptz NOT NULL,
    summary text NOT NULL,
    PRIMARY KEY (project, number)
);

CREATE TRIGGER config_versions_are_immutable BEFORE UPDATE OR DELETE ON config_versions
    FOR EACH ROW EXECUTE FUNCTION flowbus_refuse_change();

CREATE TABLE config_outbox (
    id bigserial PRIMARY KEY,
    project text NOT NULL,
    version integer NOT NULL,
    created_at timestamptz NOT NULL,
    processed_at timestamptz
);

CREATE INDEX config_outbox_pending ON config_outbox (project, id) WHERE processed_at IS NULL;

CREATE TABLE manifests (
    project text NOT NULL,
    version integer NOT NULL,
    routes text NOT NULL,
    handlers text NOT NULL,
    PRIMARY KEY (project, version)
);

CREATE TABLE active_config (
    project text PRIMARY KEY,
    version integer NOT NULL,
    activated_at timestamptz NOT NULL
);
CREATE TABLE api_keys (
    project text NOT NULL,
    id text NOT NULL,
    name text NOT NULL,
    scopes text NOT NULL,
    secret_hash text NOT NULL,
    created_at timestamptz NOT NULL,
    revoked_at timestamptz,
    PRIMARY KEY (project, id)
);

CREATE TABLE retention_sweeps (
    project text PRIMARY KEY,
    owner text NOT NULL,
    lease_expires_at double precision NOT NULL,
    steps_through text NOT NULL DEFAULT ''
);

CREATE TABLE schedule_ticks (
    project text NOT NULL,
    schedule text NOT NULL,
    tick double precision NOT NULL,
    PRIMARY KEY (project, schedule)
);

CREATE INDEX messages_scheduled ON messages (project, available_at) WHERE state = 'scheduled';

CREATE TABLE flow_rate_limits (
    project text NOT NULL,
    key text NOT NULL,
    arrival double precision NOT NULL,
    PRIMARY KEY (project, key)
);
CREATE TABLE rate_limits (
    project text NOT NULL,
    key text NOT NULL,
    tat double precision NOT NULL,
    PRIMARY KEY (project, key)
);
CREATE UNIQUE INDEX messages_debounce ON messages (project, queue, debounce_key)
WHERE state = 'scheduled' AND debounce_key IS NOT NULL;
