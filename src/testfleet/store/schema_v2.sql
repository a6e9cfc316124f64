-- schema version 2: configuration snapshots and behaviour specs (applied to new stores after
-- schema.sql, and to version-1 stores as MIGRATIONS[1]).

-- one row per snapshot; the id hashes the entries (paths, kinds, modes, content hashes), so the
-- same content is the same snapshot. A snapshot's rows are written in one transaction: it lists
-- completely or not at all.
CREATE TABLE IF NOT EXISTS snapshots (
    snapshot_id  VARCHAR PRIMARY KEY,
    created_at   TIMESTAMPTZ NOT NULL,
    roots        JSON NOT NULL,       -- the paths as given to `save`
    files        BIGINT NOT NULL,
    size         BIGINT NOT NULL      -- bytes of file content, before dedup and compression
);

-- files, directories and symlinks of a snapshot, by relative POSIX path
CREATE TABLE IF NOT EXISTS snapshot_entries (
    snapshot_id  VARCHAR NOT NULL,
    path         VARCHAR NOT NULL,
    kind         VARCHAR NOT NULL,    -- file | dir | symlink
    mode         INTEGER NOT NULL,    -- permission bits
    size         BIGINT NOT NULL,
    sha256       VARCHAR,             -- of the file's bytes
    target       VARCHAR,             -- a symlink's target
    chunks       JSON NOT NULL,       -- ordered chunk ids of a file
    PRIMARY KEY (snapshot_id, path)
);

-- content-defined chunks: id = SHA-256 of the raw bytes. Consecutive chunks of a save share
-- one zstd frame (~1 MiB raw) in a pack file; a chunk is its slice of the decompressed frame.
CREATE TABLE IF NOT EXISTS snapshot_chunks (
    chunk_id     VARCHAR PRIMARY KEY,
    pack         VARCHAR NOT NULL,
    "offset"     BIGINT NOT NULL,     -- the frame's position in the pack
    stored       BIGINT NOT NULL,     -- the frame's compressed length (shared by its chunks)
    frame_offset BIGINT NOT NULL,     -- the chunk's start in the decompressed frame
    size         BIGINT NOT NULL      -- the chunk's raw length
);

CREATE TABLE IF NOT EXISTS snapshot_tags (
    snapshot_id  VARCHAR NOT NULL,
    tag          VARCHAR NOT NULL,
    PRIMARY KEY (snapshot_id, tag)
);

CREATE TABLE IF NOT EXISTS snapshot_meta (
    snapshot_id  VARCHAR NOT NULL,
    key          VARCHAR NOT NULL,
    value        VARCHAR NOT NULL,
    PRIMARY KEY (snapshot_id, key)
);

-- which configurations a run used: role = settings | space | ruleset | sut:<instance> ...
CREATE TABLE IF NOT EXISTS run_snapshots (
    run_id       VARCHAR NOT NULL,
    role         VARCHAR NOT NULL,
    snapshot_id  VARCHAR NOT NULL,
    PRIMARY KEY (run_id, role)
);

-- every version of every behaviour spec ever checked
CREATE TABLE IF NOT EXISTS specs (
    spec_id      VARCHAR NOT NULL,
    version      VARCHAR NOT NULL,
    body         JSON NOT NULL,
    digest       VARCHAR NOT NULL,
    source       VARCHAR,
    first_seen   TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (spec_id, version)
);
