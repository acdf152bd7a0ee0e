"""Executors: where rule evaluations run, in this process or on a Ray cluster.

The search driver hands rules to an executor and collects results as they finish, so the
controller keeps sampling while workers train:

    with make_executor("ray", functools.partial(Evaluator, config), num_workers=4) as pool:
        pool.submit(trial.trial_id, trial.rule)
        ...
        for trial_id, result in pool.poll(timeout=1.0):
            store.finish(trial_id, result)

An evaluator factory is a picklable zero-argument callable returning an object with
`evaluate(rule_text) -> EvalResult` (`nos_tf.proxy.Evaluator` is the real one). Each worker
calls it once and keeps the evaluator, hence its dataset and compiled functions, for every
rule it evaluates.

Results carry the evaluator's statuses ("ok", "diverged", "rejected", "error"), or one of
these when the evaluation itself went wrong; none of them stops the search:

  * "error": an exception escaped `evaluate` (the message is in `reason`), as for one that
    the evaluator catches itself.
  * "timeout": the evaluation ran past `eval_timeout`; its worker was killed and replaced.
  * "failed": the worker process died mid-evaluation (killed, segfault, out of host memory)
    more than `max_retries` times; each death is retried on a fresh worker before that.

Ray is an optional extra (`pip install -e .[ray]`) imported only by `RayExecutor`.
"""

import abc
import collections
import dataclasses
import logging
import math
import os
import socket
import time
from collections.abc import Callable, Hashable
from typing import Any

from nos_tf.proxy import ERROR, EvalResult

EXECUTORS = ("local", "ray")

# Statuses of evaluations that went wrong, beside the evaluator's ERROR (module docstring).
TIMEOUT, FAILED = "timeout", "failed"

# Seconds to wait for a dead worker's answer to the call sent before its job: that call
# has failed or succeeded by the time the job's failure is seen, so this is only a bound.
_ALIVE_CHECK_S = 5.0


class WorkerStartupError(RuntimeError):
    """The evaluator factory failed on a worker (bad config, missing data): every
    evaluation would fail the same way, so the search must stop rather than retry.
    (`RayExecutor` retries a replacement worker's failure to start: see there.)"""


def _worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _failure_result(rule_text: str, status: str, reason: str, wall_time: float,
                    worker: str) -> EvalResult:
    """An EvalResult for an evaluation that produced none of its own: reward 0, no lr.

    Its fingerprint is empty: executors only see rule text, and the store keys trials by the
    fingerprint of the proposal."""
    return EvalResult(rule=rule_text, fingerprint="", reward=0.0, status=status, lr=None,
                      lr_scores={}, wall_time=wall_time, reason=reason, worker=worker)


def _evaluate_guarded(evaluator, rule_text: str, worker: str) -> EvalResult:
    """`evaluator.evaluate(rule_text)`, with any escaping exception turned into an "error"
    result and the result stamped with the worker that produced it."""
    start = time.monotonic()
    try:
        result = evaluator.evaluate(rule_text)
    except Exception as error:  # A bad rule must not stop the search: report it instead.
        return _failure_result(rule_text, ERROR, f"{type(error).__name__}: {error}",
                               time.monotonic() - start, worker)
    return dataclasses.replace(result, worker=worker)


class Executor(abc.ABC):
    """Runs evaluations of rule texts and returns their results as they finish.

    `submit` never blocks; `poll` returns whatever has finished. Keys are the caller's
    (the search uses trial ids) and come back with their results. `capacity` is how many
    evaluations run at once: a driver keeps `num_in_flight` at about `capacity`.
    `close` drops unfinished evaluations (the store's pending trials are how a resumed
    search redoes them).
    """

    capacity: int

    @abc.abstractmethod
    def submit(self, key: Hashable, rule_text: str) -> None:
        """Queues an evaluation of `rule_text`; its result comes back from `poll` with `key`."""

    @abc.abstractmethod
    def poll(self, timeout: float | None = None) -> list[tuple[Hashable, EvalResult]]:
        """Returns the (key, EvalResult) pairs finished so far, waiting up to `timeout`
        seconds (None: as long as it takes) for at least one. Returns [] when nothing is in
        flight or nothing finished in time."""

    @property
    @abc.abstractmethod
    def num_in_flight(self) -> int:
        """Evaluations submitted and not yet returned by `poll`."""

    def wait_until_ready(self) -> None:
        """Builds every worker's evaluator now rather than as rules come, so that rules
        submitted next go one to each worker (a benchmark's warm-up, one per worker).
        Raises WorkerStartupError as `poll` does."""

    def close(self) -> None:
        """Releases the workers. Idempotent."""

    def __enter__(self):
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


