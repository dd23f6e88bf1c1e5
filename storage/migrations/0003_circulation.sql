-- Circulation (传阅): a document or notice to many at once, each recipient's state tracked.

CREATE TABLE circulations (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    sender_id        bigint NOT NULL REFERENCES users (id),
    title            text NOT NULL,
    body             text NOT NULL,          -- as written; sanitized whenever it is shown
    departments      bigint[] NOT NULL DEFAULT '{}',
    deadline         timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    recalled_at      timestamptz,
    last_reminded_at timestamptz
);
CREATE INDEX circulations_sender ON circulations (sender_id, id DESC);

CREATE TABLE circulation_recipients (
    circulation_id bigint NOT NULL REFERENCES circulations (id),
    user_id        bigint NOT NULL REFERENCES users (id),
    state          text NOT NULL DEFAULT 'unopened'
                   CHECK (state IN ('unopened', 'opened', 'confirmed')),
    opened_at      timestamptz,
    confirmed_at   timestamptz,
    comment        text,
    PRIMARY KEY (circulation_id, user_id)
);
CREATE INDEX circulation_recipients_user ON circulation_recipients (user_id, circulation_id DESC);

CREATE TABLE circulation_attachments (
    circulation_id bigint NOT NULL REFERENCES circulations (id),
    file_id        bigint NOT NULL REFERENCES files (id),
    PRIMARY KEY (circulation_id, file_id)
);
CREATE INDEX circulation_attachments_file ON circulation_attachments (file_id);
