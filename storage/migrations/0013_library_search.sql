-- Search in the file library: each document's title and extracted text as a tsvector of CJK
-- bigrams, single characters and lowercased words (cut by storage/text.py, cast as a literal:
-- plain PostgreSQL cannot segment Chinese, and pg_trgm indexes nothing under three characters),
-- under a GIN index. The title is indexed when the document is added; the text by the
-- `library.extract` job that follows the committed `library.added` event, which sets
-- indexed_at (and extract_error when the file could not be read).
ALTER TABLE library_docs
    ADD COLUMN search        tsvector NOT NULL DEFAULT ''::tsvector,
    ADD COLUMN body          text,
    ADD COLUMN indexed_at    timestamptz,
    ADD COLUMN extract_error text;

CREATE INDEX library_docs_search ON library_docs USING gin (search) WHERE removed_at IS NULL;

-- Removing a folder now removes what lies below it (search looks at documents only); folders
-- removed before this had left theirs in place.
WITH RECURSIVE gone AS (
    SELECT id, removed_at FROM library_folders WHERE removed_at IS NOT NULL
    UNION
    SELECT f.id, g.removed_at FROM library_folders f JOIN gone g ON f.parent_id = g.id
), folders AS (
    UPDATE library_folders f SET removed_at = g.removed_at
    FROM gone g WHERE f.id = g.id AND f.removed_at IS NULL
)
UPDATE library_docs d SET removed_at = g.removed_at
FROM gone g WHERE d.folder_id = g.id AND d.removed_at IS NULL;

-- Documents added before search are indexed by the same job as new ones.
INSERT INTO jobs (kind, key, payload)
SELECT 'library.extract', 'backfill:' || id,
       jsonb_build_object('event_id', 'backfill:' || id, 'type', 'library.added',
                          'users', jsonb_build_array(added_by),
                          'data', jsonb_build_object('doc_id', id::text))
FROM library_docs WHERE removed_at IS NULL
ON CONFLICT (kind, key) DO NOTHING;
