"""Configuration snapshots: save/restore speed on a large config, small-snapshot throughput, and
the space 100 edited versions take, with `tar --zstd` as the peer in the same run.

    python bench/snapshots.py              # 100 MB config, 100 versions (a few minutes)
    python bench/snapshots.py --quick      # 10 MB config, 20 versions
    python bench/snapshots.py --only big --only small --only versions

Parts (targets printed, never enforced; exit 1 only when a restore is not byte-identical):

* ``big``: save and restore of one generated config (``key = value`` sections, YAML-like lists)
  into a fresh store, best of ``--repeat``; MB/s (target >= 300 MB/s, each < 1 s at 100 MB).
  Peer: ``tar --zstd`` (else ``tar | zstd``, else ``tar czf``) of the same file, create and
  extract; printed as peer seconds / testfleet seconds and archive bytes / stored bytes.
* ``small``: saves of distinct ~1 KiB config files: one ``save`` per operation (each its own
  pack, fsync and DuckDB transaction) and ``save_many`` in batches of 100 (target 2,000 per
  second; the source document's figure is 100 per second).
* ``versions``: 100 versions of the config, each differing from the one before in ~1% of its
  bytes, in 10 contiguous regions of ~0.1% (replaced by new text of +/-10% length, so the
  content after an edit shifts); stored bytes of all versions / stored bytes of the first
  (target <= 3).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from vs_xdist import context, publish

from testfleet.snapshots.store import SnapshotStore
from testfleet.store.db import Store

RESULTS = Path(__file__).resolve().parent / "results" / "snapshots.jsonl"
MB = 1 << 20
_WORDS = ("server", "port", "timeout", "retries", "cache", "pool", "size", "log", "level", "path",
          "enabled", "max", "min", "replicas", "region", "tls", "cert", "queue", "batch", "ttl",
          "backoff", "limit", "workers", "threads", "buffer", "endpoint", "auth", "token",
          "metrics", "tracing", "sample", "rate", "window", "shard", "index", "memory", "cpu")
_ENVS = ("prod", "staging", "dev", "canary", "eu-west-1", "us-east-2", "ap-south-1")


def _templates(rnd: random.Random) -> list[list[tuple[str, list[str]]]]:
    """Section kinds: each an ordered key list, each key with the few values it takes (the
    first most often), as in generated service configs."""
    kinds = []
    for _ in range(30):
        keys = []
        for _ in range(rnd.randint(12, 40)):
            key = ".".join(rnd.sample(_WORDS, rnd.randint(1, 3)))
            style = rnd.random()
            if style < 0.4:
                values = [str(rnd.choice((1, 2, 3, 5, 10, 30, 60, 100, 512, 1024, 8080)))
                          for _ in range(rnd.randint(1, 4))]
            elif style < 0.6:
                values = ["true", "false"]
            elif style < 0.85:
                values = [f"\"{rnd.choice(_WORDS)}/{rnd.choice(_WORDS)}\""
                          for _ in range(rnd.randint(1, 3))]
            else:
                values = ["*"]  # a per-section value: a number, an address
            keys.append((key, values))
        kinds.append(keys)
    return kinds


def config_text(size: int, seed: int) -> bytes:
    """About ``size`` bytes of config: ``[kind.name-N]`` sections of ``key = value`` lines that
    follow their kind's template with mostly default values, some lists, some unique values."""
    rnd = random.Random(seed)
    kinds = _templates(random.Random(0))  # the same schema in every version
    out: list[str] = []
    total = 0
    n = rnd.randint(0, 10**6)
    while total < size:
        n += 1
        k = rnd.randrange(len(kinds))
        env = rnd.choice(_ENVS)
        lines = [f"\n[{_WORDS[k]}.svc-{n:07d}]\n", f"env = \"{env}\"\n",
                 f"host = \"{_WORDS[k]}-{rnd.randint(0, 999)}.{env}.internal\"\n"]
        for key, values in kinds[k]:
            if values == ["*"]:
                value = str(rnd.randint(0, 1 << rnd.choice((8, 16, 31))))
            else:
                value = values[0] if rnd.random() < 0.7 else rnd.choice(values)
            lines.append(f"{key} = {value}\n")
        if rnd.random() < 0.3:
            lines.append("upstreams =\n" + "".join(
                f"  - {rnd.choice(_WORDS)}.{env}.internal:{rnd.choice((80, 443, 8080, 9090))}\n"
                for _ in range(rnd.randint(1, 4))))
        chunk = "".join(lines)
        out.append(chunk)
        total += len(chunk)
    return "".join(out).encode()[:size]