class LocalExecutor(Executor):
    """Evaluates in this process, one rule per `poll` call, in submission order.

    The evaluator is made on the first `poll` and kept. An in-process evaluation cannot be
    interrupted, so there is no timeout, and a crash of the evaluation is a crash of the
    search; use `RayExecutor` for isolation.
    """

    capacity = 1

    def __init__(self, evaluator_factory: Callable[[], Any]):
        self._evaluator_factory = evaluator_factory
        self._evaluator = None
        self._queue: collections.deque[tuple[Hashable, str]] = collections.deque()

    def submit(self, key: Hashable, rule_text: str) -> None:
        self._queue.append((key, rule_text))

    def close(self) -> None:
        """Drops the evaluations queued, as `Executor` says, and the evaluator."""
        self._queue.clear()
        self._evaluator = None

    def wait_until_ready(self) -> None:
        if self._evaluator is None:
            try:
                self._evaluator = self._evaluator_factory()
            except Exception as error:
                raise WorkerStartupError(
                    f"the evaluator could not be created: {type(error).__name__}: {error}"
                ) from error

    def poll(self, timeout: float | None = None) -> list[tuple[Hashable, EvalResult]]:
        """Runs the oldest queued evaluation to completion (`timeout` cannot shorten it)."""
        if not self._queue:
            return []
        self.wait_until_ready()
        key, rule_text = self._queue.popleft()
        return [(key, _evaluate_guarded(self._evaluator, rule_text, _worker_name()))]

    @property
    def num_in_flight(self) -> int:
        return len(self._queue)


class EvaluationWorker:
    """The body of one Ray actor: a long-lived evaluator in its own process."""

    def __init__(self, evaluator_factory: Callable[[], Any], num_threads: int):
        configure_tensorflow(num_threads)
        self._name = _worker_name()
        self._evaluator = evaluator_factory()

    def ready(self) -> str:
        """Returns once the evaluator is built; names this worker."""
        return self._name

    def evaluate(self, rule_text: str) -> EvalResult:
        return _evaluate_guarded(self._evaluator, rule_text, self._name)


def configure_tensorflow(num_threads: int) -> None:
    """Sizes TensorFlow's thread pools to a worker's CPU share and lets GPU memory grow on
    demand, so that workers sharing a GPU do not each claim all of it.

    Through the environment, which TensorFlow reads when its runtime starts (its first
    operation), not when it is imported: so this works in a process that has imported
    TensorFlow but not yet run anything, and imports nothing itself. Ray actors call it
    first thing; a driver using the local executor may call it at the start of `main`.
    """
    os.environ["TF_NUM_INTRAOP_THREADS"] = str(num_threads)
    os.environ["TF_NUM_INTEROP_THREADS"] = str(num_threads)
    os.environ["TF_FORCE_GPU_ALLOW_GROWTH"] = "true"


@dataclasses.dataclass
class _Job:
    key: Hashable
    rule_text: str
    deaths: int = 0  # Times a worker died while evaluating it.


@dataclasses.dataclass
class _Worker:
    """Driver-side bookkeeping for one actor."""

    actor: Any
    ready_ref: Any  # Resolves when the actor's evaluator is built.
    name: str | None = None  # Host:pid, known once ready.
    ready_at: float | None = None
    job: _Job | None = None
    result_ref: Any = None
    started_at: float | None = None  # When its current job started (monotonic).
    # Resolves just before the current job starts, and fails if the worker had died while
    # idle (see `_worker_died`).
    alive_ref: Any = None
    jobs_done: int = 0
    created_at: float = dataclasses.field(default_factory=time.monotonic)
    start_reported: bool = False  # Whether a slow start was logged (`_report_slow_starts`).


_SLOW_START_S = 120.0
"""A worker not ready this long after its start is logged: the search, waiting on it,
would otherwise say nothing (the cluster short of room for it, a node lost)."""


