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

import collections
import dataclasses
import functools
import json
import os
import sys
import time

from absl import app, flags, logging

from nos_tf import controller, executors, proxy, proxy_flags, rules, store as store_lib

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

# Searcher hyperparameters: each flag is passed to the searchers that take it.
_CONTROLLER_LR = flags.DEFINE_float("controller_learning_rate", 5e-4, "Controller's Adam rate.")
_ENTROPY_WEIGHT = flags.DEFINE_float("entropy_weight", 0.0015, "Entropy penalty (paper).")
_BASELINE_DECAY = flags.DEFINE_float("baseline_decay", 0.95, "EMA decay of the reward baseline.")
_LSTM_UNITS = flags.DEFINE_integer("lstm_units", 150, "Controller LSTM size (paper: 150).")
_PPO_EPOCHS = flags.DEFINE_integer("ppo_epochs", 4, "PPO epochs over each batch.")
_PPO_CLIP = flags.DEFINE_float("ppo_clip", 0.2, "PPO's clipping of the probability ratio.")
_POPULATION = flags.DEFINE_integer("population_size", 100, "Evolution's population.")
_TOURNAMENT = flags.DEFINE_integer("tournament_size", 10, "Evolution's tournament.")

_HYPERPARAMETER_FLAGS = {
    "learning_rate": _CONTROLLER_LR, "entropy_weight": _ENTROPY_WEIGHT,
    "baseline_decay": _BASELINE_DECAY, "lstm_units": _LSTM_UNITS, "epochs": _PPO_EPOCHS,
    "clip_epsilon": _PPO_CLIP, "population_size": _POPULATION,
    "tournament_size": _TOURNAMENT,
}


def make_searcher() -> controller.Searcher:
    name = _SEARCHER.value
    accepted = controller.searcher_hyperparameters(name)
    hyperparameters = {
        key: flag.value for key, flag in _HYPERPARAMETER_FLAGS.items() if key in accepted
    }
    return controller.make_searcher(
        name, rules.TokenSpace(_UNITS.value), seed=_SEED.value, **hyperparameters
    )


@dataclasses.dataclass
class Progress:
    """What the log line and TensorBoard show, kept across batches."""

    done: int = 0
    trained: int = 0
    cache_hits: int = 0
    best_reward: float = 0.0
    best_rule: str = ""
    started: float = dataclasses.field(default_factory=time.monotonic)

    def record(self, trial: store_lib.Trial, total: int) -> None:
        result = trial.result
        self.done += 1
        self.cache_hits += trial.cached
        self.trained += not trial.cached
        if result.reward > self.best_reward:
            self.best_reward, self.best_rule = result.reward, trial.rule
        hours = max(time.monotonic() - self.started, 1e-9) / 3600.0
        logging.info(
            "[%d/%d] reward=%.4f best=%.4f evals/h=%.0f cache_hits=%d status=%s lr=%s  %s",
            self.done, total, result.reward, self.best_reward, self.trained / hours,
            self.cache_hits, result.status + (" (cached)" if trial.cached else ""),
            "-" if result.lr is None else f"{result.lr:g}", trial.rule,
        )


@dataclasses.dataclass
class Batch:
    """Proposals that the searcher learns from together, and their trials as they finish."""

    proposals: list
    trials: list

    @property
    def complete(self) -> bool:
        return all(trial is not None for trial in self.trials)


