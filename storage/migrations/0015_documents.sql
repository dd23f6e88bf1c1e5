-- Official documents (公文): issued ones (发文) run the `document_issue` approval, then get a
-- number, are circulated and filed; received ones (收文) run `document_receive`, then the
-- handling departments get tasks. Each step after the approval is done once: its column is
-- NULL until then, and the job doing it locks the row and looks first.

-- The numbering prefix (发文字号's 代字, e.g. 江政办发) per issuing department; a department
-- without one uses its nearest ancestor's, and a department none of whose ancestors has one
-- the default row (department_id NULL).
CREATE TABLE document_prefixes (
    department_id bigint REFERENCES departments (id),
    prefix        text NOT NULL CHECK (length(prefix) BETWEEN 1 AND 20),
    updated_by    bigint REFERENCES users (id),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    UNIQUE (department_id)
);
CREATE UNIQUE INDEX document_prefixes_default ON document_prefixes ((department_id IS NULL))
    WHERE department_id IS NULL;
INSERT INTO document_prefixes (department_id, prefix) VALUES (NULL, '办发');

-- The last number given per prefix and year: taken and stored on the document in one
-- transaction, so numbers are gapless and never repeat.
CREATE TABLE document_counters (
    prefix  text NOT NULL,
    year    integer NOT NULL,
    last    integer NOT NULL,
    PRIMARY KEY (prefix, year)
);

CREATE TABLE documents (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind            text NOT NULL CHECK (kind IN ('issue', 'receive')),
    title           text NOT NULL,
    drafter_id      bigint NOT NULL REFERENCES users (id),  -- the drafter, or the registrar
    department_id   bigint REFERENCES departments (id),     -- theirs, when it was created
    to_users        bigint[] NOT NULL DEFAULT '{}',
    to_departments  bigint[] NOT NULL DEFAULT '{}',         -- 主送 (issue) / 承办 (receive)
    from_org        text,                                   -- 来文单位 (receive)
    prefix          text,                                   -- 代字 (issue)
    state           text NOT NULL CHECK (state IN ('approving', 'rejected', 'withdrawn',
                        'numbered', 'circulated', 'filed', 'handling', 'handled')),
    instance_id     bigint NOT NULL UNIQUE REFERENCES workflow_instances (id),
    year            integer,
    seq             integer,
    number          text,
    numbered_at     timestamptz,
    circulation_id  bigint REFERENCES circulations (id),
    circulated_at   timestamptz,
    archive_id      bigint,
    archive_code    text,
    filed_at        timestamptz,
    instruction     text,                                   -- the leader's 批示 (receive)
    handling_at     timestamptz,
    handled_at      timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (prefix, year, seq),
    CHECK ((number IS NULL) = (seq IS NULL))
);
CREATE INDEX documents_drafter ON documents (drafter_id, id DESC);
CREATE INDEX documents_circulation ON documents (circulation_id) WHERE circulation_id IS NOT NULL;

CREATE TABLE document_files (
    document_id  bigint NOT NULL REFERENCES documents (id),
    file_id      bigint NOT NULL REFERENCES files (id),
    ord          integer NOT NULL,
    PRIMARY KEY (document_id, file_id)
);
CREATE INDEX document_files_file ON document_files (file_id);

-- A received document's handling (承办): one task per handling department.
CREATE TABLE document_tasks (
    document_id    bigint NOT NULL REFERENCES documents (id),
    department_id  bigint NOT NULL REFERENCES departments (id),
    task_id        bigint NOT NULL UNIQUE REFERENCES tasks (id),
    PRIMARY KEY (document_id, department_id)
);
