"""Optimizer step time: RuleOptimizer(PowerSign) against TF's fused kernel and Keras Adam.

    python -m nos_tf.benchmarks.step [--steps=50] [--rounds=5]

Applies one update to 4.74M parameters (20 3×3×64×64 kernels, 40 biases, 4 1000×1000
matrices) with fixed gradients, and prints the median time of each contender, measured
side by side in interleaved rounds (the machine is shared and noisy), with the ratio to
the fused `ResourceApplyPowerSign` kernel. Each step runs inside a `tf.function`, the way
`model.fit` calls the optimizer, once plain and once jit-compiled (`jit_compile=True`).
Target: RuleOptimizer ≤ 1.10× the fused kernel in both, with its default update (one XLA
computation). A step returns a number of the last variable it updated, read back so that
on a GPU the time is the kernels' and not their launch's.

The search's evaluator runs rules without that XLA computation (`--noxla_updates`, its
default: compiling each rule costs more than it saves in a proxy run), the row
`jit_compile=False`: on this project's 2-core machine (2026-12-01) 1.00× (default) and
3.02× (jit_compile=False) in a plain tf.function, where each of the rule's operations is a
kernel of its own, and 1.03× and 1.05× inside a jit-compiled step; Keras's Adam 2.72× and
1.14×.
"""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf
from absl import app, flags

import nos_tf
from nos_tf.benchmarks import interleaved_medians, optimizer_step, run_main, updated_element

POWERSIGN = nos_tf.PAPER_RULES["powersign"]

_STEPS = flags.DEFINE_integer(
    "steps", 50, "Timed steps per contender per round.", lower_bound=1)
_ROUNDS = flags.DEFINE_integer(
    "rounds", 5, "Interleaved rounds; the median is over all steps.", lower_bound=1)


def make_variables():
    shapes = [(3, 3, 64, 64)] * 20 + [(64,)] * 40 + [(1000, 1000)] * 4
    rng = np.random.default_rng(0)
    variables = [tf.Variable(rng.normal(size=s).astype("float32") * 0.05) for s in shapes]
    grads = [tf.constant(rng.normal(size=s).astype("float32") * 1e-3) for s in shapes]
    return variables, grads


def fused_powersign_step(variables, grads, jit_compile):
    moments = [tf.Variable(tf.zeros_like(v)) for v in variables]
    lr, logbase, decay, beta = (tf.constant(x) for x in (1e-3, 1.0, 1.0, 0.9))

    def step():
        for v, m, g in zip(variables, moments, grads):
            tf.raw_ops.ResourceApplyPowerSign(
                var=v.handle, m=m.handle, lr=lr, logbase=logbase, sign_decay=decay, beta=beta,
                grad=g,
            )
        return updated_element(variables)

    return tf.function(step, jit_compile=jit_compile)


def contenders(jit_compile):
    variables, grads = make_variables()
    return {
        "fused ResourceApplyPowerSign": fused_powersign_step(variables, grads, jit_compile),
        "RuleOptimizer(PowerSign rule)": optimizer_step(
            nos_tf.RuleOptimizer(POWERSIGN), variables, grads, jit_compile
        ),
        # The search's evaluator runs rules so (`--noxla_updates`, its default).
        "  the same, jit_compile=False": optimizer_step(
            nos_tf.RuleOptimizer(POWERSIGN, jit_compile=False), variables, grads, jit_compile
        ),
        "keras Adam": optimizer_step(keras.optimizers.Adam(), variables, grads, jit_compile),
    }


def measure(steps, rounds, jit_compile):
    return interleaved_medians(contenders(jit_compile), steps, rounds)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    parameters = 20 * 3 * 3 * 64 * 64 + 40 * 64 + 4 * 1000 * 1000
    print(f"Optimizer step on {parameters / 1e6:.2f}M parameters in 64 variables; "
          f"median of {_ROUNDS.value}×{_STEPS.value} steps, interleaved.")
    print(f"{'step':>14s}  {'contender':32s} {'ms':>8s} {'× fused':>8s}")
    for jit_compile in (False, True):
        medians = measure(_STEPS.value, _ROUNDS.value, jit_compile)
        fused = medians["fused ResourceApplyPowerSign"]
        label = "jit_compile" if jit_compile else "tf.function"
        for name, median in medians.items():
            print(f"{label:>14s}  {name:32s} {median * 1e3:8.2f} {median / fused:8.2f}")


if __name__ == "__main__":
    run_main(main)
