"""The trial store: every proposal of a search and its outcome, in one SQLite file.

Modelled on Optuna's RDB storage: each trial is written the moment something happens to it
(proposed, then finished), each write is its own committed transaction, and the database runs
in WAL mode with a busy timeout. So a search killed at any instant (SIGKILL included) loses
nothing that had finished, and two processes can share one store.

One row of ``trials`` is one rule the searcher proposed, in one of three states:

  * ``pending``: submitted to an executor, not finished. A resumed search redoes these.
  * ``evaluated``: trained; the row holds the executor's result (reward, status, lr, ...).
  * ``cached``: its fingerprint had already been evaluated under the same protocol (in any
    run of this store whose ``protocol`` is the same), so it was not trained again; the row
    copies that evaluation's result and names it in ``cached_from``. Cache hits are thus
    counted, one row each.

Every status is cached within a run, failures included: a rule that hung (``timeout``),
kept killing its worker (``failed``) or raised (``error``) would do so again, and the search
should not pay for it twice. Other runs do not take those three from the cache: they depend
on the executor's ``--eval_timeout`` and the machine's state (an error may be running out of
memory, which is why the evaluator itself does not cache errors), not on the rule alone.

A store holds several runs (``runs``: searcher name, flags as JSON, start time, and the
protocol: what a reward means — the proxy task's data and training — as JSON), which lets
one file compare searchers, and one searcher checkpoint per run (``checkpoints``: an opaque
blob of controller weights, optimizer slots, baseline and RNG state).

The resume protocol (what ``nos_tf.search --resume`` does with this store):

  1. ``run = store.resume_run(name)``; ``state = store.resume_state(run.run_id)``.
  2. Restore the searcher from ``state.checkpoint.blob`` (or start it fresh when ``None``).
  3. ``state.proposed_since``: trials proposed after the checkpoint was saved, in proposal
     order. The restored searcher does not know them. A deterministic searcher (those of
     ``nos_tf.controller``) proposes them again: match its proposals to these trials by
     tokens and take the trials instead of proposing anew, so that nothing is counted or
     trained twice. A trial taken back carries its result if it finished (it reaches the
     searcher with its batch, as it would have), and is submitted again if it is pending.
  4. The run's other finished trials were told to the searcher before the checkpoint: they
     count towards the run's progress and nothing more. (``state.finished_since`` lists the
     trials finished after the checkpoint, in finish order, for a searcher that is told
     results one by one rather than by batch.)
  5. ``state.pending``: the run's unfinished trials. ``nos_tf.driver`` trains again those
     the restored searcher proposes again (step 3). One it does not propose again was left
     by an earlier resume and is never trained: it stays ``pending`` in the store (and in
     `nos_tf.report`'s count), and the driver names it in a warning.

This is exact provided the driver keeps two habits: it calls ``finish`` as soon as a result
arrives and only then hands the result to the searcher, and the blob it checkpoints captures
everything the searcher has seen so far (results buffered for the next update included). The
checkpoint records the last trial proposed and the last one finished when it is saved, which
is how ``resume_state`` knows what came after it.

Concurrent runs share finished results, not work in progress: a rule pending in one run is
trained again by another run that proposes it meanwhile (each records its own evaluation).

Only one driver may work on a given run at a time (different runs may share a store
concurrently): two would train the same pending trials, and whichever recorded a result
second would fail. So a driver claims its run (`claim_run`), which takes an exclusive
``flock`` on an empty file beside the store, ``<store>-run<run_id>.lock``; a second claim
is refused while the first is held. The kernel drops the lock when its process ends, SIGKILL
included, so a killed search can be resumed at once.

`nos_tf.report` opens a store with ``readonly=True``: read-only in SQLite's sense, so it
neither creates, upgrades nor switches a file to WAL, and works on a read-only copy; its
reads inside `snapshot()` see the store at one instant while a search writes on.
"""

import contextlib
import dataclasses
import fcntl
import json
import os
import sqlite3
import time
import urllib.parse
from collections.abc import Iterator, Sequence
from typing import Any