class RayExecutor(Executor):
    """Evaluates on Ray actors: one per worker, each holding one evaluator.

    `address=None` starts a local Ray instance (shut down again by `close`); "auto" or
    "ray://..." joins an existing cluster. Each actor reserves `cpus_per_worker` CPUs and
    `gpus_per_worker` GPUs (fractions share a GPU).

    An evaluation is dispatched only to an idle actor whose evaluator is built, so its
    clock starts when it really starts, and an actor still waiting for its share of the
    cluster (more workers than fit) holds no rule back while the others are idle. A worker
    that dies mid-evaluation is replaced and the evaluation retried on the fresh one, up to
    `max_retries` times, then reported "failed"; one that had served rules and died idle
    (a lost node) is replaced too, and costs the evaluation sent to it no retry. One
    running past `eval_timeout` seconds is reported "timeout" and its actor killed and
    replaced. `ray.util.ActorPool` does neither, hence this small scheduler.

    A worker whose evaluator's constructor raises before any worker has started raises
    `WorkerStartupError` (the configuration or the data is wrong). Otherwise a failed start
    is the machine's passing state (a process killed while it loads the data, a GPU whose
    killed worker has not yet let go of its memory): another is started, the evaluations
    waiting, unless more than `max_retries` starts fail in a row. `eval_timeout` bounds
    evaluations, not the building of an evaluator; a fresh worker's first evaluation
    includes tracing the child network's steps, so allow it a margin.
    """

    def __init__(self, evaluator_factory: Callable[[], Any], *, address: str | None = None,
                 num_workers: int = 1, cpus_per_worker: float = 1.0,
                 gpus_per_worker: float = 0.0, eval_timeout: float | None = None,
                 max_retries: int = 2):
        _check(num_workers >= 1, f"num_workers must be at least 1, got {num_workers}")
        _check(cpus_per_worker > 0, f"cpus_per_worker must be positive, got {cpus_per_worker}")
        _check(gpus_per_worker >= 0,
               f"gpus_per_worker must not be negative, got {gpus_per_worker}")
        _check(eval_timeout is None or eval_timeout > 0,
               f"eval_timeout must be positive (or None for no limit), got {eval_timeout}")
        _check(max_retries >= 0, f"max_retries must not be negative, got {max_retries}")
        self._ray = import_ray()
        self._evaluator_factory = evaluator_factory
        self._num_threads = max(1, math.floor(cpus_per_worker))
        self._cpus_per_worker = cpus_per_worker
        self._eval_timeout = eval_timeout
        self._max_retries = max_retries
        self.capacity = num_workers
        self._queue: collections.deque[_Job] = collections.deque()
        self._workers: list[_Worker] = []
        self._closed = False
        self._any_started = False  # Whether a worker has built its evaluator yet.
        self._failed_starts = 0  # Replacements that failed to start, in a row.
        self._owns_ray = not self._ray.is_initialized()
        if self._owns_ray:
            check_reachable(address)
            try:
                self._ray.init(address=address, include_dashboard=False,
                               logging_level=logging.WARNING)
            except ConnectionError as error:  # Ray's words name its own `--address` flag.
                reason = str(error).replace("`--address` flag", "--ray_address")
                raise ConnectionError(f"no Ray cluster at address {address!r}: {reason}") from None
        try:  # A failure from here on leaves no Ray instance nor actor of this one behind.
            self._check_resources(num_workers, cpus_per_worker, gpus_per_worker)
            self._actor_class = self._ray.remote(EvaluationWorker).options(
                num_cpus=cpus_per_worker, num_gpus=gpus_per_worker, max_restarts=0,
                max_task_retries=0)
            for _ in range(num_workers):  # A factory Ray cannot pickle fails the first.
                self._workers.append(self._start_worker())
        except BaseException:
            self.close()
            raise

    # -- Executor ---------------------------------------------------------------------------

    def submit(self, key: Hashable, rule_text: str) -> None:
        self._queue.append(_Job(key, rule_text))
        self._dispatch()

    def poll(self, timeout: float | None = None) -> list[tuple[Hashable, EvalResult]]:
        poll_deadline = None if timeout is None else time.monotonic() + timeout
        results: list[tuple[Hashable, EvalResult]] = []
        while True:
            self._dispatch()
            busy = [worker for worker in self._workers if worker.job is not None]
            waiting = [worker for worker in self._workers if worker.ready_at is None]
            if not busy and not (self._queue and waiting):
                return results
            refs = ([worker.result_ref for worker in busy]
                    + [worker.ready_ref for worker in waiting])
            wait_s = _seconds_until(poll_deadline,
                                    *(self._deadline(worker) for worker in busy),
                                    *map(_slow_start_deadline, waiting))
            self._ray.wait(refs, num_returns=1, timeout=wait_s)
            finished, _ = self._ray.wait(refs, num_returns=len(refs), timeout=0)
            finished = set(finished)
            self._report_slow_starts([w for w in waiting if w.ready_ref not in finished])
            for worker in waiting:
                if worker.ready_ref in finished:
                    self._mark_ready(worker)
            for worker in busy:
                if worker.result_ref in finished:
                    results.extend(self._collect(worker))
                elif _passed(self._deadline(worker)):
                    results.append(self._time_out(worker))
            if results or _passed(poll_deadline):
                self._dispatch()
                return results

    @property
    def num_in_flight(self) -> int:
        return len(self._queue) + sum(worker.job is not None for worker in self._workers)

    def wait_until_ready(self) -> None:
        """As `Executor` says; a worker that fails to start is replaced as `poll` does.
        Waits as long as the cluster has no room for a worker (an autoscaler's minutes)."""
        while waiting := [worker for worker in self._workers if worker.ready_at is None]:
            ready, _ = self._ray.wait([worker.ready_ref for worker in waiting], num_returns=1,
                                      timeout=_seconds_until(*map(_slow_start_deadline, waiting)))
            for worker in waiting:
                if worker.ready_ref in ready:
                    self._mark_ready(worker)
            self._report_slow_starts([w for w in waiting if w.ready_ref not in ready])

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for worker in self._workers:
            self._ray.kill(worker.actor, no_restart=True)
        self._workers, self._queue = [], collections.deque()
        if self._owns_ray:
            self._ray.shutdown()

    # -- scheduling -------------------------------------------------------------------------

    def _start_worker(self) -> _Worker:
        actor = self._actor_class.remote(self._evaluator_factory, self._num_threads)
        return _Worker(actor=actor, ready_ref=actor.ready.remote())

    def _replace(self, worker: _Worker) -> None:
        self._ray.kill(worker.actor, no_restart=True)
        self._workers[self._workers.index(worker)] = self._start_worker()

    def _dispatch(self) -> None:
        """Starts queued jobs on idle workers that are ready. (Sent to an actor still being
        built, a job waited for it: forever, where the cluster had no room for it.)"""
        for worker in self._workers:
            if not self._queue:
                return
            if worker.job is None and worker.ready_at is not None:
                worker.job = self._queue.popleft()
                # An actor runs its calls in order: this one answers before the job starts.
                worker.alive_ref = worker.actor.ready.remote()
                worker.result_ref = worker.actor.evaluate.remote(worker.job.rule_text)
                worker.started_at = time.monotonic()

    def _deadline(self, worker: _Worker) -> float | None:
        """When the busy worker's job times out (a job starts as it is sent)."""
        if self._eval_timeout is None:
            return None
        return worker.started_at + self._eval_timeout

    def _report_slow_starts(self, waiting: list[_Worker]) -> None:
        """Logs, once each, the workers not ready `_SLOW_START_S` after their start."""
        slow = [worker for worker in waiting
                if not worker.start_reported and _passed(_slow_start_deadline(worker))]
        if not slow:
            return
        for worker in slow:
            worker.start_reported = True
        ready = sum(worker.ready_at is not None for worker in self._workers)
        free = self._ray.available_resources().get("CPU", 0)
        logging.warning(
            "%d worker(s) not started after %.0f s (%d of %d ready): building the evaluator, "
            "or waiting for room on the cluster (a worker asks %g CPUs; %g are free)",
            len(slow), _elapsed(slow[0].created_at), ready, self.capacity,
            self._cpus_per_worker, free)

    def _mark_ready(self, worker: _Worker) -> None:
        """Makes the worker one that jobs are sent to, or replaces it if it died building
        its evaluator (raising WorkerStartupError as `_worker_died` says)."""
        try:
            worker.name = self._ray.get(worker.ready_ref)
        except self._ray.exceptions.RayError as error:
            self._worker_died(worker, error)
            return
        worker.ready_at = time.monotonic()
        self._any_started, self._failed_starts = True, 0

    def _collect(self, worker: _Worker) -> list[tuple[Hashable, EvalResult]]:
        """The finished job's result, or [] when it is being retried after a worker death."""
        job = worker.job
        try:
            result = self._ray.get(worker.result_ref)
        except self._ray.exceptions.RayTaskError as error:  # Escaped the worker's guard.
            result = _failure_result(job.rule_text, ERROR,
                                     f"{type(error.cause).__name__}: {error.cause}",
                                     _elapsed(worker.started_at), worker.name or "ray")
        except self._ray.exceptions.RayError as error:  # The process (or its node) died.
            return self._worker_died(worker, error)
        worker.job = worker.result_ref = worker.started_at = worker.alive_ref = None
        worker.jobs_done += 1
        return [(job.key, result)]

    def _worker_died(self, worker: _Worker, error) -> list[tuple[Hashable, EvalResult]]:
        """Replaces a dead worker; retries its job, or reports it failed past max_retries.

        Raises WorkerStartupError when the worker failed to build its evaluator more than
        `max_retries` times in a row, or at once where its constructor raised before any
        worker has started: the configuration is broken, and every worker would fail alike
        (see the class docstring). Building it is all a worker does before it is ready:
        whether its constructor raised or its process died in it (the machine out of memory
        while the data loads, a node pre-empted), it counts as a failed start. (Ray's
        `actor_init_failed` tells only the first: a worker whose process died in its
        constructor was replaced without end, the search waiting on it. And one such death
        among the first workers, the others starting fine, ended the whole search.)"""
        if worker.ready_at is None:
            self._failed_starts += 1
            raised = getattr(error, "actor_init_failed", False) or isinstance(
                error, self._ray.exceptions.RayTaskError)
            if (raised and not self._any_started) or self._failed_starts > self._max_retries:
                raise WorkerStartupError(
                    f"the evaluator could not be created on a Ray worker: {error}") from error
            logging.warning("a worker could not build its evaluator (%d/%d in a row); "
                            "starting another: %s", self._failed_starts, self._max_retries,
                            _first_line(error))
        job, elapsed = worker.job, _elapsed(worker.started_at)
        # One that had served jobs and died idle (a node lost) costs the job sent to it no
        # retry. One that died before serving any counts against the job: were every fresh
        # worker to die, the job would otherwise be sent on forever.
        died_idle = worker.jobs_done > 0 and self._died_before_its_job(worker)
        worker.job = worker.result_ref = worker.started_at = worker.alive_ref = None
        self._replace(worker)
        if job is None:  # It died getting ready: jobs are sent only to ready workers.
            return []
        if died_idle:  # Not the rule's doing.
            logging.warning("worker %s had died before it started %r; sending it to a "
                            "fresh worker", worker.name, job.rule_text)
            self._queue.appendleft(job)
            return []
        job.deaths += 1
        if job.deaths > self._max_retries:
            attempts = (f"in each of {job.deaths} attempts" if job.deaths > 1
                        else "in its only attempt (max_retries=0)")
            reason = f"the worker died {attempts}; last: {_first_line(error)}"
            return [(job.key, _failure_result(job.rule_text, FAILED, reason, elapsed,
                                              worker.name or "ray"))]
        logging.warning("worker %s died evaluating %r; retrying on a fresh worker (%d/%d)",
                        worker.name, job.rule_text, job.deaths, self._max_retries)
        self._queue.appendleft(job)
        return []

    def _died_before_its_job(self, worker: _Worker) -> bool:
        """Whether the worker was dead when its job was sent: nothing watches an idle actor,
        so its death shows only when a job fails on it, and would otherwise count against
        that job's `max_retries`."""
        answered, _ = self._ray.wait([worker.alive_ref], timeout=_ALIVE_CHECK_S)
        if not answered:
            return False
        try:
            self._ray.get(worker.alive_ref)
        except self._ray.exceptions.RayError:
            return True
        return False

    def _time_out(self, worker: _Worker) -> tuple[Hashable, EvalResult]:
        job, elapsed = worker.job, _elapsed(worker.started_at)
        self._replace(worker)
        reason = (f"still running after eval_timeout={self._eval_timeout:g}s; "
                  f"worker {worker.name} was killed and replaced")
        return job.key, _failure_result(job.rule_text, TIMEOUT, reason, elapsed,
                                        worker.name or "ray")

    def _check_resources(self, num_workers: int, cpus: float, gpus: float) -> None:
        """Fails fast when not even one worker fits the cluster; warns when not all do."""
        total = self._ray.cluster_resources()
        have_cpus, have_gpus = total.get("CPU", 0.0), total.get("GPU", 0.0)
        if cpus > have_cpus or gpus > have_gpus:
            raise ValueError(
                f"a worker needs {cpus:g} CPUs and {gpus:g} GPUs, but the Ray cluster has "
                f"{have_cpus:g} CPUs and {have_gpus:g} GPUs")
        if num_workers * cpus > have_cpus or num_workers * gpus > have_gpus:
            logging.warning(
                "%d workers need %g CPUs and %g GPUs; the Ray cluster has %g and %g, so the "
                "workers that fit evaluate the rules while the others wait for resources to "
                "free up", num_workers, num_workers * cpus,
                num_workers * gpus, have_cpus, have_gpus)


