r"""Neural Optimizer Search: `python -m nos_tf.search --alsologtostderr`.

The method of Bello et al. (2017), section 3: a controller samples update rules as token
sequences; each new rule is scored by training the proxy ConvNet (`nos_tf.proxy`); the
controller is updated from the rewards with PPO; repeat. Everything is written to a SQLite
store as it happens, so a killed search continues with `--resume` and loses nothing.

    python -m nos_tf.search --alsologtostderr --flagfile=flags/cpu.cfg   # make search
    python -m nos_tf.search --alsologtostderr --flagfile=flags/smoke.cfg
    python -m nos_tf.search --alsologtostderr --flagfile=flags/paper.cfg \
        --executor=ray --ray_address=auto --num_workers=64           # a Ray cluster
    python -m nos_tf.search --alsologtostderr --store=runs/search.sqlite --resume

Each batch: the searcher proposes `batch_size` rules; a rule whose fingerprint the store
already holds is answered from it (a cache hit); the others go to the executor, which
returns results as they finish; when the batch is complete the searcher learns from its
rewards and is checkpointed into the store.

Without a flagfile the proxy task is all of Fashion-MNIST (54,000 training images against
`flags/cpu.cfg`'s 4,000, and every rule trained to the end) with the paper's learning-rate
grid and epochs, evaluated with successive halving over the grid, its cuts ranking on
1,000 validation images, and the best rate's run continued (`--halving_rate=3
--halving_validation_examples=1000 --continue_best_run`; `flags/paper.cfg` turns all
three off).
Rewards are shared through the store only between runs of the same protocol
(`nos_tf.proxy.ProxyConfig.protocol`), and a run is resumed only with the protocol it
started with.
"""

from __future__ import annotations

import contextlib
import functools
import os
import re
import signal
import socket
import sys
import threading
import time

from absl import app, flags, logging

from nos_tf import (controller, driver, executors, flag_checks, leaderboard, proxy, proxy_flags,
                    rules)
from nos_tf import store as store_lib

flags.adopt_module_key_flags(proxy_flags)  # --help shows the proxy task's flags too.

_SEARCHER = flags.DEFINE_enum(
    "searcher", "ppo", sorted(controller.SEARCHERS),
    "How rules are proposed: the paper's LSTM controller trained with PPO, the same with "
    "REINFORCE, uniform random tokens (the baseline), or regularized evolution.")
_MAX_EVALUATIONS = flags.DEFINE_integer(
    "max_evaluations", 120, "Rules to propose in the whole run (cache hits included).",
    lower_bound=1)
_BATCH_SIZE = flags.DEFINE_integer(
    "batch_size", 12, "Rules per searcher update (one PPO batch).", lower_bound=1)
_UNITS = flags.DEFINE_integer(
    "units", 2, "Units per rule: each is b(u1(op1), u2(op2)), later units may use earlier.",
    lower_bound=1, upper_bound=rules.MAX_UNITS)
_SEED = flags.DEFINE_integer(
    "seed", 0, "Seed of the searcher (the proxy has its own).", lower_bound=0)
_STORE = flags.DEFINE_string(
    "store", "runs/search.sqlite", "SQLite file of trials, runs and checkpoints.")
_RUN_NAME = flags.DEFINE_string(
    "run_name", None, "Name of this run in the store; default: searcher and start time.")
_RESUME = flags.DEFINE_bool(
    "resume", False, "Continue the run --run_name (default: the store's latest run).")
_LOGDIR = flags.DEFINE_string(
    "logdir", None, "TensorBoard directory; default: next to the store, per run.")
_TOP = flags.DEFINE_integer("top", 10, "Rules to print at the end.", lower_bound=1)

_EXECUTOR = flags.DEFINE_enum(
    "executor", "local", list(executors.EXECUTORS),
    "Where rules are trained: in this process, or on Ray workers.")
_RAY_ADDRESS = flags.DEFINE_string(
    "ray_address", None, "Ray cluster to join ('auto': the local cluster that `ray start` "
    "made); unset: start a Ray instance on this machine.")
