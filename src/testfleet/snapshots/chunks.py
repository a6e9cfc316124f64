"""Chunks and packs: content-defined chunking, hashing, zstd compression, pack files.

Approach (the restic/borg/casync family, written for this store):

* A file's bytes are cut with FastCDC (min 4 KiB, average 16 KiB, max 64 KiB): cut points depend
  on the content around them, so an edit moves only the cuts near it and near-identical files
  share nearly all their chunks. A chunk's id is the SHA-256 of its raw bytes.
* The new chunks of one save, in file order, are grouped into frames of about ``GROUP_BYTES``
  (1 MiB) of consecutive raw bytes (a frame may run on from one file's last chunks into the
  next file's first), each compressed as ONE zstd frame (level 3, content size and checksum in
  the frame header and trailer) and appended to ONE new pack file, ``<packs>/<pack-id>.pack``.
  Compressing 1 MiB at a time takes about half the CPU and half the bytes of a frame per chunk:
  zstd sees the context. A chunk's index row names its frame (pack, offset and stored length,
  shared by all the frame's chunks) and its place in the decompressed frame (``frame_offset``,
  ``size``).
* The pack is written under a temporary name, fsynced and renamed before any index row names
  it, so the index never points at a pack that is not all there; a pack that no index row names
  (a crash between the two) is an orphan that ``gc`` removes.
* Hashing and compression release the GIL, so large saves and restores split their work into
  ~1 MiB pieces (one frame each when compressing) and run them on a small shared thread pool;
  small ones stay on the caller's thread, where threads would cost more than they save.
* Reading a chunk back always checks it: the frame must lie inside its pack, be a valid zstd
  frame (checksum included) that decompresses to the size its header declares, that size must
  contain the chunk's ``[frame_offset, frame_offset + size)``, and the slice must hash to the
  chunk id; anything else is a :class:`ChunkDamage` with the reason. A :class:`PackReader`
  decompresses a frame once and keeps the last few (restore and verify read a frame's chunks one
  after another); threads that want the same frame at once wait for one decompression.
"""

from __future__ import annotations

import hashlib
import mmap
import os
import secrets
import threading
from collections import OrderedDict, deque
from collections.abc import Callable, Generator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from contextlib import closing
from pathlib import Path
from typing import BinaryIO, NamedTuple, Self, TypeVar

import zstandard
from fastcdc import fastcdc

# defined in testfleet.errors; re-exported from its old home
from testfleet.errors import ChunkDamage as ChunkDamage

MIN_SIZE, AVG_SIZE, MAX_SIZE = 4 << 10, 16 << 10, 64 << 10
LEVEL = 3
MAX_CHUNK = 16 << 20  # largest chunk an imported archive may declare (ours are <= 64 KiB)
GROUP_BYTES = 1 << 20  # raw bytes per frame, and per thread-pool task
MAX_FRAME = GROUP_BYTES + MAX_CHUNK  # no frame we write holds more (a group ends at >= 1 MiB)
FRAME_CACHE = 16  # decompressed frames a PackReader keeps
MMAP_FROM = 1 << 20  # files this large are mapped rather than read
PACK_SUFFIX = ".pack"
TEMP_SUFFIX = ".tmp"

_T = TypeVar("_T")
_R = TypeVar("_R")
_local = threading.local()
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()
_WORKERS = max(2, min(8, os.cpu_count() or 2))


class ChunkRow(NamedTuple):
    """Where a chunk lives: ``snapshot_chunks`` as a tuple. ``offset`` and ``stored`` place its
    zstd frame in the pack (the same for every chunk of the frame); ``frame_offset`` and
    ``size`` place the chunk in the decompressed frame."""

    chunk_id: str
    pack: str
    offset: int
    stored: int
    frame_offset: int
    size: int

    @property
    def frame(self) -> tuple[str, int, int]:
        """The frame's identity: (pack, offset, stored)."""
        return (self.pack, self.offset, self.stored)


# -- parallel helpers ------------------------------------------------------------------------

def _executor() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=_WORKERS, thread_name_prefix="testfleet-chunks")
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


def by_frame(items: Sequence[_T], row_of: Callable[[_T], ChunkRow],
             target: int = GROUP_BYTES) -> list[list[_T]]:
    """Consecutive items cut into thread-pool tasks of about ``target`` raw bytes, never between
    two items whose chunks share a frame (so two threads rarely want the same frame)."""
    out: list[list[_T]] = []
    current: list[_T] = []
    total = 0
    last: tuple[str, int, int] | None = None
    for item in items:
        row = row_of(item)
        if total >= target and row.frame != last:
            out.append(current)
            current, total = [], 0
        current.append(item)
        total += row.size
        last = row.frame
    if current:
        out.append(current)
    return out


def pmap(fn: Callable[[_T], _R], work: Sequence[_T]) -> list[_R]:
    """``[fn(w) for w in work]``, on the shared pool when there is more than one piece."""
    if len(work) <= 1:
        return [fn(w) for w in work]
    return list(_executor().map(fn, work))