from nos_tf.proxy import EvalResult

SCHEMA_VERSION = 2

PENDING, EVALUATED, CACHED = "pending", "evaluated", "cached"

# Seconds a writer waits for another process's write transaction before giving up.
BUSY_TIMEOUT_S = 60.0

# One statement each: executescript() would commit the schema's transaction half-way.
_SCHEMA = (
    """CREATE TABLE runs (
      run_id   INTEGER PRIMARY KEY AUTOINCREMENT,
      name     TEXT NOT NULL UNIQUE,
      searcher TEXT NOT NULL,
      flags    TEXT NOT NULL,  -- JSON object
      started  REAL NOT NULL,  -- unix time
      protocol TEXT            -- JSON object; NULL: not recorded (schema version 1)
    )""",
    """CREATE TABLE trials (
      trial_id     INTEGER PRIMARY KEY AUTOINCREMENT,  -- also the proposal order
      run_id       INTEGER NOT NULL REFERENCES runs (run_id),
      rule         TEXT NOT NULL,
      fingerprint  TEXT NOT NULL,
      tokens       TEXT,  -- JSON list of controller tokens, NULL if none
      state        TEXT NOT NULL CHECK (state IN ('pending', 'evaluated', 'cached')),
      proposed_at  REAL NOT NULL,
      finished_seq INTEGER UNIQUE,  -- store-wide finish order, NULL while pending
      finished_at  REAL,
      cached_from  INTEGER REFERENCES trials (trial_id),
      status       TEXT,  -- the result's fields from here on, NULL while pending
      reward       REAL,
      lr           REAL,
      lr_scores    TEXT,  -- JSON list of [lr, score] pairs
      reason       TEXT,
      wall_time    REAL,
      worker       TEXT
    )""",
    "CREATE INDEX trials_by_fingerprint ON trials (fingerprint, state)",
    "CREATE INDEX trials_by_run ON trials (run_id, state)",
    """CREATE TABLE checkpoints (
      run_id            INTEGER PRIMARY KEY REFERENCES runs (run_id),
      step              INTEGER NOT NULL,
      blob              BLOB NOT NULL,
      last_trial_id     INTEGER NOT NULL,  -- the run's last proposal when saved (0: none)
      last_finished_seq INTEGER NOT NULL,  -- the store's last finish when saved (0: none)
      saved             REAL NOT NULL
    )""",
)

# The tables a store of any schema version holds.
_TABLES = frozenset({"runs", "trials", "checkpoints"})

# Version 1 stores lacked runs.protocol: their runs keep NULL, and share results only with
# each other, as they always did.
_MIGRATIONS = {1: ("ALTER TABLE runs ADD COLUMN protocol TEXT",)}
# The same upgrade for a store opened read-only, in the connection's temporary schema
# (searched before the file's own for names not qualified): the file is left as it is.
_READ_ONLY_UPGRADES = {1: ("CREATE TEMP VIEW runs AS SELECT *, NULL AS protocol FROM main.runs",)}

# sqlite's primary result codes that say what is wrong with the store's file or disk.
_FILE_ERROR_CODES = frozenset({
    sqlite3.SQLITE_READONLY, sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_FULL,
    sqlite3.SQLITE_IOERR, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_PERM})

# The result columns of `trials`, in the order `_result_values` writes them.
_RESULT_COLUMNS = ("status", "reward", "lr", "lr_scores", "reason", "wall_time", "worker")


class StoreError(ValueError):
    """The store cannot do what was asked (unknown run, wrong state, foreign schema)."""


@dataclasses.dataclass(frozen=True)
class Run:
    """One search in the store."""

    run_id: int
    name: str
    searcher: str
    flags: dict[str, Any]
    started: float
    protocol: dict[str, Any] | None = None


@dataclasses.dataclass(frozen=True)
class Trial:
    """One proposed rule and, once finished, its result (None while pending)."""

    trial_id: int
    run_id: int
    rule: str
    fingerprint: str
    tokens: list[int] | None
    state: str
    proposed_at: float
    finished_seq: int | None
    finished_at: float | None
    cached_from: int | None
    result: EvalResult | None = dataclasses.field(repr=False)

    @property
    def cached(self) -> bool:
        return self.state == CACHED


