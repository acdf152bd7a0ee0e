"""The trial store: results, the fingerprint cache, runs, checkpoints, resume, sharing."""

import os
import shutil
import sqlite3
import subprocess
import sys
import textwrap
import time

import pytest

from nos_tf import store as store_module
from nos_tf.proxy import EvalResult
from nos_tf.store import StoreError, TrialStore


def result(rule: str, reward: float, status: str = "ok") -> EvalResult:
    return EvalResult(rule=rule, fingerprint=f"fp-{rule}", reward=reward, status=status,
                      lr=0.01, lr_scores={0.001: reward / 2, 0.01: reward}, wall_time=1.5,
                      reason="" if status == "ok" else f"{status} at step 3",
                      worker="host:123")


@pytest.fixture
def store(tmp_path):
    with TrialStore(str(tmp_path / "trials.db")) as store:
        yield store


@pytest.fixture
def run_id(store):
    return store.start_run("ppo-1", "ppo", {"batch_size": 4, "dataset": "digits"}).run_id


def test_a_finished_trial_keeps_its_result(store, run_id):
    trial = store.propose(run_id, "g * m", "fp-g * m", tokens=[3, 1, 0, 2, 4])
    assert (trial.state, trial.result, trial.tokens) == ("pending", None, [3, 1, 0, 2, 4])
    assert store.pending(run_id) == [trial]
    finished = store.finish(trial.trial_id, result("g * m", 0.75))
    assert finished.state == "evaluated"
    assert finished.result == result("g * m", 0.75)
    assert store.pending(run_id) == []
    assert store.lookup("fp-g * m", run_id) == result("g * m", 0.75)
    assert store.lookup("fp-unknown", run_id) is None


def test_a_known_fingerprint_is_a_counted_cache_hit_not_a_new_evaluation(store, run_id):
    first = store.propose(run_id, "g * m", "fp-same", tokens=[1])
    # Still pending: not a cache source yet, so the same rule is proposed pending too.
    twin = store.propose(run_id, "m * g", "fp-same", tokens=[2])
    assert twin.state == "pending"
    store.finish(first.trial_id, result("g * m", 0.75))
    store.finish(twin.trial_id, result("m * g", 0.5))
    other_run = store.start_run("random-1", "random", {}).run_id
    hit = store.propose(other_run, "m * g", "fp-same", tokens=[7, 7])
    assert (hit.state, hit.cached, hit.cached_from, hit.tokens) == (
        "cached", True, first.trial_id, [7, 7])
    assert (hit.rule, hit.result.reward, hit.result.lr) == ("m * g", 0.75, 0.01)
    assert store.counts(other_run) == {"pending": 0, "evaluated": 0, "cached": 1}
    assert store.counts() == {"pending": 0, "evaluated": 2, "cached": 1, "status:ok": 2}


def test_results_are_shared_only_between_runs_of_the_same_protocol(store):
    """A reward measured on other data or with other epochs means something else."""
    digits = store.start_run("a", "ppo", {}, protocol={"dataset": "digits", "epochs": 3})
    store.finish(store.propose(digits.run_id, "g", "fp-g").trial_id, result("g", 0.9))
    fashion = store.start_run("b", "ppo", {}, protocol={"dataset": "fashion", "epochs": 3})
    assert fashion.protocol == {"dataset": "fashion", "epochs": 3}
    assert store.lookup("fp-g", fashion.run_id) is None
    assert store.propose(fashion.run_id, "g", "fp-g").state == "pending"
    again = store.start_run("c", "random", {}, protocol={"epochs": 3, "dataset": "digits"})
    hit = store.propose(again.run_id, "g", "fp-g")
    assert (hit.state, hit.result.reward) == ("cached", 0.9)
    # A leaderboard scoped to a run ranks only rewards of its protocol.
    assert [e.count for e in store.leaderboard(run_id=digits.run_id)] == [2]
    assert store.leaderboard(run_id=fashion.run_id) == []
    assert [e.count for e in store.leaderboard()] == [2]


