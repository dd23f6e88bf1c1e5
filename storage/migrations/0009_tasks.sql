-- Tasks (交办): assigned to several people with a due time and urgency; each assignee's part
-- has its own state and progress; a part handed on names who took it over.
CREATE TABLE tasks (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    assigner_id  bigint NOT NULL REFERENCES users (id),
    title        text NOT NULL,
    body         text NOT NULL DEFAULT '',
    urgency      text NOT NULL DEFAULT 'normal' CHECK (urgency IN ('normal', 'urgent')),
    due_at       timestamptz,
    source       text NOT NULL DEFAULT 'task' CHECK (source IN ('task', 'meeting')),
    meeting_mark_id bigint REFERENCES meeting_marks (id),
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX tasks_assigner ON tasks (assigner_id, id DESC);

CREATE TABLE task_assignees (
    task_id     bigint NOT NULL REFERENCES tasks (id),
    user_id     bigint NOT NULL REFERENCES users (id),
    state       text NOT NULL DEFAULT 'open'
                CHECK (state IN ('open', 'in_progress', 'done', 'handed_on')),
    percent     integer NOT NULL DEFAULT 0 CHECK (percent BETWEEN 0 AND 100),
    note        text NOT NULL DEFAULT '',
    handed_to   bigint REFERENCES users (id),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (task_id, user_id)
);
CREATE INDEX task_assignees_user ON task_assignees (user_id, task_id DESC);
