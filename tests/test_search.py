"""`python -m nos_tf.search` end to end, and a search killed with SIGKILL that resumes."""

import collections
import glob
import os
import signal
import sqlite3
import subprocess
import textwrap
import time

import binaries
import keras
import pytest
import tensorflow as tf

import nos_tf

from nos_tf import controller, driver, proxy, rules
from nos_tf import store as store_lib
from nos_tf.driver import Search, SearchCheckpoint


def search_args(store, *extra):
    return ["--alsologtostderr", f"--flagfile={binaries.FLAGS_DIR / 'smoke.cfg'}",
            f"--store={store}", *extra]


def run_search(store, *extra, timeout=600):
    return binaries.run("nos_tf.search", *search_args(store, *extra), timeout=timeout)


def finished_trials(path):
    with store_lib.TrialStore(path) as store:
        return [t for t in store.trials() if t.result is not None]


def test_search_runs_and_prints_a_usable_leaderboard(tmp_path):
    path = tmp_path / "search.sqlite"
    # Seed 9's first batch holds a rule that passes the screens (most sampled rules do
    # not), so the leaderboard has a trained rule to print.
    process = run_search(path, "--searcher=ppo", "--max_evaluations=6", "--batch_size=3",
                         "--seed=9")
    assert process.returncode == 0, process.stderr[-3000:]
    log = process.stderr
    assert "[6/6] reward=" in log and "evals/h=" in log and "cache_hits=" in log
    assert "status=rejected lr=-" in log and "(not a descent direction" in log  # Says why.
    # The last line is a working optimizer, as a user would paste it.
    snippet = process.stdout.strip().splitlines()[-1]
    assert snippet.startswith("nos_tf.RuleOptimizer(")
    optimizer = eval(snippet, {"nos_tf": nos_tf})
    assert isinstance(optimizer, keras.optimizers.Optimizer)
    trials = finished_trials(path)
    assert len(trials) == 6
    with store_lib.TrialStore(path) as store:
        run = store.runs()[0]
        assert run.searcher == "ppo" and run.flags["max_evaluations"] == 6
        assert run.protocol == proxy.ProxyConfig(
            dataset="digits", train_examples=run.flags["train_examples"],
            validation_examples=run.flags["validation_examples"],
            learning_rates=[float(lr) for lr in run.flags["learning_rates"]],
            epochs=run.flags["epochs"], halving_rate=run.flags["halving_rate"],
            halving_validation_examples=run.flags["halving_validation_examples"] or None,
            abandon_below=run.flags["abandon_below"]).protocol()
        assert store.load_checkpoint(run.run_id).step == 2
    events = list((tmp_path / "tensorboard").rglob("events.out.tfevents.*"))
    assert events, "no TensorBoard summaries written"
    other_searcher, other_protocol, other_batch_size = binaries.run_each("nos_tf.search", [
        search_args(path, "--searcher=ppo", "--max_evaluations=6", "--batch_size=3",
                    "--seed=9", "--resume", *resumed_with)
        for resumed_with in (["--entropy_floor=0.2", "--ppo_clip=0.3"],
                             ["--epochs=7", "--child_batch_size=50", "--proxy_seed=1",
                              "--halving_validation_examples=0"],
                             ["--batch_size=2"])])
    # Resuming with a searcher other than the run's is refused, naming the difference.
    assert other_searcher.returncode == 1
    assert ("other searcher hyperparameters (entropy_floor 0.5 -> 0.2, ppo_clip 0.2 -> 0.3)"
            in other_searcher.stderr)  # By their flags' names (ppo_clip is PPO's clip_epsilon).
    # So is resuming it with another proxy protocol: its rewards would not compare.
    # Named by their flags: the search's own --batch_size and --seed are not the child's.
    assert other_protocol.returncode == 1
    assert ("another proxy protocol (--child_batch_size 100 -> 50, --epochs 3 -> 7, "
            "--halving_validation_examples 100 -> none, --proxy_seed 0 -> 1)"
            in other_protocol.stderr), other_protocol.stderr[-2000:]
    # And with another batch size: each update would learn from other batches.
    assert other_batch_size.returncode == 1
    assert "other search flags (batch_size 3 -> 2)" in other_batch_size.stderr
    for process in (other_searcher, other_protocol, other_batch_size):
        assert "Traceback" not in process.stderr
    # Another run of the protocol, answered from the store: its leaderboard says whose.
    process = run_search(path, "--searcher=ppo", "--max_evaluations=3", "--batch_size=3",
                         "--seed=9", "--run_name=second")
    assert process.returncode == 0, process.stderr[-3000:]
    assert f" of this run and 1 other of its protocol in the store ({run.name})" in (
        process.stdout)