class Search:
    """One run: the searcher, the store and the executor.

    The searcher proposes a batch; its rules go to the executor (or come from the store's
    cache); results are stored as they finish; a complete batch is told to the searcher,
    which is then checkpointed. While the last rules of a batch train and workers fall idle,
    the next batch is already sampled and submitted (from the policy before the update:
    its sampling log-probabilities travel with it, which is what PPO's ratio needs).
    A fingerprint already in flight is not trained again: its twin waits for the result.
    """

    def __init__(self, store, run, searcher, executor, summaries, total, batch_size):
        self.store, self.run, self.searcher, self.executor = store, run, searcher, executor
        self.summaries, self.total, self.batch_size = summaries, total, batch_size
        self.progress = Progress()
        self.step = 0
        self.asked = 0
        self.unique_fingerprints: set[str] = set()
        self._batches: collections.deque[Batch] = collections.deque()
        # trial in flight -> [(batch, index, proposal to record as its cache hit, or None)]
        self._waiting: dict[int, list] = {}
        self._in_flight: dict[str, int] = {}  # fingerprint -> trial id
        self._replay: list[store_lib.Trial] = []

    def resume(self) -> None:
        """Restores the searcher and the batch it had sampled ahead; the trials proposed
        after the checkpoint are replayed: the restored searcher proposes them again."""
        state = self.store.resume_state(self.run.run_id)
        ahead = []
        if state.checkpoint is not None:
            saved = SearchCheckpoint.from_bytes(state.checkpoint.blob)
            self.searcher.set_state(saved.searcher_state)
            self.step = state.checkpoint.step
            ahead = [self._proposal(tokens, log_prob) for tokens, log_prob in saved.ahead]
            self._replay = [self.store.trial(trial_id) for trial_id in saved.ahead_trials]
        self._replay += state.proposed_since
        replayed = {trial.trial_id for trial in self._replay}
        for trial in self.store.trials(self.run.run_id):
            if trial.trial_id not in replayed:
                self._record(trial)
        self.asked = self.progress.done
        logging.info(
            "Resuming run %r: %d rules told to the searcher, %d to replay (%d unfinished).",
            self.run.name, self.asked, len(self._replay), len(state.pending))
        if ahead:
            self._enqueue(ahead)

    def run_all(self) -> None:
        while self.asked < self.total or self._batches:
            while self.asked < self.total and self._workers_would_idle():
                self._enqueue(self.searcher.ask(min(self.batch_size, self.total - self.asked)))
            for trial_id, result in self.executor.poll(timeout=1.0):
                self._finish(trial_id, result)
            while self._batches and self._batches[0].complete:
                self._tell(self._batches.popleft())
        leftover = [trial for trial in self._replay if trial.result is None]
        if leftover:  # only if the restored searcher did not propose them again
            logging.warning("%d trials of the killed run were not proposed again: %s",
                            len(leftover), ", ".join(t.rule for t in leftover))

    def _workers_would_idle(self) -> bool:
        """Sample another batch when there is none, or when the current one no longer keeps
        every worker busy (at most one batch ahead of the policy)."""
        if not self._batches:
            return True
        return (len(self._batches) < 2
                and self.executor.num_in_flight < self.executor.capacity)

    def _proposal(self, tokens, log_prob):
        tokens = tuple(int(t) for t in tokens)
        return controller.Proposal(tokens, self.searcher.token_space.decode(tokens), log_prob)

    def _enqueue(self, proposals) -> None:
        batch = Batch(list(proposals), [None] * len(proposals))
        self._batches.append(batch)
        self.asked += len(proposals)
        for index, proposal in enumerate(proposals):
            trial = self._adopt(proposal)
            if trial is None:
                fingerprint = proposal.rule.fingerprint()
                if fingerprint in self._in_flight:  # wait for the twin's result
                    self._waiting[self._in_flight[fingerprint]].append((batch, index, proposal))
                    continue
                trial = self.store.propose(
                    self.run.run_id, str(proposal.rule), fingerprint, proposal.tokens)
            if trial.result is not None:
                self._assign(batch, index, trial)
                continue
            if trial.trial_id not in self._waiting:
                self._waiting[trial.trial_id] = []
                self._in_flight[trial.fingerprint] = trial.trial_id
                self.executor.submit(trial.trial_id, trial.rule)
            self._waiting[trial.trial_id].insert(0, (batch, index, None))

    def _adopt(self, proposal) -> store_lib.Trial | None:
        """A trial of the killed run with these tokens, taken back instead of a new one."""
        for position, trial in enumerate(self._replay):
            if trial.tokens is not None and tuple(trial.tokens) == proposal.tokens:
                return self._replay.pop(position)
        return None

    def _finish(self, trial_id, result) -> None:
        trial = self.store.finish(trial_id, _with_fingerprint(result, trial_id, self.store))
        del self._in_flight[trial.fingerprint]
        for batch, index, twin in self._waiting.pop(trial_id):
            if twin is not None:  # now a cache hit of its own
                twin_trial = self.store.propose(
                    self.run.run_id, str(twin.rule), trial.fingerprint, twin.tokens)
                self._assign(batch, index, twin_trial)
            else:
                self._assign(batch, index, trial)

    def _assign(self, batch, index, trial) -> None:
        batch.trials[index] = trial
        self._record(trial)

    def _record(self, trial) -> None:
        self.progress.record(trial, self.total)
        self.unique_fingerprints.add(trial.fingerprint)
        if self.summaries is not None:
            with self.summaries.as_default(step=self.progress.done):
                _scalar("reward", trial.result.reward)
                _scalar("best_reward", self.progress.best_reward)
                _scalar("unique_rules", len(self.unique_fingerprints))
                _scalar("cache_hits", self.progress.cache_hits)

    def _tell(self, batch: Batch) -> None:
        rewards = [trial.result.reward for trial in batch.trials]
        metrics = self.searcher.tell(batch.proposals, rewards)
        self.step += 1
        checkpoint = SearchCheckpoint(
            searcher_state=self.searcher.get_state(),
            ahead=[(list(p.tokens), p.log_prob) for b in self._batches for p in b.proposals],
            ahead_trials=sorted({t.trial_id for b in self._batches for t in self._trials_of(b)}),
        )
        self.store.save_checkpoint(self.run.run_id, checkpoint.to_bytes(), self.step)
        if self.summaries is not None:
            with self.summaries.as_default(step=self.progress.done):
                _scalar("batch/mean_reward", sum(rewards) / len(rewards))
                for name, value in metrics.items():
                    _scalar(f"searcher/{name}", value)
            self.summaries.flush()

    def _trials_of(self, batch: Batch) -> list:
        """The batch's trials in the store so far, finished or in flight."""
        in_flight = [trial_id for trial_id, waiters in self._waiting.items()
                     if any(b is batch and twin is None for b, _, twin in waiters)]
        return [t for t in batch.trials if t is not None] + [
            self.store.trial(trial_id) for trial_id in in_flight]


