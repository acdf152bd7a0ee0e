"""Executors: results as they finish, and each fault made to really happen.

`ScriptedEvaluator` reads its orders from the rule text, so a test can make a worker sleep,
hang, raise, or kill its own process, and the Ray tests run against a real local Ray instance
(the `ray_instance` fixture in conftest.py).
"""

import functools
import os
import signal
import sys
import textwrap
import threading
import time

import binaries
import pytest
import ray
import ray.cloudpickle

from nos_tf import executors, proxy
from nos_tf.proxy import EvalResult


class ScriptedEvaluator:
    """A stand-in for `nos_tf.proxy.Evaluator` that obeys the rule text:

    "sleep:S" sleeps S seconds; "hang" never returns; "raise:MESSAGE" raises MemoryError;
    "kill" SIGKILLs its process; "exit_once:PATH" ends its process with os._exit unless PATH
    exists (creating it first, so a retry succeeds); "not_a_result" returns a string;
    "settings" reports the TensorFlow settings of its environment as its `reason`. Anything
    else succeeds at once. Each result's `reason` counts the calls this evaluator instance
    has served.
    """

    def __init__(self, fail_to_start: bool = False, fail_start_numbers: tuple[int, ...] = (),
                 starts_file: str = "", die_to_fail: bool = False, slow_start_number: int = 0):
        if fail_to_start:
            self._fail(FileNotFoundError("no dataset at /nonexistent"), die_to_fail)
        if starts_file:  # Counts the evaluators built; those numbered fail_start_numbers fail.
            with open(starts_file, "a") as starts:
                starts.write("start\n")
            with open(starts_file) as starts:
                number = len(starts.readlines())
            if number in fail_start_numbers:
                self._fail(MemoryError("the GPU still holds the killed worker's memory"),
                           die_to_fail)
            if number == slow_start_number:  # Loads its data for a while.
                time.sleep(3)
        self.calls = 0

    @staticmethod
    def _fail(error: Exception, die: bool):
        """Raises `error`, or with `die` ends the process as the kernel's OOM killer would."""
        if die:
            os.kill(os.getpid(), signal.SIGKILL)
        raise error

    def evaluate(self, rule_text: str):
        self.calls += 1
        command, _, argument = rule_text.partition(":")
        if command == "sleep":
            time.sleep(float(argument))
        elif command == "hang":
            threading.Event().wait()
        elif command == "raise":
            raise MemoryError(argument)
        elif command == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        elif command == "exit_once" and not os.path.exists(argument):
            open(argument, "w").close()
            os._exit(3)
        elif command == "not_a_result":
            return "not a result"
        elif command == "settings":
            names = ("TF_NUM_INTRAOP_THREADS", "TF_NUM_INTEROP_THREADS",
                     "TF_FORCE_GPU_ALLOW_GROWTH")
            return EvalResult(rule=rule_text, fingerprint="", reward=0.5, status="ok",
                              reason=" ".join(f"{name}={os.environ.get(name)}" for name in names))
        return EvalResult(rule=rule_text, fingerprint=rule_text, reward=0.5, status="ok",
                          lr=0.01, lr_scores={0.01: 0.5}, wall_time=0.0,
                          reason=f"call {self.calls}", worker="")


def collect(executor, count: int) -> dict:
    """Polls until `count` results are in; keys to results. Fails if five minutes pass with
    nothing back (a guard against hanging forever, not a speed check)."""
    results = {}
    while len(results) < count:
        batch = executor.poll(timeout=300)
        assert batch, f"no result within five minutes; have {sorted(results)}"
        results.update(batch)
    assert executor.num_in_flight == 0
    return results


# -- local -------------------------------------------------------------------------------------


def test_local_executor_evaluates_in_order_with_one_evaluator():
    with executors.make_executor("local", ScriptedEvaluator) as executor:
        for key in ("a", "b", "c"):
            executor.submit(key, key)
        assert executor.num_in_flight == 3
        results = [executor.poll() for _ in range(3)]
        assert executor.poll() == []
    assert [[(key, result.reason) for key, result in batch] for batch in results] == [
        [("a", "call 1")], [("b", "call 2")], [("c", "call 3")]]
    assert all(result.worker.endswith(f":{os.getpid()}") for [(_, result)] in results)


