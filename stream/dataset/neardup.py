"""``jitsynth dedup --near``: the near-duplicate pass (MinHash LSH over token shingles).

Exact dedup (``stream.dedup`` online, ``stream.dataset.crossdedup`` across producers) drops
kernels with the same canonical AST. Kernels that differ in a constant or one extra
statement survive it, yet they teach a model the same lowering and, split apart, leak
validation kernels into train. This pass finds them:

1. ``shingles(source)``: the Python source is tokenised with ``tokenize``, normalised
   (see ``tokens``) and cut into overlapping shingles of ``k`` tokens (a set).
2. Each record's shingle set becomes a MinHash signature (``datasketch``, ``num_perm``
   32-bit values, a fixed seed, so the pass is deterministic). Records are streamed;
   only the signatures (4 * num_perm bytes each) and the record keys stay in memory.
   ``workers`` > 1 moves tokenising and hashing (nearly all the CPU) to a process pool.
3. LSH banding finds candidate pairs: ``datasketch`` picks the bands x rows for the
   threshold, weighted against misses; the bands are bucketed with numpy sorts instead
   of ``MinHashLSH``'s Python dicts (its index of ds10k took 4.4 KB per record, the
   signatures 512 B).
   A candidate pair is kept when its estimated Jaccard similarity (the share of equal
   signature values) reaches the threshold.
4. Clusters are the connected components of the kept pairs (``scipy``), so the
   "same split" relation is transitive; the representative of a cluster is its member
   met first in commit-key order, the copy a reader keeps (as for exact duplicates).

The result goes to ``dedup/near-duplicates.json`` (format in ``sinks.read.nearfile``).
"""

from __future__ import annotations

import ast
import builtins
import io
import tokenize
from collections import deque
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import anyio
import msgspec
import numpy as np
import structlog

from sinks.checkpoints import list_commits
from sinks.read.dedupfile import load_exclusions
from sinks.read.nearfile import NEAR_FORMAT_VERSION, NEAR_KEY
from sinks.read.reader import committed_lines
from sinks.read.shardio import DEFAULT_CONCURRENCY
from stream.commitlog import now_iso
from stream.dataset.crossdedup import ORDER
from synth.canonical import defined_names

if TYPE_CHECKING:
    from concurrent.futures import Future

log = structlog.get_logger("jitsynth.neardup")

TOKENS_VERSION = "pytokenize-norm-v1"
DEFAULT_THRESHOLD = 0.85
# Shingles of 5 tokens: one edited token changes at most 5 shingles, so in a median generated
# kernel (10 LOC, ~80 tokens) one changed operation leaves Jaccard ~75/85 = 0.88 (a near-twin at
# 0.85) and two leave ~0.78 (not); with 7 one edit already drops to 0.84. Shorter shingles of the
# normalised tokens (``<id> = wp``) are too generic. Measured on ds10k at 0.85: k=3 14.3% of the
# records are near-duplicates, k=5 7.1%, k=7 4.5%, k=9 3.2%.
DEFAULT_SHINGLE = 5
DEFAULT_NUM_PERM = 128
_SEED = 1
_BATCH = 512  # records hashed per signature batch
_LSH_WEIGHTS = (0.02, 0.98)  # (false positive, false negative) weights for choosing bands x rows
_SKIP = {tokenize.COMMENT, tokenize.NL, tokenize.ENCODING, tokenize.ENDMARKER}
_KEEP_NAMES = frozenset(dir(builtins))
_BLOCK = {tokenize.INDENT: "<in>", tokenize.DEDENT: "<de>", tokenize.NEWLINE: "<nl>"}


def _module_names(source: str) -> frozenset[str]:
    """Names the module defines (kernel, helpers, structs and fields, params, locals)."""
    try:
        return frozenset(defined_names(ast.parse(source)))
    except (SyntaxError, ValueError):
        return frozenset()


def _literal(tok: tokenize.TokenInfo) -> str:
    if tok.type == tokenize.NUMBER:
        text = tok.string.lower()
        return "<float>" if any(c in text for c in ".ej") and not text.startswith("0x") else "<int>"
    return "<str>"