REFUSED_FLAGS = [
    ("--searcher=annealing", "searcher"),
    ("--ppo_clip=0", "--ppo_clip > 0"),
    ("--ppo_target_kl=-0.01", "--ppo_target_kl must be positive and finite, got -0.01."),
    ("--entropy_floor=1.5", "entropy_floor must be in [0, 1), got 1.5"),
    ("--learning_rates=1e-3,fast", "--learning_rates must be numbers"),
    ("--lr_search_epochs=9", "need 1 <= lr_search_epochs <= epochs, got 9 and 3"),
    ("--batch_size=0", "--batch_size=0: 0 is not a positive integer"),
    ("--abandon_below=1.5", "abandon_below must be in [0, 1], got 1.5"),
    ("--resume", "nothing to resume: no trial store at"),
    ("--num_workers=2", "the local executor evaluates one rule at a time"),
    ("--num_workers=0", "--num_workers=0: 0 is not a positive integer"),
    ("--top=0", "--top=0: 0 is not a positive integer"),
    ("stray", "error: unexpected arguments: stray"),
    ("--controller_learning_rate=-5e-3", "--controller_learning_rate must be positive and "
                                         "finite"),
    ("--entropy_weight=-1", "--entropy_weight must be at least 0"),
    # Both by their flags, the one at its default too (--epochs is the child's).
    ("--ppo_epochs=0", "PPO needs --ppo_epochs >= 1 and --ppo_clip > 0, got 0 and 0.2."),
    ("--eval_timeout=-1", "--eval_timeout must be a positive finite number"),
    ("--seed=-1", "--seed=-1: -1 is not a non-negative integer"),  # numpy's words, unnamed
    ("--gpus_per_worker=nan", "--gpus_per_worker must be a finite number"),
    ("--max_retries=-3", "--max_retries=-3"),
    (f"--store={os.devnull}/s.sqlite", "cannot make the folder of --store=/dev/null/s.sqlite"),
    ("--store=", "a trial store is a file: '' would be a database in memory"),
    ("--units=6", "--units=6: 6 is not an integer in the range [1, 5]"),
    ("--run_name=../../escape", "--run_name cannot hold '/'"),  # Events went outside.
    ("--run_name=..", "nor be '.' or '..'"),
    ("--cpus_per_worker=0", "--cpus_per_worker must be a positive finite number"),
    ("--eval_timeout=0", "--eval_timeout must be a positive finite number"),
    ("--train_examples=5000", "ValueError: --train_examples=5000 must be between 1 and 1137"),
]


@pytest.fixture(scope="module")
def refused_searches(tmp_path_factory):
    """The search run with each of REFUSED_FLAGS (in one process: `binaries.run_each`),
    each with a store in a folder of its own: {flag: (process, store path)}."""
    stores = [tmp_path_factory.mktemp("refused") / "s.sqlite" for _ in REFUSED_FLAGS]
    processes = binaries.run_each("nos_tf.search", [
        search_args(store, flag) for store, (flag, _) in zip(stores, REFUSED_FLAGS)])
    return {flag: (process, store)
            for (flag, _), process, store in zip(REFUSED_FLAGS, processes, stores)}


@pytest.mark.xdist_group("refused_searches")
@pytest.mark.parametrize("flag, message", REFUSED_FLAGS)
def test_bad_flags_give_a_clear_error_and_record_no_run(refused_searches, flag, message):
    process, store = refused_searches[flag]
    assert process.returncode != 0
    assert message in process.stderr and "Traceback" not in process.stderr
    assert "\nflags:\n" not in process.stderr  # Not absl's usage text of every flag.
    assert not store.exists()


def test_the_ray_executor_without_ray_says_how_to_install_it(tmp_path):
    # What `pip install nos_tf` without the [ray] extra meets: it was an ImportError's
    # traceback, raised after the store had recorded an empty run.
    process = binaries.run_without(
        "ray", "nos_tf.search", *search_args(tmp_path / "s.sqlite", "--executor=ray"))
    assert process.returncode == 1, process.stderr[-2000:]
    assert process.stderr.splitlines()[-1].startswith(
        "error: the ray executor needs Ray: pip install")
    assert "Traceback" not in process.stderr
    assert not (tmp_path / "s.sqlite").exists()


