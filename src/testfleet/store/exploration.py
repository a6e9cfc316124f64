"""What exploration reads from the store before a run: the variants that already ran (never
proposed again) and the explored variants whose latest result failed (replayed first, like
Hypothesis's example database)."""

from __future__ import annotations

import json
from typing import Any

from testfleet.model import FAILURE_OUTCOMES
from testfleet.store.db import Store

__all__ = ["failing_variants", "known_variants"]


def known_variants(store: Store) -> set[str]:
    """Ids of every variant with a final result in the store."""
    return {row[0] for row in store.query("SELECT DISTINCT variant_id FROM results WHERE final")}


def failing_variants(store: Store, limit: int = 100) -> list[tuple[str, dict[str, Any]]]:
    """(nodeid, params) of explored variants whose latest final result failed, newest first."""
    rows = store.query(
        "SELECT nodeid, params::VARCHAR FROM ("
        "  SELECT r.nodeid, v.params, r.outcome, u.started_at, row_number() OVER ("
        "         PARTITION BY r.variant_id ORDER BY u.started_at DESC, r.rowid DESC) AS k "
        "  FROM results r JOIN runs u USING (run_id) JOIN variants v USING (variant_id) "
        "  WHERE r.final AND v.origin <> 'baseline') "
        "WHERE k = 1 AND list_contains($1, outcome) ORDER BY started_at DESC LIMIT $2",
        [sorted(o.value for o in FAILURE_OUTCOMES), limit])
    return [(nodeid, json.loads(params) if params else {}) for nodeid, params in rows]
