-- API keys: only a hash of each secret is kept.

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
