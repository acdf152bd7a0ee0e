"""The search loop: a searcher, the trial store and an executor, batch after batch.

`nos_tf.search` is the binary that configures these from flags; this module is the loop
itself, so that it can be driven (and tested) without absl flags.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import time

import tensorflow as tf
from absl import logging

from nos_tf import controller
from nos_tf import store as store_lib


@dataclasses.dataclass
class Progress:
    """What the log line and TensorBoard show, kept across batches."""

    done: int = 0
    trained_here: int = 0  # by this process: a resumed run's earlier ones are not its speed
    cache_hits: int = 0
    best_reward: float = 0.0
    best_rule: str = ""
    started: float = dataclasses.field(default_factory=time.monotonic)

    def record(self, trial: store_lib.Trial, total: int, trained_here: bool = False,
               log: bool = True) -> None:
        """Counts a finished trial and logs its line (not for a resumed run's history,
        logged when it happened)."""
        result = trial.result
        self.done += 1
        self.cache_hits += trial.cached
        self.trained_here += trained_here
        if result.reward > self.best_reward:
            self.best_reward, self.best_rule = result.reward, trial.rule
        if not log:
            return
        hours = max(time.monotonic() - self.started, 1e-9) / 3600.0
        logging.info(
            "[%d/%d] reward=%.4f best=%.4f evals/h=%.0f cache_hits=%d status=%s lr=%s  %s%s",
            self.done, total, result.reward, self.best_reward, self.trained_here / hours,
            self.cache_hits, result.status + (" (cached)" if trial.cached else ""),
            "-" if result.lr is None else f"{result.lr:g}", trial.rule,
            f"  ({result.reason})" if result.reason else "",
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

    def __init__(self, store, run, searcher, executor, summaries, total, batch_size,
                 summarized_through: dict[str, int] | None = None):
        """`summarized_through`: the last step already written in the run's TensorBoard
        folder of an evaluation's summaries (`EVALUATION_TAG`) and of an update's
        (`UPDATE_TAG`), as `last_summary_steps` reads them; a resumed run does not write
        them again. The two are apart: a run killed after a batch's last evaluation, before
        its update, had written the one and not the other."""
        self.store, self.run, self.searcher, self.executor = store, run, searcher, executor
        self.summaries, self.total, self.batch_size = summaries, total, batch_size
        self._summarized_through = dict(summarized_through or {})
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
            ahead = [controller.Proposal.of_tokens(self.searcher.token_space, tokens, log_prob)
                     for tokens, log_prob in saved.ahead]
            self._replay = [self.store.trial(trial_id) for trial_id in saved.ahead_trials]
        self._replay += state.proposed_since
        replayed = {trial.trial_id for trial in self._replay}
        for trial in self.store.trials(self.run.run_id):
            # A pending trial not to be replayed was stranded by an earlier resume (whose
            # searcher did not propose it again, see `_enqueue`): it has nothing to tell.
            if trial.trial_id not in replayed and trial.result is not None:
                self._record(trial, log=False)
        self.asked = self.progress.done
        logging.info(
            "Resuming run %r: %d rules done, %d proposed after its checkpoint to take back "
            "(%d of them unfinished); best reward so far %.4f.", self.run.name, self.asked,
            len(self._replay), sum(trial.result is None for trial in self._replay),
            self.progress.best_reward)
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
        if self._replay:  # The budget ran out first.
            self._end_replay()

    def _workers_would_idle(self) -> bool:
        """Sample another batch when there is none, or when the current one no longer keeps
        every worker busy (at most one batch ahead of the policy).

        Not past a complete batch: it is told first, so the next batch comes from the
        updated policy. A batch completes at once when the store answers all of it (cache
        hits, say).

        A resumed search follows the killed run instead while trials that run proposed are
        still to be taken back: exactly then it had sampled the next batch before this
        one's update (every batch after a checkpoint was sampled before the next update).
        So it samples ahead whatever its workers do now: when the killed run's trials
        complete this batch at once (it was killed during the update), and when it resumes
        with fewer workers than the killed run had, which would otherwise sample the next
        batch from the updated policy (other rules) and leave the killed run's trials of it
        pending for good.
        """
        if not self._batches:
            return True
        if len(self._batches) >= 2:
            return False
        if self._replay:
            return True
        if self._batches[-1].complete:
            return False
        return self.executor.num_in_flight < self.executor.capacity

    def _enqueue(self, proposals) -> None:
        batch = Batch(list(proposals), [None] * len(proposals))
        self._batches.append(batch)
        self.asked += len(proposals)
        took_nothing_back = bool(self._replay)
        for index, proposal in enumerate(proposals):
            trial = self._adopt(proposal)
            took_nothing_back = took_nothing_back and trial is None
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
        if took_nothing_back:
            self._end_replay()

    def _end_replay(self) -> None:
        """Gives up the killed run's trials not yet taken back: the restored searcher
        proposed a batch without one of them (it proposes them in the order the killed run
        did, so it will not propose those left: only a searcher that is not deterministic,
        or another machine's arithmetic, gets here), or the run's budget ran out. Those
        unfinished stay pending in the store, never trained; and the search stops sampling
        ahead on their account (`_workers_would_idle`)."""
        unfinished = [trial.rule for trial in self._replay if trial.result is None]
        logging.warning(
            "%d trials of the killed run were not proposed again (%d unfinished, left "
            "pending): %s", len(self._replay), len(unfinished),
            ", ".join(trial.rule for trial in self._replay))
        self._replay = []

    def _adopt(self, proposal) -> store_lib.Trial | None:
        """A trial of the killed run with these tokens, taken back instead of a new one."""
        for position, trial in enumerate(self._replay):
            if trial.tokens is not None and tuple(trial.tokens) == proposal.tokens:
                return self._replay.pop(position)
        return None

    def _finish(self, trial_id, result) -> None:
        trial = self.store.finish(trial_id, result)
        del self._in_flight[trial.fingerprint]
        for batch, index, twin in self._waiting.pop(trial_id):
            if twin is not None:  # now a cache hit of its own
                twin_trial = self.store.propose(
                    self.run.run_id, str(twin.rule), trial.fingerprint, twin.tokens)
                self._assign(batch, index, twin_trial)
            else:
                self._assign(batch, index, trial, trained_here=True)

    def _assign(self, batch, index, trial, trained_here: bool = False) -> None:
        batch.trials[index] = trial
        self._record(trial, trained_here)

    def _summarize(self, tag: str) -> bool:
        """Whether this step's summaries of `tag`'s kind are to be written: not twice on
        resume."""
        return (self.summaries is not None
                and self.progress.done > self._summarized_through.get(tag, 0))

    def _record(self, trial, trained_here: bool = False, log: bool = True) -> None:
        self.progress.record(trial, self.total, trained_here, log)
        self.unique_fingerprints.add(trial.fingerprint)
        if self._summarize(EVALUATION_TAG):
            with self.summaries.as_default(step=self.progress.done):
                tf.summary.scalar(EVALUATION_TAG, trial.result.reward)
                tf.summary.scalar("best_reward", self.progress.best_reward)
                tf.summary.scalar("unique_rules", len(self.unique_fingerprints))
                tf.summary.scalar("cache_hits", self.progress.cache_hits)

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
        if self._summarize(UPDATE_TAG):
            with self.summaries.as_default(step=self.progress.done):
                tf.summary.scalar(UPDATE_TAG, sum(rewards) / len(rewards))
                for name, value in metrics.items():
                    tf.summary.scalar(f"searcher/{name}", value)
            self.summaries.flush()

    def _trials_of(self, batch: Batch) -> list:
        """The batch's trials in the store so far, finished or in flight."""
        in_flight = [trial_id for trial_id, waiters in self._waiting.items()
                     if any(b is batch and twin is None for b, _, twin in waiters)]
        return [t for t in batch.trials if t is not None] + [
            self.store.trial(trial_id) for trial_id in in_flight]


EVALUATION_TAG = "reward"  # The first summary of each evaluation,
UPDATE_TAG = "batch/mean_reward"  # and of each update.


def summary_steps(logdir: str, tag: str = EVALUATION_TAG) -> list[int]:
    """The steps at which `tag` was written in `logdir`'s TensorBoard event files, up to
    a last record cut short (by a kill)."""
    steps = []
    for path in tf.io.gfile.glob(f"{logdir}/events.out.tfevents.*"):
        try:  # Not tf.compat.v1.train.summary_iterator, which warns that it is deprecated.
            for record in tf.data.TFRecordDataset(path):
                event = tf.compat.v1.Event.FromString(record.numpy())
                if any(value.tag == tag for value in event.summary.value):
                    steps.append(event.step)
        except tf.errors.DataLossError:  # The killed process's last record, cut short.
            continue
    return steps


def last_summary_step(logdir: str, tag: str = EVALUATION_TAG) -> int:
    """The last step at which `tag` was written in `logdir` (0: none). A resumed run
    replays the killed one's trials, in another order: written again, their steps showed
    two values each; what the killed process had not yet flushed is written once."""
    return max(summary_steps(logdir, tag), default=0)


def last_summary_steps(logdir: str) -> dict[str, int]:
    """`Search`'s `summarized_through`: the last step of an evaluation's summaries and of
    an update's in `logdir`."""
    return {tag: last_summary_step(logdir, tag) for tag in (EVALUATION_TAG, UPDATE_TAG)}


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
