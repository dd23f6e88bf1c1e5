-- Pager (网络寻呼): files, messages with per-recipient receipts, preferences, and the outbox that
-- carries SMS and e-mail out exactly once.

-- File contents are stored once by sha256; each upload is a row of its own (name, uploader).
CREATE TABLE blobs (
    sha256  bytea PRIMARY KEY,
    size    bigint NOT NULL,
    data    bytea NOT NULL
);

CREATE TABLE files (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    sha256       bytea NOT NULL REFERENCES blobs (sha256),
    name         text NOT NULL,
    size         bigint NOT NULL,
    content_type text NOT NULL,
    uploader_id  bigint NOT NULL REFERENCES users (id),
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX files_uploader ON files (uploader_id);

CREATE TABLE pager_messages (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    sender_id   bigint NOT NULL REFERENCES users (id),
    body        text NOT NULL,
    priority    text NOT NULL CHECK (priority IN ('normal', 'urgent')),
    reply_to    bigint REFERENCES pager_messages (id),
    departments bigint[] NOT NULL DEFAULT '{}',
    via         text NOT NULL DEFAULT 'web',
    sent_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX pager_messages_sender ON pager_messages (sender_id, id DESC);

CREATE TABLE pager_recipients (
    message_id   bigint NOT NULL REFERENCES pager_messages (id),
    user_id      bigint NOT NULL REFERENCES users (id),
    seq          bigint NOT NULL,  -- the pager.message event in the recipient's stream
    delivered_at timestamptz,
    read_at      timestamptz,
    sms_state    text,             -- queued, sent, failed
    sms_at       timestamptz,
    emailed_at   timestamptz,
    PRIMARY KEY (message_id, user_id)
);
CREATE INDEX pager_recipients_user ON pager_recipients (user_id, message_id DESC);
CREATE INDEX pager_recipients_undelivered ON pager_recipients (user_id, seq)
    WHERE delivered_at IS NULL;

CREATE TABLE pager_attachments (
    message_id bigint NOT NULL REFERENCES pager_messages (id),
    file_id    bigint NOT NULL REFERENCES files (id),
    PRIMARY KEY (message_id, file_id)
);
CREATE INDEX pager_attachments_file ON pager_attachments (file_id);

CREATE TABLE prefs (
    user_id      bigint PRIMARY KEY REFERENCES users (id),
    sms_fallback text NOT NULL DEFAULT 'offline' CHECK (sms_fallback IN ('offline', 'urgent', 'off')),
    quiet_start  time,
    quiet_end    time
);

-- Per person: when the last SMS or digest e-mail went out, and pages waiting to be merged into
-- the next one.
CREATE TABLE notify_state (
    user_id        bigint PRIMARY KEY REFERENCES users (id),
    sms_sent_at    timestamptz,
    sms_pending    bigint[] NOT NULL DEFAULT '{}',
    email_sent_at  timestamptz
);

-- Work with outside effects, written in the deciding transaction and carried out by a worker.
CREATE TABLE outbox (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind            text NOT NULL CHECK (kind IN ('sms', 'email')),
    topic           text NOT NULL,       -- which handler hears the outcome
    user_id         bigint REFERENCES users (id),
    address         text NOT NULL,       -- phone or e-mail address
    subject         text NOT NULL DEFAULT '',
    body            text NOT NULL,
    refs            bigint[] NOT NULL DEFAULT '{}',  -- e.g. the pager messages an SMS carries
    state           text NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sent', 'failed')),
    attempts        integer NOT NULL DEFAULT 0,
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    sent_at         timestamptz
);
CREATE INDEX outbox_due ON outbox (next_attempt_at) WHERE state = 'pending';
CREATE INDEX outbox_user_sent ON outbox (user_id, kind, sent_at DESC) WHERE state = 'sent';