@dataclasses.dataclass(frozen=True)
class Checkpoint:
    """A searcher's saved state, and how far the run had got when it was saved."""

    run_id: int
    step: int
    blob: bytes
    last_trial_id: int
    last_finished_seq: int
    saved: float


@dataclasses.dataclass(frozen=True)
class ResumeState:
    """Everything a resumed search needs; see the module docstring for how to use it."""

    checkpoint: Checkpoint | None
    proposed_since: list[Trial]
    finished_since: list[Trial]
    pending: list[Trial]


@dataclasses.dataclass(frozen=True)
class LeaderboardEntry:
    """The best evaluation of one fingerprint, and how often that fingerprint was proposed."""

    rank: int
    reward: float
    rule: str
    lr: float | None
    count: int
    fingerprint: str


class TrialStore:
    """A search's trials, runs and checkpoints in one SQLite file; see the module docstring.

    Every method commits before it returns. Usable as a context manager (closes on exit).
    With `readonly`, the file is only read (see the module docstring): an empty or missing
    file is then an error rather than a new store.
    """

    def __init__(self, path: str, readonly: bool = False):
        if str(path) in ("", ":memory:"):  # SQLite's, each lost on closing.
            raise StoreError(f"a trial store is a file: {str(path)!r} would be a database "
                             "in memory, lost when the search ends")
        self.path = str(path)
        self.readonly = readonly
        self._claims: dict[int, int] = {}  # run_id -> file descriptor holding its lock
        self._db = self._connect()
        try:
            # Read before anything is written: a file that is not ours (another program's
            # database, a newer schema) is refused as it was found. Switching to WAL alone
            # would rewrite its header and leave that program's database in WAL mode.
            try:
                with self._file_errors("open"):
                    version, tables = _schema(self._db)
            except StoreError:
                if not (readonly and _in_read_only_folder_without_wal(self.path)):
                    raise
                # SQLite cannot make the -shm file that reading a WAL store takes in a
                # folder it cannot write to. With no WAL file there, the store's own file
                # holds every write, and no writer can add one: it is read as immutable.
                self._db.close()
                self._db = self._connect(immutable=True)
                with self._file_errors("open"):
                    version, tables = _schema(self._db)
            _check_schema(self.path, version, tables, readonly)
            if readonly:
                for statement in _READ_ONLY_UPGRADES.get(version, ()):
                    self._db.execute(statement)
                return
            with self._file_errors():
                self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._create_or_check_schema()
        except BaseException:
            self._db.close()
            raise

    def _connect(self, immutable: bool = False) -> sqlite3.Connection:
        """A connection in autocommit mode: transactions are explicit (`_write`), so
        nothing is left open. `timeout` is the busy timeout: how long to wait for another
        process's write."""
        target, uri = self.path, False
        if self.readonly:
            target = f"file:{urllib.parse.quote(os.path.abspath(self.path))}?mode=ro"
            target, uri = target + "&immutable=1" * immutable, True
        try:
            db = sqlite3.connect(target, uri=uri, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        except sqlite3.OperationalError as error:  # A folder, or a file sqlite cannot make.
            raise StoreError(f"cannot open the trial store {self.path}: {error}") from None
        db.row_factory = sqlite3.Row
        return db

    def _create_or_check_schema(self) -> None:
        """Creates or upgrades the schema. Checked again under the write lock: another
        process may have created or upgraded it since `__init__` read it."""
        with self._write() as db:
            version, tables = _schema(db)
            _check_schema(self.path, version, tables)
            if version == 0 and not tables:
                for statement in _SCHEMA:
                    db.execute(statement)
                db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
            elif version in _MIGRATIONS:
                for statement in _MIGRATIONS[version]:
                    db.execute(statement)
                db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    # -- housekeeping -----------------------------------------------------------------------

    def close(self) -> None:
        """Closes the database and lets go of the runs this store claimed."""
        for descriptor in self._claims.values():
            os.close(descriptor)  # Releases its flock.
        self._claims.clear()
        self._db.close()

    def __enter__(self) -> "TrialStore":
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, committed on exit. IMMEDIATE takes the write lock up front,
        so a read-then-write (the cache check in `propose`) cannot race another process."""
        if self.readonly:
            raise StoreError(f"cannot write to the trial store {self.path}: opened read-only")
        with self._file_errors():
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
                self._db.execute("COMMIT")
            except BaseException:
                if self._db.in_transaction:  # A failed COMMIT may have ended it already.
                    self._db.execute("ROLLBACK")
                raise

    @contextlib.contextmanager
    def snapshot(self) -> Iterator["TrialStore"]:
        """Reads inside see the store at one instant, whatever other processes write
        meanwhile (WAL keeps the snapshot): a report's leaderboard, counts and plot agree.
        For reading only: a write inside would find a transaction open."""
        with self._file_errors("read"):
            self._db.execute("BEGIN")
        try:
            yield self
        finally:
            if self._db.in_transaction:
                self._db.execute("ROLLBACK")  # Nothing to keep; cannot fail as COMMIT can.

    @contextlib.contextmanager
    def _file_errors(self, doing: str = "write to") -> Iterator[None]:
        """sqlite's complaints about the file or the machine rather than about our SQL (a
        read-only store, a lock held past the busy timeout, a full disk, a damaged file,
        one that is not SQLite) as a StoreError that names the store: the binaries say it
        in one line, not in a traceback."""
        try:
            yield
        except sqlite3.DatabaseError as error:
            code = (getattr(error, "sqlite_errorcode", None) or 0) & 0xFF  # Primary code.
            if code == sqlite3.SQLITE_NOTADB:
                raise StoreError(f"{self.path} is not a trial store: {error}") from None
            if code == sqlite3.SQLITE_CORRUPT:
                raise StoreError(f"the trial store {self.path} is damaged: {error}") from None
            if isinstance(error, sqlite3.OperationalError) and code in _FILE_ERROR_CODES:
                raise StoreError(
                    f"cannot {doing} the trial store {self.path}: {error}") from None
            raise

    def _rows(self, sql: str, parameters: Sequence | dict = ()) -> list[sqlite3.Row]:
        """A query's rows, with `_file_errors`' messages."""
        with self._file_errors("read"):
            return self._db.execute(sql, parameters).fetchall()

    def _check_run(self, db: sqlite3.Connection, run_id: int) -> None:
        if db.execute("SELECT 1 FROM runs WHERE run_id = ?", (run_id,)).fetchone() is None:
            raise StoreError(f"no run with id {run_id} in {self.path}")

    # -- runs -------------------------------------------------------------------------------

    def start_run(self, name: str, searcher: str, flags: dict[str, Any],
                  protocol: dict[str, Any] | None = None) -> Run:
        """Registers a new run; `flags` (JSON-serialisable) records how it was launched.

        `protocol` (JSON-serialisable) is what its rewards mean: runs share cached results
        only when their protocols are equal, so a reward measured on other data or with
        other epochs is never taken for this run's.
        """
        try:
            with self._write() as db:
                db.execute(
                    "INSERT INTO runs (name, searcher, flags, started, protocol) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (name, searcher, json.dumps(flags, sort_keys=True), time.time(),
                     None if protocol is None else json.dumps(protocol, sort_keys=True)))
        except sqlite3.IntegrityError:
            raise self._name_taken(name) from None
        return self.run(name)

    def check_run_name_free(self, name: str) -> None:
        """Raises the StoreError `start_run(name, ...)` would for a name already taken,
        before anything is made for the run (its TensorBoard folder is the other's)."""
        if self._rows("SELECT 1 FROM runs WHERE name = ?", (name,)):
            raise self._name_taken(name)

    def _name_taken(self, name: str) -> StoreError:
        return StoreError(f"run {name!r} already exists in {self.path}: resume it or choose "
                          "another run name")

    def run(self, name: str) -> Run:
        row = next(iter(self._rows("SELECT * FROM runs WHERE name = ?", (name,))), None)
        if row is None:
            known = ", ".join(run.name for run in self.runs()) or "none"
            raise StoreError(f"no run {name!r} in {self.path} (runs: {known})")
        return _run_from_row(row)

    def runs(self) -> list[Run]:
        """All runs, oldest first."""
        return [_run_from_row(row) for row in self._rows("SELECT * FROM runs ORDER BY run_id")]

    def resume_run(self, name: str | None = None) -> Run:
        """The run called `name`, or the most recently started one when `name` is None."""
        if name is not None:
            return self.run(name)
        runs = self.runs()
        if not runs:
            raise StoreError(f"nothing to resume: {self.path} holds no runs")
        return runs[-1]

    def claim_run(self, run: Run) -> None:
        """Makes this store the run's only driver until it is closed or its process ends.

        Raises:
          StoreError: another process (or another TrialStore) drives the run.
        """
        if run.run_id in self._claims:
            return
        if self.readonly:
            raise StoreError(f"cannot claim run {run.name!r}: {self.path} is opened read-only")
        lock_path = self._lock_path(run)
        try:
            descriptor = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as error:
            raise StoreError(f"cannot claim run {run.name!r}: {error}") from None
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(descriptor)
            raise StoreError(
                f"run {run.name!r} of {self.path} is being driven by another process (it "
                f"holds {lock_path}): let it finish or stop it first") from None
        self._claims[run.run_id] = descriptor

    def _lock_path(self, run: Run) -> str:
        """Named after the store's real path: a store opened through a symbolic link is
        locked by the same file."""
        return f"{os.path.realpath(self.path)}-run{run.run_id}.lock"

    def discard_run(self, run: Run) -> None:
        """Deletes a run that finished no trial, with its pending proposals and checkpoint:
        a search that could not start (its data missing, say) leaves nothing to resume,
        and the same command, once the cause is fixed, starts it again under its name.

        Raises:
          StoreError: a trial of the run finished (it would be lost), or another process
            drives the run.
        """
        self.claim_run(run)
        with self._write() as db:
            finished = db.execute(
                "SELECT COUNT(*) FROM trials WHERE run_id = ? AND state != ?",
                (run.run_id, PENDING)).fetchone()[0]
            if finished:
                raise StoreError(
                    f"run {run.name!r} has {finished} finished trials: it is not discarded")
            for table in ("trials", "checkpoints", "runs"):
                db.execute(f"DELETE FROM {table} WHERE run_id = ?", (run.run_id,))
        os.unlink(self._lock_path(run))  # Its id is never used again (AUTOINCREMENT).
        os.close(self._claims.pop(run.run_id))

    # -- trials -----------------------------------------------------------------------------

    def propose(self, run_id: int, rule: str, fingerprint: str,
                tokens: Sequence[int] | None = None) -> Trial:
        """Records a proposal; the one way trials enter the store.

        If `fingerprint` was evaluated before under the run's protocol (in any run that has
        it), the trial is recorded as a cache hit and returned finished, with that
        evaluation's result. Otherwise it is recorded
        pending and returned with `result=None`: submit it to an executor under its
        `trial_id`, and `finish` it when the result comes back.
        """
        tokens_json = None if tokens is None else json.dumps([int(t) for t in tokens])
        now = time.time()
        with self._write() as db:
            self._check_run(db, run_id)
            source = _first_evaluation(db, fingerprint, run_id)
            if source is None:
                cursor = db.execute(
                    "INSERT INTO trials (run_id, rule, fingerprint, tokens, state, proposed_at)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (run_id, rule, fingerprint, tokens_json, PENDING, now))
            else:
                cursor = db.execute(
                    "INSERT INTO trials (run_id, rule, fingerprint, tokens, state, proposed_at,"
                    " finished_seq, finished_at, cached_from, "
                    + ", ".join(_RESULT_COLUMNS) + ") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?"
                    + ", ?" * len(_RESULT_COLUMNS) + ")",
                    (run_id, rule, fingerprint, tokens_json, CACHED, now,
                     _next_finished_seq(db), now, source["trial_id"],
                     *(source[column] for column in _RESULT_COLUMNS)))
            trial_id = cursor.lastrowid
        return self.trial(trial_id)

    def finish(self, trial_id: int, result) -> Trial:
        """Records the result (a `nos_tf.proxy.EvalResult`) of a pending trial."""
        with self._write() as db:
            row = db.execute(
                "SELECT state FROM trials WHERE trial_id = ?", (trial_id,)).fetchone()
            if row is None:
                raise StoreError(f"no trial {trial_id} in {self.path}")
            if row["state"] != PENDING:
                raise StoreError(f"trial {trial_id} is {row['state']}, not pending: "
                                 "a result can be recorded only once")
            db.execute(
                "UPDATE trials SET state = ?, finished_seq = ?, finished_at = ?, "
                + ", ".join(f"{column} = ?" for column in _RESULT_COLUMNS)
                + " WHERE trial_id = ?",
                (EVALUATED, _next_finished_seq(db), time.time(), *_result_values(result),
                 trial_id))
        return self.trial(trial_id)

    def trial(self, trial_id: int) -> Trial:
        row = next(iter(self._rows("SELECT * FROM trials WHERE trial_id = ?", (trial_id,))),
                   None)
        if row is None:
            raise StoreError(f"no trial {trial_id} in {self.path}")
        return _trial_from_row(row)

    def trials(self, run_id: int | None = None, states: Sequence[str] | None = None,
               proposed_after: int = 0, finished_after: int | None = None) -> list[Trial]:
        """Trials filtered by run, state and position.

        `proposed_after`: only trials with a larger `trial_id`. `finished_after`: only
        trials with a larger `finished_seq` (so never pending ones), returned in finish
        order; otherwise trials come in proposal order.
        """
        where, params = [], []
        if run_id is not None:
            where.append("run_id = ?")
            params.append(run_id)
        if states is not None:
            unknown = set(states) - {PENDING, EVALUATED, CACHED}
            if unknown:
                raise StoreError(f"unknown trial states {sorted(unknown)}")
            where.append(f"state IN ({', '.join('?' * len(states))})")
            params.extend(states)
        if proposed_after:
            where.append("trial_id > ?")
            params.append(proposed_after)
        order = "trial_id"
        if finished_after is not None:
            where.append("finished_seq > ?")
            params.append(finished_after)
            order = "finished_seq"
        sql = "SELECT * FROM trials"
        if where:
            sql += " WHERE " + " AND ".join(where)
        return [_trial_from_row(row) for row in self._rows(f"{sql} ORDER BY {order}", params)]

    def pending(self, run_id: int) -> list[Trial]:
        """The run's submitted, unfinished trials, in proposal order."""
        return self.trials(run_id, states=[PENDING])

    def lookup(self, fingerprint: str, run_id: int):
        """The result (`EvalResult`) that `propose` would give `fingerprint` in run
        `run_id` (the first evaluation under its protocol), or None."""
        with self._file_errors("read"):
            row = _first_evaluation(self._db, fingerprint, run_id)
        return None if row is None else _result(row)

    # -- checkpoints ------------------------------------------------------------------------

    def save_checkpoint(self, run_id: int, blob: bytes, step: int) -> Checkpoint:
        """Replaces the run's checkpoint. Records how far the run had got, so call it only
        when `blob` captures every result handed to the searcher so far."""
        with self._write() as db:
            self._check_run(db, run_id)
            last_trial_id = db.execute(
                "SELECT COALESCE(MAX(trial_id), 0) FROM trials WHERE run_id = ?",
                (run_id,)).fetchone()[0]
            last_finished_seq = _next_finished_seq(db) - 1
            db.execute(
                "INSERT OR REPLACE INTO checkpoints (run_id, step, blob, last_trial_id, "
                "last_finished_seq, saved) VALUES (?, ?, ?, ?, ?, ?)",
                (run_id, int(step), sqlite3.Binary(bytes(blob)), last_trial_id,
                 last_finished_seq, time.time()))
        return self.load_checkpoint(run_id)

    def load_checkpoint(self, run_id: int) -> Checkpoint | None:
        row = next(iter(self._rows("SELECT * FROM checkpoints WHERE run_id = ?", (run_id,))),
                   None)
        if row is None:
            return None
        return Checkpoint(run_id=row["run_id"], step=row["step"], blob=bytes(row["blob"]),
                          last_trial_id=row["last_trial_id"],
                          last_finished_seq=row["last_finished_seq"], saved=row["saved"])

    def resume_state(self, run_id: int) -> ResumeState:
        """What happened in the run after its checkpoint; see the module docstring."""
        checkpoint = self.load_checkpoint(run_id)
        return ResumeState(
            checkpoint=checkpoint,
            proposed_since=self.trials(
                run_id, proposed_after=checkpoint.last_trial_id if checkpoint else 0),
            finished_since=self.trials(
                run_id, finished_after=checkpoint.last_finished_seq if checkpoint else 0),
            pending=self.pending(run_id))

    # -- summaries --------------------------------------------------------------------------

    def leaderboard(self, top: int | None = None,
                    run_id: int | None = None) -> list[LeaderboardEntry]:
        """The best `ok` evaluation of each fingerprint, best first, across all runs, or
        across the runs that share run `run_id`'s protocol (rewards of other protocols do
        not compare).

        `count` is how many times the fingerprint was proposed and finished: evaluations plus
        cache hits. `rule` and `lr` come from the best evaluation.
        """
        if run_id is not None:
            with self._file_errors("read"):
                self._check_run(self._db, run_id)
        rows = self._rows(
            f"""
            WITH scope AS (
              SELECT trials.* FROM trials JOIN runs USING (run_id)
              WHERE ?1 IS NULL OR {_same_protocol_as("?1")}),
            counts AS (
              SELECT fingerprint, COUNT(*) AS count FROM scope
              WHERE state != 'pending' GROUP BY fingerprint),
            best AS (
              SELECT fingerprint, rule, reward, lr, ROW_NUMBER() OVER (
                PARTITION BY fingerprint ORDER BY reward DESC, trial_id) AS position
              FROM scope WHERE state = 'evaluated' AND status = 'ok')
            SELECT best.fingerprint, rule, reward, lr, count
            FROM best JOIN counts USING (fingerprint)
            WHERE position = 1 ORDER BY reward DESC, count DESC, rule LIMIT ?2
            """, (run_id, -1 if top is None else int(top)))
        return [LeaderboardEntry(rank=rank, reward=row["reward"], rule=row["rule"],
                                 lr=row["lr"], count=row["count"],
                                 fingerprint=row["fingerprint"])
                for rank, row in enumerate(rows, start=1)]

    def counts(self, run_id: int | None = None) -> dict[str, int]:
        """How many trials are in each state, and how many evaluations ended in each status
        (keys like ``pending``, ``cached``, ``evaluated``, ``status:ok``)."""
        totals = {PENDING: 0, EVALUATED: 0, CACHED: 0}
        for state, status, count in self._rows(
                "SELECT state, status, COUNT(*) FROM trials WHERE ?1 IS NULL OR run_id = ?1 "
                "GROUP BY state, status", (run_id,)):
            totals[state] += count
            if state == EVALUATED:
                totals[f"status:{status}"] = count
        return totals


# Of the machine, not the rule alone; as an SQL list.
_RUN_LOCAL_STATUSES = ("timeout", "failed", "error")
_RUN_LOCAL_STATUSES_SQL = "(" + ", ".join(f"'{status}'" for status in _RUN_LOCAL_STATUSES) + ")"


def _in_read_only_folder_without_wal(path: str) -> bool:
    """Whether the store at `path` (its real path: SQLite keeps its -wal beside the file a
    link points to) lies in a folder this process cannot write to, without a write-ahead
    log to read (none, or empty)."""
    real_path = os.path.realpath(path)
    if os.access(os.path.dirname(real_path), os.W_OK):
        return False
    try:
        return os.path.getsize(f"{real_path}-wal") == 0
    except FileNotFoundError:
        return True


def _schema(db: sqlite3.Connection) -> tuple[int, frozenset[str]]:
    """The store's `user_version` and the names of its tables (0 and none: a new file)."""
    version = db.execute("PRAGMA user_version").fetchone()[0]
    tables = frozenset(row[0] for row in db.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table'"))
    return version, tables


def _check_schema(path: str, version: int, tables: frozenset[str],
                  readonly: bool = False) -> None:
    """Raises StoreError unless the file is new (and may be made a store), of this schema,
    or one we can upgrade. Another program's database may well have user_version 1 or 2:
    the tables tell."""
    if version == 0 and not tables:
        if readonly:
            raise StoreError(f"{path} is empty: not a trial store yet")
        return
    if (version == SCHEMA_VERSION or version in _MIGRATIONS) and _TABLES <= tables:
        return
    found = f"user_version={version}" + ("" if _TABLES <= tables else ", other tables")
    raise StoreError(f"{path} is not a nos_tf trial store of schema version "
                     f"{SCHEMA_VERSION} (found {found})")


def _same_protocol_as(run_id_parameter: str) -> str:
    """SQL: the joined run's protocol is that of the run `run_id_parameter` names (NULL
    matches NULL: version-1 runs share among themselves)."""
    return f"runs.protocol IS (SELECT protocol FROM runs WHERE run_id = {run_id_parameter})"


def _first_evaluation(db: sqlite3.Connection, fingerprint: str, run_id: int):
    """The first evaluated trial of `fingerprint` in a run whose protocol is run
    `run_id`'s, or None. A timeout, a failure or an error counts only in its own run."""
    return db.execute(
        "SELECT trials.* FROM trials JOIN runs USING (run_id) "
        f"WHERE fingerprint = ?1 AND state = ?2 AND {_same_protocol_as('?3')} "
        f"AND (status NOT IN {_RUN_LOCAL_STATUSES_SQL} OR trials.run_id = ?3) "
        "ORDER BY trial_id LIMIT 1", (fingerprint, EVALUATED, run_id)).fetchone()


def _next_finished_seq(db: sqlite3.Connection) -> int:
    return db.execute("SELECT COALESCE(MAX(finished_seq), 0) + 1 FROM trials").fetchone()[0]


def _result_values(result) -> tuple:
    """An EvalResult's fields in `_RESULT_COLUMNS` order, JSON-encoding the per-lr scores."""
    lr_scores = sorted((float(lr), float(score)) for lr, score in result.lr_scores.items())
    return (result.status, float(result.reward),
            None if result.lr is None else float(result.lr), json.dumps(lr_scores),
            result.reason, float(result.wall_time), result.worker)


def _result(row: sqlite3.Row) -> EvalResult:
    """A finished trial's row as the EvalResult it recorded."""
    return EvalResult(rule=row["rule"], fingerprint=row["fingerprint"], reward=row["reward"],
                      status=row["status"], lr=row["lr"],
                      lr_scores={lr: score for lr, score in json.loads(row["lr_scores"])},
                      wall_time=row["wall_time"], reason=row["reason"], worker=row["worker"])


def _trial_from_row(row: sqlite3.Row) -> Trial:
    return Trial(
        trial_id=row["trial_id"], run_id=row["run_id"], rule=row["rule"],
        fingerprint=row["fingerprint"],
        tokens=None if row["tokens"] is None else json.loads(row["tokens"]),
        state=row["state"], proposed_at=row["proposed_at"],
        finished_seq=row["finished_seq"], finished_at=row["finished_at"],
        cached_from=row["cached_from"],
        result=None if row["state"] == PENDING else _result(row))


def _run_from_row(row: sqlite3.Row) -> Run:
    return Run(run_id=row["run_id"], name=row["name"], searcher=row["searcher"],
               flags=json.loads(row["flags"]), started=row["started"],
               protocol=None if row["protocol"] is None else json.loads(row["protocol"]))