def test_local_executor_close_drops_what_is_queued():
    """As `Executor.close` says (the store's pending trials are how a resumed search
    redoes them); it evaluated the rest when polled after closing."""
    executor = executors.make_executor("local", ScriptedEvaluator)
    executor.submit("a", "a")
    executor.submit("b", "b")
    executor.close()
    assert executor.num_in_flight == 0 and executor.poll() == []


def test_local_executor_reports_an_exception_as_an_error_and_goes_on():
    with executors.LocalExecutor(ScriptedEvaluator) as executor:
        executor.submit(1, "raise:out of memory on conv2d")
        executor.submit(2, "fine")
        [(_, failed)], [(_, fine)] = executor.poll(), executor.poll()
    assert (failed.status, failed.reason, failed.reward) == (
        "error", "MemoryError: out of memory on conv2d", 0.0)
    assert fine.status == "ok"


def test_local_executor_names_an_evaluator_that_cannot_start():
    executor = executors.LocalExecutor(functools.partial(ScriptedEvaluator, fail_to_start=True))
    executor.submit(1, "fine")
    with pytest.raises(executors.WorkerStartupError, match="no dataset at /nonexistent"):
        executor.poll()


def test_make_executor_rejects_what_it_cannot_do():
    with pytest.raises(ValueError, match="unknown executor 'threads'.*local, ray"):
        executors.make_executor("threads", ScriptedEvaluator)
    for options in (dict(num_workers=2), dict(num_workers=0), dict(address="auto")):
        with pytest.raises(ValueError, match="use the ray executor"):
            executors.make_executor("local", ScriptedEvaluator, **options)


@pytest.mark.parametrize("options, message", [
    (dict(num_workers=0), "num_workers must be at least 1, got 0"),
    (dict(cpus_per_worker=0), "cpus_per_worker must be positive, got 0"),
    (dict(gpus_per_worker=-1), "gpus_per_worker must not be negative, got -1"),
    (dict(max_retries=-1), "max_retries must not be negative, got -1"),
    (dict(eval_timeout=0), "eval_timeout must be positive"),
])
def test_ray_executor_refuses_bad_options_before_starting_ray(options, message):
    with pytest.raises(ValueError, match=message):
        executors.RayExecutor(ScriptedEvaluator, **options)


def test_make_executor_gives_the_ray_executor_every_option(monkeypatch):
    """The search's flags reach Ray only through make_executor (the Ray tests build
    RayExecutor themselves): one dropped there, say --eval_timeout, was ignored unseen."""
    made = {}

    def record(factory, **options):
        made.update(options, factory=factory)
        return "ray executor"

    monkeypatch.setattr(executors, "RayExecutor", record)
    options = dict(address="ray://head:10001", num_workers=3, cpus_per_worker=2.5,
                   gpus_per_worker=0.5, eval_timeout=7.0, max_retries=4)
    assert executors.make_executor("ray", ScriptedEvaluator, **options) == "ray executor"
    assert made == dict(options, factory=ScriptedEvaluator)


def test_the_local_executor_warns_that_it_cannot_enforce_eval_timeout(caplog):
    executors.make_executor("local", ScriptedEvaluator, eval_timeout=5)
    assert "eval_timeout=5s is not enforced by the local executor" in caplog.text


# -- Ray ---------------------------------------------------------------------------------------

# Ray workers cannot import this test module, so its classes travel to them by value.
ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])


def test_ray_results_come_back_as_they_finish(ray_instance):
    with executors.RayExecutor(ScriptedEvaluator, num_workers=2) as executor:
        assert executor.capacity == 2
        for key in ("warm-1", "warm-2", "warm-3"):
            executor.submit(key, key)
        warm = collect(executor, 3)
        executor.submit("slow", "sleep:5")
        executor.submit("quick", "quick")
        first = executor.poll(timeout=300)
        assert [key for key, _ in first] == ["quick"]
        assert executor.num_in_flight == 1
        assert executor.poll(timeout=0) == []  # Does not wait for the slow one.
        assert collect(executor, 1)["slow"].status == "ok"
    # Each worker that served the warm-ups kept its evaluator between rules (which served
    # which depends on when each was ready: rules wait for a ready worker).
    calls_by_worker = {}
    for result in warm.values():
        calls_by_worker.setdefault(result.worker, []).append(result.reason)
    assert 1 <= len(calls_by_worker) <= 2
    for calls in calls_by_worker.values():
        assert sorted(calls) == [f"call {number}" for number in range(1, len(calls) + 1)]