def tokens(source: str) -> list[str]:
    """The normalised token stream of a module's source.

    Why this normalisation: the pass is about what a kernel computes and how Warp lowers
    it, not about spelling. So, as for the exact key, names the module *defines* (locals,
    parameters, helpers, structs, the kernel) become one placeholder ``<id>``, and names
    it only *uses* (``wp``, ``wp.sin``, ``float``, ``range``) are kept: they carry the
    operations. A placeholder rather than numbered names, because numbering shifts every
    later name when one variable is added. Literals become their kind (``<int>``,
    ``<float>``, ``<str>``): two kernels that differ in a constant lower to the same code
    but for that constant, so they are near-twins. Comments, blank lines and import
    statements are dropped (imports are the same boilerplate in every module and would
    make small kernels look alike); indentation and statement ends are kept as tokens,
    because block structure is part of the computation.
    """
    defined = _module_names(source)
    out: list[str] = []
    line: list[str] = []  # the logical line being read: dropped whole if it is a top-level import
    depth = 0
    try:
        for tok in tokenize.generate_tokens(io.StringIO(source).readline):
            if tok.type in _SKIP:
                continue
            depth += {tokenize.INDENT: 1, tokenize.DEDENT: -1}.get(tok.type, 0)
            if tok.type == tokenize.NAME:
                word = tok.string
                # ``wp.tid`` is Warp's even when the module also has a local ``tid``
                outside = line[-1:] == ["."] and line[-2:-1] != ["<id>"]
                # a builtin name stays even where the module also defines it (a struct field
                # ``max``): bare ``max(a, b)``, ``float(x)`` are operations Warp lowers
                mine = word in defined and word not in _KEEP_NAMES
                line.append("<id>" if mine and not outside else word)
            elif tok.type in (tokenize.NUMBER, tokenize.STRING) or tok.type == getattr(tokenize, "FSTRING_MIDDLE", -1):
                line.append(_literal(tok))
            elif tok.type in _BLOCK:
                if tok.type == tokenize.NEWLINE:
                    if depth == 0 and line[:1] in (["import"], ["from"]):
                        line = []
                        continue
                    out += line
                    line = []
                out.append(_BLOCK[tok.type])
            else:
                line.append(tok.string)
    except (tokenize.TokenError, IndentationError, SyntaxError):
        pass  # keep what was read: a truncated source still has shingles
    return out + line


def shingles(source: str, k: int = DEFAULT_SHINGLE) -> set[bytes]:
    """The set of k-token shingles of ``source`` (a short source is one shingle)."""
    toks = tokens(source)
    if len(toks) <= k:
        return {"\x1f".join(toks).encode()}
    return {"\x1f".join(toks[i:i + k]).encode() for i in range(len(toks) - k + 1)}


@dataclass(frozen=True)
class NearParams:
    threshold: float = DEFAULT_THRESHOLD
    shingle: int = DEFAULT_SHINGLE
    num_perm: int = DEFAULT_NUM_PERM

    def bands(self) -> tuple[int, int]:
        """(bands, rows) from datasketch's optimiser, weighted 0.02 : 0.98 against false
        negatives: for leakage a missed twin is worse than a candidate the Jaccard check
        rejects. At 0.85 with 128 values: 14 x 9, a pair at the threshold is a candidate
        with probability 0.975 (0.46 with the default weights)."""
        from datasketch import MinHashLSH

        lsh = MinHashLSH(threshold=self.threshold, num_perm=self.num_perm, weights=_LSH_WEIGHTS)
        return lsh.b, lsh.r

    def document(self) -> dict[str, Any]:
        b, r = self.bands()
        return {"threshold": self.threshold, "shingle_tokens": self.shingle, "num_perm": self.num_perm,
                "bands": b, "rows": r, "seed": _SEED, "scheme": "affine32", "tokens": TOKENS_VERSION}


def signature_rows(sources: list[str], shingle: int, num_perm: int) -> np.ndarray:
    """MinHash signatures (one uint32 row each) of a batch of sources: a pure pool task."""
    from datasketch import MinHash

    proto = MinHash(num_perm=num_perm, seed=_SEED, scheme="affine32")
    rows = np.empty((len(sources), num_perm), dtype=np.uint32)
    for i, source in enumerate(sources):
        m = proto.copy()
        m.update_batch(shingles(source, shingle))
        rows[i] = m.hashvalues
    return rows