def make_executor(kind: str, evaluator_factory: Callable[[], Any], *,
                  address: str | None = None, num_workers: int = 1,
                  cpus_per_worker: float = 1.0, gpus_per_worker: float = 0.0,
                  eval_timeout: float | None = None, max_retries: int = 2) -> Executor:
    """The executor called `kind` ("local" or "ray"), configured from the search's flags.

    The options are `RayExecutor`'s. The local executor evaluates one rule at a time in
    this process: a cluster address or several workers are an error with it; it ignores the
    resource shares and retries (which do not apply in-process) and warns that it cannot
    enforce an `eval_timeout`, so that one set of flags serves both executors.
    """
    if kind == "ray":
        return RayExecutor(evaluator_factory, address=address, num_workers=num_workers,
                           cpus_per_worker=cpus_per_worker, gpus_per_worker=gpus_per_worker,
                           eval_timeout=eval_timeout, max_retries=max_retries)
    if kind == "local":
        if address is not None or num_workers != 1:
            raise ValueError(
                "the local executor evaluates one rule at a time in this process; "
                "use the ray executor for a cluster address or several workers")
        if eval_timeout is not None:
            logging.warning("eval_timeout=%gs is not enforced by the local executor: an "
                            "in-process evaluation cannot be interrupted", eval_timeout)
        return LocalExecutor(evaluator_factory)
    raise ValueError(f"unknown executor {kind!r}; expected one of {', '.join(EXECUTORS)}")