def test_ray_waits_until_every_worker_is_ready_so_each_takes_a_rule(ray_instance, tmp_path):
    """A benchmark's warm-up, one rule per worker: sent as they come, both went to the
    worker ready first (the second started later, on the benchmark's clock)."""
    factory = functools.partial(ScriptedEvaluator, starts_file=str(tmp_path / "starts"),
                                slow_start_number=2)
    with executors.RayExecutor(factory, num_workers=2) as executor:
        executor.wait_until_ready()
        executor.submit("a", "quick")
        executor.submit("b", "quick")
        results = collect(executor, 2)
    assert results["a"].worker != results["b"].worker


def test_ray_sends_no_rule_to_a_worker_the_cluster_has_no_room_for(ray_instance):
    """Three workers of one CPU each on two CPUs: the third waits for a CPU that never
    frees. Rules go to the two that started (one sent to the third waited forever, and
    with it the search)."""
    with executors.RayExecutor(ScriptedEvaluator, num_workers=3) as executor:
        for key in range(4):
            executor.submit(key, "quick")
        results, deadline = {}, time.monotonic() + 120
        while len(results) < 4 and time.monotonic() < deadline:
            results.update(executor.poll(timeout=5))
        assert sorted(results) == [0, 1, 2, 3] and executor.num_in_flight == 0
    assert len({result.worker for result in results.values()}) <= 2


def test_ray_retries_a_killed_worker_then_reports_failed(ray_instance, tmp_path):
    marker = tmp_path / "exited-once"
    with executors.RayExecutor(ScriptedEvaluator, num_workers=1, max_retries=1) as executor:
        executor.submit("kill", "kill")
        executor.submit("exit_once", f"exit_once:{marker}")
        executor.submit("after", "after")
        results = collect(executor, 3)
    killed, exited_once, after = results["kill"], results["exit_once"], results["after"]
    assert killed.status == "failed"
    assert "died in each of 2 attempts" in killed.reason
    # Its worker died once, and the retry on a fresh worker (first call there) succeeded.
    assert marker.exists()
    assert (exited_once.status, exited_once.reason) == ("ok", "call 1")
    assert after.status == "ok"


@pytest.mark.parametrize("die, fail_start_numbers", [(False, (2, 4)), (True, (2,))],
                         ids=["raises", "dies"])
def test_ray_starts_another_worker_when_a_replacement_cannot_start(
        ray_instance, tmp_path, die, fail_start_numbers):
    """Once a worker has started, the configuration is sound: a replacement that fails to
    build its evaluator is the machine's passing state, and cost the search its end
    (WorkerStartupError) and the rule a retry. Its process may die building it, as well as
    raise. Only failed starts in a row count against max_retries: the fourth evaluator,
    after the third started, is the first of its row. (Each start costs seconds: one case
    checks the count.)"""
    starts = tmp_path / "starts"
    # Each rule ends its worker once; the replacement's start fails, and the next one serves.
    markers = [tmp_path / f"exited-once-{number}" for number in fail_start_numbers]
    factory = functools.partial(ScriptedEvaluator, fail_start_numbers=fail_start_numbers,
                                starts_file=str(starts), die_to_fail=die)
    with executors.RayExecutor(factory, num_workers=1, max_retries=1) as executor:
        for marker in markers:
            executor.submit(marker.name, f"exit_once:{marker}")
        results = collect(executor, len(markers))
    assert [(results[m.name].status, results[m.name].reason) for m in markers] == [
        ("ok", "call 1")] * len(markers)
    assert starts.read_text().count("start") == 2 * len(markers) + 1


def test_ray_replaces_a_first_worker_whose_process_died_starting(ray_instance, tmp_path):
    """A process killed while it builds its evaluator (pre-empted, out of memory), before
    any worker has started, is a failed start to retry: it ended the whole search, as
    a constructor that raises does (a broken configuration), whatever max_retries said."""
    starts = tmp_path / "starts"
    factory = functools.partial(ScriptedEvaluator, fail_start_numbers=(1,),
                                starts_file=str(starts), die_to_fail=True)
    with executors.RayExecutor(factory, num_workers=1, max_retries=1) as executor:
        executor.submit("first", "first")
        result = collect(executor, 1)["first"]
    assert (result.status, result.reason) == ("ok", "call 1")
    assert starts.read_text().count("start") == 2


