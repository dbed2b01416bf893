-- Jobs: every long operation (training, census, landscape, sampling, evaluation, experts).
CREATE TABLE jobs (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    kind          TEXT    NOT NULL,
    status        TEXT    NOT NULL CHECK (status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled', 'interrupted')),
    name          TEXT,
    params        TEXT    NOT NULL,   -- the validated request, JSON
    dataset_id    INTEGER,            -- input dataset, if any (no foreign key: jobs outlive inputs)
    model_id      INTEGER,            -- input model, or the model a training job produced
    result        TEXT,               -- JSON summary on success
    error         TEXT,               -- why it failed, was cancelled or interrupted
    progress      TEXT,               -- the last progress report, JSON
    checkpoint    BLOB,               -- engine state to resume from
    checkpoint_at TEXT,
    attempts      INTEGER NOT NULL DEFAULT 0, -- times it started running (resumes count)
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    callback_url  TEXT,
    deliveries    TEXT,               -- webhook delivery attempts, JSON array
    created_at    TEXT    NOT NULL,
    started_at    TEXT,
    finished_at   TEXT,
    updated_at    TEXT    NOT NULL
);
CREATE INDEX jobs_by_status ON jobs (status, kind);

-- Models: couplings (engine codec BLOB) beside the columns users filter on.
CREATE TABLE models (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    name           TEXT,
    kind           TEXT    NOT NULL CHECK (kind IN ('single', 'mixture', 'expert')),
    dataset_id     INTEGER REFERENCES datasets (id) ON DELETE RESTRICT,
    dataset_sha256 TEXT,
    job_id         INTEGER,
    parent_id      INTEGER REFERENCES models (id) ON DELETE CASCADE,
    method         TEXT    NOT NULL,
    description    TEXT    NOT NULL,  -- order | full | custom | mixture
    model_order    INTEGER,
    n_spins        INTEGER NOT NULL,
    n_couplings    INTEGER NOT NULL,
    temperature    REAL    NOT NULL,
    couplings      BLOB,              -- NULL for a mixture
    sha256         TEXT,              -- of the couplings BLOB
    report         TEXT    NOT NULL,  -- training report, JSON
    created_at     TEXT    NOT NULL
);
CREATE INDEX models_by_dataset ON models (dataset_id);
CREATE INDEX models_by_parent ON models (parent_id);
