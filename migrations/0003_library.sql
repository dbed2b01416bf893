-- The library of minima: one census per (model, job); its minima as rows users filter on.
CREATE TABLE censuses (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    model_id    INTEGER NOT NULL REFERENCES models (id) ON DELETE CASCADE,
    job_id      INTEGER,
    method      TEXT    NOT NULL,  -- exact | mean_field | sampling
    temperature REAL    NOT NULL,
    n_minima    INTEGER NOT NULL,
    summary     TEXT    NOT NULL,  -- JSON: continuum, ergodicity, log Z, assignment, timings
    created_at  TEXT    NOT NULL
);
CREATE INDEX censuses_by_model ON censuses (model_id, id);

CREATE TABLE minima (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    census_id        INTEGER NOT NULL REFERENCES censuses (id) ON DELETE CASCADE,
    model_id         INTEGER NOT NULL REFERENCES models (id) ON DELETE CASCADE,
    rank             INTEGER NOT NULL,  -- 0 = lowest free energy
    pattern          BLOB    NOT NULL,  -- bit-packed
    energy           REAL    NOT NULL,
    free_energy      REAL    NOT NULL,
    weight           REAL    NOT NULL,
    magnetisation    REAL    NOT NULL,
    stability        REAL    NOT NULL,
    strict           INTEGER NOT NULL,
    basin_size       REAL    NOT NULL,
    attracted        INTEGER NOT NULL,
    attracted_weight REAL    NOT NULL,
    nearest_training INTEGER NOT NULL,
    hamming          INTEGER NOT NULL,
    kind             TEXT    NOT NULL CHECK (kind IN ('memory', 'false_state'))
);
CREATE INDEX minima_by_census ON minima (census_id, rank);
CREATE INDEX minima_by_model ON minima (model_id);

-- Temperature scans.
CREATE TABLE landscapes (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    model_id   INTEGER NOT NULL REFERENCES models (id) ON DELETE CASCADE,
    job_id     INTEGER,
    result     TEXT    NOT NULL,  -- JSON
    created_at TEXT    NOT NULL
);
CREATE INDEX landscapes_by_model ON landscapes (model_id, id);

-- Generated patterns.
CREATE TABLE sample_sets (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    model_id   INTEGER NOT NULL REFERENCES models (id) ON DELETE CASCADE,
    job_id     INTEGER,
    census_id  INTEGER,
    params     TEXT    NOT NULL,  -- the validated request, JSON
    summary    TEXT    NOT NULL,  -- occupancy, energy statistics, acceptance, ESS
    n_samples  INTEGER NOT NULL,
    created_at TEXT    NOT NULL
);
CREATE INDEX sample_sets_by_model ON sample_sets (model_id);

CREATE TABLE samples (
    set_id     INTEGER NOT NULL REFERENCES sample_sets (id) ON DELETE CASCADE,
    idx        INTEGER NOT NULL,
    pattern    BLOB    NOT NULL,
    energy     REAL    NOT NULL,
    minimum_id INTEGER,           -- the census minimum its quench reaches; NULL = continuum / unlisted
    expert     INTEGER,           -- for a mixture: which expert drew it
    PRIMARY KEY (set_id, idx)
) WITHOUT ROWID;
