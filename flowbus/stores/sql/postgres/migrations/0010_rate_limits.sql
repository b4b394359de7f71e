-- Shared rate limits (GCRA): per project and key (a target's name), the time its next turn is free
-- (seconds since the epoch). A caller takes a turn by moving that time forward in one statement.

CREATE TABLE rate_limits (
    project text NOT NULL,
    key text NOT NULL,
    tat double precision NOT NULL,
    PRIMARY KEY (project, key)
);

-- A message given back without spending an attempt (a rate limit, a server's Retry-After) is
-- `throttled` until it is due; `deferrals` counts the times a server's Retry-After gave it back.
ALTER TABLE messages ADD COLUMN deferrals integer NOT NULL DEFAULT 0;
ALTER TABLE messages ADD COLUMN throttled boolean NOT NULL DEFAULT false;