def test_sigkill_then_resume_loses_nothing_and_repeats_nothing(tmp_path):
    path = tmp_path / "search.sqlite"
    args = ["--searcher=ppo", "--max_evaluations=10", "--batch_size=4", "--seed=1",
            "--run_name=killed"]
    process = binaries.start("nos_tf.search", *search_args(path, *args))
    try:
        deadline = time.monotonic() + 400
        # Kill it once a batch has been checkpointed and more has finished since.
        while time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.2)
            if not path.exists():
                continue
            try:
                with sqlite3.connect(path) as db:
                    checkpoints = db.execute("SELECT COUNT(*) FROM checkpoints").fetchone()[0]
                    finished = db.execute(
                        "SELECT COUNT(*) FROM trials WHERE state != 'pending'").fetchone()[0]
            except sqlite3.OperationalError:
                continue  # schema not created yet
            if checkpoints >= 1 and finished >= 5:
                break
        assert process.poll() is None, "the search ended before it could be killed"
        os.kill(process.pid, signal.SIGKILL)
        process.wait()
    finally:
        if process.poll() is None:
            process.kill()
    before = {t.trial_id: t for t in finished_trials(path)}
    assert before

    resumed = run_search(path, *args, "--resume")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "Resuming run 'killed'" in resumed.stderr

    with store_lib.TrialStore(path) as store:
        trials = store.trials()
        assert not store.pending(store.run("killed").run_id)
    # Nothing finished before the kill was lost or changed.
    after = {t.trial_id: t for t in trials}
    for trial_id, trial in before.items():
        assert after[trial_id].result == trial.result
    # Nothing was trained twice, and the budget was met exactly.
    trained = collections.Counter(t.fingerprint for t in trials if t.state == "evaluated")
    assert max(trained.values()) == 1
    assert len(trials) == 10
    # TensorBoard shows each evaluation once: the resumed run writes only the steps the
    # killed one had not (it wrote them all again, in another order: two values a step).
    steps = driver.summary_steps(str(tmp_path / "tensorboard" / "killed"))
    assert sorted(steps) == list(range(1, 11))


def test_store_and_startup_errors_are_one_line_messages(tmp_path):
    garbage = tmp_path / "garbage.sqlite"
    garbage.write_bytes(os.urandom(4096))
    path = tmp_path / "new" / "search.sqlite"
    empty = tmp_path / "empty.sqlite"
    empty.write_bytes(b"")
    not_a_store, bad_logdir, no_data, empty_resumed = binaries.run_each("nos_tf.search", [
        search_args(garbage),
        search_args(path, f"--logdir={garbage}/tensorboard"),
        search_args(path, "--dataset=cifar10", f"--data_dir={tmp_path}", "--run_name=c"),
        search_args(empty, "--resume")])
    assert not_a_store.returncode == 1
    assert "is not a trial store" in not_a_store.stderr
    # A bad --logdir is found before the run is recorded; the store made for it is taken
    # back out, with its new folder.
    assert bad_logdir.returncode == 1
    assert "cannot write TensorBoard summaries" in bad_logdir.stderr
    assert "function_node" not in bad_logdir.stderr and "[Op:" not in bad_logdir.stderr
    # An empty file is not made a store to find nothing in it.
    assert empty_resumed.returncode == 1
    assert f"nothing to resume: {empty} is empty" in empty_resumed.stderr
    assert empty.stat().st_size == 0
    # Data that is not there stops the search with what to do, and leaves no run behind
    # (it would hold the wrong --data_dir in its protocol), nor the store file, folders and
    # TensorBoard folder made for it.
    assert not (tmp_path / "new").exists()

    # An existing store keeps its other runs.
    path.parent.mkdir()
    with store_lib.TrialStore(path) as store:
        store.start_run("other", "random", {}, {})
    taken_path = tmp_path / "taken" / "search.sqlite"  # Its run has TensorBoard events.
    taken_path.parent.mkdir()
    with store_lib.TrialStore(taken_path) as store:
        store.start_run("other", "random", {}, {})
    taken = taken_path.parent / "tensorboard" / "other"
    taken.mkdir(parents=True)
    (taken / "events.out.tfevents.1.host.2.v2").write_bytes(b"")
    name_taken, no_such_run, latest_resumed, no_data_again = binaries.run_each(
        "nos_tf.search", [
            search_args(taken_path, "--run_name=other"),
            search_args(path, "--resume", "--run_name=nosuch"),
            # An empty --run_name (clearing a flagfile's) is the latest run, as it names a
            # new one.
            search_args(path, "--resume", "--run_name="),
            # Last: the two above on this store are refused by a read-only look at it,
            # which leaves SQLite's -wal and -shm files; the store closed after writing
            # takes them away.
            search_args(path, "--dataset=cifar10", f"--data_dir={tmp_path}", "--run_name=c")])
    for process in (no_data, no_data_again):
        assert process.returncode == 1
        assert "dataset 'cifar10'" in process.stderr
        assert "run the same command again" in process.stderr
    assert not glob.glob(f"{path}-run*.lock")
    assert sorted(os.listdir(path.parent)) == ["search.sqlite"]
    with store_lib.TrialStore(path) as store:
        assert [run.name for run in store.runs()] == ["other"]
    # A new run under a taken name writes nothing into that run's TensorBoard folder.
    assert name_taken.returncode == 1 and "run 'other' already exists" in name_taken.stderr
    assert os.listdir(taken.parent) == ["other"]
    assert os.listdir(taken) == ["events.out.tfevents.1.host.2.v2"]
    assert no_such_run.returncode == 1 and "no run 'nosuch'" in no_such_run.stderr
    assert latest_resumed.returncode == 1
    assert "cannot resume run 'other'" in latest_resumed.stderr
    for process in (not_a_store, bad_logdir, no_data, empty_resumed, no_data_again,
                    name_taken, no_such_run, latest_resumed):
        assert "Traceback" not in process.stderr


