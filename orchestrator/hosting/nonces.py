"""Nonces of signed artifact requests the hosting node has admitted, kept in its state file until they expire."""
import sqlite3
import threading
from pathlib import Path

SCHEMA = """CREATE TABLE IF NOT EXISTS artifact_nonces (
    signer TEXT NOT NULL, nonce BLOB NOT NULL, expires_at INTEGER NOT NULL, PRIMARY KEY (signer, nonce))"""


class NonceStore:
    def __init__(self, path: str | Path):
        # one connection for the service's worker threads, serialised by the lock
        self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA busy_timeout=5000")  # the node process writes the same file
        self._db.execute(SCHEMA)
        self._lock = threading.Lock()

    def use(self, signer: str, nonce: bytes, expires_at: int, now: int) -> bool:
        """Records a nonce; False if it was used before (a replay). Expired ones are forgotten: the gate refuses
        their requests by expiry anyway."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute("DELETE FROM artifact_nonces WHERE expires_at < ?", (now,))
                self._db.execute("INSERT INTO artifact_nonces VALUES (?, ?, ?)", (signer, nonce, expires_at))
            except sqlite3.IntegrityError:
                self._db.execute("ROLLBACK")
                return False
            self._db.execute("COMMIT")
            return True

    def close(self) -> None:
        self._db.close()
