r"""Neural Optimizer Search: `python -m nos_tf.search --alsologtostderr`.

The method of Bello et al. (2017), section 3: a controller samples update rules as token
sequences; each new rule is scored by training the proxy ConvNet (`nos_tf.proxy`); the
controller is updated from the rewards with PPO; repeat. Everything is written to a SQLite
store as it happens, so a killed search continues with `--resume` and loses nothing.

    python -m nos_tf.search --alsologtostderr                       # the CPU default
    python -m nos_tf.search --alsologtostderr --flagfile=flags/smoke.cfg
    python -m nos_tf.search --alsologtostderr --flagfile=flags/paper.cfg \
        --executor=ray --ray_address=auto --num_workers=64           # a Ray cluster
    python -m nos_tf.search --alsologtostderr --store=runs/search.sqlite --resume

Each batch: the searcher proposes `batch_size` rules; a rule whose fingerprint the store
already holds is answered from it (a cache hit); the others go to the executor, which
returns results as they finish; when the batch is complete the searcher learns from its
rewards and is checkpointed into the store.
"""

from __future__ import annotations

import functools
import os
import sys
import time

from absl import app, flags, logging

from nos_tf import controller, driver, executors, proxy, proxy_flags, rules
from nos_tf import store as store_lib

_SEARCHER = flags.DEFINE_enum(
    "searcher", "ppo", sorted(controller.SEARCHERS),
    "How rules are proposed: the paper's LSTM controller trained with PPO, the same with "
    "REINFORCE, uniform random tokens (the baseline), or regularized evolution.")
_MAX_EVALUATIONS = flags.DEFINE_integer(
    "max_evaluations", 120, "Rules to propose in the whole run (cache hits included).")
_BATCH_SIZE = flags.DEFINE_integer(
    "batch_size", 12, "Rules per searcher update (one PPO batch).")
_UNITS = flags.DEFINE_integer(
    "units", 2, "Units per rule: each is b(u1(op1), u2(op2)), later units may use earlier.")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of the searcher (the proxy has its own).")
_STORE = flags.DEFINE_string(
    "store", "runs/search.sqlite", "SQLite file of trials, runs and checkpoints.")
_RUN_NAME = flags.DEFINE_string(
    "run_name", None, "Name of this run in the store; default: searcher and start time.")
_RESUME = flags.DEFINE_bool(
    "resume", False, "Continue the run --run_name (default: the store's latest run).")
_LOGDIR = flags.DEFINE_string(
    "logdir", None, "TensorBoard directory; default: next to the store, per run.")
_TOP = flags.DEFINE_integer("top", 10, "Rules to print at the end.")

_EXECUTOR = flags.DEFINE_enum(
    "executor", "local", list(executors.EXECUTORS),
    "Where rules are trained: in this process, or on Ray workers.")
_RAY_ADDRESS = flags.DEFINE_string(
    "ray_address", None, "Ray cluster to join ('auto': the local cluster that `ray start` "
    "made); unset: start a Ray instance on this machine.")
_NUM_WORKERS = flags.DEFINE_integer("num_workers", 1, "Ray workers (each keeps its data).")
_CPUS_PER_WORKER = flags.DEFINE_float("cpus_per_worker", 1.0, "CPUs each Ray worker holds.")
_GPUS_PER_WORKER = flags.DEFINE_float("gpus_per_worker", 0.0, "GPUs each Ray worker holds.")
_EVAL_TIMEOUT = flags.DEFINE_float(
    "eval_timeout", None, "Seconds before a Ray evaluation is cancelled (status timeout).")
_MAX_RETRIES = flags.DEFINE_integer(
    "max_retries", 2, "Retries of an evaluation whose Ray worker died (then status failed).")

# Searcher hyperparameters. Unset, each takes the searcher's own default
# (`controller.searcher_hyperparameters`); set, it goes to the searchers that take it.
_CONTROLLER_LR = flags.DEFINE_float(
    "controller_learning_rate", None, "Controller's Adam rate (PPO 5e-3, REINFORCE 2e-2).")
_ENTROPY_WEIGHT = flags.DEFINE_float("entropy_weight", None, "Entropy bonus (paper: 0.0015).")
_BASELINE_DECAY = flags.DEFINE_float(
    "baseline_decay", None, "EMA decay of the reward baseline (it steers learning only with "
    "--nonormalize_advantages: standardizing centres each batch on its own mean).")
_NORMALIZE_ADVANTAGES = flags.DEFINE_bool(
    "normalize_advantages", None, "Standardize PPO/REINFORCE advantages in each batch "
    "(default: yes; no: the paper's reward minus its moving average).")
_AVOID_REPEATS = flags.DEFINE_bool(
    "avoid_repeats", None, "PPO/REINFORCE resample rules they have proposed before, while "
    "new ones are easy to find (a repeat is a cache hit: free, but it teaches nothing new).")
_ENTROPY_FLOOR = flags.DEFINE_float(
    "entropy_floor", None, "PPO/REINFORCE: penalize a policy whose entropy falls below this "
    "fraction of the uniform policy's, so it keeps exploring around its favourite rules.")
