-- Approvals (审批): definitions as versioned data, instances that keep their version, tasks per
-- step and round, a hash-chained trail per instance, and delegations (代签) with time windows.

CREATE TABLE workflow_definitions (
    key         text NOT NULL,
    version     integer NOT NULL,
    name        text NOT NULL,
    form        jsonb NOT NULL,
    steps       jsonb NOT NULL,
    created_by  bigint REFERENCES users (id),
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (key, version)
);

CREATE TABLE workflow_instances (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    key          text NOT NULL,
    version      integer NOT NULL,
    applicant_id bigint NOT NULL REFERENCES users (id),
    title        text NOT NULL,
    form         jsonb NOT NULL,
    picked       bigint[] NOT NULL DEFAULT '{}',
    state        text NOT NULL
                 CHECK (state IN ('running', 'approved', 'rejected', 'withdrawn', 'returned')),
    step         integer NOT NULL,
    round        integer NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz,
    urged_at     timestamptz,
    FOREIGN KEY (key, version) REFERENCES workflow_definitions (key, version)
);
CREATE INDEX workflow_instances_applicant ON workflow_instances (applicant_id, id DESC);

CREATE TABLE workflow_tasks (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    instance_id   bigint NOT NULL REFERENCES workflow_instances (id),
    step          integer NOT NULL,
    round         integer NOT NULL,
    ord           integer NOT NULL DEFAULT 0,
    assignee_id   bigint NOT NULL REFERENCES users (id),
    on_behalf_of  bigint REFERENCES users (id),
    state         text NOT NULL DEFAULT 'open' CHECK (state IN
                  ('open', 'approved', 'rejected', 'returned', 'transferred', 'cancelled')),
    created_at    timestamptz NOT NULL DEFAULT now(),
    acted_at      timestamptz,
    acted_by      bigint REFERENCES users (id),
    comment       text
);
CREATE INDEX workflow_tasks_instance ON workflow_tasks (instance_id);
CREATE INDEX workflow_tasks_assignee ON workflow_tasks (assignee_id, id DESC);
CREATE INDEX workflow_tasks_open ON workflow_tasks (assignee_id) WHERE state = 'open';
CREATE INDEX workflow_tasks_open_for ON workflow_tasks (on_behalf_of) WHERE state = 'open';

-- One hash chain per instance, appended under the instance's row lock.
CREATE TABLE workflow_trail (
    instance_id  bigint NOT NULL REFERENCES workflow_instances (id),
    seq          integer NOT NULL,
    at           timestamptz NOT NULL,
    actor_id     bigint NOT NULL REFERENCES users (id),
    on_behalf_of bigint REFERENCES users (id),
    action       text NOT NULL,
    step         integer NOT NULL,
    comment      text NOT NULL DEFAULT '',
    hash         text NOT NULL,
    PRIMARY KEY (instance_id, seq)
);

CREATE TABLE delegations (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    grantor_id   bigint NOT NULL REFERENCES users (id),
    delegate_id  bigint NOT NULL REFERENCES users (id),
    starts_at    timestamptz NOT NULL,
    ends_at      timestamptz NOT NULL,
    keys         text[],  -- NULL: every definition
    created_at   timestamptz NOT NULL DEFAULT now(),
    revoked_at   timestamptz,
    CHECK (ends_at > starts_at),
    CHECK (grantor_id <> delegate_id)
);
CREATE INDEX delegations_grantor ON delegations (grantor_id) WHERE revoked_at IS NULL;
CREATE INDEX delegations_delegate ON delegations (delegate_id) WHERE revoked_at IS NULL;

-- The built-in definitions, in Chinese; an administrator stores new versions.
INSERT INTO workflow_definitions (key, version, name, form, steps) VALUES
('leave', 1, '请假',
 '[{"name":"type","label":"假别","type":"text","required":true},
   {"name":"start","label":"开始时间","type":"datetime","required":true},
   {"name":"end","label":"结束时间","type":"datetime","required":true},
   {"name":"days","label":"天数","type":"number","required":true},
   {"name":"reason","label":"事由","type":"text","required":true}]',
 '[{"name":"直接上级审批","approvers":{"kind":"supervisor"},"mode":"sequential","on_empty":"admin"},
   {"name":"部门负责人审批","approvers":{"kind":"department_head"},"mode":"sequential",
    "when":{"field":"days","op":"gt","value":3}}]'),
