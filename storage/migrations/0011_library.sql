-- The file library (文件库): folders with ACL entries (a user, a department and those below it,
-- or a role) and inheritance that can be cut; the effective permissions of every folder kept in a
-- table, rewritten in the transaction that changes an ACL or moves a folder, so no request walks
-- up the tree.
CREATE TABLE library_folders (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    parent_id   bigint REFERENCES library_folders (id),
    name        text NOT NULL,
    inherit     boolean NOT NULL DEFAULT true,
    created_by  bigint NOT NULL REFERENCES users (id),
    created_at  timestamptz NOT NULL DEFAULT now(),
    removed_at  timestamptz
);
CREATE INDEX library_folders_parent ON library_folders (parent_id) WHERE removed_at IS NULL;

CREATE TABLE library_acl (
    folder_id   bigint NOT NULL REFERENCES library_folders (id),
    kind        text NOT NULL CHECK (kind IN ('user', 'department', 'role')),
    principal   text NOT NULL,
    perms       text[] NOT NULL,
    PRIMARY KEY (folder_id, kind, principal)
);

-- What each principal may do in each folder: its own entries, plus the parent's effective ones
-- when it inherits; perms expanded (manage ⊃ write ⊃ read).
CREATE TABLE library_effective (
    folder_id   bigint NOT NULL REFERENCES library_folders (id),
    kind        text NOT NULL,
    principal   text NOT NULL,
    perms       text[] NOT NULL,
    PRIMARY KEY (folder_id, kind, principal)
);
CREATE INDEX library_effective_principal ON library_effective (kind, principal);

CREATE TABLE library_docs (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    folder_id   bigint NOT NULL REFERENCES library_folders (id),
    file_id     bigint NOT NULL REFERENCES files (id),
    title       text NOT NULL,
    added_by    bigint NOT NULL REFERENCES users (id),
    added_at    timestamptz NOT NULL DEFAULT now(),
    removed_at  timestamptz
);
CREATE INDEX library_docs_folder ON library_docs (folder_id) WHERE removed_at IS NULL;
CREATE INDEX library_docs_file ON library_docs (file_id) WHERE removed_at IS NULL;

-- Who a user is, for the ACL: themselves, their department and every one above it, their roles.
CREATE FUNCTION library_principals(uid bigint) RETURNS TABLE (kind text, principal text)
LANGUAGE sql STABLE AS $$
    WITH RECURSIVE up(id) AS (
        SELECT department_id FROM users WHERE id = uid AND department_id IS NOT NULL
        UNION
        SELECT d.parent_id FROM departments d JOIN up ON d.id = up.id
        WHERE d.parent_id IS NOT NULL
    )
    SELECT 'user', uid::text
    UNION ALL SELECT 'department', id::text FROM up
    UNION ALL SELECT 'role', r FROM users, unnest(roles) AS r WHERE id = uid
$$;
