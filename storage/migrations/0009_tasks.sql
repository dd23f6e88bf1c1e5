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

-- Backfill: meeting actions marked before tasks existed become tasks, each an open to-do item.
WITH made AS (
    INSERT INTO tasks (assigner_id, title, body, due_at, source, meeting_mark_id, created_at)
    SELECT mk.marked_by, left(m.title || '：' || msg.body, 200), msg.body, mk.due, 'meeting',
           mk.id, mk.at
    FROM meeting_marks mk
    JOIN meetings m ON m.id = mk.meeting_id
    JOIN meeting_messages msg ON msg.id = mk.message_id
    WHERE mk.kind = 'action' AND mk.assignee_id IS NOT NULL
    RETURNING id, meeting_mark_id
)
INSERT INTO task_assignees (task_id, user_id)
SELECT made.id, mk.assignee_id FROM made JOIN meeting_marks mk ON mk.id = made.meeting_mark_id;

INSERT INTO todos (user_id, kind, ref_id, title, from_id, due_at, created_at)
SELECT a.user_id, 'meeting_action', t.id, t.title, t.assigner_id, t.due_at, t.created_at
FROM tasks t JOIN task_assignees a ON a.task_id = t.id
WHERE t.source = 'meeting';