@pytest.mark.parametrize("status", ["timeout", "failed", "error"])
def test_a_timeout_failure_or_error_is_cached_only_in_its_own_run(store, status):
    """They depend on --eval_timeout and the machine (an error may be out of memory), not
    on the rule alone."""
    first = store.start_run("a", "ppo", {}).run_id
    store.finish(store.propose(first, "g", "fp-g").trial_id, result("g", 0.0, status))
    assert store.propose(first, "1 * g", "fp-g").state == "cached"
    second = store.start_run("b", "ppo", {}).run_id
    retry = store.propose(second, "g", "fp-g")
    assert retry.state == "pending"
    store.finish(retry.trial_id, result("g", 0.7))
    assert store.propose(first, "g", "fp-g").result.status == status  # its own, first
    assert store.propose(store.start_run("c", "ppo", {}).run_id, "g", "fp-g").result.reward == 0.7


def test_a_version_1_store_is_upgraded_and_its_runs_keep_sharing(tmp_path):
    path = str(tmp_path / "v1.db")
    with TrialStore(path) as store:
        run_id = store.start_run("old", "ppo", {}).run_id
        store.finish(store.propose(run_id, "g", "fp-g").trial_id, result("g", 0.9))
    with sqlite3.connect(path) as db:  # What version 1 wrote: runs had no protocol.
        db.execute("ALTER TABLE runs DROP COLUMN protocol")
        db.execute("PRAGMA user_version=1")
    with TrialStore(path) as store:
        assert store.run("old").protocol is None
        assert store.propose(run_id, "1 * g", "fp-g").state == "cached"
        new = store.start_run("new", "ppo", {}, protocol={"dataset": "digits"}).run_id
        assert store.propose(new, "g", "fp-g").state == "pending"
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == store_module.SCHEMA_VERSION


def test_a_result_is_recorded_once(store, run_id):
    trial = store.propose(run_id, "g", "fp-g")
    store.finish(trial.trial_id, result("g", 0.5))
    with pytest.raises(StoreError, match="evaluated, not pending"):
        store.finish(trial.trial_id, result("g", 0.6))
    with pytest.raises(StoreError, match="no trial 99"):
        store.finish(99, result("g", 0.6))


def test_runs_are_named_and_keep_their_flags(store):
    assert store.start_run("a", "ppo", {"lr": 1e-3, "searcher": "ppo"}).flags == {
        "lr": 1e-3, "searcher": "ppo"}
    store.start_run("b", "random", {})
    with pytest.raises(StoreError, match="run 'a' already exists"):
        store.start_run("a", "ppo", {})
    with pytest.raises(StoreError, match=r"no run 'c' .*\(runs: a, b\)"):
        store.run("c")
    assert [run.name for run in store.runs()] == ["a", "b"]
    assert store.resume_run().name == "b"
    assert store.resume_run("a").searcher == "ppo"


def test_only_a_run_that_finished_nothing_is_discarded(store, run_id):
    started = store.start_run("never-started", "ppo", {})
    store.propose(started.run_id, "g", "fp-g")
    store.save_checkpoint(started.run_id, b"state", step=0)
    store.discard_run(started)
    assert [run.name for run in store.runs()] == ["ppo-1"]
    assert store.trials(started.run_id) == [] and store.load_checkpoint(started.run_id) is None
    assert not os.path.exists(f"{store.path}-run{started.run_id}.lock")
    assert store.start_run("never-started", "ppo", {}).run_id > started.run_id  # Name free.

    trial = store.propose(run_id, "m", "fp-m")
    store.finish(trial.trial_id, result("m", 0.5))
    with pytest.raises(StoreError, match="1 finished trials: it is not discarded"):
        store.discard_run(store.run("ppo-1"))
    assert store.trial(trial.trial_id).result.reward == 0.5


def test_resume_state_says_what_happened_after_the_checkpoint(tmp_path):
    path = str(tmp_path / "trials.db")
    with TrialStore(path) as store:
        run_id = store.start_run("ppo-1", "ppo", {}).run_id
        t1, t2, t3 = (store.propose(run_id, rule, f"fp-{rule}", [i])
                      for i, rule in enumerate(["g", "m", "v"]))
        store.finish(t1.trial_id, result("g", 0.3))
        assert store.resume_state(run_id).checkpoint is None
        store.save_checkpoint(run_id, b"\x00weights\xff", step=1)
        t4 = store.propose(run_id, "adam", "fp-adam", [4])
        store.finish(t3.trial_id, result("v", 0.1, status="diverged"))
        t5 = store.propose(run_id, "g", "fp-g", [5])  # A cache hit of t1.
    with TrialStore(path) as store:  # As a resumed search would open it.
        state = store.resume_state(run_id)
    assert (state.checkpoint.blob, state.checkpoint.step) == (b"\x00weights\xff", 1)
    assert [t.trial_id for t in state.proposed_since] == [t4.trial_id, t5.trial_id]
    assert [t.trial_id for t in state.finished_since] == [t3.trial_id, t5.trial_id]
    assert state.finished_since[0].result.status == "diverged"
    assert [t.trial_id for t in state.pending] == [t2.trial_id, t4.trial_id]


