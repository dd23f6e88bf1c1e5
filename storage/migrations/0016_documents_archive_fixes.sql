-- Documents and the archive, after review.

-- A document whose pipeline step can never be done (its job dead after its tries) is `failed`,
-- with the step and the error, instead of waiting in silence.
ALTER TABLE documents DROP CONSTRAINT documents_state_check;
ALTER TABLE documents ADD CONSTRAINT documents_state_check CHECK (state IN ('approving',
    'rejected', 'withdrawn', 'numbered', 'circulated', 'filed', 'handling', 'handled', 'failed'));
ALTER TABLE documents
    ADD COLUMN failed_step text,
    ADD COLUMN failure     text,
    ADD COLUMN failed_at   timestamptz;

-- A record filed for a document names one that exists, and a document filed names its record.
-- (Links to nothing, made before the check, are dropped: they named no document.)
UPDATE archive_records r SET document_id = NULL
WHERE r.document_id IS NOT NULL AND NOT EXISTS (SELECT 1 FROM documents d WHERE d.id = r.document_id);
ALTER TABLE archive_records
    ADD CONSTRAINT archive_records_document_fk FOREIGN KEY (document_id) REFERENCES documents (id);
UPDATE documents d SET archive_id = NULL
WHERE d.archive_id IS NOT NULL
  AND NOT EXISTS (SELECT 1 FROM archive_records r WHERE r.id = d.archive_id);
ALTER TABLE documents
    ADD CONSTRAINT documents_archive_fk FOREIGN KEY (archive_id) REFERENCES archive_records (id);

-- The catalogue's search: title, code, document number and category cut as the library's text
-- is (storage/text.py: CJK bigrams and single characters, words), in a tsvector with GIN.
-- Records filed before it get theirs from the `archive.reindex` job.
ALTER TABLE archive_records ADD COLUMN search tsvector;
CREATE INDEX archive_records_search ON archive_records USING gin (search);
INSERT INTO jobs (kind, key, payload)
SELECT 'archive.reindex', 'backfill', '{}'::jsonb
WHERE EXISTS (SELECT 1 FROM archive_records WHERE search IS NULL)
ON CONFLICT (kind, key) DO NOTHING;