@pytest.mark.parametrize("flags, refusal", [
    (["--resume", "--run_name=nosuch"], "no run 'nosuch'"),
    (["--resume", "--seed=7"], "cannot resume run 'other' with other search flags"),
    (["--run_name=other"], "run 'other' already exists"),
])
def test_a_run_the_store_refuses_is_refused_before_the_executor_starts(
        tmp_path, flags, refusal):
    """A Ray cluster's connection and its workers' start-up came first, then the store's
    refusal of a --resume or --run_name given wrong."""
    path = tmp_path / "search.sqlite"
    with store_lib.TrialStore(path) as store:
        store.start_run("other", "ppo", {"seed": 0, "searcher": "ppo"}, None)
    refuse_executors = textwrap.dedent("""
        import sys
        from absl import app
        from nos_tf import executors, search
        def started(*args, **kwargs):
            raise SystemExit("an executor started")
        executors.make_executor = started
        app.run(search.main, argv=["search", *sys.argv[1:]])
    """)
    process = binaries.run_python(refuse_executors, *search_args(path, *flags))
    assert process.returncode == 1 and refusal in process.stderr, process.stderr[-3000:]
    assert "an executor started" not in process.stderr


def test_what_a_search_cannot_take_back_is_left_without_a_traceback(tmp_path):
    """The tidying runs on a search's way to saying why it stopped; a file it may not
    remove must not turn that message into a traceback. Root may remove anything here, so
    the refusal is os.remove's, replaced, in a process of its own (nos_tf.search's flags
    would clash with nos_tf.report's in this one)."""
    (tmp_path / "tb").mkdir()
    (tmp_path / "new.sqlite").write_text("")
    (tmp_path / "new.sqlite-wal").write_text("")
    tidy = textwrap.dedent("""
        import os, socket, sys
        from nos_tf import search
        own = f"events.out.tfevents.1.{socket.gethostname()}.{os.getpid()}.0.v2"
        for name in (own, own.replace(".0.v2", ".1.v2")):  # This process's two files.
            open(os.path.join(sys.argv[1], "tb", name), "w").close()
        remove = os.remove
        def refuse_some(path):  # The first events file and the store, not the rest.
            if path.endswith((".0.v2", ".sqlite")):
                raise PermissionError(13, "Permission denied", path)
            remove(path)
        os.remove = refuse_some
        search._take_back([os.path.join(sys.argv[1], name) for name in ("tb", "new.sqlite")])
    """)
    process = binaries.run_python(tidy, tmp_path)
    assert process.returncode == 0, process.stderr[-3000:]
    assert sorted(os.listdir(tmp_path)) == ["new.sqlite", "tb"]
    [left] = os.listdir(tmp_path / "tb")
    assert left.endswith(".0.v2")