def test_a_later_checkpoint_replaces_the_earlier(store, run_id):
    store.save_checkpoint(run_id, b"first", step=1)
    trial = store.propose(run_id, "g", "fp-g")
    store.finish(trial.trial_id, result("g", 0.5))
    store.save_checkpoint(run_id, b"second", step=2)
    state = store.resume_state(run_id)
    assert (state.checkpoint.blob, state.checkpoint.step) == (b"second", 2)
    assert (state.proposed_since, state.finished_since, state.pending) == ([], [], [])


def test_leaderboard_ranks_fingerprints_by_their_best_ok_evaluation(store, run_id):
    for rule, reward, status in [("g", 0.5, "ok"), ("m", 0.9, "ok"), ("g2", 0.99, "diverged"),
                                 ("adam", 0.7, "ok")]:
        store.finish(store.propose(run_id, rule, f"fp-{rule}").trial_id,
                     result(rule, reward, status))
    store.propose(run_id, "g", "fp-g")  # Cache hits count as proposals of "g".
    store.propose(run_id, "1 * g", "fp-g")
    store.propose(run_id, "v", "fp-v")  # Pending: neither ranked nor counted.
    board = store.leaderboard()
    assert [(e.rank, e.rule, e.reward, e.count) for e in board] == [
        (1, "m", 0.9, 1), (2, "adam", 0.7, 1), (3, "g", 0.5, 3)]
    assert [e.rule for e in store.leaderboard(top=2)] == ["m", "adam"]


def test_leaderboard_across_protocols_shows_a_fingerprints_best_evaluation(store):
    """A rule evaluated under two protocols is one entry, with its better reward and the
    rule text and rate of that evaluation."""
    for name, reward in (("a", 0.3), ("b", 0.8), ("c", 0.5)):
        run = store.start_run(name, "ppo", {}, protocol={"dataset": name})
        store.finish(store.propose(run.run_id, f"g-{name}", "fp-g").trial_id,
                     result(f"g-{name}", reward))
    [entry] = store.leaderboard()
    assert (entry.rule, entry.reward, entry.count) == ("g-b", 0.8, 3)


def test_a_runs_leaderboard_counts_only_proposals_of_its_protocol(store):
    """`count` is how often runs whose rewards compare proposed the rule; the same rule
    tried under another protocol counts there."""
    digits = store.start_run("a", "ppo", {}, protocol={"dataset": "digits"}).run_id
    fashion = store.start_run("b", "ppo", {}, protocol={"dataset": "fashion"}).run_id
    for run_id, reward in ((digits, 0.9), (fashion, 0.4), (fashion, 0.4)):
        trial = store.propose(run_id, "g", "fp-g")
        if trial.result is None:
            store.finish(trial.trial_id, result("g", reward))
    assert [(e.reward, e.count) for e in store.leaderboard(run_id=digits)] == [(0.9, 1)]
    assert [(e.reward, e.count) for e in store.leaderboard(run_id=fashion)] == [(0.4, 2)]


# Writer processes load store.py alone, which needs nothing but the standard library, rather
# than spend seconds importing TensorFlow with the nos_tf package; their results are
# stand-ins with EvalResult's fields.
WRITER_PRELUDE = textwrap.dedent(f"""
    import importlib.util, os, signal, sys, time, types
    spec = importlib.util.spec_from_file_location(
        "store", {store_module.__file__!r})
    store_lib = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(store_lib)

    def result(trial, reward, worker):
        return types.SimpleNamespace(
            rule=trial.rule, fingerprint=trial.fingerprint, reward=reward, status="ok",
            lr=0.1, lr_scores={{0.1: reward}}, wall_time=0.0, reason="", worker=worker)
""")