_NUM_WORKERS = flags.DEFINE_integer(
    "num_workers", 1, "Ray workers (each keeps its data).", lower_bound=1)
_CPUS_PER_WORKER = flags.DEFINE_float("cpus_per_worker", 1.0, "CPUs each Ray worker holds.")
_GPUS_PER_WORKER = flags.DEFINE_float(
    "gpus_per_worker", 0.0, "GPUs each Ray worker holds.", lower_bound=0.0)
_EVAL_TIMEOUT = flags.DEFINE_float(
    "eval_timeout", None, "Seconds before a Ray evaluation is cancelled (status timeout). A "
    "fresh worker's first evaluation traces the child network's steps too (a replacement's "
    "after a timeout as well): allow a margin over a rule's usual time.")
flag_checks.require_finite(_GPUS_PER_WORKER)
flag_checks.require_finite(_CPUS_PER_WORKER, _EVAL_TIMEOUT, positive=True)
_MAX_RETRIES = flags.DEFINE_integer(
    "max_retries", 2, "Retries of an evaluation whose Ray worker died (then status failed).",
    lower_bound=0)


@flags.validator(_RUN_NAME.name, message="--run_name cannot hold '/' or '\\' nor be '.' "
                 "or '..': it names the run's TensorBoard folder, beside the store's")
def _run_name_is_a_folder_name(name: str | None) -> bool:
    return not name or not ({"/", "\\"} & set(name) or name in (".", ".."))

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
_PPO_TARGET_KL = flags.DEFINE_float(
    "ppo_target_kl", None, "PPO stops a batch's epochs once the update's approx_kl passes "
    "1.5 times this (as Spinning Up's and Stable-Baselines3's PPO; default: every epoch runs).")
_POPULATION = flags.DEFINE_integer("population_size", None, "Evolution's population.")
_TOURNAMENT = flags.DEFINE_integer("tournament_size", None, "Evolution's tournament.")

_HYPERPARAMETER_FLAGS = {
    "learning_rate": _CONTROLLER_LR, "entropy_weight": _ENTROPY_WEIGHT,
    "baseline_decay": _BASELINE_DECAY, "normalize_advantages": _NORMALIZE_ADVANTAGES,
    "avoid_repeats": _AVOID_REPEATS, "entropy_floor": _ENTROPY_FLOOR,
    "lstm_units": _LSTM_UNITS, "epochs": _PPO_EPOCHS,
    "clip_epsilon": _PPO_CLIP, "target_kl": _PPO_TARGET_KL, "population_size": _POPULATION,
    "tournament_size": _TOURNAMENT,
}


def make_searcher() -> controller.Searcher:
    """The --searcher, with the hyperparameter flags it takes; a flag set for another
    searcher is named in a warning (one set of flags serves every searcher)."""
    name = _SEARCHER.value
    accepted = controller.searcher_hyperparameters(name)
    unused = sorted(flag.name for key, flag in _HYPERPARAMETER_FLAGS.items()
                    if key not in accepted and flag.value is not None)
    if unused:
        logging.warning("The %s searcher does not use --%s.", name, ", --".join(unused))
    hyperparameters = _hyperparameters()
    try:
        return controller.make_searcher(
            name, rules.TokenSpace(_UNITS.value), seed=_SEED.value, **hyperparameters)
    except ValueError as error:  # In the searcher's words: its arguments, named as flags.
        message = str(error)  # Those at their defaults too: they may be what is wrong.
        for key in accepted.keys() & _HYPERPARAMETER_FLAGS.keys():
            message = re.sub(rf"\b{key}\b", f"--{_HYPERPARAMETER_FLAGS[key].name}", message)
        raise ValueError(message) from None


def _hyperparameters(values_by_flag: dict | None = None) -> dict:
    """The --searcher's keyword arguments from hyperparameter flag values by flag name
    (default: this process's flags), those unset left to its defaults."""
    if values_by_flag is None:
        values_by_flag = {flag.name: flag.value for flag in _HYPERPARAMETER_FLAGS.values()}
    accepted = controller.searcher_hyperparameters(_SEARCHER.value)
    return {key: values_by_flag.get(flag.name) for key, flag in _HYPERPARAMETER_FLAGS.items()
            if key in accepted and values_by_flag.get(flag.name) is not None}


