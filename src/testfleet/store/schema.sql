-- testfleet store schema (the current version; db.py's SCHEMA_VERSION names it and writes it
-- to meta). Timestamps are TIMESTAMPTZ, written from epoch microseconds (timezone-independent).
-- Lists and dicts are JSON. Every statement is idempotent so a half-created store can be
-- completed. No foreign keys: DuckDB turns UPDATE into delete+insert, which FKs forbid.

CREATE TABLE IF NOT EXISTS meta (
    key    VARCHAR PRIMARY KEY,
    value  VARCHAR NOT NULL
);

CREATE TABLE IF NOT EXISTS runs (
    run_id       VARCHAR PRIMARY KEY,
    started_at   TIMESTAMPTZ NOT NULL,
    finished_at  TIMESTAMPTZ,
    status       VARCHAR NOT NULL,
    exit_code    INTEGER,
    argv         JSON NOT NULL,
    paths        JSON NOT NULL,
    rootdir      VARCHAR NOT NULL,
    settings     JSON NOT NULL,
    seed         BIGINT NOT NULL,
    git_sha      VARCHAR,
    backend      VARCHAR NOT NULL,
    workers      INTEGER NOT NULL,
    collected    INTEGER NOT NULL,
    deselected   INTEGER NOT NULL,
    counts       JSON NOT NULL,
    flaky        INTEGER NOT NULL,
    duration     DOUBLE NOT NULL
);

CREATE TABLE IF NOT EXISTS cases (
    case_id  VARCHAR PRIMARY KEY,
    nodeid   VARCHAR NOT NULL,
    kind     VARCHAR NOT NULL,
    file     VARCHAR NOT NULL,
    line     BIGINT,
    name     VARCHAR NOT NULL,
    markers  JSON NOT NULL
);

CREATE TABLE IF NOT EXISTS variants (
    variant_id  VARCHAR PRIMARY KEY,
    case_id     VARCHAR NOT NULL,
    params      JSON NOT NULL,
    origin      VARCHAR NOT NULL,
    parent_id   VARCHAR
);

-- which cases a run collected
CREATE TABLE IF NOT EXISTS run_cases (
    run_id   VARCHAR NOT NULL,
    case_id  VARCHAR NOT NULL,
    PRIMARY KEY (run_id, case_id)
);

-- one row per attempt; no key: the same variant may run on several workers (replication)
CREATE TABLE IF NOT EXISTS results (
    run_id       VARCHAR NOT NULL,
    variant_id   VARCHAR NOT NULL,
    case_id      VARCHAR NOT NULL,
    nodeid       VARCHAR NOT NULL,
    attempt      INTEGER NOT NULL,
    worker       VARCHAR NOT NULL,
    outcome      VARCHAR NOT NULL,
    duration     DOUBLE NOT NULL,
    started_at   TIMESTAMPTZ,
    finished_at  TIMESTAMPTZ,
    "when"       VARCHAR,
    message      VARCHAR NOT NULL,
    longrepr     VARCHAR NOT NULL,
    stdout       VARCHAR NOT NULL,
    stderr       VARCHAR NOT NULL,
    log          VARCHAR NOT NULL,
    categories   JSON NOT NULL,
    fingerprint  VARCHAR,
    file         VARCHAR NOT NULL,
    line         BIGINT,
    keywords     JSON NOT NULL,
    phases       JSON NOT NULL,
    flaky        BOOLEAN NOT NULL,
    final        BOOLEAN NOT NULL
);

CREATE INDEX IF NOT EXISTS results_run_id ON results (run_id);
CREATE INDEX IF NOT EXISTS results_nodeid ON results (nodeid);
CREATE INDEX IF NOT EXISTS variants_case_id ON variants (case_id);