def test_a_search_refused_a_run_name_taken_meanwhile_leaves_the_other_runs_events(tmp_path):
    """Two searches started at once under one name both find its TensorBoard folder new
    and the name free; the one whose run is recorded second is refused. It took back every
    events file in the folder and the folder with them: the other run's summaries. Here
    the other search records the run, and writes its events file, while this one makes its
    writer."""
    race = textwrap.dedent("""
        import os, sys
        import tensorflow as tf
        from absl import app
        from nos_tf import search
        from nos_tf import store as store_lib
        store_path = sys.argv[1]
        make_writer = tf.summary.create_file_writer
        def the_other_search_first(path, *args, **kwargs):
            os.makedirs(path)
            open(os.path.join(path, "events.out.tfevents.1.otherhost.1.0.v2"), "w").close()
            with store_lib.TrialStore(store_path) as store:
                store.start_run("x", "ppo", {})
            return make_writer(path, *args, **kwargs)
        tf.summary.create_file_writer = the_other_search_first
        app.run(search.main, argv=["search", *sys.argv[2:]])
    """)
    path = tmp_path / "search.sqlite"
    process = binaries.run_python(race, path, *search_args(path, "--run_name=x"))
    assert process.returncode == 1
    assert "run 'x' already exists" in process.stderr, process.stderr[-3000:]
    assert "Traceback" not in process.stderr
    assert os.listdir(tmp_path / "tensorboard" / "x") == ["events.out.tfevents.1.otherhost.1.0.v2"]
    with store_lib.TrialStore(path) as store:
        assert [run.name for run in store.runs()] == ["x"]


@pytest.mark.parametrize("signum, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)],
                         ids=["ctrl_c", "sigterm"])
def test_ctrl_c_and_sigterm_say_how_to_continue(tmp_path, signum, status):
    # SIGTERM (a scheduler's pre-emption) ended the search without a word on the store.
    path = tmp_path / "search.sqlite"
    process = binaries.popen(
        "nos_tf.search", *search_args(path, "--run_name=i", "--seed=1", "--max_evaluations=200"),
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.2)
            if path.exists() and finished_trials_or_none(path):
                break
        process.send_signal(signum)
        _, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    # A crash's stacks come before Python's list of extension modules (~10k characters).
    assert process.returncode == status, stderr.split("\nExtension modules:")[0][-4000:]
    assert "Interrupted. Every finished rule is in the store" in stderr
    assert "--resume --run_name=i" in stderr and "Traceback" not in stderr


def finished_trials_or_none(path):
    try:
        return finished_trials(path)
    except (sqlite3.Error, store_lib.StoreError):
        return None  # not created yet


def test_a_search_that_trained_nothing_says_what_became_of_its_rules(tmp_path):
    process = run_search(tmp_path / "s.sqlite", "--max_evaluations=3", "--batch_size=3")
    assert process.returncode == 0, process.stderr[-3000:]
    assert process.stdout.strip() == (  # Seed 0's first three rules are all rejected.
        "No rule has trained successfully (rejected 3, 0 answered from the store): most "
        "sampled rules are rejected before training; raise --max_evaluations.")
    # A second run of the same protocol: its proposals are answered from the store.
    process = run_search(tmp_path / "s.sqlite", "--max_evaluations=3", "--batch_size=3",
                         "--run_name=again")
    assert process.returncode == 0, process.stderr[-3000:]
    assert process.stdout.strip().startswith(
        "No rule has trained successfully (none trained, 3 answered from the store)")


def test_a_search_whose_rules_all_timed_out_says_to_raise_the_timeout(tmp_path):
    # It said to raise --max_evaluations, as when sampled rules are rejected.
    code = textwrap.dedent("""
        import sys
        from nos_tf import search
        from nos_tf import store as store_lib
        from nos_tf.proxy import EvalResult
        with store_lib.TrialStore(sys.argv[1]) as store:
            run = store.start_run("r", "ppo", {}, {})
            for rule, status in (("g", "timeout"), ("m", "timeout"), ("-g", "rejected")):
                trial = store.propose(run.run_id, rule, rule)
                store.finish(trial.trial_id, EvalResult(rule, rule, 0.0, status))
            search.print_leaderboard(store, run, 5)
    """)
    process = binaries.run_python(code, tmp_path / "s.sqlite")
    assert process.returncode == 0, process.stderr[-3000:]
    assert process.stdout.strip() == (
        "No rule has trained successfully (rejected 1, timeout 2, 0 answered from the "
        "store): most evaluations ran past --eval_timeout; raise it.")


@pytest.mark.parametrize("searcher", ["random", "evolution"])
def test_other_searchers_run(tmp_path, searcher):
    process = run_search(tmp_path / "s.sqlite", f"--searcher={searcher}",
                         "--max_evaluations=4", "--batch_size=2")
    assert process.returncode == 0, process.stderr[-3000:]
    assert "[4/4]" in process.stderr


# --- The driver in-process, with a deterministic executor of two "workers" -----------------