# What decides which rules a run proposes, besides the searcher's own hyperparameters
# (also checked on resume): a run resumed with others would not continue exactly.
_COURSE_FLAGS = (_SEARCHER, _UNITS, _BATCH_SIZE, _SEED)


def resume_run(store: store_lib.TrialStore, protocol: dict) -> store_lib.Run:
    """The run --resume continues: --run_name, or the store's latest.

    Raises:
      StoreError: no such run, or a run of another proxy protocol, other
        `_COURSE_FLAGS` or other searcher hyperparameters (their values at the start are
        in the run's recorded flags; the searcher's checkpoint checks its hyperparameters
        too, but a run killed before its first batch was told has none).
    """
    run = store.resume_run(_RUN_NAME.value or None)  # `--run_name=`: the latest, too.
    if run.protocol is not None and run.protocol != protocol:
        raise store_lib.StoreError(
            f"cannot resume run {run.name!r} with another proxy protocol "
            f"({_changes(run.protocol, protocol, proxy_flags.flag_of_field)}): its rewards "
            "would not compare; give the "
            "flags it started with")
    course = {flag.name: flag.value for flag in _COURSE_FLAGS}
    started = {name: run.flags.get(name, value) for name, value in course.items()}
    if started != course:
        raise store_lib.StoreError(
            f"cannot resume run {run.name!r} with other search flags "
            f"({_changes(started, course)}): it would not continue as it began; give the "
            "flags it started with")
    # Those the run recorded (a flag added since is left to the checkpoint's check),
    # named by their flags.
    defaults = controller.searcher_hyperparameters(_SEARCHER.value)
    recorded = {**defaults, **_hyperparameters(run.flags)}
    current = {**defaults, **_hyperparameters()}
    flag_names = {key: flag.name for key, flag in _HYPERPARAMETER_FLAGS.items()
                  if key in defaults and flag.name in run.flags}
    started = {name: recorded[key] for key, name in flag_names.items()}
    now = {name: current[key] for key, name in flag_names.items()}
    if started != now:
        raise store_lib.StoreError(
            f"cannot resume run {run.name!r} with other searcher hyperparameters "
            f"({_changes(started, now)}): give the flags it started with")
    return run


def _changes(before: dict, after: dict, name=lambda key: key) -> str:
    """`name(key) old -> new` for each key whose value differs (a key one lacks: none)."""
    def value(values, key):
        return repr(values[key]) if values.get(key) is not None else "none"
    return ", ".join(f"{name(key)} {value(before, key)} -> {value(after, key)}"
                     for key in sorted(before.keys() | after.keys())
                     if before.get(key) != after.get(key))


def start_run(store: store_lib.TrialStore, name: str, protocol: dict) -> store_lib.Run:
    """A new run, recorded with this binary's flags and the proxy protocol."""
    recorded = {
        flag.name: flag.value
        for module in (sys.modules[__name__], proxy_flags)
        for flag in flags.FLAGS.get_flags_for_module(module)
    }
    return store.start_run(name, _SEARCHER.value, recorded, protocol)


_REJECTED_ADVICE = ("most sampled rules are rejected before training; raise "
                    "--max_evaluations")
# Why no rule trained, by the status most of its evaluations ended in.
_NOTHING_TRAINED_ADVICE = {
    executors.TIMEOUT: "most evaluations ran past --eval_timeout; raise it",
    executors.FAILED: "most evaluations failed (their workers died); the log says why",
    proxy.ERROR: "most evaluations ended in an error; the log says which",
}


