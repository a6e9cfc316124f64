-- schema version 4: who began each run. A run still 'running' whose coordinator process (this
-- pid, on this host, started at this time) is gone was killed or aborted; the next open of the
-- store closes it as 'interrupted' (store/liveness.py).

ALTER TABLE runs ADD COLUMN IF NOT EXISTS coordinator_pid BIGINT;
ALTER TABLE runs ADD COLUMN IF NOT EXISTS coordinator_host VARCHAR;
ALTER TABLE runs ADD COLUMN IF NOT EXISTS coordinator_started DOUBLE;  -- epoch seconds