class Signatures:
    """The signatures of the records, in reading order. Tokenising dominates the pass (about
    1 ms a record), so with ``workers`` > 1 batches go to a process pool, at most two per
    worker in flight: the reader waits for the pool, and memory holds a few batches of
    sources, not the dataset. Workers are spawned (the parent runs an event loop and threads)."""

    def __init__(self, params: NearParams, workers: int = 1) -> None:
        self.params, self.workers = params, workers
        self._pool = None
        if workers > 1:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            self._pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
        self._batch: list[str] = []
        self._pending: deque[Future[np.ndarray]] = deque()
        self._chunks: list[np.ndarray] = []

    async def add(self, source: str) -> None:
        self._batch.append(source)
        if len(self._batch) >= _BATCH:
            await self._submit()

    async def _submit(self) -> None:
        batch, self._batch = self._batch, []
        if not batch:
            return
        args = (batch, self.params.shingle, self.params.num_perm)
        if self._pool is None:
            self._chunks.append(signature_rows(*args))
            return
        self._pending.append(self._pool.submit(signature_rows, *args))
        while len(self._pending) > 2 * self.workers:
            await self._collect()

    async def _collect(self) -> None:
        self._chunks.append(await anyio.to_thread.run_sync(self._pending.popleft().result))

    async def matrix(self) -> np.ndarray:
        await self._submit()
        while self._pending:
            await self._collect()
        # Copied chunk by chunk into one array, each chunk freed as it goes: the peak is the
        # signatures plus one chunk, not twice the signatures as with np.concatenate.
        out = np.empty((sum(len(c) for c in self._chunks), self.params.num_perm), dtype=np.uint32)
        pos = 0
        while self._chunks:
            chunk = self._chunks.pop(0)
            out[pos:pos + len(chunk)] = chunk
            pos += len(chunk)
        return out

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)


def _rows_as_keys(block: np.ndarray) -> np.ndarray:
    """Each row of a 2-D array as one opaque value, so equal rows compare equal in a 1-D sort."""
    block = np.ascontiguousarray(block)
    return block.view(np.dtype((np.void, block.dtype.itemsize * block.shape[1]))).ravel()


def _row_hash(sigs: np.ndarray) -> np.ndarray:
    """A 64-bit hash of each row (a random odd multiplier per column, summed modulo 2**64)."""
    multipliers = np.random.default_rng(_SEED).integers(1, 2**63, size=sigs.shape[1], dtype=np.uint64) | np.uint64(1)
    out = np.zeros(len(sigs), dtype=np.uint64)
    for column, multiplier in enumerate(multipliers):
        out += sigs[:, column].astype(np.uint64) * multiplier
    return out


def _groups(keys: np.ndarray) -> Iterable[np.ndarray]:
    """Indices of each group of equal keys with two or more members, each in ascending order."""
    order = np.argsort(keys, kind="stable")
    ordered = keys[order]
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])
    sizes = np.diff(np.r_[starts, len(order)])
    for start, size in zip(starts[sizes > 1], sizes[sizes > 1], strict=True):
        yield order[start:start + size]


def near_pairs(sigs: np.ndarray, params: NearParams) -> tuple[np.ndarray, np.ndarray]:
    """(a, b) index arrays of record pairs whose estimated Jaccard similarity reaches the threshold."""
    a_out: list[np.ndarray] = []
    b_out: list[np.ndarray] = []
    # Identical signatures first (a large bucket of equal rows would cost its size squared
    # below): grouped by a 64-bit hash of the row, each member checked equal to its group's
    # first; the LSH buckets then hold one row per distinct signature. Hashes and indices
    # only, never a sorted copy of the signatures.
    distinct = np.ones(len(sigs), dtype=bool)
    for group in _groups(_row_hash(sigs)):
        same = group[1:][(sigs[group[1:]] == sigs[group[0]]).all(axis=1)]
        a_out.append(np.full(len(same), group[0]))
        b_out.append(same)
        distinct[same] = False
    rest = np.flatnonzero(distinct)
    bands, rows = params.bands()
    need = int(np.ceil(params.threshold * sigs.shape[1]))  # equal values for estimated J >= threshold
    for band in range(bands):
        for group in _groups(_rows_as_keys(sigs[rest, band * rows:(band + 1) * rows])):
            members = rest[group]
            for i in range(1, len(members)):
                agree = (sigs[members[:i]] == sigs[members[i]]).sum(axis=1)
                hits = members[:i][agree >= need]
                a_out.append(hits)
                b_out.append(np.full(len(hits), members[i]))
    if not a_out:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    return np.concatenate(a_out).astype(np.int64), np.concatenate(b_out).astype(np.int64)


