-- schema version 3: telemetry. Each result carries the summary of the metrics sampled while it
-- ran; the samples themselves go to `telemetry` (long format: one row per metric per sample,
-- times as epoch seconds); anomalies and other run events go to `events`.

ALTER TABLE results ADD COLUMN IF NOT EXISTS telemetry JSON DEFAULT '{}';

CREATE TABLE IF NOT EXISTS telemetry (
    run_id  VARCHAR NOT NULL,
    worker  VARCHAR NOT NULL,
    t       DOUBLE NOT NULL,       -- epoch seconds
    metric  VARCHAR NOT NULL,
    value   DOUBLE NOT NULL
);

CREATE TABLE IF NOT EXISTS events (
    run_id      VARCHAR NOT NULL,
    t           DOUBLE NOT NULL,   -- epoch seconds
    kind        VARCHAR NOT NULL,  -- outlier, leak, instance
    case_id     VARCHAR,
    variant_id  VARCHAR,
    nodeid      VARCHAR,
    worker      VARCHAR,
    metric      VARCHAR,
    value       DOUBLE,
    baseline    DOUBLE,
    score       DOUBLE,
    message     VARCHAR NOT NULL,
    data        JSON NOT NULL
);