class TwoWorkerExecutor:
    """Finishes the oldest submission at each poll; `crash_after` polls raise, as a kill."""

    capacity = 2

    def __init__(self, crash_after=None):
        self.queue, self.polls, self.crash_after, self.most_in_flight = [], 0, crash_after, 0
        self.submitted = 0

    @property
    def num_in_flight(self):
        return len(self.queue)

    def submit(self, key, rule_text):
        self.queue.append((key, rule_text))
        self.submitted += 1
        self.most_in_flight = max(self.most_in_flight, len(self.queue))

    def poll(self, timeout=None):
        self.polls += 1
        if self.crash_after is not None and self.polls > self.crash_after:
            raise KeyboardInterrupt("killed")
        if not self.queue:
            return []
        key, text = self.queue.pop(0)
        rule = rules.parse(text)
        reward = int(rule.fingerprint()[:4], 16) / 65535.0  # any deterministic function
        return [(key, proxy.EvalResult(rule=text, fingerprint=rule.fingerprint(),
                                       reward=reward, status="ok", lr=0.1))]


def drive(path, executor, resume=False, total=24, logdir=None):
    """A search of `total` rules in batches of 4, its TensorBoard summaries in `logdir`."""
    searcher = controller.make_searcher("ppo", rules.TokenSpace(2), seed=5, lstm_units=16)
    summaries = None if logdir is None else tf.summary.create_file_writer(str(logdir))
    with store_lib.TrialStore(path) as store:
        run = store.run("r") if resume else store.start_run("r", "ppo", {})
        search = Search(
            store, run, searcher, executor, summaries, total=total, batch_size=4,
            summarized_through=driver.last_summary_steps(str(logdir)) if resume and logdir
            else None)
        try:
            if resume:
                search.resume()
            search.run_all()
        finally:
            if summaries is not None:
                summaries.close()  # As the killed process's exit flushes it.
        return search


def outcome(path):
    with store_lib.TrialStore(path) as store:
        return [(t.rule, t.state, t.result.reward) for t in store.trials()]


def test_batches_ahead_keep_workers_busy_and_resume_exactly(tmp_path):
    reference = tmp_path / "reference.sqlite"
    executor = TwoWorkerExecutor()
    search = drive(reference, executor)
    assert search.step == 6 and len(outcome(reference)) == 24
    assert executor.most_in_flight > 4  # the next batch was submitted before the update
    trained = [t for t in outcome(reference) if t[1] == "evaluated"]
    assert len(trained) == len({rule for rule, _, _ in trained})  # none trained twice

    for crash_after in (3, 9):
        path = tmp_path / f"killed{crash_after}.sqlite"
        with pytest.raises(KeyboardInterrupt):
            drive(path, TwoWorkerExecutor(crash_after=crash_after))
        resumed = TwoWorkerExecutor()
        search = drive(path, resumed, resume=True)
        assert outcome(path) == outcome(reference), crash_after
        # Its speed counts what this process trained, not what the killed one had.
        assert search.progress.trained_here == resumed.submitted > 0
        with store_lib.TrialStore(path) as store:
            assert not store.pending(store.run("r").run_id)


class OneWorkerExecutor(TwoWorkerExecutor):
    """As the local executor: one evaluation at a time, so nothing is sampled ahead."""

    capacity = 1


class TwelveWorkerExecutor(TwoWorkerExecutor):
    """Workers enough for three batches of 4 (as --num_workers=64 with --batch_size=12)."""

    capacity = 12


def test_the_search_samples_at_most_one_batch_ahead_of_the_policy(tmp_path):
    """However many workers idle, the next batch comes from the policy after at most one
    update it missed (a checkpoint's `ahead` holds one batch)."""
    executor = TwelveWorkerExecutor()
    assert drive(tmp_path / "s.sqlite", executor).step == 6
    assert executor.most_in_flight == 8  # The batch in training and one sampled ahead.


def test_the_last_batch_is_cut_to_the_budget(tmp_path):
    """10 rules in batches of 4: 4, 4 and 2, not 12."""
    path = tmp_path / "s.sqlite"
    search = drive(path, OneWorkerExecutor(), total=10)
    assert len(outcome(path)) == search.progress.done == 10 and search.step == 3


def test_progress_counts_cache_hits_and_keeps_the_best_reward(tmp_path):
    """What the log line (best=, cache_hits=) and TensorBoard show. A second run of the same
    searcher proposes the first's 8 rules again (answered from the store), then goes on."""
    path = tmp_path / "s.sqlite"
    drive(path, TwoWorkerExecutor(), total=8)
    searcher = controller.make_searcher("ppo", rules.TokenSpace(2), seed=5, lstm_units=16)
    with store_lib.TrialStore(path) as store:
        run = store.start_run("second", "ppo", {})
        search = Search(store, run, searcher, TwoWorkerExecutor(), None, total=16, batch_size=4)
        search.run_all()
        trials = store.trials(run.run_id)
    cached = sum(trial.cached for trial in trials)
    assert 8 <= cached < len(trials) == 16
    assert search.progress.cache_hits == cached
    best = max(trials, key=lambda trial: trial.result.reward)
    assert (search.progress.best_reward, search.progress.best_rule) == (
        best.result.reward, best.rule)


