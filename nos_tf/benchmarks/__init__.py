"""The benchmarks: python -m nos_tf.benchmarks.<name>. Each prints ratios measured side by side."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Hashable

import numpy as np
import tensorflow as tf
from absl import app

from nos_tf import data, executors, flag_checks


def run_main(main: Callable[[list[str]], None]) -> None:
    """`app.run(main)`, with an `app.UsageError` said in one line, as the other binaries
    say theirs: absl printed the module's docstring and every flag above it (190 lines
    for throughput's `--shard_index` past `--num_shards`). So are this machine's
    problems, which the search and evaluate also say in a line: data that is not there, a
    Ray cluster that cannot be reached, workers whose evaluator cannot start."""
    def main_saying_usage_errors(argv):
        try:
            return main(argv)
        except (app.UsageError, data.DataUnavailableError, executors.WorkerStartupError,
                ConnectionError) as error:
            sys.exit(f"error: {error}")

    app.run(main_saying_usage_errors,
            flags_parser=flag_checks.parse_flags_of_the_command_line)  # Presets' --undefok.


def interleaved_medians(
    steps_by_key: dict[Hashable, Callable[[], object]], steps: int, rounds: int
) -> dict[Hashable, float]:
    """Median seconds of a call of each contender, measured side by side.

    Each is called 3 times first (trace, compile, warm caches); then every round calls
    each contender `steps` times in turn, so that load on a shared, noisy machine falls
    on all of them alike. A call must return when its work is done: a tensor it returns
    is read back (`.numpy()`), which waits for a GPU's queued kernels (a `tf.function`
    returns once they are queued; on CPU, once they ran).
    """
    def call(step):
        result = step()
        if hasattr(result, "numpy"):
            result.numpy()

    for step in steps_by_key.values():
        for _ in range(3):
            call(step)
    times = {key: [] for key in steps_by_key}
    for _ in range(rounds):
        for key, step in steps_by_key.items():
            for _ in range(steps):
                start = time.perf_counter()
                call(step)
                times[key].append(time.perf_counter() - start)
    return {key: float(np.median(t)) for key, t in times.items()}


def updated_element(variables) -> tf.Tensor:
    """One number of the last variable, read after the updates before it: what a timed
    step returns for `interleaved_medians` to wait on."""
    return tf.reshape(variables[-1], [-1])[0]


def optimizer_step(optimizer, variables, grads, jit_compile=False):
    """One `optimizer.apply(grads, variables)` as a `tf.function`, the way `model.fit`
    calls the optimizer; the optimizer is built on `variables` first."""
    optimizer.build(variables)

    def step():
        optimizer.apply(grads, variables)
        return updated_element(variables)

    return tf.function(step, jit_compile=jit_compile)