def pmap_ordered(fn: Callable[[_T], _R], work: Sequence[_T], ahead: int = 2 * _WORKERS,
                 before: Callable[[_T], object] | None = None) -> Generator[_R, None, None]:
    """``fn(w)`` for each piece in order, on the shared pool with at most ``ahead`` pieces
    submitted and not yet taken; ``before(w)`` runs on the caller's thread just before a piece
    is submitted. When the iterator is closed early (or fails) it waits for the pieces still
    running, so none of them outlives the caller's buffers."""
    if len(work) <= 1:
        for w in work:
            if before is not None:
                before(w)
            yield fn(w)
        return
    pool = _executor()
    running: deque[Future[_R]] = deque()
    try:
        for w in work:
            if before is not None:
                before(w)
            running.append(pool.submit(fn, w))
            if len(running) >= ahead:
                yield running.popleft().result()
        while running:
            yield running.popleft().result()
    finally:
        for f in running:
            f.cancel()
        wait(running)


def compressor() -> zstandard.ZstdCompressor:
    # one per thread: a ZstdCompressor must not be used by two threads at once
    c = getattr(_local, "cctx", None)
    if c is None:
        c = _local.cctx = zstandard.ZstdCompressor(level=LEVEL, write_checksum=True,
                                                    write_content_size=True)
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
    compress (and closed once its last frame is), so a tree of many large files never holds
    many mappings at once.
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


# -- compressing into frames -----------------------------------------------------------------

Piece = tuple[str, Source | bytes, int, int]  # chunk id, where its bytes are, offset, length


def compress_into(pack: PackWriter, pieces: Mapping[str, tuple[Source | bytes, int, int]]) -> None:
    """Compress the new chunks (id -> source or raw bytes, offset, length), in the given order,
    into frames of about ``GROUP_BYTES`` raw bytes appended to ``pack``. A mapped source is
    mapped when its first frame is handed to the pool and closed once its last one is written."""
    frames = groups([(c, *where) for c, where in pieces.items()], lambda p: p[3])
    last_frame: dict[int, tuple[int, Source]] = {}
    for i, frame in enumerate(frames):
        for _, src, _, _ in frame:
            if isinstance(src, Source):
                last_frame[id(src)] = (i, src)
    done_after: dict[int, list[Source]] = {}
    for i, src in last_frame.values():
        done_after.setdefault(i, []).append(src)

    def open_sources(frame: list[Piece]) -> None:  # map on this thread, never two at once
        for _, src, _, _ in frame:
            if isinstance(src, Source):
                _ = src.data

    with closing(pmap_ordered(compress_frame, frames, before=open_sources)) as compressed:
        for i, (frame, data) in enumerate(zip(frames, compressed, strict=True)):
            pack.add_frame(data, [(c, n) for c, _, _, n in frame])
            for src in done_after.get(i, ()):
                src.close()


def compress_frame(frame: Sequence[Piece]) -> bytes:
    """One zstd frame of the pieces' bytes, one after another (one copy at most: none when they
    are one stretch of one source)."""
    runs: list[tuple[Source | bytes, int, int]] = []  # adjacent pieces of a source merged
    for _, src, offset, length in frame:
        if runs and runs[-1][0] is src and runs[-1][1] + runs[-1][2] == offset:
            runs[-1] = (src, runs[-1][1], runs[-1][2] + length)
        else:
            runs.append((src, offset, length))
    cctx = compressor()
    if len(runs) == 1:
        src, offset, length = runs[0]
        with memoryview(_bytes_of(src)) as whole, whole[offset:offset + length] as part:
            return cctx.compress(part)
    buf = bytearray(sum(n for _, _, n in runs))
    at = 0
    for src, offset, length in runs:
        with memoryview(_bytes_of(src)) as whole, whole[offset:offset + length] as part:
            buf[at:at + length] = part
        at += length
    return cctx.compress(buf)


def _bytes_of(src: Source | bytes) -> bytes | mmap.mmap:
    return src.data if isinstance(src, Source) else src


