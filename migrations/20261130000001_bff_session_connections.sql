-- Providers connected to a session after its first login (`connect`), each with its own sealed
-- tokens: a JSON array of {provider, claims, access_token_expires_at, key_id, sealed (base64)}.
-- In the session row itself, so the version check of an update covers them.
ALTER TABLE bff_sessions ADD COLUMN connections JSONB NOT NULL DEFAULT '[]'::jsonb;