def cluster_labels(n: int, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Connected-component label of each of ``n`` records given the near pairs (a, b)."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    graph = coo_matrix((np.ones(len(a), dtype=np.int8), (a, b)), shape=(n, n))
    return connected_components(graph, directed=False)[1]


@dataclass
class NearResult:
    params: NearParams
    records: int = 0
    commits: int = 0
    clusters: list[dict[str, Any]] = field(default_factory=list)
    covered: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def near_duplicates(self) -> int:
        return sum(len(c["members"]) for c in self.clusters)

    @property
    def share(self) -> float:
        return self.near_duplicates / self.records if self.records else 0.0

    def document(self) -> dict[str, Any]:
        """The JSON document stored at ``dedup/near-duplicates.json``."""
        return {"version": NEAR_FORMAT_VERSION, "kind": "near", "order": ORDER, "created_at": now_iso(),
                "params": self.params.document(), "commits": self.commits, "records": self.records,
                "n_clusters": len(self.clusters), "n_near_duplicates": self.near_duplicates,
                "near_duplicate_share": round(self.share, 6), "covered": self.covered, "clusters": self.clusters}


def clusters_of(keys: list[tuple[str, str]], labels: np.ndarray) -> list[dict[str, Any]]:
    """Clusters of two or more records; ``keys[i]`` is record i's (shard, id), in reading order."""
    members: dict[int, list[int]] = {}
    for index in np.flatnonzero(np.bincount(labels)[labels] > 1):
        members.setdefault(int(labels[index]), []).append(int(index))
    out = []
    for indices in sorted(members.values()):  # by representative: the first member read
        (shard, rid), rest = keys[indices[0]], indices[1:]
        out.append({"representative": {"id": rid, "shard": shard},
                    "members": [{"id": keys[i][1], "shard": keys[i][0]} for i in rest]})
    return out


class _Source(msgspec.Struct):
    id: str
    python_source: str = ""


_decode = msgspec.json.Decoder(_Source).decode


async def scan(sink, params: NearParams, excluded: Mapping[str, Collection[str]] | None = None,  # noqa: ANN001
               workers: int = 1, limit: int = DEFAULT_CONCURRENCY) -> NearResult:
    """Stream every committed record less the exact duplicates (``excluded``, by default the
    stored dedup file's) and cluster the near-duplicates; ``workers`` processes hash them."""
    result = NearResult(params)
    if excluded is None:
        excluded = await load_exclusions(sink)
    commits = await list_commits(sink, limit)
    for _key, commit in commits:
        result.commits += 1
        result.covered[str(commit["producer"])] = {"seq": int(commit["seq"]), "sha256": commit["sha256"]}
    signatures = Signatures(params, workers)
    keys: list[tuple[str, str]] = []
    try:
        async for _key, commit, line in committed_lines(sink, commits, limit):
            rec = _decode(line)
            skip = excluded.get(commit["shard"])
            if skip and rec.id in skip:
                continue
            keys.append((commit["shard"], rec.id))
            await signatures.add(rec.python_source)
        sigs = await signatures.matrix()
    finally:
        signatures.close()
    result.records = len(keys)
    a, b = near_pairs(sigs, params)
    result.clusters = clusters_of(keys, cluster_labels(len(keys), a, b)) if len(keys) else []
    return result


async def run_near(sink, params: NearParams, write: bool = True,  # noqa: ANN001 - any Sink
                   excluded: Mapping[str, Collection[str]] | None = None, workers: int = 1) -> NearResult:
    """The pass: scan, cluster and (unless ``write`` is false) store the near-duplicate file."""
    result = await scan(sink, params, excluded, workers)
    if write:
        await sink.put(NEAR_KEY, msgspec.json.format(msgspec.json.encode(result.document()), indent=1) + b"\n")
    log.info("near-duplicate pass", records=result.records, clusters=len(result.clusters),
             near_duplicates=result.near_duplicates, share=round(result.share, 4), written=write)
    return result