def test_every_write_survives_a_sigkill(tmp_path):
    """A writer killed with SIGKILL right after its writes loses none of them."""
    path = str(tmp_path / "trials.db")
    writer = WRITER_PRELUDE + textwrap.dedent(f"""
        store = store_lib.TrialStore({path!r})
        run_id = store.start_run("run", "random", {{}}).run_id
        for i in range(5):
            trial = store.propose(run_id, f"rule{{i}}", f"fp{{i}}")
            if i < 4:
                store.finish(trial.trial_id, result(trial, i / 10, "w"))
        store.save_checkpoint(run_id, b"blob", step=4)
        os.kill(os.getpid(), signal.SIGKILL)
    """)
    process = subprocess.run([sys.executable, "-c", writer], capture_output=True)
    assert process.returncode == -9, process.stderr.decode()[-2000:]
    with TrialStore(path) as store:
        run = store.resume_run()
        assert [t.result.reward for t in store.trials(run.run_id, states=["evaluated"])] == [
            0.0, 0.1, 0.2, 0.3]
        assert [t.rule for t in store.pending(run.run_id)] == ["rule4"]
        assert store.load_checkpoint(run.run_id).blob == b"blob"


def test_a_run_has_one_driver_until_its_process_ends(tmp_path):
    # A second `--resume` of a live run trained its pending trials again, and whichever
    # driver finished one second failed ("trial 10 is evaluated, not pending").
    path = str(tmp_path / "trials.db")
    driver = WRITER_PRELUDE + textwrap.dedent(f"""
        store = store_lib.TrialStore({path!r})
        store.claim_run(store.start_run("run", "random", {{}}))
        print("claimed", flush=True)
        time.sleep(600)
    """)
    process = subprocess.Popen([sys.executable, "-c", driver], stdout=subprocess.PIPE)
    try:
        assert process.stdout.readline() == b"claimed\n"
        with TrialStore(path) as store:
            run = store.run("run")
            with pytest.raises(StoreError, match="run 'run' of .* is being driven by another"):
                store.claim_run(run)
            process.kill()  # SIGKILL: the kernel lets go of the claim.
            process.wait()
            store.claim_run(run)
            store.claim_run(run)  # Its own claim again: no conflict.
            with TrialStore(path) as other, pytest.raises(StoreError, match="being driven"):
                other.claim_run(run)
        with TrialStore(path) as store:  # Closing let go of it.
            store.claim_run(run)
    finally:
        process.kill()
        process.wait()


def test_two_processes_can_share_one_store(tmp_path):
    path = str(tmp_path / "trials.db")
    TrialStore(path).close()
    writer = WRITER_PRELUDE + textwrap.dedent("""
        path, name = sys.argv[1], sys.argv[2]
        store = store_lib.TrialStore(path)
        run_id = store.start_run(name, "random", {}).run_id
        open(path + "." + name + ".ready", "w").close()
        while not os.path.exists(path + ".go"):  # Start together, to contend for writes.
            time.sleep(0.01)
        for i in range(100):
            trial = store.propose(run_id, f"{name}-{i}", f"{name}-fp{i}")
            store.finish(trial.trial_id, result(trial, 0.5, name))
    """)
    writers = [subprocess.Popen([sys.executable, "-c", writer, path, name],
                                stderr=subprocess.PIPE) for name in ("a", "b")]
    while not all(os.path.exists(f"{path}.{name}.ready") for name in ("a", "b")):
        for w in writers:
            assert w.poll() is None, w.stderr.read().decode()[-2000:]
        time.sleep(0.05)
    open(path + ".go", "w").close()
    for w in writers:
        assert w.wait() == 0, w.stderr.read().decode()[-2000:]
    with TrialStore(path) as store:
        trials = store.trials(states=["evaluated"])
        assert len(trials) == 200
        assert sorted(t.finished_seq for t in trials) == list(range(1, 201))
        assert {t.result.worker for t in trials} == {"a", "b"}


def test_a_file_that_is_not_a_store_is_named(tmp_path):
    not_a_db = tmp_path / "notes.txt"
    not_a_db.write_text("hello " * 1000)
    with pytest.raises(StoreError, match="notes.txt is not a trial store"):
        TrialStore(str(not_a_db))
    other = tmp_path / "other.db"
    with sqlite3.connect(other) as db:
        db.execute("CREATE TABLE things (x)")
    with pytest.raises(StoreError, match="not a nos_tf trial store"):
        TrialStore(str(other))



@pytest.mark.parametrize("version", [0, 1, store_module.SCHEMA_VERSION,
                                     store_module.SCHEMA_VERSION + 1])