def edit(data: bytes, rnd: random.Random, regions: int = 10, fraction: float = 0.001) -> bytes:
    """``regions`` contiguous regions of ``fraction`` of the bytes replaced by new config text."""
    span = max(1, int(len(data) * fraction))
    starts = sorted(rnd.sample(range(len(data) - span), regions))
    out, at = [], 0
    for start in starts:
        if start < at:
            continue
        out.append(data[at:start])
        out.append(config_text(int(span * rnd.uniform(0.9, 1.1)), rnd.randint(0, 1 << 30)))
        at = start + span
    out.append(data[at:])
    return b"".join(out)


def stored_bytes(store_path: Path) -> int:
    packs = store_path.parent / f"{store_path.stem}.snapshots" / "packs"
    return sum(p.stat().st_size for p in packs.glob("*.pack"))


def peer_commands(src: Path, archive: Path, out: Path) -> tuple[str, list[str], list[str]]:
    """The peer's name and create/extract commands (tar with zstd when the machine has it)."""
    zstd = shutil.which("zstd")
    probe = subprocess.run(["tar", "--zstd", "--version"], capture_output=True, check=False)
    if zstd and probe.returncode == 0:
        return ("tar --zstd", ["tar", "--zstd", "-cf", str(archive), "-C", str(src.parent), src.name],
                ["tar", "--zstd", "-xf", str(archive), "-C", str(out)])
    if zstd:
        return ("tar | zstd", ["sh", "-c", f"tar -cf - -C '{src.parent}' '{src.name}' | zstd -q -3 -o '{archive}'"],
                ["sh", "-c", f"zstd -dc '{archive}' | tar -xf - -C '{out}'"])
    return ("tar czf", ["tar", "czf", str(archive), "-C", str(src.parent), src.name],
            ["tar", "xzf", str(archive), "-C", str(out)])


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def bench_big(work: Path, size: int, repeat: int, ctx: dict) -> tuple[list[str], bool]:
    src = work / "big" / "app.conf"
    src.parent.mkdir(parents=True)
    src.write_bytes(config_text(size, 1))
    data = src.read_bytes()
    saves, restores, stored, ok = [], [], 0, True
    for i in range(repeat):
        store_path = work / f"big-{i}.duckdb"
        with Store.open(store_path) as db:
            ss = SnapshotStore(db)
            start = time.perf_counter()
            sid = ss.save([src])
            saves.append(time.perf_counter() - start)
            dest = work / f"restored-{i}"
            start = time.perf_counter()
            ss.restore(sid, dest)
            restores.append(time.perf_counter() - start)
            ok &= (dest / src.name).read_bytes() == data
            stored = stored_bytes(store_path)
        shutil.rmtree(dest)
    name, create, extract = peer_commands(src, work / "peer.tar", work / "peer-out")
    peer_c, peer_x = [], []
    for _ in range(repeat):
        (work / "peer-out").mkdir(exist_ok=True)
        peer_c.append(timed(lambda: subprocess.run(create, check=True)))
        peer_x.append(timed(lambda: subprocess.run(extract, check=True)))
        shutil.rmtree(work / "peer-out")
    peer_size = (work / "peer.tar").stat().st_size
    s, r, pc, px = min(saves), min(restores), min(peer_c), min(peer_x)
    mb = size / MB
    print(f"\nbig config: {mb:.0f} MB ({size:,} bytes), best of {repeat}")
    print(f"  testfleet save     {s:6.3f} s  {mb / s:7.0f} MB/s   stored {stored:,} bytes "
          f"({stored / size:.1%})")
    print(f"  testfleet restore  {r:6.3f} s  {mb / r:7.0f} MB/s   byte-identical: {'yes' if ok else 'NO'}")
    print(f"  {name:<10} create {pc:6.3f} s  {mb / pc:7.0f} MB/s   archive {peer_size:,} bytes")
    print(f"  {name:<10} extract{px:6.3f} s  {mb / px:7.0f} MB/s")
    print(f"  peer/testfleet time: save {pc / s:.2f}x, restore {px / r:.2f}x; "
          f"size {peer_size / stored:.2f}x   (target: >= 300 MB/s, each < 1 s at 100 MB)")
    base = ctx | {"part": "big", "bytes": size, "peer": name}
    lines = [json.dumps(base | {"op": "save", "seconds": round(s, 4), "mb_per_s": round(mb / s, 1),
                                "peer_seconds": round(pc, 4), "peer_over_testfleet": round(pc / s, 2),
                                "stored": stored, "peer_bytes": peer_size, "target_mb_per_s": 300,
                                "met": mb / s >= 300 and (size < 100 * MB or s < 1)}),
             json.dumps(base | {"op": "restore", "seconds": round(r, 4), "mb_per_s": round(mb / r, 1),
                                "peer_seconds": round(px, 4), "peer_over_testfleet": round(px / r, 2),
                                "identical": ok, "target_mb_per_s": 300,
                                "met": ok and mb / r >= 300 and (size < 100 * MB or r < 1)})]
    return lines, ok


