-- Datasets: distinct patterns (bit-packed BLOBs) with their counts, and the original row order.
CREATE TABLE datasets (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    name        TEXT    NOT NULL,
    n_spins     INTEGER NOT NULL CHECK (n_spins > 0),
    n_samples   INTEGER NOT NULL CHECK (n_samples > 0),
    n_distinct  INTEGER NOT NULL CHECK (n_distinct > 0),
    entropy     REAL    NOT NULL,
    sha256      TEXT    NOT NULL,
    has_labels  INTEGER NOT NULL DEFAULT 0,
    -- For every original row, the index of its distinct pattern: u32 little-endian, versioned blob.
    row_index   BLOB    NOT NULL,
    -- For every original row, its label (JSON array of strings) when labels were given.
    row_labels  TEXT,
    created_at  TEXT    NOT NULL
);

CREATE TABLE dataset_patterns (
    dataset_id  INTEGER NOT NULL REFERENCES datasets (id) ON DELETE CASCADE,
    idx         INTEGER NOT NULL,
    pattern     BLOB    NOT NULL,
    count       INTEGER NOT NULL CHECK (count > 0),
    -- JSON object label -> count of rows with this pattern, when labels were given.
    labels      TEXT,
    PRIMARY KEY (dataset_id, idx)
) WITHOUT ROWID;
