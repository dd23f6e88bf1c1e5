-- Foundation: organisation, sessions, the durable event stream, timers, presence and whereabouts.

CREATE TABLE departments (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    key         text NOT NULL UNIQUE,
    name        text NOT NULL,
    parent_id   bigint REFERENCES departments (id),
    sort        integer NOT NULL DEFAULT 0
);

CREATE TABLE users (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    account       text NOT NULL UNIQUE,
    name          text NOT NULL,
    department_id bigint REFERENCES departments (id),
    title         text NOT NULL DEFAULT '',
    phone         text,
    email         text,
    roles         text[] NOT NULL DEFAULT '{staff}',
    supervisor_id bigint REFERENCES users (id),
    password_hash text,
    -- name, account, pinyin and initials, phone: what directory search matches, lower-cased
    search_text   text NOT NULL DEFAULT '',
    last_seen     timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX users_department ON users (department_id);
CREATE INDEX users_phone ON users (phone) WHERE phone IS NOT NULL;

CREATE TABLE sessions (
    id          text PRIMARY KEY,
    user_id     bigint NOT NULL REFERENCES users (id),
    created_at  timestamptz NOT NULL DEFAULT now(),
    refreshed_at timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz,
    revoke_reason text
);
CREATE INDEX sessions_user ON sessions (user_id);
CREATE INDEX sessions_revoked ON sessions (revoked_at) WHERE revoked_at IS NOT NULL;

-- Every refresh token ever issued (by hash): a spent one presented again revokes its session.
CREATE TABLE refresh_tokens (
    token_hash  bytea PRIMARY KEY,
    session_id  text NOT NULL REFERENCES sessions (id) ON DELETE CASCADE,
    issued_at   timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    spent_at    timestamptz
);
CREATE INDEX refresh_tokens_session ON refresh_tokens (session_id);

-- One row per user: the last sequence number handed out and the last one acknowledged.
CREATE TABLE streams (
    user_id     bigint PRIMARY KEY REFERENCES users (id),
    seq         bigint NOT NULL DEFAULT 0,
    acked_seq   bigint NOT NULL DEFAULT 0,
    acked_at    timestamptz
);

CREATE TABLE events (
    user_id     bigint NOT NULL,
    seq         bigint NOT NULL,
    type        text NOT NULL,
    at          timestamptz NOT NULL,
    data        jsonb NOT NULL,
    PRIMARY KEY (user_id, seq)
);
CREATE INDEX events_at ON events (at);

CREATE TABLE idempotency (
    user_id       bigint NOT NULL,
    command       text NOT NULL,
    client_msg_id text NOT NULL,
    answer        jsonb,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, command, client_msg_id)
);

-- Durable timers: a row fires once at due_at, in a transaction of its own, even across restarts.
CREATE TABLE timers (
    id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind      text NOT NULL,
    key       text NOT NULL,
    due_at    timestamptz NOT NULL,
    payload   jsonb NOT NULL DEFAULT '{}',
    attempts  integer NOT NULL DEFAULT 0,
    UNIQUE (kind, key)
);
CREATE INDEX timers_due ON timers (due_at);

CREATE TABLE whereabouts (
    user_id   bigint PRIMARY KEY REFERENCES users (id),
    status    text NOT NULL,
    note      text NOT NULL DEFAULT '',
    location  text NOT NULL DEFAULT '',
    until     timestamptz,
    set_by    bigint REFERENCES users (id),
    set_at    timestamptz NOT NULL DEFAULT now()
);

-- Who may set a user's whereabouts besides the user and their leaders (a secretary, say).
CREATE TABLE delegates (
    user_id     bigint NOT NULL REFERENCES users (id),
    delegate_id bigint NOT NULL REFERENCES users (id),
    PRIMARY KEY (user_id, delegate_id)
);

CREATE TABLE notes (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    to_user    bigint NOT NULL REFERENCES users (id),
    from_user  bigint NOT NULL REFERENCES users (id),
    body       text NOT NULL,
    at         timestamptz NOT NULL DEFAULT now(),
    read_at    timestamptz
);
CREATE INDEX notes_to ON notes (to_user, id DESC);
CREATE INDEX notes_unread ON notes (to_user) WHERE read_at IS NULL;

CREATE TABLE audit_log (
    id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at       timestamptz NOT NULL DEFAULT now(),
    actor_id bigint REFERENCES users (id),
    action   text NOT NULL,
    subject_id bigint,
    details  jsonb NOT NULL DEFAULT '{}'
);
