-- One way to run deferred work. A job is (kind, key): due at run_at, claimed by a worker with
-- FOR UPDATE SKIP LOCKED under a lease (a process that dies lets go when the lease ends, and
-- another takes the job over), done in the transaction that does its work (which deletes it),
-- retried with capped backoff, and dead-lettered (dead_at) after its kind's number of tries.
-- Timers, the outbox's sends and the async handlers subscribed to committed events are its
-- users; the timers table it replaces moves in.
CREATE TABLE jobs (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind        text NOT NULL,
    key         text NOT NULL,
    run_at      timestamptz NOT NULL DEFAULT now(),
    payload     jsonb NOT NULL DEFAULT '{}',
    attempts    integer NOT NULL DEFAULT 0,   -- claims so far (a claim counts, even if its worker died)
    lease_until timestamptz,
    leased_by   text,
    last_error  text,
    dead_at     timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (kind, key)
);
CREATE INDEX jobs_due ON jobs (run_at) WHERE dead_at IS NULL;
CREATE INDEX jobs_dead ON jobs (kind, dead_at) WHERE dead_at IS NOT NULL;

INSERT INTO jobs (kind, key, run_at, payload, attempts)
SELECT kind, key, due_at, payload, attempts FROM timers;
DROP TABLE timers;

-- Pending outbox rows are sent by a job each from now on.
INSERT INTO jobs (kind, key, run_at, payload, attempts)
SELECT 'outbox.send', id::text, next_attempt_at, jsonb_build_object('id', id), attempts
FROM outbox WHERE state = 'pending';
DROP INDEX outbox_due;
ALTER TABLE outbox DROP COLUMN next_attempt_at;
