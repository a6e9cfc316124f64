"""Chunks and packs: content-defined chunking, hashing, zstd compression, pack files.

Approach (the restic/borg/casync family, written for this store):

* A file's bytes are cut with FastCDC (min 4 KiB, average 16 KiB, max 64 KiB): cut points depend
  on the content around them, so an edit moves only the cuts near it and near-identical files
  share nearly all their chunks. A chunk's id is the SHA-256 of its raw bytes.
* The new chunks of one save are compressed (zstd level 3, one frame each, content size in the
  frame header) and appended to ONE new pack file, ``<packs>/<pack-id>.pack``. The pack is written
  under a temporary name, fsynced and renamed before any index row names it, so the index never
  points at a pack that is not all there; a pack that no index row names (a crash between the
  two) is an orphan that ``gc`` removes.
* Hashing and compression release the GIL, so large saves and restores split their chunks into
  ~1 MiB groups and run them on a small shared thread pool (compression of a large batch uses
  zstandard's own multi-threaded batch API when present); small ones stay on the caller's
  thread, where threads would cost more than they save.
* Reading a chunk back always checks it: the frame must lie inside its pack, decompress to the
  recorded size and hash to its id; anything else is a :class:`ChunkDamage` with the reason.
"""

from __future__ import annotations

import hashlib
import mmap
import os
import secrets
import threading
from array import array
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, NamedTuple, Self, TypeVar

import zstandard
from fastcdc import fastcdc

MIN_SIZE, AVG_SIZE, MAX_SIZE = 4 << 10, 16 << 10, 64 << 10
LEVEL = 3
MAX_CHUNK = 16 << 20  # largest chunk an imported archive may declare (ours are <= 64 KiB)
GROUP_BYTES = 1 << 20  # bytes per thread-pool task: big enough to amortise the hand-off
MMAP_FROM = 1 << 20  # files this large are mapped rather than read
PARALLEL_FROM = 1 << 20  # new bytes from which compression runs on several threads
PACK_SUFFIX = ".pack"
TEMP_SUFFIX = ".tmp"

_T = TypeVar("_T")
_R = TypeVar("_R")
_local = threading.local()
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


class ChunkRow(NamedTuple):
    """Where a chunk lives: ``snapshot_chunks`` as a tuple."""

    chunk_id: str
    pack: str
    offset: int
    stored: int
    size: int


class ChunkDamage(Exception):
    """A chunk that cannot be read back as stored; ``reason`` says how."""

    def __init__(self, chunk_id: str, reason: str) -> None:
        self.chunk_id = chunk_id
        self.reason = reason
        super().__init__(f"chunk {chunk_id[:12]}: {reason}")


# -- parallel helpers ------------------------------------------------------------------------

def _executor() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=max(2, min(8, os.cpu_count() or 2)),
                                       thread_name_prefix="testfleet-chunks")
        return _pool


def submit(fn: Callable[..., _R], *args: object) -> Future[_R]:
    """Run ``fn(*args)`` on the shared pool (for work that overlaps the caller's)."""
    return _executor().submit(fn, *args)


def groups(items: Sequence[_T], size_of: Callable[[_T], int],
           target: int = GROUP_BYTES) -> list[list[_T]]:
    """Consecutive items cut into groups of about ``target`` bytes."""
    out: list[list[_T]] = []
    current: list[_T] = []
    total = 0
    for item in items:
        current.append(item)
        total += size_of(item)
        if total >= target:
            out.append(current)
            current, total = [], 0
    if current:
        out.append(current)
    return out


def pmap(fn: Callable[[_T], _R], work: Sequence[_T]) -> list[_R]:
    """``[fn(w) for w in work]``, on the shared pool when there is more than one piece."""
    if len(work) <= 1:
        return [fn(w) for w in work]
    return list(_executor().map(fn, work))


def compressor() -> zstandard.ZstdCompressor:
    # one per thread: a ZstdCompressor must not be used by two threads at once
    c = getattr(_local, "cctx", None)
    if c is None:
        c = _local.cctx = zstandard.ZstdCompressor(level=LEVEL)
    return c


def decompressor() -> zstandard.ZstdDecompressor:
    d = getattr(_local, "dctx", None)
    if d is None:
        d = _local.dctx = zstandard.ZstdDecompressor()
    return d