RAY_CONNECT_TIMEOUT_S = 10.0


def check_reachable(address: str | None, timeout: float = RAY_CONNECT_TIMEOUT_S) -> None:
    """Raises ConnectionError, at once, if nothing answers at a Ray cluster's `host:port`
    (or `ray://host:port`): `ray.init` retries such an address without end, saying only
    that it failed to reach its GCS (a search waited ten minutes before it was killed).
    Other addresses ("auto", None: a local instance) are Ray's to find."""
    if not address or address == "auto":
        return
    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        return
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as error:
        raise ConnectionError(
            f"cannot reach the Ray cluster at {address!r} ({error}): is `ray start --head` "
            "running there, and is the port open to this machine?") from None


def import_ray():
    """The ray module, or an ImportError that says how to install it (an extra)."""
    try:
        import ray
    except ImportError:
        raise ImportError("the ray executor needs Ray: pip install 'nos_tf[ray]' (in a "
                          "checkout: pip install -e '.[ray]')") from None
    return ray


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


def _elapsed(since: float | None) -> float:
    return 0.0 if since is None else time.monotonic() - since


def _slow_start_deadline(worker: _Worker) -> float | None:
    """When a worker still not ready is reported (`RayExecutor._report_slow_starts`)."""
    return None if worker.start_reported else worker.created_at + _SLOW_START_S


def _passed(deadline: float | None) -> bool:
    return deadline is not None and time.monotonic() >= deadline


def _seconds_until(*deadlines: float | None) -> float | None:
    """Seconds until the earliest deadline (never negative), or None if there is none."""
    known = [deadline for deadline in deadlines if deadline is not None]
    return None if not known else max(0.0, min(known) - time.monotonic())


def _first_line(error: Exception) -> str:
    return str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