def test_ray_says_when_a_worker_is_slow_to_start(ray_instance, tmp_path, monkeypatch, caplog):
    # A worker the cluster has no room for (a node lost) kept the search waiting in
    # silence; here one slow to build its evaluator stands in for it.
    monkeypatch.setattr(executors, "_SLOW_START_S", 1.0)
    factory = functools.partial(ScriptedEvaluator, slow_start_number=1,
                                starts_file=str(tmp_path / "starts"))
    with caplog.at_level("WARNING"), executors.RayExecutor(factory, num_workers=1) as executor:
        executor.submit("first", "first")
        result = collect(executor, 1)["first"]
    assert result.status == "ok"
    [warning] = [record.getMessage() for record in caplog.records
                 if "not started after" in record.getMessage()]
    assert warning.startswith("1 worker(s) not started after 1 s (0 of 1 ready): building "
                              "the evaluator, or waiting for room on the cluster")


def test_ray_worker_that_died_idle_costs_the_next_rule_no_retry(ray_instance):
    """Nothing watches an idle worker: its death shows when a rule is sent to it. That rule
    did not kill it, so it goes to a fresh worker, even with no retries allowed."""
    with executors.RayExecutor(ScriptedEvaluator, num_workers=1, max_retries=0) as executor:
        executor.submit("first", "first")
        first = collect(executor, 1)["first"]
        pid = int(first.worker.rpartition(":")[2])
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and os.path.exists(f"/proc/{pid}"):
            time.sleep(0.1)  # Until the process is gone (or a zombie Ray has not reaped).
        time.sleep(1.0)
        executor.submit("next", "next")
        after = collect(executor, 1)["next"]
    assert (after.status, after.reason) == ("ok", "call 1")
    assert after.worker != first.worker


def test_ray_times_out_a_hung_evaluation_and_replaces_its_worker(ray_instance):
    with executors.RayExecutor(ScriptedEvaluator, num_workers=1, eval_timeout=2) as executor:
        executor.submit("hang", "hang")
        executor.submit("after", "after")
        results = collect(executor, 2)
    hung, after = results["hang"], results["after"]
    assert hung.status == "timeout"
    assert "eval_timeout=2s" in hung.reason
    assert hung.wall_time >= 2
    assert (after.status, after.reason) == ("ok", "call 1")
    assert after.worker != hung.worker


def test_ray_worker_reports_exceptions_as_errors_and_keeps_its_evaluator(ray_instance):
    with executors.RayExecutor(ScriptedEvaluator, num_workers=1,
                               cpus_per_worker=2) as executor:
        executor.submit("oom", "raise:OOM when allocating tensor")
        executor.submit("broken", "not_a_result")
        executor.submit("after", "after")
        executor.submit("settings", "settings")
        results = collect(executor, 4)
    assert (results["oom"].status, results["oom"].reason) == (
        "error", "MemoryError: OOM when allocating tensor")
    # An exception that escapes the worker's own guard is still just an error.
    assert results["broken"].status == "error"
    assert "dataclass" in results["broken"].reason
    assert (results["after"].status, results["after"].reason) == ("ok", "call 3")
    # TensorFlow there gets the worker's CPU share and grows its GPU memory on demand.
    assert results["settings"].reason == (
        "TF_NUM_INTRAOP_THREADS=2 TF_NUM_INTEROP_THREADS=2 TF_FORCE_GPU_ALLOW_GROWTH=true")


def test_ray_stops_with_a_clear_error_when_the_evaluator_cannot_start(ray_instance):
    factory = functools.partial(ScriptedEvaluator, fail_to_start=True)
    with executors.RayExecutor(factory, num_workers=1) as executor:
        executor.submit(1, "fine")
        with pytest.raises(executors.WorkerStartupError, match="no dataset at /nonexistent"):
            collect(executor, 1)


def test_ray_stops_when_every_worker_dies_building_its_evaluator(ray_instance):
    """A process that dies in its constructor (out of memory loading the data) is a failed
    start like one that raises: its worker was replaced without end, the rule waiting."""
    factory = functools.partial(ScriptedEvaluator, fail_to_start=True, die_to_fail=True)
    with executors.RayExecutor(factory, num_workers=1) as executor:
        executor.submit(1, "fine")
        with pytest.raises(executors.WorkerStartupError, match="could not be created"):
            collect(executor, 1)