def print_leaderboard(store: store_lib.TrialStore, run: store_lib.Run, top: int) -> None:
    """The best rules of the runs that share `run`'s protocol (their rewards compare, and
    cache hits make them one search), saying which runs those are when there are others."""
    entries = store.leaderboard(top, run_id=run.run_id)
    if not entries:
        counts = store.counts(run.run_id)
        statuses = leaderboard.format_statuses(counts) or "none trained"
        by_status = leaderboard.statuses(counts)
        most = max(by_status, key=by_status.get, default=proxy.REJECTED)
        print(f"No rule has trained successfully ({statuses}, {counts['cached']} answered "
              f"from the store): {_NOTHING_TRAINED_ADVICE.get(most, _REJECTED_ADVICE)}.")
        return
    others = [other.name for other in store.runs()
              if other.protocol == run.protocol and other.run_id != run.run_id]
    scope = (f" of this run and {len(others)} other{'s' * (len(others) > 1)} of its "
             f"protocol in the store ({', '.join(others)})" if others else "")
    print(f"\nTop {len(entries)} rule{'s' * (len(entries) > 1)}{scope} "
          "(paste into nos_tf.RuleOptimizer):")
    print(leaderboard.format_leaderboard(entries))
    best = entries[0]
    try:
        best_rule = leaderboard.simplified(best.rule)
    except rules.RuleSyntaxError:  # Another version's rule, shown as it was stored.
        return
    learning_rate = float(best.lr or 1e-3)  # a float: Keras rejects an int learning rate
    arguments = f'"{best_rule}", learning_rate={learning_rate!r}'
    if best_rule.needs_decay_steps:
        print("\n# decay_steps: the number of updates your own training will make")
        arguments += ", decay_steps=10_000"
    print(f"\nnos_tf.RuleOptimizer({arguments})")


def main(argv):
    if len(argv) > 1:  # One line too, as every error below: not absl's usage text.
        sys.exit(f"error: unexpected arguments: {' '.join(argv[1:])}")
    # Before TensorFlow's runtime starts (the searcher below is its first use): it would
    # otherwise take all of each GPU's memory for the controller, leaving none to Ray's
    # workers on the same machine (which set this for themselves).
    os.environ.setdefault("TF_FORCE_GPU_ALLOW_GROWTH", "true")
    # Before the store records a run: a bad flag leaves nothing behind. Its message, like
    # every error of this binary's, is one line: app.UsageError would print this module's
    # docstring and every one of its flags above it.
    try:
        config = proxy_flags.config_from_flags()
        searcher = make_searcher()
    except ValueError as error:
        sys.exit(f"error: {error}")
    if _RESUME.value and not os.path.isfile(_STORE.value):
        sys.exit(f"error: nothing to resume: no trial store at {_STORE.value}")
    if _RESUME.value and not os.path.getsize(_STORE.value):  # Opened, it became a store.
        sys.exit(f"error: nothing to resume: {_STORE.value} is empty")
    try:
        run_search(config, searcher)
    except (store_lib.StoreError, OSError) as error:  # OSError: also Ray's ConnectionError
        sys.exit(f"error: {error}")


def run_search(config: proxy.ProxyConfig, searcher: controller.Searcher) -> None:
    """Opens the store and the run, searches, prints the leaderboard.

    Exits with a message (status 1) when the evaluator cannot start, and on Ctrl-C (130),
    saying how to continue: what finished is in the store. A new run whose evaluator
    cannot start is taken out of the store again, and the store file and folders made
    for it (`_take_back`).
    """
    # What this search makes (the store, its folders, a TensorBoard folder) is taken out
    # again when it ends without a run in the store: a bad flag, data that is not there.
    made = [] if _RESUME.value else _not_made_yet(_STORE.value)
    on_sigterm = signal.getsignal(signal.SIGTERM)
    try:
        _run_search(config, searcher, made)
    finally:
        _take_back(made)
        _set_sigterm_handler(on_sigterm)  # For a caller of its own (tests).


