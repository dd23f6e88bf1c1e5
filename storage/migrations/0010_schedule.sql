-- Schedule (日程): personal, department and leaders' calendars; invitations; reminders as jobs.
CREATE TABLE schedule_entries (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    owner_id        bigint NOT NULL REFERENCES users (id),
    title           text NOT NULL,
    starts_at       timestamptz NOT NULL,
    ends_at         timestamptz NOT NULL,
    location        text NOT NULL DEFAULT '',
    visibility      text NOT NULL DEFAULT 'department'
                    CHECK (visibility IN ('private', 'department', 'public')),
    remind_before_s integer NOT NULL DEFAULT 900,
    created_at      timestamptz NOT NULL DEFAULT now(),
    cancelled_at    timestamptz,
    CHECK (ends_at >= starts_at)
);
CREATE INDEX schedule_entries_owner ON schedule_entries (owner_id, starts_at);

CREATE TABLE schedule_attendees (
    entry_id  bigint NOT NULL REFERENCES schedule_entries (id),
    user_id   bigint NOT NULL REFERENCES users (id),
    PRIMARY KEY (entry_id, user_id)
);
CREATE INDEX schedule_attendees_user ON schedule_attendees (user_id);