LEADERBOARD_OF_THREE_RUNS = textwrap.dedent("""
    import sys
    from nos_tf import search
    from nos_tf import store as store_lib
    from nos_tf.proxy import EvalResult
    with store_lib.TrialStore(sys.argv[1]) as store:
        runs = [store.start_run(name, "ppo", {}, {"dataset": dataset})
                for name, dataset in (("other", "cifar10"), ("this", "digits"),
                                      ("same", "digits"))]
        for run, rule, reward in ((runs[0], "sign(m) * g", 0.99), (runs[1], "g", 0.5),
                                  (runs[2], "m", 0.4)):
            trial = store.propose(run.run_id, rule, rule)
            store.finish(trial.trial_id, EvalResult(rule, rule, reward, "ok", lr=0.1))
        search.print_leaderboard(store, runs[1], 5)
""")


def test_the_search_prints_the_leaderboard_of_its_own_protocol(tmp_path):
    """The closing leaderboard and its RuleOptimizer line come from the runs whose rewards
    compare with this run's, and name only those: a better reward on other data is not
    this search's best rule. (In a process of its own: nos_tf.search defines its flags.)"""
    done = binaries.run_python(LEADERBOARD_OF_THREE_RUNS, tmp_path / "s.sqlite")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "of this run and 1 other of its protocol in the store (same)" in done.stdout
    assert "0.99" not in done.stdout and "sign(m)" not in done.stdout
    assert done.stdout.strip().splitlines()[-1] == 'nos_tf.RuleOptimizer("g", learning_rate=0.1)'


def test_a_search_resumed_with_fewer_workers_takes_back_all_it_had_proposed(tmp_path):
    """Two workers sample the next batch before the update; resumed with one, the search
    must still take that batch back (not sample it again from the updated policy, other
    rules), or its trials stayed pending for good and a second resume failed on them."""
    for crash_after in (3, 9):  # At 3 (seed 5's course) the next batch was sampled ahead.
        path = tmp_path / f"killed{crash_after}.sqlite"
        with pytest.raises(KeyboardInterrupt):
            drive(path, TwoWorkerExecutor(crash_after=crash_after), total=16)
        with store_lib.TrialStore(path) as store:
            killed = {t.trial_id: t.result for t in store.trials() if t.result is not None}
        drive(path, OneWorkerExecutor(), resume=True, total=16)
        with store_lib.TrialStore(path) as store:
            trials = store.trials()
            assert not store.pending(store.run("r").run_id), crash_after
        assert len(trials) == 16, crash_after
        assert {t.trial_id: t.result for t in trials if t.trial_id in killed} == killed
        search = drive(path, OneWorkerExecutor(), resume=True, total=16)  # Nothing left.
        assert search.progress.done == 16 and search.progress.trained_here == 0

    # A store where an earlier version left such a trial pending before its checkpoint:
    # the resume skips it rather than tell the searcher a reward it never had.
    with store_lib.TrialStore(path) as store:
        run_id = store.run("r").run_id
        stranded = store.propose(run_id, "g", rules.parse("g").fingerprint(), tokens=[0])
        checkpoint = store.load_checkpoint(run_id)
        store.save_checkpoint(run_id, checkpoint.blob, checkpoint.step)
    search = drive(path, OneWorkerExecutor(), resume=True, total=16)
    assert search.progress.done == 16 and search.progress.trained_here == 0
    with store_lib.TrialStore(path) as store:
        assert store.pending(run_id) == [stranded]