def test_a_refused_database_is_left_as_it_was(tmp_path, version):
    # Another program's database (its tables not ours, whatever its user_version: 1 was
    # taken for a store to upgrade, and the upgrade's ALTER TABLE failed) or a newer
    # store's: refusing it once switched it to WAL mode first, rewriting its header.
    path = tmp_path / "other.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE things (x)")
        db.execute(f"PRAGMA user_version={version}")
    db.close()
    before = path.read_bytes()
    with pytest.raises(StoreError, match=f"found user_version={version}"):
        TrialStore(str(path))
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["other.db"]


def test_a_store_it_cannot_write_is_a_store_error(store, monkeypatch):
    # As for a read-only file: sqlite3's OperationalError was a traceback out of the search.
    monkeypatch.setattr(store_module, "BUSY_TIMEOUT_S", 0.05)
    with TrialStore(store.path) as waiting:  # Opens with the short busy timeout.
        store._db.execute("BEGIN IMMEDIATE")  # Another process's write, held too long.
        with pytest.raises(StoreError, match=f"cannot write to the trial store {waiting.path}"
                                             ": database is locked"):
            waiting.start_run("a", "ppo", {})
        store._db.execute("ROLLBACK")
        assert not waiting._db.in_transaction
        assert waiting.start_run("a", "ppo", {}).name == "a"


def test_a_store_it_cannot_read_is_not_called_foreign(store, monkeypatch):
    # A WAL store in a read-only folder, without its -shm file, cannot be read (sqlite's
    # CANTOPEN, which root does not get from permissions: simulated). It was "not a trial
    # store", as if the file were something else.
    def cannot_open(db):
        error = sqlite3.OperationalError("unable to open database file")
        error.sqlite_errorcode = sqlite3.SQLITE_CANTOPEN
        raise error

    monkeypatch.setattr(store_module, "_schema", cannot_open)
    with pytest.raises(StoreError, match=f"^cannot open the trial store {store.path}: unable"):
        TrialStore(store.path)


def test_a_folder_is_not_a_store(tmp_path):
    # `--store=runs/` was sqlite3's OperationalError, a traceback out of the search.
    with pytest.raises(StoreError, match=f"cannot open the trial store {tmp_path}: unable"):
        TrialStore(str(tmp_path))


def test_a_damaged_store_is_named(tmp_path):
    # sqlite's "database disk image is malformed" was a traceback out of report and search.
    path = tmp_path / "trials.db"
    with TrialStore(str(path)) as store:
        run_id = store.start_run("run", "ppo", {}).run_id
        for index in range(300):
            store.propose(run_id, f"g * {index}", f"fp-{index}", tokens=list(range(20)))
    page_size = 4096
    damaged = bytearray(path.read_bytes())
    damaged[2 * page_size:] = os.urandom(len(damaged) - 2 * page_size)
    path.write_bytes(bytes(damaged))
    with pytest.raises(StoreError, match=f"the trial store {path} is damaged"):
        with TrialStore(str(path), readonly=True) as store:
            store.trials()


def test_an_unknown_run_is_a_store_error(store, run_id):
    # propose and save_checkpoint raised sqlite3's IntegrityError; the leaderboard of an
    # unknown run was that of the runs without a protocol.
    with pytest.raises(StoreError, match="no run with id 99 in"):
        store.propose(99, "g", "fp-g")
    with pytest.raises(StoreError, match="no run with id 99 in"):
        store.save_checkpoint(99, b"state", step=1)
    with pytest.raises(StoreError, match="no run with id 99 in"):
        store.leaderboard(run_id=99)
    assert store.trials() == []


def test_a_store_reached_through_a_link_has_the_same_run_locks(store, run_id, tmp_path):
    # The lock file was named after the path given: two drivers, one through a symbolic
    # link, both claimed the run.
    link = tmp_path / "link.db"
    link.symlink_to(store.path)
    store.claim_run(store.run("ppo-1"))
    with TrialStore(str(link)) as linked, pytest.raises(StoreError, match="being driven"):
        linked.claim_run(linked.run("ppo-1"))


