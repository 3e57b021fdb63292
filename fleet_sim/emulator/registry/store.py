"""The registry's SQLite connection: opening, transactions, the change log and listeners.

One connection per :class:`Store`, shared by every thread under a re-entrant lock, in
autocommit mode with explicit transactions:

* :meth:`Store.write` runs ``BEGIN IMMEDIATE`` … ``COMMIT`` (the write lock is taken up front,
  so a second process waits up to ``busy_timeout`` instead of failing on a lock upgrade). A
  ``write`` inside another one becomes a SAVEPOINT, so a failed inner operation is undone on
  its own and an outer one can group several operations atomically.
* :meth:`Store.read` runs its SELECTs in one deferred transaction (a consistent snapshot).
* Events an operation emits are written to the ``change_log`` table in the same transaction
  and handed to listeners only after ``COMMIT`` succeeded, still under the lock (so listeners
  see changes in commit order and may read the registry re-entrantly). Events of a rolled-back
  transaction or savepoint are dropped.

sqlite3 errors are translated here: a lock held past the busy timeout becomes
:class:`ServiceUnavailable`, anything else :class:`EmulatorError` (an internal failure).
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from fleet_sim.emulator.registry.events import Listener, RegistryEvent, decode_event, encode_event
from fleet_sim.emulator.registry.schema import migrate
from fleet_sim.errors import EmulatorError, ServiceUnavailable

logger = logging.getLogger(__name__)

#: How many change-log rows to keep (other processes poll well within this).
CHANGE_LOG_KEEP = 10_000


@dataclass(slots=True)
class Tx:
    """The handle a write operation works with: the connection and the events it emits."""

    conn: sqlite3.Connection
    events: list[RegistryEvent] = field(default_factory=list)

    def emit(self, event: RegistryEvent) -> None:
        """Queue ``event``; listeners get it after the outermost transaction commits."""
        self.events.append(event)


def _translate(exc: sqlite3.Error) -> EmulatorError:
    text = str(exc)
    if isinstance(exc, sqlite3.OperationalError) and ("locked" in text or "busy" in text):
        return ServiceUnavailable(f"registry database is busy: {text}")
    return EmulatorError(f"registry database error: {text}")


class Store:
    """A thread-safe SQLite connection with transactions, change log and listeners."""

    def __init__(self, conn: sqlite3.Connection, *, origin: str) -> None:
        """Wrap an open, migrated connection (use :meth:`open`).

        Args:
            conn: an autocommit (``isolation_level=None``) connection usable from any thread.
            origin: an id unique to this process and store (the object's id is appended);
                its own change-log rows are not replayed to it.
        """
        self._conn = conn
        self._origin = f"{origin}-{id(self):x}"
        self._lock = threading.RLock()
        self._tx: Tx | None = None
        self._depth = 0
        self._reading = 0
        self._listeners: list[Listener] = []
        self._closed = False
        row = conn.execute("SELECT COALESCE(MAX(seq), 0) FROM change_log").fetchone()
        self._seen_seq: int = row[0]

    @classmethod
    def open(cls, path: str | Path, *, origin: str, busy_timeout: float = 5.0) -> Store:
        """Open (creating if needed) and migrate the database at ``path`` (``":memory:"`` ok).

        Sets WAL journaling (files only), ``busy_timeout`` and ``foreign_keys``.

        Raises:
            EmulatorError: the file cannot be opened or has a newer schema.
            ServiceUnavailable: another process kept it locked past ``busy_timeout``.
        """
        try:
            conn = sqlite3.connect(
                str(path), timeout=busy_timeout, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise _translate(exc) from exc
        conn.row_factory = sqlite3.Row
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout * 1000)}")
            conn.execute("PRAGMA foreign_keys = ON")
            if str(path) != ":memory:":
                (mode,) = conn.execute("PRAGMA journal_mode = WAL").fetchone()
                if str(mode).lower() != "wal":
                    raise EmulatorError(f"cannot switch {path} to WAL journaling (got {mode})")
                conn.execute("PRAGMA synchronous = NORMAL")
            migrate(conn)
            return cls(conn, origin=origin)
        except sqlite3.Error as exc:
            conn.close()
            raise _translate(exc) from exc
        except BaseException:
            conn.close()
            raise

    def close(self) -> None:
        """Close the connection (idempotent)."""
        with self._lock:
            if not self._closed:
                self._closed = True
                self._conn.close()

    # ------------------------------------------------------------------ transactions

    @contextmanager
    def write(self) -> Iterator[Tx]:
        """A write transaction (or a savepoint inside one); see the module docstring."""
        with self._lock:
            if self._reading:
                raise RuntimeError("a registry write cannot start inside a read")
            if self._tx is not None:
                with self._savepoint(self._tx) as tx:
                    yield tx
                return
            try:
                self._conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise _translate(exc) from exc
            tx = Tx(self._conn)
            self._tx = tx
            try:
                yield tx
                self._log(tx.events)
                self._conn.execute("COMMIT")
            except BaseException as exc:
                self._tx = None
                self._rollback()
                if isinstance(exc, sqlite3.Error):
                    raise _translate(exc) from exc
                raise
            self._tx = None
            self._dispatch(tx.events)

    @contextmanager
    def _savepoint(self, tx: Tx) -> Iterator[Tx]:
        self._depth += 1
        name = f"registry_sp{self._depth}"
        mark = len(tx.events)
        self._conn.execute(f"SAVEPOINT {name}")
        try:
            yield tx
        except BaseException:
            self._conn.execute(f"ROLLBACK TO {name}")
            self._conn.execute(f"RELEASE {name}")
            del tx.events[mark:]
            raise
        else:
            self._conn.execute(f"RELEASE {name}")
        finally:
            self._depth -= 1

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """A read-only snapshot (joins an enclosing read or write transaction)."""
        with self._lock:
            if self._tx is not None or self._reading:
                self._reading += self._tx is None
                try:
                    yield self._conn
                finally:
                    self._reading -= self._tx is None
                return
            try:
                self._conn.execute("BEGIN")
            except sqlite3.Error as exc:
                raise _translate(exc) from exc
            self._reading = 1
            try:
                yield self._conn
            except sqlite3.Error as exc:
                raise _translate(exc) from exc
            finally:
                self._reading = 0
                self._rollback()

    def _rollback(self) -> None:
        try:
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
        except sqlite3.Error:
            logger.exception("registry rollback failed")

    # ------------------------------------------------------------------ events

    def subscribe(self, listener: Listener) -> Callable[[], None]:
        """Call ``listener`` with every event committed from now on; returns an unsubscribe."""
        with self._lock:
            self._listeners.append(listener)

        def unsubscribe() -> None:
            with self._lock:
                if listener in self._listeners:
                    self._listeners.remove(listener)

        return unsubscribe

    def _log(self, events: list[RegistryEvent]) -> None:
        if not events:
            return
        rows = [(self._origin, *encode_event(event)) for event in events]
        self._conn.executemany(
            "INSERT INTO change_log (origin, kind, payload) VALUES (?, ?, ?)", rows
        )
        self._conn.execute(
            "DELETE FROM change_log WHERE seq <= last_insert_rowid() - ?", (CHANGE_LOG_KEEP,)
        )

    def _dispatch(self, events: list[RegistryEvent]) -> None:
        listeners = list(self._listeners)
        for event in events:
            for listener in listeners:
                try:
                    listener(event)
                except Exception:
                    logger.exception("registry listener %r failed on %r", listener, event)

    def poll_changes(self) -> int:
        """Hand listeners the events other connections committed since the last poll.

        Returns:
            How many foreign events were dispatched.
        """
        with self._lock:
            with self.read() as conn:
                rows = conn.execute(
                    "SELECT seq, origin, kind, payload FROM change_log WHERE seq > ? ORDER BY seq",
                    (self._seen_seq,),
                ).fetchall()
            events: list[RegistryEvent] = []
            for seq, origin, kind, payload in rows:
                self._seen_seq = max(self._seen_seq, seq)
                if origin != self._origin:
                    event = decode_event(kind, payload)
                    if event is not None:
                        events.append(event)
            self._dispatch(events)
            return len(events)