# -- cutting and hashing ---------------------------------------------------------------------

class Source:
    """A file's bytes for one save: read whole when small, memory-mapped when large.

    A mapped file is closed after hashing and mapped again only if it has new chunks to
    compress, so a tree of many large files never holds many descriptors at once.
    """

    def __init__(self, path: Path, size: int) -> None:
        self.path = path
        self.size = size
        self.mapped = size >= MMAP_FROM
        self._bytes = b""
        self._map: mmap.mmap | None = None
        if 0 < size < MMAP_FROM:
            with open(path, "rb") as handle:
                self._bytes = handle.read()

    @property
    def data(self) -> bytes | mmap.mmap:
        if not self.mapped:
            return self._bytes
        if self._map is None:
            with open(self.path, "rb") as handle:
                self._map = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
        return self._map

    def close(self) -> None:
        if self._map is not None:
            self._map.close()
            self._map = None


def cut(data: bytes | mmap.mmap) -> list[tuple[int, int]]:
    """(offset, length) of each content-defined chunk of ``data``."""
    n = len(data)
    if n <= MIN_SIZE:
        return [(0, n)] if n else []
    return [(c.offset, c.length) for c in fastcdc(data, MIN_SIZE, AVG_SIZE, MAX_SIZE, fat=False)]


def hash_chunks(data: bytes | mmap.mmap, cuts: list[tuple[int, int]]) -> list[str]:
    """The SHA-256 of each chunk, in order (in parallel for large files)."""
    view = memoryview(data)
    try:
        def run(group: list[tuple[int, int]]) -> list[str]:
            return [hashlib.sha256(view[o:o + n]).hexdigest() for o, n in group]
        return [h for part in pmap(run, groups(cuts, lambda c: c[1])) for h in part]
    finally:
        view.release()


def sha256_file(data: bytes | mmap.mmap) -> str:
    return hashlib.sha256(data).hexdigest()


def compress_into(pack: PackWriter, pieces: dict[str, tuple[Source, int, int]]) -> None:
    """Compress each new chunk (id -> source, offset, length) into ``pack``: the small files'
    chunks together, then each mapped file's while it is mapped."""
    batches: dict[int, list[tuple[str, Source, int, int]]] = {}
    for chunk_id, (src, offset, length) in pieces.items():
        key = id(src) if src.mapped else 0
        batches.setdefault(key, []).append((chunk_id, src, offset, length))
    for batch in batches.values():
        for (chunk_id, _, _, length), frame in zip(batch, _compress(batch), strict=True):
            pack.add(chunk_id, frame, length)
        batch[0][1].close()


def _compress(batch: list[tuple[str, Source, int, int]]) -> Sequence[bytes | memoryview]:
    cctx = compressor()
    if sum(p[3] for p in batch) >= PARALLEL_FROM and hasattr(cctx, "multi_compress_to_buffer"):
        # zstandard's C backend compresses many inputs on its own threads, with no GIL hand-off
        # per chunk: ~25% faster than the pool on 16 KiB chunks.
        src = batch[0][1]
        if src.mapped:  # one file: its chunks are segments of the mapping, nothing copied
            segments = array("Q", [x for _, _, o, n in batch for x in (o, n)]).tobytes()
            inputs: Any = zstandard.BufferWithSegments(src.data, segments)
        else:
            inputs = [bytes(memoryview(s.data)[o:o + n]) for _, s, o, n in batch]
        out = cctx.multi_compress_to_buffer(inputs, threads=-1)
        return [memoryview(out[i]) for i in range(len(out))]

    def run(group: list[tuple[str, Source, int, int]]) -> list[bytes]:
        c = compressor()
        frames = []
        for _, s, offset, length in group:
            with memoryview(s.data) as view:
                frames.append(c.compress(view[offset:offset + length]))
        return frames
    return [f for part in pmap(run, groups(batch, lambda p: p[3])) for f in part]


