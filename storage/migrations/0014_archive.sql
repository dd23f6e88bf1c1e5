-- The archive (档案): filed records with their files' SHA-256, codes numbered gaplessly per
-- (fonds, category, year, retention), loans run by the `archive_borrow` approval, destruction
-- run by the `archive_destroy` approval and written to a hash-chained register.

-- The fonds (全宗号) this organisation files under: one row, changed by an administrator in SQL
-- (`UPDATE archive_settings SET fonds = 'J042'`); a record keeps the fonds it was filed under.
CREATE TABLE archive_settings (
    only_row  boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    fonds     text NOT NULL CHECK (fonds ~ '^[A-Za-z0-9]{1,12}$')
);
INSERT INTO archive_settings (fonds) VALUES ('J001');

-- The last number given per code prefix: raised and used in one transaction (the row stays
-- locked until it commits), so numbers are gapless and never repeat.
CREATE TABLE archive_counters (
    fonds      text NOT NULL,
    category   text NOT NULL,
    year       integer NOT NULL,
    retention  text NOT NULL,
    last       integer NOT NULL,
    PRIMARY KEY (fonds, category, year, retention)
);

CREATE TABLE archive_records (
    id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    code               text NOT NULL UNIQUE,
    title              text NOT NULL,
    fonds              text NOT NULL,
    category           text NOT NULL,
    year               integer NOT NULL,
    retention          text NOT NULL CHECK (retention IN ('Y', 'D30', 'D10')),
    n                  integer NOT NULL,
    document_id        bigint UNIQUE,  -- a document (公文) is filed once
    filed_by           bigint NOT NULL REFERENCES users (id),
    filed_at           timestamptz NOT NULL DEFAULT now(),
    retention_ends_at  timestamptz,    -- NULL: kept for ever (Y)
    state              text NOT NULL DEFAULT 'kept' CHECK (state IN ('kept', 'destroyed')),
    destroyed_at       timestamptz,
    UNIQUE (fonds, category, year, retention, n)
);
CREATE INDEX archive_records_filed ON archive_records (id DESC);

CREATE TABLE archive_files (
    archive_id  bigint NOT NULL REFERENCES archive_records (id),
    file_id     bigint NOT NULL REFERENCES files (id),
    ord         integer NOT NULL,
    name        text NOT NULL,
    size        bigint NOT NULL,
    sha256      text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    PRIMARY KEY (archive_id, file_id)
);
CREATE INDEX archive_files_file ON archive_files (file_id);

-- A loan (借阅): pending while its approval runs; active from approval for `days`; ended when
-- its time is up (or the record is destroyed); refused when the approval is not granted.
CREATE TABLE archive_loans (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    archive_id   bigint NOT NULL REFERENCES archive_records (id),
    borrower_id  bigint NOT NULL REFERENCES users (id),
    instance_id  bigint NOT NULL UNIQUE REFERENCES workflow_instances (id),
    days         numeric NOT NULL CHECK (days > 0 AND days <= 365),
    reason       text NOT NULL,
    state        text NOT NULL DEFAULT 'pending'
                 CHECK (state IN ('pending', 'active', 'ended', 'refused')),
    created_at   timestamptz NOT NULL DEFAULT now(),
    starts_at    timestamptz,
    ends_at      timestamptz,
    closed_at    timestamptz,
    CHECK (state IN ('pending', 'refused') OR (starts_at IS NOT NULL AND ends_at IS NOT NULL))
);
CREATE INDEX archive_loans_archive ON archive_loans (archive_id);
CREATE INDEX archive_loans_borrower ON archive_loans (borrower_id, id DESC);
-- One open loan per person and record: a second request while one runs is a conflict.
CREATE UNIQUE INDEX archive_loans_open ON archive_loans (archive_id, borrower_id)
    WHERE state IN ('pending', 'active');

-- A destruction request (销毁) and the records it names; a record is in one pending request at
-- most (checked under the records' row locks).
CREATE TABLE archive_destructions (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    requester_id  bigint NOT NULL REFERENCES users (id),
    instance_id   bigint NOT NULL UNIQUE REFERENCES workflow_instances (id),
    reason        text NOT NULL,
    state         text NOT NULL DEFAULT 'pending'
                  CHECK (state IN ('pending', 'approved', 'refused')),
    created_at    timestamptz NOT NULL DEFAULT now(),
    decided_at    timestamptz
);
CREATE TABLE archive_destruction_items (
    destruction_id  bigint NOT NULL REFERENCES archive_destructions (id),
    archive_id      bigint NOT NULL REFERENCES archive_records (id),
    PRIMARY KEY (destruction_id, archive_id)
);
CREATE INDEX archive_destruction_items_archive ON archive_destruction_items (archive_id);

-- The destruction register (销毁清册): one entry per destroyed record, one hash chain for the
-- whole register, appended under a transaction-wide advisory lock so it never forks.
CREATE TABLE archive_register (
    seq             integer PRIMARY KEY,
    at              timestamptz NOT NULL,
    destruction_id  bigint NOT NULL REFERENCES archive_destructions (id),
    instance_id     bigint NOT NULL REFERENCES workflow_instances (id),
    archive_id      bigint NOT NULL REFERENCES archive_records (id),
    code            text NOT NULL,
    title           text NOT NULL,
    retention       text NOT NULL,
    files           jsonb NOT NULL,  -- [{name, sha256}] as filed
    reason          text NOT NULL,
    requester_id    bigint NOT NULL REFERENCES users (id),
    hash            text NOT NULL
);

-- Destruction needs an approval: another archivist checks the list, then the requester's
-- department head (an administrator where nobody is found).
INSERT INTO workflow_definitions (key, version, name, form, steps) VALUES
('archive_destroy', 1, '档案销毁',
 '[{"name":"archives","label":"拟销毁档案","type":"text","required":true},
   {"name":"count","label":"件数","type":"number","required":true},
   {"name":"reason","label":"销毁理由","type":"text","required":true}]',
 '[{"name":"档案管理员审核","approvers":{"kind":"role","role":"archivist"},"mode":"any",
    "on_empty":"admin"},
   {"name":"领导审批","approvers":{"kind":"department_head"},"mode":"sequential",
    "on_empty":"admin"}]');
