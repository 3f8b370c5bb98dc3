-- bff-server store schema (PostgreSQL).
-- Times are Unix seconds (BIGINT), the domain's own unit, so no time zone conversion happens.

-- Sessions, keyed by the SHA-256 of the session id: the table never holds a cookie value.
CREATE TABLE bff_sessions (
    session_key             TEXT PRIMARY KEY CHECK (session_key ~ '^[0-9a-f]{64}$'),
    provider                TEXT   NOT NULL,
    issuer                  TEXT   NOT NULL,
    subject                 TEXT   NOT NULL,
    provider_session_id     TEXT,
    claims                  JSONB  NOT NULL,
    created_at              BIGINT NOT NULL,
    last_seen_at            BIGINT NOT NULL,
    idle_expires_at         BIGINT NOT NULL,
    absolute_expires_at     BIGINT NOT NULL,
    access_token_expires_at BIGINT,
    version                 BIGINT NOT NULL,
    key_id                  TEXT   NOT NULL,
    sealed_tokens           BYTEA  NOT NULL
);

-- Back-channel logout by (issuer, sid), admin and logout by (issuer, sub), and expiry sweeps.
CREATE INDEX bff_sessions_by_sid ON bff_sessions (issuer, provider_session_id)
    WHERE provider_session_id IS NOT NULL;
CREATE INDEX bff_sessions_by_subject ON bff_sessions (issuer, subject);
CREATE INDEX bff_sessions_by_expiry ON bff_sessions (LEAST(idle_expires_at, absolute_expires_at));

-- Authorization requests in flight, taken once.
CREATE TABLE bff_pending_logins (
    state      TEXT PRIMARY KEY,
    record     JSONB  NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX bff_pending_logins_by_expiry ON bff_pending_logins (expires_at);

-- One-time values (logout token jti, ...).
CREATE TABLE bff_replay (
    value      TEXT PRIMARY KEY,
    expires_at BIGINT NOT NULL
);
CREATE INDEX bff_replay_by_expiry ON bff_replay (expires_at);

-- Short leases (single-flight refresh). Expiry in milliseconds of the database clock.
CREATE TABLE bff_leases (
    name          TEXT PRIMARY KEY,
    owner         TEXT   NOT NULL,
    expires_at_ms BIGINT NOT NULL
);
