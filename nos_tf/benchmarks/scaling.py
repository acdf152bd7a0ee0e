r"""Executor scaling: one fixed list of rules through the local executor and Ray workers.

    python -m nos_tf.benchmarks.scaling                 # 16 paper rules, 1000 training images
    python -m nos_tf.benchmarks.scaling --num_rules=8 --rounds=1   # a quicker look

Evaluates the first `--num_rules` of the paper's rules (`nos_tf.PAPER_RULES`) with the proxy
flags three ways, each on a fresh evaluator:

- local: `LocalExecutor`, in this process;
- ray x1 / ray x2: `RayExecutor` with 1 and 2 workers of `--cpus_per_worker` CPUs each.

Every evaluation gets the same CPU share (TensorFlow's thread pools are sized to
`--cpus_per_worker` in this process too), so local against ray x1 is Ray's overhead and
ray x2 against ray x1 is how far a second worker helps. The three run `--rounds` times,
in a rotated order each round (x1, x2, local; then x2, local, x1; ...), and each one's
times are summed, so that a change in other load on a shared machine falls on all three
rather than on whichever ran during it. Sixteen rules by default: with two workers the
last rule of the list runs while the other worker idles, and that tail weighs less on a
longer list, as it does in a search that keeps its workers fed. Before the clock starts each
executor evaluates a warm-up rule on every worker: starting Ray, its workers and their
evaluators (data loading) is paid once per search, not per rule, and is left out.

Prints seconds and rules per minute of each and the two ratios; the CPU time the evaluating
processes spent per rule (for workers on this machine), which other load on a
shared machine does not inflate as it does wall-clock time; the load average; and whether
all three gave the same rewards (they should: the proxy is seeded, and each evaluation is
independent of the others).
"""

import dataclasses
import functools
import os
import socket
import sys
import time

import psutil
from absl import app, flags

import nos_tf
from nos_tf import executors, proxy, proxy_flags
from nos_tf.benchmarks import run_main

_NUM_RULES = flags.DEFINE_integer(
    "num_rules", 16, f"How many of the {len(nos_tf.PAPER_RULES)} paper rules to evaluate.",
    lower_bound=1, upper_bound=len(nos_tf.PAPER_RULES))
_CPUS_PER_WORKER = flags.DEFINE_integer(
    "cpus_per_worker", 1, "CPUs (TensorFlow threads) of each evaluation, local and Ray.",
    lower_bound=1)
_ROUNDS = flags.DEFINE_integer(
    "rounds", 2, "Times each executor runs the rule list, interleaved with the others.",
    lower_bound=1)
_RAY_ADDRESS = flags.DEFINE_string(
    "ray_address", None, "Ray cluster to use ('auto': the one `ray start` made); unset: a "
    "Ray instance on this machine.")

# The paper's protocol on a slice of Fashion-MNIST: minutes, not hours, on 2 CPUs.
flags.set_default(proxy_flags.TRAIN_EXAMPLES, 1000)
flags.set_default(proxy_flags.VALIDATION_EXAMPLES, 500)

_WARM_UP_RULE = "g"  # Plain SGD: not among the timed rules, so no cache can answer them.


@dataclasses.dataclass
class Timing:
    """One executor's timed run."""

    workers: int
    seconds: float  # Wall clock, first submit to last result.
    cpu_seconds: float | None  # CPU time of the processes that evaluated (None: remote).
    results: list  # Each round's, one after the other, in the rules' order.

    def add(self, other: "Timing") -> "Timing":
        """Both runs' times and results together: every round's rewards are compared
        (a round that differed from the first went unseen when only the first was kept)."""
        cpu = (None if self.cpu_seconds is None or other.cpu_seconds is None
               else self.cpu_seconds + other.cpu_seconds)
        return Timing(self.workers, self.seconds + other.seconds, cpu,
                      self.results + other.results)


def timed_run(executor: executors.Executor, rules: list[str]) -> Timing:
    """Evaluates `rules` on `executor` after one warm-up evaluation per worker."""
    # Every worker ready first: the first one ready took every warm-up (the second from its
    # cache), and the others started on the clock, their processes not counted.
    executor.wait_until_ready()
    for worker in range(executor.capacity):
        executor.submit(("warm-up", worker), _WARM_UP_RULE)
    warm_ups = _collect(executor).values()
    pids = _local_pids(result.worker for result in warm_ups)
    cpu_before = _cpu_seconds(pids)
    start = time.perf_counter()
    for index, rule in enumerate(rules):
        executor.submit(index, rule)
    results = _collect(executor)
    seconds = time.perf_counter() - start
    cpu_after = _cpu_seconds(pids)
    cpu = None if cpu_before is None or cpu_after is None else cpu_after - cpu_before
    return Timing(executor.capacity, seconds, cpu, [results[i] for i in range(len(rules))])