('trip', 1, '出差',
 '[{"name":"destination","label":"目的地","type":"text","required":true},
   {"name":"start","label":"出发时间","type":"datetime","required":true},
   {"name":"end","label":"返回时间","type":"datetime","required":true},
   {"name":"days","label":"天数","type":"number","required":true},
   {"name":"budget","label":"预算（元）","type":"number"},
   {"name":"reason","label":"出差事由","type":"text","required":true}]',
 '[{"name":"直接上级审批","approvers":{"kind":"supervisor"},"mode":"sequential","on_empty":"admin"},
   {"name":"部门负责人审批","approvers":{"kind":"department_head"},"mode":"sequential"}]'),
('vehicle', 1, '用车',
 '[{"name":"start","label":"用车时间","type":"datetime","required":true},
   {"name":"end","label":"归还时间","type":"datetime","required":true},
   {"name":"destination","label":"目的地","type":"text","required":true},
   {"name":"passengers","label":"乘车人数","type":"number","required":true},
   {"name":"reason","label":"用车事由","type":"text","required":true}]',
 '[{"name":"部门负责人审批","approvers":{"kind":"department_head"},"mode":"sequential"},
   {"name":"车辆管理员派车","approvers":{"kind":"role","role":"vehicle_admin"},"mode":"any",
    "on_empty":"admin"}]'),
('expense', 1, '报销',
 '[{"name":"amount","label":"金额（元）","type":"number","required":true},
   {"name":"category","label":"费用类别","type":"text","required":true},
   {"name":"reason","label":"事由","type":"text","required":true},
   {"name":"receipt","label":"票据","type":"file"}]',
 '[{"name":"直接上级审批","approvers":{"kind":"supervisor"},"mode":"sequential","on_empty":"admin"},
   {"name":"部门负责人审批","approvers":{"kind":"department_head"},"mode":"sequential",
    "when":{"field":"amount","op":"gt","value":5000}},
   {"name":"财务审核","approvers":{"kind":"role","role":"finance"},"mode":"any","on_empty":"admin"}]'),
('document_issue', 1, '发文',
 '[{"name":"title","label":"文件标题","type":"text","required":true},
   {"name":"file","label":"正文","type":"file","required":true}]',
 '[{"name":"部门负责人核稿","approvers":{"kind":"department_head"},"mode":"sequential"},
   {"name":"办公室审核","approvers":{"kind":"role","role":"document_officer"},"mode":"any",
    "on_empty":"admin"},
   {"name":"领导签发","approvers":{"kind":"picked"},"mode":"sequential","on_empty":"admin"}]'),
('document_receive', 1, '收文',
 '[{"name":"title","label":"来文标题","type":"text","required":true},
   {"name":"from_org","label":"来文单位","type":"text","required":true},
   {"name":"file","label":"来文","type":"file"}]',
 '[{"name":"登记审核","approvers":{"kind":"role","role":"document_officer"},"mode":"any",
    "on_empty":"admin"},
   {"name":"领导批示","approvers":{"kind":"picked"},"mode":"sequential","on_empty":"admin"}]'),
('archive_borrow', 1, '档案借阅',
 '[{"name":"archive","label":"档案","type":"text","required":true},
   {"name":"days","label":"借阅天数","type":"number","required":true},
   {"name":"reason","label":"借阅事由","type":"text","required":true}]',
 '[{"name":"直接上级审批","approvers":{"kind":"supervisor"},"mode":"sequential","on_empty":"admin"},
   {"name":"档案管理员审核","approvers":{"kind":"role","role":"archivist"},"mode":"any",
    "on_empty":"admin"}]');