def _run_search(config, searcher, made: list[str]) -> None:
    """`run_search`'s work. `made` lists the files and folders to take back: it adds the
    new TensorBoard folders to it, and empties it once the store keeps a run."""
    import tensorflow as tf

    _check_the_run_asked_for(config)
    try:
        os.makedirs(os.path.dirname(os.path.abspath(_STORE.value)), exist_ok=True)
    except OSError as error:  # A file where a folder should be, or no permission.
        raise OSError(f"cannot make the folder of --store={_STORE.value}: {error}") from None
    # The executor starts next: flags it cannot serve (the local one with several
    # workers, Ray not installed, a cluster short of the resources asked for) end in one
    # line, with the store untouched.
    _set_sigterm_handler(_terminate)
    try:
        executor = executors.make_executor(
            _EXECUTOR.value, functools.partial(proxy.Evaluator, config),
            address=_RAY_ADDRESS.value, num_workers=_NUM_WORKERS.value,
            cpus_per_worker=_CPUS_PER_WORKER.value, gpus_per_worker=_GPUS_PER_WORKER.value,
            eval_timeout=_EVAL_TIMEOUT.value, max_retries=_MAX_RETRIES.value)
    except (ValueError, ImportError) as error:
        sys.exit(f"error: {error}")
    except KeyboardInterrupt as interrupt:
        print("\nInterrupted while the executor started; nothing was recorded.",
              file=sys.stderr)
        sys.exit(_exit_status(interrupt))
    _set_sigterm_handler(_terminate)
    with executor, store_lib.TrialStore(_STORE.value) as store:
        protocol = config.protocol()
        if _RESUME.value:
            run = resume_run(store, protocol)
            store.claim_run(run)  # Refused while another process still runs it.
            name = run.name
        else:
            name = _RUN_NAME.value or f"{_SEARCHER.value}-{time.strftime('%Y%m%d-%H%M%S')}"
            store.check_run_name_free(name)  # Before the writer adds to that run's folder.
        logdir = _LOGDIR.value or os.path.join(
            os.path.dirname(os.path.abspath(_STORE.value)), "tensorboard", name
        )
        if not _RESUME.value and "://" not in logdir:  # A remote one's is left alone.
            made.extend(_not_made_yet(logdir))
        try:  # Before a new run is recorded, so a bad --logdir leaves nothing behind.
            summaries = tf.summary.create_file_writer(logdir)
        except tf.errors.OpError as error:  # Its message wrapped in the op's internals.
            reason = re.sub(r"\{\{function_node [^}]*\}\}\s*|\s*\[Op:.*$", "", error.message)
            raise OSError(f"cannot write TensorBoard summaries to {logdir}: {reason}") from None
        if not _RESUME.value:
            try:
                run = start_run(store, name, protocol)
            except store_lib.StoreError:  # The name taken since its check, by another search.
                summaries.close()
                _take_back_event_files(logdir)  # That search's folder may hold its own.
                raise
            store.claim_run(run)
            made_before_the_run, made[:] = made[:], []  # Kept with the run.
        continue_with = (f"continue it with the same command and flags, adding --resume "
                         f"--run_name={run.name} --store={_STORE.value}")
        try:
            search = driver.Search(
                store, run, searcher, executor, summaries, _MAX_EVALUATIONS.value,
                _BATCH_SIZE.value,
                summarized_through=driver.last_summary_steps(logdir) if _RESUME.value else None)
            if _RESUME.value:
                try:
                    search.resume()
                except ValueError as error:  # e.g. a searcher configured unlike the run's
                    sys.exit(f"error: cannot resume run {run.name!r}: {error}")
            logging.info(
                "Run %r: %s searcher, %d rules in batches of %d, %s executor, store %s, "
                "TensorBoard %s", run.name, _SEARCHER.value, _MAX_EVALUATIONS.value,
                _BATCH_SIZE.value, _EXECUTOR.value, _STORE.value, logdir)
            search.run_all()
        except executors.WorkerStartupError as startup_error:
            # A new run that finished nothing is not kept: resumed, it would keep the
            # protocol that failed (a wrong --data_dir is part of it), which cannot change.
            error = proxy_flags.with_flag_names(str(startup_error))
            if not _RESUME.value and _discarded(store, run):
                made.extend(made_before_the_run)  # Taken back by the caller, the store closed.
                sys.exit(f"error: {error}\nNothing was recorded; once that is fixed, run "
                         "the same command again.")
            sys.exit(f"error: {error}\nThe run is in the store; once that is fixed, "
                     f"{continue_with}")
        except KeyboardInterrupt as interrupt:
            print(f"\nInterrupted. Every finished rule is in the store; {continue_with}",
                  file=sys.stderr)
            sys.exit(_exit_status(interrupt))
        print_leaderboard(store, run, _TOP.value)


