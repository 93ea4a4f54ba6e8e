"""Dedup index: an in-memory bloom filter in front of an exact persisted SQLite set.

The bloom filter answers "certainly new" for almost every fresh id without touching
disk; a bloom hit is confirmed against SQLite, so a false positive never drops a new
kernel. Ids of the shard being written are held in memory (``pending``) and reach
SQLite in one transaction together with the commit watermark, so the persisted set is
always exactly the ids of committed shards.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from rbloom import Bloom

SCHEMA = """
CREATE TABLE IF NOT EXISTS ids (id BLOB PRIMARY KEY) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);
"""


class DedupIndex:
    def __init__(self, path: Path, expected_items: int = 10_000_000, false_positive_rate: float = 0.001) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.db = sqlite3.connect(path, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(SCHEMA)
        # rbloom's default hash is Python's hash(): salted per process, which is harmless because
        # the filter lives in memory only (rebuilt from SQLite at start), and it runs in C, where a
        # Python hash function cost a call per lookup and per add (~1 us each, issue 18).
        self.bloom = Bloom(expected_items, false_positive_rate)
        self.pending: set[bytes] = set()
        self.bloom_hits = 0
        self.false_positives = 0

    # -- meta (watermark) ---------------------------------------------------------------------
    def meta(self, key: str) -> str | None:
        row = self.db.execute("SELECT v FROM meta WHERE k = ?", (key,)).fetchone()
        return row[0] if row else None

    def watermark(self) -> tuple[int, str] | None:
        """(seq, sha256) of the last commit whose ids are in the set."""
        seq, sha = self.meta("seq"), self.meta("sha256")
        return (int(seq), sha) if seq is not None and sha is not None else None

    def committed_total(self) -> int:
        return int(self.meta("committed_total") or 0)

    # -- lifecycle ---------------------------------------------------------------------------------
    def load_bloom(self) -> int:
        """Fill the bloom filter from the persisted set (at start)."""
        n = 0
        for (raw,) in self.db.execute("SELECT id FROM ids"):
            self.bloom.add(raw)
            n += 1
        return n

    def reset(self) -> None:
        self.db.execute("BEGIN")
        self.db.execute("DELETE FROM ids")
        self.db.execute("DELETE FROM meta")
        self.db.execute("COMMIT")
        self.bloom.clear()
        self.pending.clear()

    def close(self) -> None:
        self.db.close()

    # -- the hot path ------------------------------------------------------------------------------
    def seen(self, record_id: str) -> bool:
        raw = bytes.fromhex(record_id)
        if raw in self.pending:
            return True
        if raw not in self.bloom:
            return False
        self.bloom_hits += 1
        if self.db.execute("SELECT 1 FROM ids WHERE id = ?", (raw,)).fetchone() is not None:
            return True
        self.false_positives += 1
        return False

    def add_pending(self, record_id: str) -> None:
        raw = bytes.fromhex(record_id)
        self.pending.add(raw)
        self.bloom.add(raw)

    def apply_commit(self, seq: int, sha256: str, ids: list[str], count_total: int) -> None:
        """Persist a commit's ids and the watermark in one transaction."""
        self.db.execute("BEGIN")
        try:
            self.db.executemany("INSERT OR IGNORE INTO ids VALUES (?)", ((bytes.fromhex(i),) for i in ids))
            self.db.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)",
                                [("seq", str(seq)), ("sha256", sha256), ("committed_total", str(count_total))])
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        pending = self.pending
        for i in ids:
            raw = bytes.fromhex(i)
            if raw in pending:  # add_pending put it in the bloom filter already
                pending.remove(raw)
            else:  # a commit replayed at resume
                self.bloom.add(raw)

    def drop_pending(self) -> None:
        """Forget ids of a shard that was never committed (they stay in the bloom filter,
        which only costs an extra SQLite lookup if they come again)."""
        self.pending.clear()