def test_a_store_opened_read_only_is_left_as_it_was(tmp_path):
    path = tmp_path / "v1.db"
    with TrialStore(str(path)) as store:
        run_id = store.start_run("old", "ppo", {}).run_id
        store.finish(store.propose(run_id, "g", "fp-g").trial_id, result("g", 0.9))
    with sqlite3.connect(path) as db:  # A version 1 store: runs had no protocol.
        db.execute("ALTER TABLE runs DROP COLUMN protocol")
        db.execute("PRAGMA user_version=1")
        db.execute("PRAGMA journal_mode=DELETE")
    db.close()
    before = path.read_bytes()
    with TrialStore(str(path), readonly=True) as store:
        assert store.run("old").protocol is None
        assert [entry.rule for entry in store.leaderboard(run_id=run_id)] == ["g"]
        with pytest.raises(StoreError, match="cannot write to the trial store"):
            store.start_run("new", "ppo", {})
    assert path.read_bytes() == before  # Neither upgraded nor switched to WAL.
    empty = tmp_path / "empty.db"
    empty.touch()
    with pytest.raises(StoreError, match="empty.db is empty: not a trial store yet"):
        TrialStore(str(empty), readonly=True)
    assert empty.read_bytes() == b""


def test_reads_in_a_snapshot_see_one_instant(store, run_id):
    with TrialStore(store.path, readonly=True) as reader:
        with reader.snapshot():
            before = reader.counts()
            store.propose(run_id, "g", "fp-g")  # Another connection writes meanwhile.
            assert reader.counts() == before
        assert reader.counts()["pending"] == before["pending"] + 1


def _can_mount_read_only() -> bool:
    """Whether this process may bind-mount a folder read-only in a mount namespace of its
    own (root, where the kernel allows unprivileged namespaces or the container does)."""
    if not shutil.which("unshare"):
        return False
    probe = subprocess.run(["unshare", "-m", "mount", "-t", "tmpfs", "none", "/mnt"],
                           capture_output=True)
    return probe.returncode == 0


@pytest.mark.skipif(not _can_mount_read_only(), reason="needs a private read-only mount")
def test_a_store_on_a_read_only_mount_is_read(tmp_path):
    # Reading a WAL store takes its -shm file, which SQLite cannot make in a read-only
    # folder: the report of a store on a read-only mount was "unable to open database file".
    # It is then read as immutable, but only without a WAL to read: one a killed writer
    # left is refused, however the store is named (a link's own folder is writable).
    folder, mount = tmp_path / "store", tmp_path / "mount"
    folder.mkdir()
    mount.mkdir()
    with TrialStore(str(folder / "trials.db")) as store:
        run_id = store.start_run("run", "ppo", {}).run_id
        store.finish(store.propose(run_id, "g", "fp-g").trial_id, result("g", 0.9))
    killed_writer = textwrap.dedent(f"""
        import os, sqlite3
        from nos_tf.store import TrialStore
        with TrialStore({str(folder / "killed.db")!r}) as store:
            store.start_run("run", "ppo", {{}})
        db = sqlite3.connect({str(folder / "killed.db")!r}, isolation_level=None)
        db.execute("PRAGMA wal_autocheckpoint=0")
        db.execute("UPDATE runs SET searcher = 'in the WAL only'")
        os._exit(0)  # Killed: its WAL holds the update.
    """)
    subprocess.run([sys.executable, "-c", killed_writer], check=True)
    os.remove(folder / "killed.db-shm")
    (tmp_path / "link.db").symlink_to(mount / "killed.db")
    script = tmp_path / "read.py"
    script.write_text(textwrap.dedent(f"""
        from nos_tf.store import StoreError, TrialStore
        try:
            TrialStore({str(mount / "trials.db")!r})
        except StoreError as error:
            print("to write:", error)
        with TrialStore({str(mount / "trials.db")!r}, readonly=True) as store:
            print("read:", [entry.reward for entry in store.leaderboard()])
        for path in ({str(mount / "killed.db")!r}, {str(tmp_path / "link.db")!r}):
            try:
                with TrialStore(path, readonly=True) as store:
                    print("killed writer's:", [run.searcher for run in store.runs()])
            except StoreError as error:
                print("killed writer's:", error)
    """))
    process = subprocess.run(
        ["unshare", "-m", "sh", "-c", f"mount --bind {folder} {mount} && "
         f"mount -o remount,ro,bind {mount} && {sys.executable} {script}"],
        capture_output=True, text=True)
    assert process.returncode == 0, process.stderr[-2000:]
    lines = process.stdout.splitlines()
    assert lines[0].startswith(f"to write: cannot open the trial store {mount}")
    assert lines[1] == "read: [0.9]"
    for line, path in zip(lines[2:], [mount / "killed.db", tmp_path / "link.db"]):
        assert line.startswith(f"killed writer's: cannot open the trial store {path}"), line