def bench_small(work: Path, singles: int, batched: int, ctx: dict) -> list[str]:
    files = work / "small"
    files.mkdir()
    paths = []
    for i in range(singles + batched):
        path = files / f"svc-{i:05d}.conf"
        path.write_bytes(config_text(1024, 1000 + i))
        paths.append(path)
    with Store.open(work / "small.duckdb") as db:
        ss = SnapshotStore(db)
        one = timed(lambda: [ss.save([p], tags=["bench"]) for p in paths[:singles]])
        rest = paths[singles:]
        many = timed(lambda: [ss.save_many([([p], ["bench"], {"i": str(k)})
                                            for k, p in enumerate(rest[i:i + 100])])
                              for i in range(0, len(rest), 100)])
        assert len(ss.list()) == singles + batched
    print("\nsmall snapshots (~1 KiB config each)")
    print(f"  save, one per op      {singles:5d} ops  {one:6.3f} s  {singles / one:8.0f} ops/s")
    print(f"  save_many, batch 100  {batched:5d} ops  {many:6.3f} s  {batched / many:8.0f} ops/s")
    print("  (target 2,000 ops/s; source document 100 ops/s; one save = pack fsync + DuckDB commit)")
    base = ctx | {"part": "small", "target_per_s": 2000, "source_document_per_s": 100}
    return [json.dumps(base | {"op": "save", "ops": singles, "seconds": round(one, 4),
                               "per_s": round(singles / one, 1), "met": singles / one >= 2000}),
            json.dumps(base | {"op": "save_many_100", "ops": batched, "seconds": round(many, 4),
                               "per_s": round(batched / many, 1), "met": batched / many >= 2000})]


def bench_versions(work: Path, size: int, count: int, ctx: dict) -> list[str]:
    rnd = random.Random(7)
    src = work / "versions" / "app.conf"
    src.parent.mkdir(parents=True)
    data = config_text(size, 2)
    store_path = work / "versions.duckdb"
    first = 0
    took = 0.0
    with Store.open(store_path) as db:
        ss = SnapshotStore(db)
        for v in range(count):
            if v:
                data = edit(data, rnd)
            src.write_bytes(data)
            start = time.perf_counter()
            ss.save([src], tags=[f"v{v}"])
            took += time.perf_counter() - start
            if v == 0:
                first = stored_bytes(store_path)
        total = stored_bytes(store_path)
        checked = ss.verify()
    ratio = total / first
    print(f"\n{count} versions of a {size / MB:.0f} MB config (~1% changed per version, 10 regions)")
    print(f"  stored: first version {first:,} bytes, all {count} {total:,} bytes: {ratio:.2f}x "
          f"(target <= 3x); raw {count * size:,} bytes")
    print(f"  saving all took {took:.2f} s ({took / count * 1000:.0f} ms per version); verify: "
          f"{'ok' if not checked.problems else checked.problems[:3]}")
    return [json.dumps(ctx | {"part": "versions", "bytes": size, "versions": count,
                              "stored_first": first, "stored_all": total, "ratio": round(ratio, 3),
                              "target_ratio": 3, "met": ratio <= 3,
                              "seconds_per_version": round(took / count, 4)})]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10 MB config, 20 versions, fewer small ops")
    parser.add_argument("--only", action="append", choices=["big", "small", "versions"],
                        help="run only this part (repeatable)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of 'big' per tool; the best counts")
    parser.add_argument("--no-save", action="store_true", help=f"do not append to {RESULTS}")
    args = parser.parse_args(argv)
    parts = args.only or ["big", "small", "versions"]
    size = (10 if args.quick else 100) * MB
    ctx = context() | {"bench": "snapshots", "quick": args.quick}
    lines: list[str] = []
    ok = True
    with tempfile.TemporaryDirectory(prefix="tf-bench-snapshots-") as tmp:
        work = Path(tmp)
        if "big" in parts:
            more, ok = bench_big(work, size, args.repeat, ctx)
            lines += more
        if "small" in parts:
            lines += bench_small(work, 200 if args.quick else 500, 1000 if args.quick else 5000, ctx)
        if "versions" in parts:
            lines += bench_versions(work, size, 20 if args.quick else 100, ctx)
    publish(lines, RESULTS, save=not args.no_save)
    return 0 if ok else 1


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    sys.exit(main())