class Terminated(KeyboardInterrupt):
    """SIGTERM (a scheduler's pre-emption, `kill`, `timeout`), ended as Ctrl-C ends the
    search (what finished is in the store; how to continue is said), with the shell's
    status for SIGTERM."""

    exit_status = 128 + signal.SIGTERM


def _terminate(signum, frame):
    """SIGTERM's handler during a search: `Terminated`. Installed again once Ray has
    started: its driver installs a handler of its own that printed a stack and exited with
    status 1, saying nothing of the store."""
    del signum, frame
    raise Terminated()


def _set_sigterm_handler(handler) -> None:
    if threading.current_thread() is threading.main_thread():  # Python's only place for it.
        signal.signal(signal.SIGTERM, handler)


def _exit_status(interrupt: KeyboardInterrupt) -> int:
    return getattr(interrupt, "exit_status", 130)  # 130: the shell's for SIGINT.


def _check_the_run_asked_for(config: proxy.ProxyConfig) -> None:
    """Raises StoreError for a run --resume cannot continue, or a --run_name taken, before
    the executor starts: Ray's (a cluster's connection, its workers' start-up) took its
    time before the store said no. Checked again, with the store open for writing, once
    it has started: another search may have taken the name meanwhile."""
    if not os.path.isfile(_STORE.value) or not os.path.getsize(_STORE.value):
        return  # New, or empty: --resume's own check says there is nothing to resume.
    with store_lib.TrialStore(_STORE.value, readonly=True) as store:
        if _RESUME.value:
            resume_run(store, config.protocol())
        elif _RUN_NAME.value:
            store.check_run_name_free(_RUN_NAME.value)


def _not_made_yet(path: str) -> list[str]:
    """`path` and those of its folders that do not exist yet."""
    missing, path = [], os.path.abspath(path)
    while not os.path.lexists(path):
        missing.append(path)
        path = os.path.dirname(path)
    return missing


def _take_back(made: list[str]) -> None:
    """Removes what a search that left no run made: its new store file with SQLite's files
    beside it, its TensorBoard event files, and the new folders that leaves empty.

    It runs as the search ends, on its way to report why: what it cannot remove is left,
    so that the report is not replaced by a traceback of the tidying."""
    for path in sorted(set(made), key=len, reverse=True):  # a folder after what it holds
        if os.path.isdir(path):
            _take_back_event_files(path)
            with contextlib.suppress(OSError):  # Not empty: something else was put there.
                os.rmdir(path)
        elif os.path.isfile(path) and not _holds_a_run(path):  # A run: another search's.
            for side in ("", "-wal", "-shm", "-journal"):
                _remove(path + side)


def _take_back_event_files(folder: str) -> None:
    """Removes the TensorBoard event files this process wrote in `folder`, and no other's:
    two searches started at once under one run name both found its folder new, and the
    one refused the name took the other's events away with its own. TensorFlow names the
    file events.out.tfevents.<time>.<host>.<process id>.<n>.v2."""
    own = f".{socket.gethostname()}.{os.getpid()}."
    with contextlib.suppress(OSError):  # Not there: nothing of ours in it.
        for name in os.listdir(folder):
            if name.startswith("events.out.tfevents.") and own in name:
                _remove(os.path.join(folder, name))


def _remove(path: str) -> None:
    with contextlib.suppress(OSError):  # Not there, or not ours to remove.
        os.remove(path)


def _holds_a_run(path: str) -> bool:
    try:
        with store_lib.TrialStore(path, readonly=True) as store:
            return bool(store.runs())
    except store_lib.StoreError:  # Not there, or not a store.
        return False


def _discarded(store: store_lib.TrialStore, run: store_lib.Run) -> bool:
    """Takes `run` out of the store unless a trial of it finished (Ray's other workers
    may have evaluated some before one failed to start)."""
    try:
        store.discard_run(run)
        return True
    except store_lib.StoreError:
        return False


if __name__ == "__main__":
    app.run(main, flags_parser=flag_checks.parse_flags_of_the_command_line)
