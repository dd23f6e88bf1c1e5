-- The to-do inbox (待办): one table every module writes in the transaction that makes the change.
CREATE TABLE todos (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id     bigint NOT NULL REFERENCES users (id),
    kind        text NOT NULL CHECK (kind IN
                ('approval', 'task', 'circulation', 'meeting_action', 'schedule', 'document',
                 'notice')),
    ref_id      bigint NOT NULL,
    title       text NOT NULL,
    from_id     bigint REFERENCES users (id),
    urgency     text NOT NULL DEFAULT 'normal' CHECK (urgency IN ('normal', 'urgent')),
    due_at      timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now(),
    done_at     timestamptz,
    UNIQUE (user_id, kind, ref_id)
);
CREATE INDEX todos_open ON todos (user_id) WHERE done_at IS NULL;
CREATE INDEX todos_user ON todos (user_id, id DESC);
CREATE INDEX todos_ref ON todos (kind, ref_id) WHERE done_at IS NULL;

-- Backfill: circulations received and not confirmed, not recalled; approval tasks open.
INSERT INTO todos (user_id, kind, ref_id, title, from_id, due_at, created_at)
SELECT r.user_id, 'circulation', c.id, c.title, c.sender_id, c.deadline, c.created_at
FROM circulation_recipients r JOIN circulations c ON c.id = r.circulation_id
WHERE r.state <> 'confirmed' AND c.recalled_at IS NULL;

INSERT INTO todos (user_id, kind, ref_id, title, from_id, created_at)
SELECT t.assignee_id, 'approval', t.id, i.title, i.applicant_id, t.created_at
FROM workflow_tasks t JOIN workflow_instances i ON i.id = t.instance_id
WHERE t.state = 'open';