def check_frame(chunk_id: str, frame: bytes, size: int) -> bytes:
    """The raw bytes of a stored frame, or :class:`ChunkDamage` if they are not chunk_id's."""
    try:
        declared = zstandard.frame_content_size(frame)
        if declared != size:
            raise ChunkDamage(chunk_id, f"frame declares {declared} bytes, index says {size}")
        raw = decompressor().decompress(frame, max_output_size=size)
    except zstandard.ZstdError as exc:
        raise ChunkDamage(chunk_id, f"not a valid zstd frame ({exc})") from None
    if len(raw) != size:
        raise ChunkDamage(chunk_id, f"decompresses to {len(raw)} bytes, expected {size}")
    if hashlib.sha256(raw).hexdigest() != chunk_id:
        raise ChunkDamage(chunk_id, "content does not match its SHA-256 (damaged)")
    return raw


# -- packs -----------------------------------------------------------------------------------

def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)  # makes the rename itself durable
    finally:
        os.close(fd)


class PackWriter:
    """One new pack: frames appended to a temporary file, then :meth:`commit`-ed by rename."""

    def __init__(self, packs_dir: Path) -> None:
        self.packs_dir = packs_dir
        self.pack_id = secrets.token_hex(16)
        self.rows: list[ChunkRow] = []
        self._ids: set[str] = set()
        self._handle = None
        self._offset = 0
        self.final = packs_dir / f"{self.pack_id}{PACK_SUFFIX}"
        self._temp = packs_dir / f".{self.pack_id}{PACK_SUFFIX}{TEMP_SUFFIX}"

    def __contains__(self, chunk_id: str) -> bool:
        return chunk_id in self._ids

    def add(self, chunk_id: str, frame: bytes | memoryview, size: int) -> None:
        if chunk_id in self._ids:
            return
        if self._handle is None:
            self.packs_dir.mkdir(parents=True, exist_ok=True)
            # closed by commit/discard; a 1 MiB buffer writes thousands of ~4 KiB frames in few
            # system calls
            self._handle = open(self._temp, "xb", buffering=1 << 20)  # noqa: SIM115
        self._handle.write(frame)
        self.rows.append(ChunkRow(chunk_id, self.pack_id, self._offset, len(frame), size))
        self._ids.add(chunk_id)
        self._offset += len(frame)

    @property
    def stored(self) -> int:
        return self._offset

    def commit(self) -> None:
        """Make the pack durable under its final name (nothing to do when it has no chunk)."""
        if self._handle is None:
            return
        self._handle.flush()
        os.fsync(self._handle.fileno())
        self._handle.close()
        self._handle = None
        os.replace(self._temp, self.final)
        _fsync_dir(self.packs_dir)

    def discard(self) -> None:
        """Remove the pack (the index write that should have named it failed)."""
        if self._handle is not None:
            self._handle.close()
            self._handle = None
        for path in (self._temp, self.final):
            try:
                path.unlink()
            except FileNotFoundError:
                pass


class PackReader:
    """Reads chunks back from their packs (each pack mapped once), checking every one."""

    def __init__(self, packs_dir: Path) -> None:
        self.packs_dir = packs_dir
        self._maps: dict[str, mmap.mmap | None] = {}
        self._lock = threading.Lock()

    def _map(self, pack: str) -> mmap.mmap | None:
        with self._lock:
            if pack not in self._maps:
                try:
                    with open(self.packs_dir / f"{pack}{PACK_SUFFIX}", "rb") as handle:
                        self._maps[pack] = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
                except (FileNotFoundError, ValueError):  # ValueError: an empty file
                    self._maps[pack] = None
            return self._maps[pack]

    def frame(self, row: ChunkRow) -> bytes:
        data = self._map(row.pack)
        if data is None:
            path = self.packs_dir / f"{row.pack}{PACK_SUFFIX}"
            reason = "is empty" if path.exists() else "is missing"
            raise ChunkDamage(row.chunk_id, f"pack {row.pack} {reason}")
        if row.offset < 0 or row.offset + row.stored > len(data):
            raise ChunkDamage(row.chunk_id, f"pack {row.pack} is truncated")
        return data[row.offset:row.offset + row.stored]

    def read(self, row: ChunkRow) -> bytes:
        """The raw bytes of a chunk, checked; :class:`ChunkDamage` otherwise."""
        return check_frame(row.chunk_id, self.frame(row), row.size)

    def close(self) -> None:
        with self._lock:
            for data in self._maps.values():
                if data is not None:
                    data.close()
            self._maps.clear()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