def _local_pids(workers) -> list[int] | None:
    """Process ids of workers named "host:pid", or None if one is on another machine."""
    pids = []
    for worker in set(workers):
        host, _, pid = worker.rpartition(":")
        if host != socket.gethostname():
            return None
        pids.append(int(pid))
    return pids


def _cpu_seconds(pids: list[int] | None) -> float | None:
    """User + system CPU time these processes have spent so far, or None."""
    if pids is None:
        return None
    try:
        return sum(sum(psutil.Process(pid).cpu_times()[:2]) for pid in pids)
    except psutil.Error:
        return None


def _collect(executor: executors.Executor) -> dict:
    results = {}
    while executor.num_in_flight:
        results.update(executor.poll())
    return results


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    try:
        ray = executors.import_ray()
    except ImportError as error:
        sys.exit(f"error: {error}")
    # Before TensorFlow runs anything here, so the local executor gets one worker's share.
    executors.configure_tensorflow(_CPUS_PER_WORKER.value)
    try:
        config = proxy_flags.config_from_flags()
    except ValueError as error:
        raise app.UsageError(str(error)) from None
    rules = list(nos_tf.PAPER_RULES.values())[:_NUM_RULES.value]
    factory = functools.partial(proxy.Evaluator, config)
    print(f"{len(rules)} rules; proxy: {config}")

    # Ray first: a cluster that is not there, or too small for a worker, ends the
    # benchmark before any round, not after the local one.
    executors.check_reachable(_RAY_ADDRESS.value)  # ray.init would retry without end.
    make_executor = {
        **{f"ray x{workers}": functools.partial(
            executors.RayExecutor, factory, num_workers=workers,
            cpus_per_worker=_CPUS_PER_WORKER.value) for workers in (1, 2)},
        "local": lambda: executors.LocalExecutor(factory),
    }
    names = list(make_executor)
    runs: dict[str, Timing] = {}
    try:
        for round_ in range(_ROUNDS.value):
            for name in names[round_ % 3:] + names[:round_ % 3]:
                # Ray runs only while it is needed: a search with the local executor has
                # no Ray driver in its process, so neither does the local run here.
                uses_ray = name != "local"
                if uses_ray and not ray.is_initialized():
                    ray.init(address=_RAY_ADDRESS.value, include_dashboard=False)
                elif not uses_ray:
                    ray.shutdown()
                try:
                    executor = make_executor[name]()
                except ValueError as error:  # A worker larger than the cluster.
                    raise app.UsageError(
                        f"--cpus_per_worker={_CPUS_PER_WORKER.value:g}: {error}") from None
                with executor:
                    timing = timed_run(executor, rules)
                print(f"round {round_ + 1} {name}: {timing.seconds:.1f} s", flush=True)
                runs[name] = timing if name not in runs else runs[name].add(timing)
    finally:
        ray.shutdown()

    evaluations = len(rules) * _ROUNDS.value
    print(f"\n{'executor':<10} {'workers':>7} {'seconds':>8} {'rules/min':>9} "
          f"{'CPU s/rule':>10}")
    for name, run in runs.items():
        cpu = "-" if run.cpu_seconds is None else f"{run.cpu_seconds / evaluations:.1f}"
        print(f"{name:<10} {run.workers:>7} {run.seconds:>8.1f} "
              f"{60 * evaluations / run.seconds:>9.2f} {cpu:>10}")
    local, ray1, ray2 = runs["local"], runs["ray x1"], runs["ray x2"]
    print(f"\nray x2 / ray x1 throughput: {ray1.seconds / ray2.seconds:.2f}x  (target >= 1.7x)")
    print(f"ray x1 / local throughput:  {local.seconds / ray1.seconds:.2f}x  "
          "(target: within 10% of 1)")
    if local.cpu_seconds and ray1.cpu_seconds:
        print(f"ray x1 / local CPU per rule: {ray1.cpu_seconds / local.cpu_seconds:.2f}x")
    print(f"load average (1, 5, 15 min): {' '.join(f'{x:.1f}' for x in os.getloadavg())} "
          f"on {len(os.sched_getaffinity(0))} CPUs")
    rewards = {name: [result.reward for result in run.results] for name, run in runs.items()}
    same = all(reward == rewards["local"] for reward in rewards.values())
    print(f"same rewards from all three, every round: {'yes' if same else 'no'}")
    for index, rule in enumerate(rules):
        statuses = {run.results[index].status for run in runs.values()}
        print(f"  {' '.join(f'{rewards[name][index]:.4f}' for name in runs)}  "
              f"{'/'.join(sorted(statuses))}  {rule}")

if __name__ == "__main__":
    run_main(main)
