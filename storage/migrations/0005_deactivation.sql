-- Deactivation: a person who leaves keeps their row, so their name stays on every page,
-- circulation and meeting they took part in, but cannot sign in and is left out of the
-- directory, the pickers, the board and department fan-out.

ALTER TABLE users ADD COLUMN deactivated_at timestamptz;

-- Ending every session of one person (deactivation, a new password) reads only the open ones.
CREATE INDEX sessions_user_open ON sessions (user_id) WHERE revoked_at IS NULL;