def test_ray_leaves_no_instance_behind_when_it_cannot_start_a_worker():
    """A factory Ray cannot pickle fails the first worker's start, after `ray.init`: the
    instance it started is shut down again (a later executor took it for the caller's and
    never shut it down). A process of its own: this one's Ray instance is the fixture's."""
    code = """if True:
        import threading, ray
        from nos_tf import executors
        class Unpicklable:
            lock = None
            def __init__(self):
                self.lock = threading.Lock()
            def __call__(self):
                pass
        try:
            executors.RayExecutor(Unpicklable(), num_workers=1, cpus_per_worker=1)
        except TypeError as error:
            print("refused:", type(error).__name__)
        print("ray running:", ray.is_initialized())
    """
    process = binaries.run_python(code, timeout=300)
    assert "refused: TypeError" in process.stdout, process.stderr
    assert "ray running: False" in process.stdout


def test_no_cluster_at_auto_names_this_programs_flag_not_rays(monkeypatch):
    # Ray's words told the user to set `--address`, which the search does not have.
    def no_cluster(**kwargs):
        raise ConnectionError(
            "Could not find any running Ray instance. Please specify the one to connect to "
            "by setting `--address` flag or `RAY_ADDRESS` environment variable.")
    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", no_cluster)
    with pytest.raises(ConnectionError) as info:
        executors.RayExecutor(object, address="auto")
    assert str(info.value) == (
        "no Ray cluster at address 'auto': Could not find any running Ray instance. Please "
        "specify the one to connect to by setting --ray_address or `RAY_ADDRESS` "
        "environment variable.")


def test_a_cluster_address_where_nothing_answers_is_an_error_at_once():
    """`ray.init` retried it without end (a search waited ten minutes, printing only that
    it could not reach the GCS). Port 1 here refuses at once. In a process of its own:
    the executor joins a Ray instance this process already runs, whatever the address."""
    code = textwrap.dedent("""
        import time
        import ray
        from nos_tf import executors
        start = time.monotonic()
        for address in ("127.0.0.1:1", "ray://127.0.0.1:1"):
            try:
                executors.RayExecutor(object, address=address)
            except ConnectionError as error:
                print(f"refused: {error}")
        print("seconds:", time.monotonic() - start)
        print("ray running:", ray.is_initialized())
        for address in (None, "auto", "no-port"):  # Ray's to find.
            executors.check_reachable(address)
    """)
    process = binaries.run_python(code, timeout=300)
    assert process.returncode == 0, process.stderr[-3000:]
    lines = process.stdout.splitlines()
    for address in ("127.0.0.1:1", "ray://127.0.0.1:1"):
        assert any(line.startswith(f"refused: cannot reach the Ray cluster at '{address}' (")
                   and "ray start --head" in line for line in lines), lines
    seconds = float(next(line for line in lines if line.startswith("seconds:")).split()[1])
    assert seconds < 2 * executors.RAY_CONNECT_TIMEOUT_S
    assert "ray running: False" in lines


def test_ray_rejects_a_worker_larger_than_the_cluster(ray_instance):
    with pytest.raises(ValueError, match="needs 1 CPUs and 1 GPUs.*has 2 CPUs and 0 GPUs"):
        executors.RayExecutor(ScriptedEvaluator, gpus_per_worker=1)


def test_ray_runs_the_real_proxy_evaluator(ray_instance):
    config = proxy.ProxyConfig(dataset="digits", learning_rates=(0.01, 0.1), epochs=1)
    rules = {"powersign": "g * exp(sign(g) * sign(m))", "sgd": "g", "constant": "1"}
    factory = functools.partial(proxy.Evaluator, config)
    with executors.RayExecutor(factory, num_workers=1) as executor:
        for key, rule in rules.items():
            executor.submit(key, rule)
        results = collect(executor, 3)
    for key in ("powersign", "sgd"):
        assert results[key].status == "ok", results[key].reason
        assert 0.5 < results[key].reward <= 1.0  # 10 classes: chance is 0.1.
        assert results[key].lr in (0.01, 0.1)
    assert results["constant"].status == "rejected"
    # One worker process, not this one, kept the data and model for all three rules.
    assert len({result.worker for result in results.values()}) == 1
    assert not results["sgd"].worker.endswith(f":{os.getpid()}")
