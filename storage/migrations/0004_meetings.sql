-- Chat-room meetings (寻呼对话) that end with minutes (会议纪要).

CREATE TABLE meetings (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    title          text NOT NULL,
    agenda         text NOT NULL DEFAULT '',
    created_by     bigint NOT NULL REFERENCES users (id),
    chair_id       bigint NOT NULL REFERENCES users (id),
    starts_at      timestamptz,
    created_at     timestamptz NOT NULL DEFAULT now(),
    closed_at      timestamptz,
    summary        text,
    minutes        jsonb,
    circulation_id bigint REFERENCES circulations (id),
    said           integer NOT NULL DEFAULT 0  -- messages so far: the transcript's order
);

CREATE TABLE meeting_participants (
    meeting_id bigint NOT NULL REFERENCES meetings (id),
    user_id    bigint NOT NULL REFERENCES users (id),
    PRIMARY KEY (meeting_id, user_id)
);
CREATE INDEX meeting_participants_user ON meeting_participants (user_id, meeting_id DESC);

CREATE TABLE meeting_messages (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    meeting_id bigint NOT NULL REFERENCES meetings (id),
    position   integer NOT NULL,
    sender_id  bigint NOT NULL REFERENCES users (id),
    body       text NOT NULL,
    at         timestamptz NOT NULL DEFAULT now(),
    UNIQUE (meeting_id, position)
);

CREATE TABLE meeting_marks (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    meeting_id  bigint NOT NULL REFERENCES meetings (id),
    message_id  bigint NOT NULL REFERENCES meeting_messages (id),
    kind        text NOT NULL CHECK (kind IN ('decision', 'action')),
    assignee_id bigint REFERENCES users (id),
    due         timestamptz,
    marked_by   bigint NOT NULL REFERENCES users (id),
    at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX meeting_marks_meeting ON meeting_marks (meeting_id, id);

-- Who was in the room and when: one row per stay.
CREATE TABLE meeting_attendance (
    meeting_id bigint NOT NULL REFERENCES meetings (id),
    user_id    bigint NOT NULL REFERENCES users (id),
    joined_at  timestamptz NOT NULL DEFAULT now(),
    left_at    timestamptz
);
CREATE INDEX meeting_attendance_meeting ON meeting_attendance (meeting_id, user_id);