@dataclasses.dataclass
class SearchCheckpoint:
    """What the store keeps after each update: the searcher, and the batch sampled ahead
    (tokens and sampling log-probabilities, and its trials), which the restored searcher
    could not sample again."""

    searcher_state: bytes
    ahead: list
    ahead_trials: list

    def to_bytes(self) -> bytes:
        header = json.dumps({"ahead": self.ahead, "ahead_trials": self.ahead_trials}).encode()
        return len(header).to_bytes(8, "big") + header + self.searcher_state

    @classmethod
    def from_bytes(cls, blob: bytes) -> "SearchCheckpoint":
        size = int.from_bytes(blob[:8], "big")
        header = json.loads(blob[8 : 8 + size])
        return cls(blob[8 + size :], header["ahead"], header["ahead_trials"])


def _scalar(name, value):
    import tensorflow as tf

    tf.summary.scalar(name, value)


def _with_fingerprint(result, trial_id, store):
    """Executors' failure results carry no fingerprint; the store's trial has it."""
    if result.fingerprint:
        return result
    return dataclasses.replace(result, fingerprint=store.trial(trial_id).fingerprint)


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
    best_rule = str(rules.simplify(rules.parse(best.rule)))
    print(f'\nnos_tf.RuleOptimizer("{best_rule}", learning_rate={best.lr or 1e-3:g})')


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    config = proxy_flags.config_from_flags()
    os.makedirs(os.path.dirname(os.path.abspath(_STORE.value)), exist_ok=True)
    with store_lib.TrialStore(_STORE.value) as store:
        run = open_run(store)
        searcher = make_searcher()
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
            search = Search(store, run, searcher, executor, summaries, _MAX_EVALUATIONS.value,
                            _BATCH_SIZE.value)
            if _RESUME.value:
                search.resume()
            logging.info(
                "Run %r: %s searcher, %d rules in batches of %d, %s executor, store %s, "
                "TensorBoard %s", run.name, _SEARCHER.value, _MAX_EVALUATIONS.value,
                _BATCH_SIZE.value, _EXECUTOR.value, _STORE.value, logdir)
            search.run_all()
        print_leaderboard(store, _TOP.value)


if __name__ == "__main__":
    app.run(main)
