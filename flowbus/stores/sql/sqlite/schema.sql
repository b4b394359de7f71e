-- The whole schema as the migrations leave it (a test holds them to each other).

CREATE TABLE entities (
    project TEXT NOT NULL,
    entity TEXT NOT NULL,
    key TEXT NOT NULL,
    data TEXT NOT NULL,
    version INTEGER NOT NULL,
    PRIMARY KEY (project, entity, key)
) WITHOUT ROWID;

CREATE TABLE events (
    project TEXT NOT NULL,
    id TEXT NOT NULL,
    type TEXT NOT NULL,
    version INTEGER NOT NULL,
    source TEXT NOT NULL,
    time TEXT NOT NULL,
    data TEXT NOT NULL,
    correlation_id TEXT NOT NULL,
    causation_id TEXT,
    depth INTEGER NOT NULL,
    PRIMARY KEY (project, id)
) WITHOUT ROWID;

CREATE INDEX events_by_correlation ON events (project, correlation_id, id);

CREATE TABLE chain_counts (
    project TEXT NOT NULL,
    correlation_id TEXT NOT NULL,
    events INTEGER NOT NULL,
    PRIMARY KEY (project, correlation_id)
) WITHOUT ROWID;

CREATE TRIGGER events_are_not_updated BEFORE UPDATE ON events
BEGIN
    SELECT RAISE(ABORT, 'event instances are immutable');
END;

CREATE TABLE runs (
    project TEXT NOT NULL,
    id TEXT NOT NULL,
    flow TEXT NOT NULL,
    trigger TEXT NOT NULL,
    status TEXT NOT NULL,
    started_at TEXT NOT NULL,
    duration_s REAL NOT NULL,
    inputs TEXT NOT NULL,
    outputs TEXT NOT NULL,
    steps TEXT NOT NULL,
    error TEXT,
    handler TEXT,
    event_id TEXT,
    message_id TEXT,
    parent_run_id TEXT,
    config_version INTEGER,
    attempt INTEGER NOT NULL,
    PRIMARY KEY (project, id)
) WITHOUT ROWID;

CREATE INDEX runs_by_event ON runs (project, event_id) WHERE event_id IS NOT NULL;
CREATE INDEX runs_by_message ON runs (project, message_id) WHERE message_id IS NOT NULL;
CREATE INDEX runs_by_parent ON runs (project, parent_run_id) WHERE parent_run_id IS NOT NULL;

CREATE TABLE step_journal (
    project TEXT NOT NULL,
    execution_key TEXT NOT NULL,
    step_key TEXT NOT NULL,
    output TEXT NOT NULL,
    PRIMARY KEY (project, execution_key, step_key)
) WITHOUT ROWID;

CREATE TABLE messages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    project TEXT NOT NULL,
    id TEXT NOT NULL UNIQUE,
    queue TEXT NOT NULL,
    kind TEXT NOT NULL,
    body TEXT NOT NULL,
    group_key TEXT,
    dedup_id TEXT,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    config_version INTEGER,
    created_at TEXT NOT NULL,
    available_at REAL NOT NULL,
    lease_owner TEXT,
    lease_expires_at REAL,
    errors TEXT NOT NULL DEFAULT '[]',
    blocking INTEGER NOT NULL DEFAULT 0,
    trace_context TEXT,
    priority INTEGER NOT NULL DEFAULT 5,
    concurrency_key TEXT,
    concurrency_limit INTEGER,
    rate_key TEXT,
    rate_interval_s REAL,
    held TEXT,
    deferrals INTEGER NOT NULL DEFAULT 0,
    throttled INTEGER NOT NULL DEFAULT 0,
    debounce_key TEXT,
    debounce_deadline REAL,
    debounced INTEGER NOT NULL DEFAULT 0
);

CREATE INDEX messages_open ON messages (project, priority DESC, seq) WHERE state IN ('ready', 'leased');
CREATE INDEX messages_leased_by_key ON messages (project, concurrency_key, lease_expires_at)
WHERE state = 'leased' AND concurrency_key IS NOT NULL;
CREATE INDEX messages_by_group ON messages (project, queue, group_key, seq)
WHERE state NOT IN ('done', 'unmatched') AND group_key IS NOT NULL;
CREATE INDEX messages_dead ON messages (project, seq) WHERE state = 'dead';
CREATE INDEX messages_finished ON messages (project, seq) WHERE state IN ('done', 'unmatched');

CREATE TABLE dedup (
    project TEXT NOT NULL,
    queue TEXT NOT NULL,
    dedup_id TEXT NOT NULL,
    message_id TEXT NOT NULL,
    expires_at REAL NOT NULL,
    PRIMARY KEY (project, queue, dedup_id)
) WITHOUT ROWID;

CREATE TABLE drafts (
    project TEXT PRIMARY KEY,
    text TEXT NOT NULL,
    file TEXT NOT NULL,
    updated_at TEXT NOT NULL
);

CREATE TABLE config_versions (
    project TEXT NOT NULL,
    number INTEGER NOT NULL,
    text TEXT NOT NULL,
    file TEXT NOT NULL,
    content_hash TEXT NOT NULL,
    created_at TEXT NOT NULL,
    summary TEXT NOT NULL,
    PRIMARY KEY (project, number)
);

CREATE TRIGGER config_versions_are_immutable BEFORE UPDATE ON config_versions
BEGIN
    SELECT RAISE(ABORT, 'config versions are immutable');
END;

CREATE TABLE config_outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    project TEXT NOT NULL,
    version INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    processed_at TEXT
);

CREATE INDEX config_outbox_pending ON config_outbox (project, id) WHERE processed_at IS NULL;

CREATE TABLE manifests (
    project TEXT NOT NULL,
    version INTEGER NOT NULL,
    routes TEXT NOT NULL,
    handlers TEXT NOT NULL,
    PRIMARY KEY (project, version)
);

CREATE TABLE active_config (
    project TEXT PRIMARY KEY,
    version INTEGER NOT NULL,
    activated_at TEXT NOT NULL
);
CREATE TABLE api_keys (
    project TEXT NOT NULL,
    id TEXT NOT NULL,
    name TEXT NOT NULL,
    scopes TEXT NOT NULL,
    secret_hash TEXT NOT NULL,
    created_at TEXT NOT NULL,
    revoked_at TEXT,
    PRIMARY KEY (project, id)
) WITHOUT ROWID;

CREATE TABLE retention_sweeps (
    project TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    lease_expires_at REAL NOT NULL,
    steps_through TEXT NOT NULL DEFAULT ''
) WITHOUT ROWID;

CREATE TABLE schedule_ticks (
    project TEXT NOT NULL,
    schedule TEXT NOT NULL,
    tick REAL NOT NULL,
    PRIMARY KEY (project, schedule)
) WITHOUT ROWID;

CREATE INDEX messages_scheduled ON messages (project, available_at) WHERE state = 'scheduled';

CREATE TABLE flow_rate_limits (
    project TEXT NOT NULL,
    key TEXT NOT NULL,
    arrival REAL NOT NULL,
    PRIMARY KEY (project, key)
) WITHOUT ROWID;
CREATE TABLE rate_limits (
    project TEXT NOT NULL,
    key TEXT NOT NULL,
    tat REAL NOT NULL,
    PRIMARY KEY (project, key)
) WITHOUT ROWID;
CREATE UNIQUE INDEX messages_debounce ON messages (project, queue, debounce_key)
WHERE state = 'scheduled' AND debounce_key IS NOT NULL;