_LSTM_UNITS = flags.DEFINE_integer("lstm_units", None, "Controller LSTM size (paper: 150).")
_PPO_EPOCHS = flags.DEFINE_integer("ppo_epochs", None, "PPO epochs over each batch.")
_PPO_CLIP = flags.DEFINE_float("ppo_clip", None, "PPO's clipping of the probability ratio.")
_POPULATION = flags.DEFINE_integer("population_size", None, "Evolution's population.")
_TOURNAMENT = flags.DEFINE_integer("tournament_size", None, "Evolution's tournament.")

_HYPERPARAMETER_FLAGS = {
    "learning_rate": _CONTROLLER_LR, "entropy_weight": _ENTROPY_WEIGHT,
    "baseline_decay": _BASELINE_DECAY, "normalize_advantages": _NORMALIZE_ADVANTAGES,
    "avoid_repeats": _AVOID_REPEATS, "entropy_floor": _ENTROPY_FLOOR,
    "lstm_units": _LSTM_UNITS, "epochs": _PPO_EPOCHS,
    "clip_epsilon": _PPO_CLIP, "population_size": _POPULATION,
    "tournament_size": _TOURNAMENT,
}


def make_searcher() -> controller.Searcher:
    name = _SEARCHER.value
    accepted = controller.searcher_hyperparameters(name)
    hyperparameters = {
        key: flag.value for key, flag in _HYPERPARAMETER_FLAGS.items()
        if key in accepted and flag.value is not None
    }
    return controller.make_searcher(
        name, rules.TokenSpace(_UNITS.value), seed=_SEED.value, **hyperparameters
    )


def open_run(store: store_lib.TrialStore):
    """The run to continue (--resume) or a new one, recorded with this binary's flags."""
    if _RESUME.value:
        return store.resume_run(_RUN_NAME.value)
    name = _RUN_NAME.value or f"{_SEARCHER.value}-{time.strftime('%Y%m%d-%H%M%S')}"
    recorded = {
        flag.name: flag.value
        for module in (sys.modules[__name__], proxy_flags)
        for flag in flags.FLAGS.get_flags_for_module(module)
    }
    return store.start_run(name, _SEARCHER.value, recorded)


def print_leaderboard(store: store_lib.TrialStore, top: int) -> None:
    entries = store.leaderboard(top)
    if not entries:
        print("No rule finished training.")
        return
    print(f"\nTop {len(entries)} rules (simplified; paste into nos_tf.RuleOptimizer):")
    print(f"{'rank':>4s} {'reward':>7s} {'lr':>8s} {'count':>5s}  rule")
    for entry in entries:
        shown = str(rules.simplify(rules.parse(entry.rule)))
        lr = "-" if entry.lr is None else f"{entry.lr:g}"
        print(f"{entry.rank:4d} {entry.reward:7.4f} {lr:>8s} {entry.count:5d}  {shown}")
    best = entries[0]
    best_rule = rules.simplify(rules.parse(best.rule))
    learning_rate = float(best.lr or 1e-3)  # a float: Keras rejects an int learning rate
    arguments = f'"{best_rule}", learning_rate={learning_rate!r}'
    if best_rule.needs_decay_steps:
        print("\n# decay_steps: the number of updates your own training will make")
        arguments += ", decay_steps=10_000"
    print(f"\nnos_tf.RuleOptimizer({arguments})")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    try:  # Before the store records a run: a bad flag leaves nothing behind.
        config = proxy_flags.config_from_flags()
        searcher = make_searcher()
    except ValueError as error:
        raise app.UsageError(str(error)) from None
    os.makedirs(os.path.dirname(os.path.abspath(_STORE.value)), exist_ok=True)
    with store_lib.TrialStore(_STORE.value) as store:
        run = open_run(store)
        logdir = _LOGDIR.value or os.path.join(
            os.path.dirname(os.path.abspath(_STORE.value)), "tensorboard", run.name
        )
        import tensorflow as tf

        summaries = tf.summary.create_file_writer(logdir)
        factory = functools.partial(proxy.Evaluator, config)
        with executors.make_executor(
            _EXECUTOR.value, factory, address=_RAY_ADDRESS.value,
            num_workers=_NUM_WORKERS.value, cpus_per_worker=_CPUS_PER_WORKER.value,
            gpus_per_worker=_GPUS_PER_WORKER.value, eval_timeout=_EVAL_TIMEOUT.value,
            max_retries=_MAX_RETRIES.value,
        ) as executor:
            search = driver.Search(
                store, run, searcher, executor, summaries, _MAX_EVALUATIONS.value,
                _BATCH_SIZE.value)
            if _RESUME.value:
                try:
                    search.resume()
                except ValueError as error:  # e.g. a searcher configured unlike the run's
                    raise app.UsageError(f"cannot resume run {run.name!r}: {error}") from None
            logging.info(
                "Run %r: %s searcher, %d rules in batches of %d, %s executor, store %s, "
                "TensorBoard %s", run.name, _SEARCHER.value, _MAX_EVALUATIONS.value,
                _BATCH_SIZE.value, _EXECUTOR.value, _STORE.value, logdir)
            search.run_all()
        print_leaderboard(store, _TOP.value)


if __name__ == "__main__":
    app.run(main)
