-- Sessions found by their connections' logins (back- and front-channel logout from a provider a
-- session only connected): `connections @> '[{"claims": {"iss": ..., "sid": ...}}]'`, and the
-- same with `sub`. jsonb_path_ops indexes exactly such containment queries.
CREATE INDEX IF NOT EXISTS bff_sessions_connections ON bff_sessions USING GIN (connections jsonb_path_ops);
-- Built in the migration's transaction: writes to the table wait while it builds (sessions are
-- short-lived rows, so the table stays small).