def check_frame(chunk_id: str, frame: bytes, size: int) -> bytes:
    """The raw bytes of a one-chunk frame (an archive member), or :class:`ChunkDamage` if they
    are not chunk_id's."""
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
        self._handle: BinaryIO | None = None
        self._offset = 0
        self.final = packs_dir / f"{self.pack_id}{PACK_SUFFIX}"
        self._temp = packs_dir / f".{self.pack_id}{PACK_SUFFIX}{TEMP_SUFFIX}"

    def __contains__(self, chunk_id: str) -> bool:
        return chunk_id in self._ids

    def add_frame(self, frame: bytes | memoryview, chunks: Sequence[tuple[str, int]]) -> None:
        """Append one zstd frame holding ``chunks`` ((id, raw size), in order) back to back."""
        if not chunks:
            return
        if self._handle is None:
            self.packs_dir.mkdir(parents=True, exist_ok=True)
            # closed by commit/discard; buffered: many small saves write a few KiB
            self._handle = open(self._temp, "xb", buffering=1 << 20)  # noqa: SIM115
        self._handle.write(frame)
        at = 0
        for chunk_id, size in chunks:
            if chunk_id not in self._ids:
                self.rows.append(ChunkRow(chunk_id, self.pack_id, self._offset, len(frame), at,
                                          size))
                self._ids.add(chunk_id)
            at += size
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
            handle, self._handle = self._handle, None
            try:
                handle.close()
            except OSError:
                pass  # a full disk fails the flush too; the file goes all the same
        for path in (self._temp, self.final):
            try:
                path.unlink()
            except FileNotFoundError:
                pass


class PackReader:
    """Reads chunks back from their packs (each pack mapped once, each frame decompressed once
    while it stays among the last ``FRAME_CACHE``), checking every one. Thread-safe."""

    def __init__(self, packs_dir: Path, cache: int = FRAME_CACHE) -> None:
        self.packs_dir = packs_dir
        self._maps: dict[str, mmap.mmap | None] = {}
        self._lock = threading.Lock()
        self._cache = max(1, cache)
        # frame -> its raw bytes, or the reason it cannot be read (a Future: others wait for
        # the one thread decompressing it)
        self._frames: OrderedDict[tuple[str, int, int], Future[bytes | str]] = OrderedDict()
        self._frames_lock = threading.Lock()

    def _map(self, pack: str) -> mmap.mmap | None:
        with self._lock:
            if pack not in self._maps:
                try:
                    with open(self.packs_dir / f"{pack}{PACK_SUFFIX}", "rb") as handle:
                        self._maps[pack] = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
                except (FileNotFoundError, ValueError):  # ValueError: an empty file
                    self._maps[pack] = None
            return self._maps[pack]

    def _decompress(self, row: ChunkRow) -> bytes | str:
        """The raw bytes of the row's frame, or why they cannot be had."""
        data = self._map(row.pack)
        if data is None:
            path = self.packs_dir / f"{row.pack}{PACK_SUFFIX}"
            return f"pack {row.pack} {'is empty' if path.exists() else 'is missing'}"
        if row.offset < 0 or row.stored <= 0 or row.offset + row.stored > len(data):
            return f"pack {row.pack} is truncated"
        frame = data[row.offset:row.offset + row.stored]
        try:
            declared = zstandard.frame_content_size(frame)
            if declared < 0:
                return "frame does not declare its size"
            if declared > MAX_FRAME:
                return f"frame declares {declared} bytes, more than a frame holds ({MAX_FRAME})"
            raw = decompressor().decompress(frame, max_output_size=declared)
        except zstandard.ZstdError as exc:
            return f"not a valid zstd frame ({exc})"
        if len(raw) != declared:
            return f"frame decompresses to {len(raw)} bytes, its header says {declared}"
        return raw

    def _frame(self, row: ChunkRow) -> bytes | str:
        key = row.frame
        with self._frames_lock:
            slot = self._frames.get(key)
            mine = slot is None
            if slot is None:
                slot = self._frames[key] = Future()
                while len(self._frames) > self._cache:
                    self._frames.popitem(last=False)
            else:
                self._frames.move_to_end(key)
        if mine:
            try:
                slot.set_result(self._decompress(row))
            except BaseException as exc:
                slot.set_exception(exc)
                with self._frames_lock:
                    if self._frames.get(key) is slot:
                        del self._frames[key]  # not a verdict on the frame: try again later
                raise
        return slot.result()

    def view(self, row: ChunkRow) -> memoryview:
        """The raw bytes of a chunk (a read-only view into its decompressed frame), checked;
        :class:`ChunkDamage` otherwise."""
        raw = self._frame(row)
        if isinstance(raw, str):
            raise ChunkDamage(row.chunk_id, raw)
        start, end = row.frame_offset, row.frame_offset + row.size
        if start < 0 or row.size < 0 or end > len(raw):
            raise ChunkDamage(row.chunk_id, f"frame holds {len(raw)} bytes, the index puts the "
                                            f"chunk at [{start}, {end})")
        data = memoryview(raw)[start:end]
        if hashlib.sha256(data).hexdigest() != row.chunk_id:
            raise ChunkDamage(row.chunk_id, "content does not match its SHA-256 (damaged)")
        return data

    def read(self, row: ChunkRow) -> bytes:
        """The raw bytes of a chunk, checked; :class:`ChunkDamage` otherwise."""
        return bytes(self.view(row))

    def close(self) -> None:
        with self._frames_lock:
            self._frames.clear()
        with self._lock:
            for data in self._maps.values():
                if data is not None:
                    data.close()
            self._maps.clear()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