def test_a_trial_the_resumed_searcher_does_not_propose_again_stops_holding_it_back(
        tmp_path, monkeypatch):
    """While trials of the killed run remain to be taken back, the resumed search samples
    a batch ahead, as the killed run had. One the restored searcher does not propose again
    (another machine's arithmetic, a searcher that is not deterministic) kept it doing so
    for the rest of the run: with one worker, every later batch came from the policy
    before the last update. Once a batch takes nothing back, it samples as usual."""
    path = tmp_path / "killed.sqlite"
    with pytest.raises(KeyboardInterrupt):
        drive(path, OneWorkerExecutor(crash_after=6), total=24)  # In the second batch.
    with store_lib.TrialStore(path) as store:
        foreign = store.propose(store.run("r").run_id, "g", rules.parse("g").fingerprint(),
                                tokens=[0])
    ahead_at_each_update = []  # Proposals asked beyond the batch being told.
    original_tell = Search._tell

    def tell(search, batch):
        ahead_at_each_update.append(search.asked - 4 * (search.step + 1))
        original_tell(search, batch)

    monkeypatch.setattr(Search, "_tell", tell)
    drive(path, OneWorkerExecutor(), resume=True, total=24)
    # The second batch is told after the third was sampled (the foreign trial could have
    # been one of it), the third takes nothing back, and the rest are on-policy.
    assert ahead_at_each_update == [4, 0, 0, 0, 0]
    with store_lib.TrialStore(path) as store:
        assert store.pending(store.run("r").run_id) == [store.trial(foreign.trial_id)]


def searcher_state(path):
    with store_lib.TrialStore(path) as store:
        checkpoint = store.load_checkpoint(store.run("r").run_id)
    return checkpoint.step, SearchCheckpoint.from_bytes(checkpoint.blob).searcher_state


def test_a_search_killed_during_an_update_resumes_exactly(tmp_path, monkeypatch):
    """Killed after a batch's last result, before the searcher learned from it (its
    checkpoint not saved): the resumed search takes the batch back from the store, complete
    at once, and must sample the next batch before or after the update as the killed run
    did: after it with one worker, before it with two (that batch was keeping a worker
    busy), and the first batch's update has no checkpoint before it at all."""
    original_tell = Search._tell
    for executor in (OneWorkerExecutor, TwoWorkerExecutor):
        reference = tmp_path / f"{executor.__name__}.sqlite"
        drive(reference, executor(), total=16)
        for killed_update in (1, 3):
            updates = []

            def tell(search, batch):
                updates.append(batch)
                if len(updates) == killed_update:
                    raise KeyboardInterrupt("killed during the update")
                original_tell(search, batch)

            killed = tmp_path / f"{executor.__name__}{killed_update}.sqlite"
            with monkeypatch.context() as patch:
                patch.setattr(Search, "_tell", tell)
                with pytest.raises(KeyboardInterrupt):
                    drive(killed, executor(), total=16)
            drive(killed, executor(), resume=True, total=16)
            case = (executor.__name__, killed_update)
            assert outcome(killed) == outcome(reference), case
            assert searcher_state(killed) == searcher_state(reference), case


def test_a_search_killed_before_an_update_writes_its_summaries_on_resume(
        tmp_path, monkeypatch):
    """Killed after a batch's last evaluation, before its update: its evaluations'
    summaries were written (flushed at exit), its update's were not. The resumed run redoes
    the update at the same step; counted on the evaluations' last step, it skipped the
    update's summaries, for good."""
    original_tell = Search._tell

    def tell(search, batch):
        if search.step == 1:  # The second batch's update.
            raise KeyboardInterrupt("killed before the update")
        original_tell(search, batch)

    path, logdir = tmp_path / "killed.sqlite", tmp_path / "tensorboard"
    with monkeypatch.context() as patch:
        patch.setattr(Search, "_tell", tell)
        with pytest.raises(KeyboardInterrupt):
            drive(path, OneWorkerExecutor(), total=16, logdir=logdir)
    assert driver.summary_steps(str(logdir), driver.UPDATE_TAG) == [4]
    assert driver.last_summary_step(str(logdir)) == 8
    drive(path, OneWorkerExecutor(), resume=True, total=16, logdir=logdir)
    assert sorted(driver.summary_steps(str(logdir), driver.UPDATE_TAG)) == [4, 8, 12, 16]
    assert sorted(driver.summary_steps(str(logdir))) == list(range(1, 17))


def test_summary_steps_read_up_to_a_record_a_kill_cut_short(tmp_path, caplog):
    writer = tf.summary.create_file_writer(str(tmp_path))
    with writer.as_default():
        for step in (1, 2, 3):
            tf.summary.scalar("reward", 0.5, step=step)
            tf.summary.scalar("other", 0.5, step=step + 10)
    writer.close()
    [path] = tmp_path.glob("events.out.tfevents.*")
    path.write_bytes(path.read_bytes()[:-5])  # The last record (step 13's) cut short.
    assert driver.summary_steps(str(tmp_path)) == [1, 2, 3]
    assert driver.last_summary_step(str(tmp_path), tag="other") == 12
    assert driver.last_summary_step(str(tmp_path / "none")) == 0
    assert "deprecated" not in caplog.text  # What resuming printed twice.
