-- The files an approval carries (its form's file fields; a document's files): whoever gets a
-- task on it may read them. Written at start and resubmit, after checking that the applicant
-- could read each one.
CREATE TABLE workflow_files (
    instance_id  bigint NOT NULL REFERENCES workflow_instances (id),
    file_id      bigint NOT NULL REFERENCES files (id),
    PRIMARY KEY (instance_id, file_id)
);
CREATE INDEX workflow_files_file ON workflow_files (file_id);

-- Instances started before: their forms' file fields, where the file exists and the applicant
-- uploaded it (the only reader the start checked for sure).
INSERT INTO workflow_files (instance_id, file_id)
SELECT DISTINCT i.id, f.id
FROM workflow_instances i
JOIN workflow_definitions d ON d.key = i.key AND d.version = i.version
CROSS JOIN LATERAL jsonb_array_elements(d.form) AS field
JOIN files f ON f.id::text = i.form ->> (field ->> 'name') AND f.uploader_id = i.applicant_id
WHERE field ->> 'type' = 'file';
