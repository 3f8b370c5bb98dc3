-- Session lifecycle: when the current session id was issued (renewal), the client binding taken
-- at login (a SHA-256, never the User-Agent or address), and a short user-agent summary for the
-- admin listing. Rows written before this migration read NULL id_issued_at as created_at.
ALTER TABLE bff_sessions
    ADD COLUMN id_issued_at   BIGINT,
    ADD COLUMN client_binding TEXT CHECK (client_binding ~ '^[0-9a-f]{64}$'),
    ADD COLUMN user_agent     TEXT CHECK (length(user_agent) <= 128);

-- Renewed session ids, kept for the grace period: the old key (a hash, like session_key), the
-- key the session moved to, and the nonce that with the old id (never stored) gives the new id.
CREATE TABLE bff_session_renewals (
    old_key    TEXT PRIMARY KEY CHECK (old_key ~ '^[0-9a-f]{64}$'),
    new_key    TEXT   NOT NULL CHECK (new_key ~ '^[0-9a-f]{64}$'),
    nonce      TEXT   NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX bff_session_renewals_by_expiry ON bff_session_renewals (expires_at);
