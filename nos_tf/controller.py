"""Searchers: what proposes the next update rules to evaluate, and learns from their rewards.

A search loop (`nos_tf.search`) drives any searcher the same way:

    searcher = make_searcher("ppo", TokenSpace(num_units), seed=0)
    while budget_left:
        proposals = searcher.ask(batch_size)       # token sequences + decoded Rules
        rewards = [...]                            # one float per proposal
        metrics = searcher.tell(proposals, rewards)
        checkpoint(searcher.get_state())           # nos_tf.driver: into the store

Rewards are plain floats, larger is better (the proxy's validation accuracy); a rule that is
rejected before training, or whose training diverged, is told with reward 0, and a rule
whose fingerprint is already in the store is told with its cached reward (the searcher
should still learn from it: it is what the policy proposed).

Searchers are deterministic given their seed and the rewards they are told, and
`get_state()` captures everything that decides what comes next (policy weights, Adam's
moments, the reward baseline, the population, the random generator). A search killed
between `tell` and the next `ask` resumes exactly from the stored state; one killed
mid-batch, restored from the state saved after the previous `tell`, asks the same batch
again, and the driver takes back, by their tokens, the trials the killed run had proposed
(`nos_tf.driver.Search.resume`).

The searchers:

- `ppo`: the paper's controller: a one-layer LSTM (150 units, weights uniform in
  [-0.08, 0.08]) emits each unit's 5 tokens autoregressively, each position its own softmax
  over that position's valid tokens, the sampled token fed back as the next input; trained
  with PPO (Schulman et al. 2017: clipped probability ratio, several epochs per batch;
  decoupled, for batches sampled before the last update),
  advantages standardized within each batch (`normalize_advantages`; off: reward minus an
  exponential moving average of rewards, the paper's), an entropy bonus, and Adam;
  a penalty keeps its entropy above a floor (`entropy_floor`), and optionally
  (`avoid_repeats`) it samples again for rules it has not proposed before.
- `reinforce`: the same policy trained with one REINFORCE step per batch (Williams 1992),
  as in Neural Architecture Search (Zoph & Le 2017).
- `random`: each token uniform over the valid choices at its position; the baseline every
  learned search must beat.
- `evolution`: regularized evolution (Real et al. 2019) over token sequences, the search
  that Lion (Chen et al. 2023) and AutoML-Zero use: tournament selection, point mutations,
  and the oldest individual dies.
"""

from __future__ import annotations

import abc
import collections
import dataclasses
import inspect
import io
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import keras
import numpy as np
import tensorflow as tf

from nos_tf import rules

# Rounds of sampling an `avoid_repeats` policy gets to fill a batch with rules it has not
# proposed before; what is still missing then is filled with repeats.
_MAX_SAMPLING_ROUNDS = 20

# Hyperparameters added after searcher states were first stored, with the value that
# does what the code did before each existed: a stored state without one was saved with
# that value in effect (it may differ from today's default: the entropy floor's does).
_BEFORE_IT_EXISTED = {"avoid_repeats": False, "entropy_floor": 0.0, "target_kl": None}

# Penalty per nat of a sample's entropy below `entropy_floor` (advantages are about 1 in
# size when standardized, so this outweighs them once the policy is below the floor).
_ENTROPY_FLOOR_WEIGHT = 1.0

# Bound on the log of a sample's behaviour weight (`PolicyGradientSearcher`), against
# overflow only: weights seen with 12 workers lie within 0.5-2.
_MAX_LOG_BEHAVIOUR_WEIGHT = 20.0

# Logit given to tokens that are invalid at a position: exp() of it underflows to exactly 0,
# and unlike -inf it keeps 0 * log-probability finite in the entropy.
_MASKED_LOGIT = -1e9


@dataclasses.dataclass(frozen=True)
class Proposal:
    """One rule proposed by a searcher.

    Attributes:
      tokens: the controller encoding, one token per position of the searcher's TokenSpace.
      rule: `tokens` decoded by the TokenSpace.
      log_prob: log-probability of `tokens` under the policy that sampled them (what PPO
        needs as the "old" policy); NaN for searchers without a policy.
    """

    tokens: tuple[int, ...]
    rule: rules.Rule
    log_prob: float = math.nan

    @classmethod
    def of_tokens(cls, token_space: rules.TokenSpace, tokens: Sequence[int],
                  log_prob: float = math.nan) -> "Proposal":
        """The proposal of `tokens`, its rule decoded by `token_space`."""
        tokens = tuple(int(token) for token in tokens)
        return cls(tokens=tokens, rule=token_space.decode(tokens), log_prob=log_prob)


class Searcher(abc.ABC):
    """The interface search.py drives: ask for rules, tell their rewards, checkpoint.

    Subclasses set `name`, take their hyperparameters as keyword arguments with defaults
    (so a binary can expose each as a flag), and implement `ask` and `_learn`; those with
    state beyond the random generator extend `_state` and `_restore`.
    """

    name: ClassVar[str]

    def __init__(self, token_space: rules.TokenSpace, seed: int):
        self.token_space = token_space
        self.seed = seed
        self._rng = np.random.default_rng(seed)
        self._valid_tokens = [
            np.flatnonzero(token_space.mask(position)) for position in range(self.num_positions)
        ]
        for position, valid in enumerate(self._valid_tokens):
            if valid.size == 0:
                raise ValueError(f"TokenSpace position {position} has no valid token.")

    @property
    def num_positions(self) -> int:
        return len(self.token_space.sizes)

    @property
    def hyperparameters(self) -> dict[str, Any]:
        """The constructor's keyword arguments, as this searcher was built."""
        return {}

    @abc.abstractmethod
    def ask(self, n: int) -> list[Proposal]:
        """Proposes `n` rules (possibly with repeats) to evaluate next."""

    def tell(self, proposals: Sequence[Proposal], rewards: Sequence[float]) -> dict[str, float]:
        """Learns from the rewards of proposals this searcher (or its restored state) made.

        Returns scalar metrics of the update (for TensorBoard; may be empty).
        """
        if len(proposals) != len(rewards):
            raise ValueError(
                f"tell() got {len(proposals)} proposals but {len(rewards)} rewards.")
        rewards = np.asarray(rewards, dtype=np.float64)
        if not np.all(np.isfinite(rewards)):
            raise ValueError(
                f"tell() got non-finite rewards {rewards[~np.isfinite(rewards)]}; give "
                "diverged or rejected rules reward 0.")
        for proposal in proposals:
            if len(proposal.tokens) != self.num_positions:
                raise ValueError(
                    f"Proposal {proposal.tokens} has {len(proposal.tokens)} tokens; this "
                    f"searcher's TokenSpace has {self.num_positions} positions.")
        if not proposals:
            return {}
        return self._learn(proposals, rewards)

    @abc.abstractmethod
    def _learn(self, proposals: Sequence[Proposal], rewards: np.ndarray) -> dict[str, float]:
        """`tell` after its checks: rewards is a finite float64 array."""

    def get_state(self) -> bytes:
        """Everything that decides the next proposals, as bytes for the store."""
        arrays, meta = self._state()
        meta = {"config": self._config(), "rng": self._rng.bit_generator.state, **meta}
        buffer = io.BytesIO()
        np.savez(buffer, __meta__=np.frombuffer(json.dumps(meta).encode(), np.uint8), **arrays)
        return buffer.getvalue()

    def set_state(self, state: bytes) -> None:
        """Restores `get_state()` output of a searcher built with the same configuration."""
        try:
            with np.load(io.BytesIO(state), allow_pickle=False) as archive:
                arrays = {key: archive[key] for key in archive.files}
            meta = json.loads(arrays.pop("__meta__").tobytes())
        except (ValueError, OSError, KeyError, EOFError) as error:
            raise ValueError(f"Not a searcher state ({error}).") from error
        # A hyperparameter added since the state was saved had the value that does what
        # the code did before it existed.
        stored = {**_BEFORE_IT_EXISTED, **meta["config"]}
        mismatched = {
            key: (stored.get(key), value)
            for key, value in self._config().items()
            if stored.get(key) != value
        }
        if mismatched:
            details = ", ".join(f"{k}: stored {a!r}, now {b!r}" for k, (a, b) in mismatched.items())
            raise ValueError(f"Searcher state was saved with another configuration ({details}).")
        self._rng.bit_generator.state = meta["rng"]
        self._restore(arrays, meta)

    def _state(self) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        """This searcher's own state: numpy arrays and JSON-able values."""
        return {}, {}

    def _restore(self, arrays: Mapping[str, np.ndarray], meta: Mapping[str, Any]) -> None:
        """Inverse of `_state`."""

    def _config(self) -> dict[str, Any]:
        # Through a JSON round trip so it compares equal to the stored copy (tuples → lists).
        return json.loads(json.dumps({
            "searcher": self.name,
            "token_sizes": [int(size) for size in self.token_space.sizes],
            **self.hyperparameters,
        }))

    def _proposal(self, tokens: Sequence[int], log_prob: float = math.nan) -> Proposal:
        return Proposal.of_tokens(self.token_space, tokens, log_prob)

    def _random_tokens(self) -> list[int]:
        return [int(self._rng.choice(valid)) for valid in self._valid_tokens]


class RandomSearcher(Searcher):
    """Each token uniform over the valid choices at its position; learns nothing."""

    name = "random"

    def ask(self, n: int) -> list[Proposal]:
        return [self._proposal(self._random_tokens()) for _ in range(n)]

    def _learn(self, proposals, rewards):
        return {}


class EvolutionSearcher(Searcher):
    """Regularized evolution (Real et al. 2019, "aging evolution") over token sequences.

    Until `population_size` rewards have been told, proposals are random. After that each
    proposal is a mutant of the best of `tournament_size` individuals drawn from the
    population; every told proposal joins the population and the oldest member leaves, so
    a lucky early reward cannot dominate forever.
    """

    name = "evolution"

    def __init__(self, token_space, seed, population_size: int = 100,
                 tournament_size: int = 25, mutations: int = 1):
        super().__init__(token_space, seed)
        if not 1 <= tournament_size <= population_size:
            raise ValueError(
                f"Need 1 <= tournament_size <= population_size, got {tournament_size} and "
                f"{population_size}.")
        self._mutable_positions = [
            position for position, valid in enumerate(self._valid_tokens) if valid.size > 1]
        if not 1 <= mutations <= len(self._mutable_positions):
            raise ValueError(
                f"mutations must be in [1, {len(self._mutable_positions)}] (positions with a "
                f"choice), got {mutations}.")
        self.population_size = population_size
        self.tournament_size = tournament_size
        self.mutations = mutations
        self._population_tokens: list[tuple[int, ...]] = []  # oldest first
        self._population_rewards: list[float] = []

    @property
    def hyperparameters(self):
        return {"population_size": self.population_size,
                "tournament_size": self.tournament_size, "mutations": self.mutations}

    def ask(self, n: int) -> list[Proposal]:
        if len(self._population_tokens) < self.population_size:
            return [self._proposal(self._random_tokens()) for _ in range(n)]
        return [self._proposal(self._mutate(self._tournament_winner())) for _ in range(n)]

    def _tournament_winner(self) -> tuple[int, ...]:
        contestants = self._rng.choice(
            len(self._population_tokens), size=self.tournament_size, replace=False)
        winner = max(contestants, key=lambda index: self._population_rewards[index])
        return self._population_tokens[winner]

    def _mutate(self, tokens: tuple[int, ...]) -> list[int]:
        """Changes `mutations` positions, each to another token valid there."""
        child = list(tokens)
        for position in self._rng.choice(self._mutable_positions, self.mutations, replace=False):
            alternatives = self._valid_tokens[position][self._valid_tokens[position] != child[position]]
            child[position] = int(self._rng.choice(alternatives))
        return child

    def _learn(self, proposals, rewards):
        for proposal, reward in zip(proposals, rewards):
            self._population_tokens.append(proposal.tokens)
            self._population_rewards.append(float(reward))
        excess = len(self._population_tokens) - self.population_size
        if excess > 0:
            del self._population_tokens[:excess]
            del self._population_rewards[:excess]
        return {"population_best_reward": max(self._population_rewards),
                "population_mean_reward": float(np.mean(self._population_rewards))}

    def _state(self):
        tokens = np.array(self._population_tokens, dtype=np.int64).reshape(-1, self.num_positions)
        return {"population_tokens": tokens,
                "population_rewards": np.array(self._population_rewards, np.float64)}, {}

    def _restore(self, arrays, meta):
        self._population_tokens = [tuple(int(t) for t in row) for row in arrays["population_tokens"]]
        self._population_rewards = [float(r) for r in arrays["population_rewards"]]


class PolicyNetwork(keras.Model):
    """The controller's policy: an LSTM that writes a rule token by token.

    Step p reads the token chosen at step p-1 (a learned start token at step 0) through an
    embedding, advances one LSTMCell, and scores position p's vocabulary with that
    position's own output weights; tokens invalid at p get a logit of -1e9, so they are
    never sampled and carry no probability mass. Every weight starts uniform in
    [-init_range, init_range], as in the paper (and in Zoph & Le 2017).

    The positions' vocabularies are laid end to end in one joint vocabulary, so the
    per-position embeddings are rows of one Embedding table and the per-position heads are
    column blocks of one Dense layer (position p's softmax covers only its own block).
    That is the same model as one table and one head per position, but with a handful of
    variables and a loop body that is the same at every step, which keeps graph tracing
    and Adam cheap.
    """

    def __init__(self, sizes: Sequence[int], masks: Sequence[np.ndarray], units: int = 150,
                 embedding_dim: int = 32, init_range: float = 0.08, seed: int = 0):
        super().__init__()
        seeds = iter(np.random.SeedSequence(seed).generate_state(6).tolist())

        def uniform():
            return keras.initializers.RandomUniform(-init_range, init_range, seed=next(seeds))

        sizes = [int(size) for size in sizes]
        self.num_positions = len(sizes)
        # Joint id of token t at position p: offsets[p] + t. The start token is id sum(sizes).
        self.offsets = np.cumsum([0] + sizes[:-1]).astype(np.int32)
        self.start_id = sum(sizes)
        # valid[p, j]: joint id j is a valid choice at position p.
        self.valid = np.zeros((len(sizes), sum(sizes)), dtype=bool)
        for position, (offset, mask) in enumerate(zip(self.offsets, masks)):
            self.valid[position, offset:offset + sizes[position]] = mask
        # The entropy of the uniform policy over valid tokens: the most a rule's token
        # choices can have, in nats.
        self.uniform_entropy = float(np.sum(np.log(self.valid.sum(axis=1))))
        self.embedding = keras.layers.Embedding(
            sum(sizes) + 1, embedding_dim, embeddings_initializer=uniform())
        self.cell = keras.layers.LSTMCell(
            units, kernel_initializer=uniform(), recurrent_initializer=uniform(),
            bias_initializer=uniform(), unit_forget_bias=False)
        self.rnn = keras.layers.RNN(self.cell, return_sequences=True)
        self.head = keras.layers.Dense(
            sum(sizes), kernel_initializer=uniform(), bias_initializer=uniform())

    def call(self, tokens: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """Teacher-forced pass over int tokens [batch, positions].

        Returns the log-probability of each sequence and the summed entropy of the
        per-position distributions it went through, both [batch].
        """
        ids = tokens + self.offsets
        start = tf.fill([tf.shape(tokens)[0], 1], self.start_id)
        outputs = self.rnn(self.embedding(tf.concat([start, ids[:, :-1]], axis=1)))
        log_probs = tf.nn.log_softmax(tf.where(self.valid, self.head(outputs), _MASKED_LOGIT))
        log_prob = tf.reduce_sum(tf.gather(log_probs, ids, axis=2, batch_dims=2), axis=1)
        entropy = -tf.reduce_sum(tf.exp(log_probs) * log_probs, axis=[1, 2])
        return log_prob, entropy

    def sample(self, batch_size: tf.Tensor, seeds: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """Samples `batch_size` sequences autoregressively; seeds: int [positions, 2].

        Returns int32 tokens [batch, positions] and their log-probabilities [batch].
        """
        ids = tf.fill([batch_size], self.start_id)
        states = self.cell.get_initial_state(batch_size=batch_size)
        log_prob = tf.zeros([batch_size])
        chosen = tf.TensorArray(tf.int32, size=self.num_positions)
        for position in tf.range(self.num_positions):  # a graph loop under tf.function
            outputs, states = self.cell(self.embedding(ids), states)
            logits = tf.where(tf.gather(self.valid, position), self.head(outputs), _MASKED_LOGIT)
            ids = tf.random.stateless_categorical(logits, 1, seed=seeds[position], dtype=tf.int32)[:, 0]
            log_prob += tf.gather(tf.nn.log_softmax(logits), ids, axis=1, batch_dims=1)
            chosen = chosen.write(position, ids)
        return tf.transpose(chosen.stack()) - self.offsets, log_prob


class PolicyGradientSearcher(Searcher):
    """The paper's controller: a PolicyNetwork trained by policy gradient with Adam.

    The advantage of a reward is its excess over an exponential moving average of the
    rewards told before (the baseline; the first batch's mean starts it), as in the paper.
    By default the advantages are then standardized within the batch
    (`normalize_advantages`, as PPO implementations do): most rules score 0 and the rest
    little more, and raw advantages of a few hundredths left the policy slow to move.
    Standardizing subtracts the batch's mean, so the moving average cancels and the batch
    mean is the baseline in effect (the moving average is still reported; a batch of one
    keeps its advantage over it, as without standardizing). Keeping the
    moving average as the centre and only dividing by the batch's spread (at least 0.05)
    learned more slowly in `nos_tf.benchmarks.search_efficiency`: over seeds 0-13 its
    first rule at tuned Adam's level came after 81 evaluations on average, against 63.
    The loss is
    -mean(weight * objective(ratio, advantage) + entropy_weight * H
    - relu(floor - H)), H the entropy of the sample's token choices (see `entropy_floor`);
    subclasses choose the objective and how many steps to take per batch. As in decoupled
    PPO (Hilton et al. 2021, "Batch size-invariance for policy optimization"), ratio is
    the proposal's probability under the policy being trained over its probability under
    the policy at the start of this update, and weight (held constant) is the latter over
    its probability when it was sampled. With one worker a batch is told before the next
    is sampled, the weight is 1 (to rounding) and this is plain PPO. With several
    (`nos_tf.driver` samples a batch ahead to keep Ray's workers busy) a batch is told
    after an update it was sampled before: plain PPO's clip around the sampling policy
    then cut most of its samples' gradient (ratios of 0.6-2 after one update), and on the
    test suite's "reads sign(m)" reward (240 evaluations, 12 workers, seeds 0-2) the last 60 evaluations'
    mean reward was 0.60, 0.78, 0.57, against 0.95, 1.0, 0.98 now and 0.93, 1.0, 0.97
    with one worker. The batch of lag itself still costs: on
    `nos_tf.benchmarks.search_efficiency --sampled_ahead` (seeds 0-39) PPO needed 89 / 79
    evaluations (mean / median) to tuned Adam's reward, against 61 / 44 told in lockstep
    (measured before this change).

    The paper states neither the controller's learning rate nor its batch size. The
    default 5e-3 (PPO, 4 epochs, batches of 12) learns within a few hundred evaluations:
    at 5e-4 the policy had barely moved after 300 samples of the test suite's "reads
    sign(m)" reward; in `nos_tf.benchmarks.search_efficiency`, 1e-2, 8 epochs or batches
    of 6 sometimes collapsed onto a mediocre rule. The entropy bonus acts against the
    advantages, so its weight is tied to the reward scale, here rewards in [0, 1]: an
    entropy weight of 0.01, or rewards cubed, stopped learning in that benchmark (with
    raw advantages). With standardized advantages, in that benchmark (3 seeds of 240
    evaluations, units=1), the share of proposals scoring at least tuned Adam rose from
    5.1% to 14.4% (random search: 0.8%) and the last batches' mean reward from 0.25 to
    0.34; at a learning rate of 2e-2 the policy collapsed either way. Over seeds 0-39 of
    that benchmark (mean / median evaluations to tuned Adam's reward, default 61 / 44), no
    other setting tried was better by the mean: clip_epsilon 0.3 or 0.4, learning rate 1e-2
    and 8 epochs learned faster (median 36-52, about twice the hit rate) but collapsed
    onto a mediocre rule more often (mean 68-74); no entropy bonus 66 / 48.5, batches of 8
    79 / 67; centred-rank or risk-seeking (top quarter) advantages and a replay of the best
    10 rules seen were worse too.

    The policy tends to collapse onto one rule and propose it again and again: in
    `nos_tf.search` a repeat is a free cache hit, but it teaches nothing new. With
    `avoid_repeats` the controller samples again (up to 20 rounds) for rules it has not
    proposed before, so a collapsed policy explores the rules nearest its favourite
    instead. Measured with `nos_tf.benchmarks.search_efficiency`: on its default target
    (tuned Adam, about 1 random rule in 100), over seeds 0-39, it changed little: 68 / 48
    evaluations (mean / median) against 61 / 44, the same first hit in 31 seeds. On a
    rarer target (`--functions=rosenbrock --evaluations=960`: random search's median is
    400 evaluations) it kept PPO from stalling on a near miss: over seeds 0-39, 10
    searches did not reach the target against 21 without it (random search: 10); median
    222 evaluations against more than 960 (random: 400), mean 407 against 573 (random:
    505). It is off by default, as in the paper.

    `entropy_floor` keeps the collapse from happening instead: each sample's objective
    loses relu(floor - H), H the entropy of the sample's token choices and floor that
    fraction of the uniform policy's entropy. The penalty is nothing until the policy
    has narrowed to the floor; below it, it outweighs the standardized advantages, so
    the policy keeps exploring around its favourite rules. On the rarer target, over seeds
    0-39, the default floor of 0.5 made every search reach the target (random search: 30
    of 40): mean 283 / median 245 evaluations against random's 505 / 400 (PPO / random
    0.56 by the mean, 95% interval 0.42-0.75; 0.61 by the median, 0.39-0.90). With
    `avoid_repeats` as well: 238 / 238 (0.47, 0.37-0.61; 0.59, 0.38-0.85), but 68 / 48 on
    the default target. A floor of 0.7: 254 / 215 (0.50, 0.38-0.66; 0.54, 0.36-0.90), no
    better beyond the seeds' spread than 0.5, the first floor tried. On the default
    target, where the first hit mostly comes before the policy narrows, the floor changed
    one search of 40 (its first hit at 207 evaluations instead of none in 240): 60 / 44
    against 61 / 44. The paper's controller has no floor (`entropy_floor=0`).
    """

    epochs: int = 1

    def __init__(self, token_space, seed, learning_rate: float = 5e-3,
                 baseline_decay: float = 0.95, entropy_weight: float = 0.0015,
                 lstm_units: int = 150, embedding_dim: int = 32, init_range: float = 0.08,
                 normalize_advantages: bool = True, avoid_repeats: bool = False,
                 entropy_floor: float = 0.5):
        super().__init__(token_space, seed)
        if not 0.0 <= baseline_decay < 1.0:
            raise ValueError(f"baseline_decay must be in [0, 1), got {baseline_decay}.")
        if not 0.0 <= entropy_floor < 1.0:
            raise ValueError(f"entropy_floor must be in [0, 1), got {entropy_floor}.")
        # A negative rate or entropy weight learns the opposite of what is asked: with a
        # rate of -5e-3 the toy reward's mean fell to 0 instead of rising to 1.
        for name, value in (("learning_rate", learning_rate), ("init_range", init_range)):
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be positive and finite, got {value}.")
        if not (math.isfinite(entropy_weight) and entropy_weight >= 0):
            raise ValueError(f"entropy_weight must be at least 0 and finite, got "
                             f"{entropy_weight}.")
        for name, value in (("lstm_units", lstm_units), ("embedding_dim", embedding_dim)):
            if value < 1:
                raise ValueError(f"{name} must be at least 1, got {value}.")
        self._hyperparameters = {
            "learning_rate": float(learning_rate), "baseline_decay": float(baseline_decay),
            "entropy_weight": float(entropy_weight), "lstm_units": int(lstm_units),
            "embedding_dim": int(embedding_dim), "init_range": float(init_range),
            "normalize_advantages": bool(normalize_advantages),
            "avoid_repeats": bool(avoid_repeats), "entropy_floor": float(entropy_floor)}
        self.baseline: float | None = None
        self._told_rules: set[str] = set()  # texts of the rules told so far
        # Texts of the rules asked for and not told yet: with a batch sampled ahead (as
        # `nos_tf.driver` does), the batch before it is still training.
        self._asked_rules: collections.Counter[str] = collections.Counter()
        self.policy = PolicyNetwork(
            token_space.sizes, [token_space.mask(p) for p in range(self.num_positions)],
            units=lstm_units, embedding_dim=embedding_dim, init_range=init_range, seed=seed)
        self.policy(tf.zeros([1, self.num_positions], tf.int32))  # builds the weights
        self._entropy_floor_nats = entropy_floor * self.policy.uniform_entropy
        self.optimizer = keras.optimizers.Adam(learning_rate=float(learning_rate))
        self.optimizer.build(self.policy.trainable_variables)
        self._sample = tf.function(self.policy.sample)
        self._train_step = tf.function(self._train_step_eager)

    @property
    def hyperparameters(self):
        return dict(self._hyperparameters)

    def ask(self, n: int) -> list[Proposal]:
        """`n` samples of the policy; with `avoid_repeats`, rules neither told nor asked
        for before and distinct within the batch, as long as `_MAX_SAMPLING_ROUNDS` rounds
        of sampling find them (repeats fill the rest)."""
        if not self._hyperparameters["avoid_repeats"]:
            return self._sample_proposals(n)
        fresh, repeats, seen = [], [], self._told_rules | self._asked_rules.keys()
        for _ in range(_MAX_SAMPLING_ROUNDS):
            for proposal in self._sample_proposals(n):
                text = str(proposal.rule)
                (repeats if text in seen else fresh).append(proposal)
                seen.add(text)
            if len(fresh) >= n:
                break
        proposals = (fresh + repeats)[:n]
        self._asked_rules.update(str(proposal.rule) for proposal in proposals)
        return proposals

    def _sample_proposals(self, n: int) -> list[Proposal]:
        seeds = self._rng.integers(0, 2**31 - 1, size=(self.num_positions, 2))
        tokens, log_probs = self._sample(tf.constant(n, tf.int32), tf.constant(seeds, tf.int64))
        return [self._proposal(row, float(log_prob))
                for row, log_prob in zip(tokens.numpy(), log_probs.numpy())]

    @abc.abstractmethod
    def _objective(self, ratio: tf.Tensor, advantages: tf.Tensor) -> tf.Tensor:
        """Per-sample objective to maximize, before the entropy bonus."""

    def loss(self, tokens, proximal_log_probs, behaviour_weights, advantages):
        """The loss of the class docstring, with the policy's entropy and the ratio."""
        log_probs, entropy = self.policy(tokens)
        ratio = tf.exp(log_probs - proximal_log_probs)
        objective = (behaviour_weights * self._objective(ratio, advantages)
                     + self._hyperparameters["entropy_weight"] * entropy
                     - _ENTROPY_FLOOR_WEIGHT * tf.nn.relu(self._entropy_floor_nats - entropy))
        return -tf.reduce_mean(objective), entropy, ratio

    def _train_step_eager(self, tokens, proximal_log_probs, behaviour_weights, advantages):
        with tf.GradientTape() as tape:
            loss, entropy, ratio = self.loss(
                tokens, proximal_log_probs, behaviour_weights, advantages)
        variables = self.policy.trainable_variables
        self.optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return {"loss": loss, "entropy": tf.reduce_mean(entropy),
                "ratio_deviation": tf.reduce_mean(tf.abs(ratio - 1.0))}

    def behaviour_weights(self, tokens, behaviour_log_probs) -> tuple[tf.Tensor, tf.Tensor]:
        """The log-probabilities of `tokens` under the policy now (the proximal policy of
        the update to come) and their weights: that probability over their sampling
        probability, `behaviour_log_probs` (1 when the policy has not changed since)."""
        proximal_log_probs, _ = self.policy(tokens)
        return proximal_log_probs, tf.exp(tf.minimum(
            proximal_log_probs - behaviour_log_probs, _MAX_LOG_BEHAVIOUR_WEIGHT))

    def _learn(self, proposals, rewards):
        if any(math.isnan(proposal.log_prob) for proposal in proposals):
            raise ValueError(f"{self.name} can only learn from proposals its policy sampled "
                             "(they carry the sampling log-probability).")
        if self.baseline is None:
            self.baseline = float(np.mean(rewards))
        advantages = raw_advantages = rewards - self.baseline
        # A batch of one has no spread to standardize by: standardized, its advantage was
        # 0 whatever the reward (--batch_size=1, or a search's last partial batch).
        if self._hyperparameters["normalize_advantages"] and len(rewards) > 1:
            advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)
        tokens = tf.constant([proposal.tokens for proposal in proposals], tf.int32)
        proximal_log_probs, behaviour_weights = self.behaviour_weights(
            tokens, tf.constant([proposal.log_prob for proposal in proposals], tf.float32))
        advantages_tensor = tf.constant(advantages, tf.float32)
        epochs_run = 0
        for epoch in range(self.epochs):
            if epoch and self._moved_far_enough(tokens, proximal_log_probs):
                break
            step_metrics = self._train_step(
                tokens, proximal_log_probs, behaviour_weights, advantages_tensor)
            epochs_run += 1
        log_probs_after, _ = self.policy(tokens)
        update_metrics = self._update_size(log_probs_after - proximal_log_probs)
        if self._hyperparameters["avoid_repeats"]:
            told = [str(proposal.rule) for proposal in proposals]
            self._told_rules.update(told)
            self._asked_rules -= collections.Counter(told)
        decay = self._hyperparameters["baseline_decay"]
        for reward in rewards:
            self.baseline = decay * self.baseline + (1.0 - decay) * float(reward)
        return {"mean_reward": float(np.mean(rewards)), "baseline": self.baseline,
                "behaviour_weight_deviation": float(np.mean(np.abs(behaviour_weights - 1.0))),
                "mean_abs_raw_advantage": float(np.mean(np.abs(raw_advantages))),
                **{key: float(value) for key, value in step_metrics.items()},
                "epochs": epochs_run, **update_metrics}

    def _moved_far_enough(self, tokens, proximal_log_probs) -> bool:
        """Whether the epochs over a batch stop before the next: never here."""
        del tokens, proximal_log_probs
        return False

    def _update_size(self, log_ratio: tf.Tensor) -> dict[str, float]:
        """How far the update moved the policy on the batch, from each sample's log-ratio
        of its probability after the update over before: `approx_kl`, the estimate of
        KL(before || after) that PPO implementations log (Spinning Up's, mean of -log
        ratio), to read beside the learning rate. A step that far exceeds a few hundredths
        is larger than PPO's clip assumes."""
        return {"approx_kl": float(tf.reduce_mean(-log_ratio))}

    def _state(self):
        arrays = {f"policy_{i}": w for i, w in enumerate(self.policy.get_weights())}
        arrays.update({f"optimizer_{i}": v.numpy() for i, v in enumerate(self.optimizer.variables)})
        return arrays, {"baseline": self.baseline, "told_rules": sorted(self._told_rules),
                        "asked_rules": sorted(self._asked_rules.elements())}

    def _restore(self, arrays, meta):
        self.policy.set_weights(
            [arrays[f"policy_{i}"] for i in range(len(self.policy.get_weights()))])
        for i, variable in enumerate(self.optimizer.variables):
            variable.assign(arrays[f"optimizer_{i}"])
        self.baseline = meta["baseline"]
        self._told_rules = set(meta.get("told_rules", []))  # absent in older states
        self._asked_rules = collections.Counter(meta.get("asked_rules", []))


class ReinforceSearcher(PolicyGradientSearcher):
    """One REINFORCE step per batch: the gradient of weight * ratio * advantage is
    advantage * ∇log p, importance-weighted by the policy's probability over the sampling
    one for a batch sampled before the last update.

    Its default learning rate is 4x PPO's, which takes 4 steps per batch.
    """

    name = "reinforce"

    def __init__(self, token_space, seed, learning_rate: float = 2e-2, **kwargs):
        super().__init__(token_space, seed, learning_rate=learning_rate, **kwargs)

    def _objective(self, ratio, advantages):
        return ratio * advantages


class PPOSearcher(PolicyGradientSearcher):
    """PPO's clipped surrogate (Schulman et al. 2017), up to `epochs` Adam steps per batch.

    The clip bounds each step's gradient, not how far the steps go: at the default
    learning rate, Adam's first steps move every weight by about the rate, and the four
    epochs of a first batch took the policy well outside the clip (measured at
    `--units=2`, a batch of 12: clip_fraction 1.0, approx_kl 0.75; the searches of the
    class above were measured so). `target_kl`, as Spinning Up's and Stable-Baselines3's
    PPO, stops a batch's epochs once the update's approx_kl passes 1.5 times it (checked
    before each epoch after the first); None (the default): every epoch runs.
    """

    name = "ppo"

    def __init__(self, token_space, seed, epochs: int = 4, clip_epsilon: float = 0.2,
                 target_kl: float | None = None, **kwargs):
        if epochs < 1 or not clip_epsilon > 0:  # nan too (inf: no clipping)
            raise ValueError(
                f"PPO needs epochs >= 1 and clip_epsilon > 0, got {epochs} and {clip_epsilon}.")
        if target_kl is not None and not 0 < target_kl < math.inf:
            raise ValueError(f"target_kl must be positive and finite, got {target_kl}.")
        self.epochs = int(epochs)
        self.clip_epsilon = float(clip_epsilon)
        self.target_kl = None if target_kl is None else float(target_kl)
        super().__init__(token_space, seed, **kwargs)

    @property
    def hyperparameters(self):
        return {**super().hyperparameters, "epochs": self.epochs,
                "clip_epsilon": self.clip_epsilon, "target_kl": self.target_kl}

    def _moved_far_enough(self, tokens, proximal_log_probs):
        if self.target_kl is None:
            return False
        log_probs, _ = self.policy(tokens)
        return self._update_size(log_probs - proximal_log_probs)["approx_kl"] > (
            1.5 * self.target_kl)

    def _objective(self, ratio, advantages):
        clipped = tf.clip_by_value(ratio, 1.0 - self.clip_epsilon, 1.0 + self.clip_epsilon)
        return tf.minimum(ratio * advantages, clipped * advantages)

    def _update_size(self, log_ratio):
        """Adds `clip_fraction`: the share of the batch whose ratio the update left outside
        [1 - clip_epsilon, 1 + clip_epsilon], where the clip no longer held it."""
        beyond = tf.abs(tf.exp(log_ratio) - 1.0) > self.clip_epsilon
        return {**super()._update_size(log_ratio),
                "clip_fraction": float(tf.reduce_mean(tf.cast(beyond, tf.float32)))}


SEARCHERS: dict[str, type[Searcher]] = {
    cls.name: cls for cls in (PPOSearcher, ReinforceSearcher, RandomSearcher, EvolutionSearcher)}


def searcher_hyperparameters(name: str) -> dict[str, Any]:
    """The keyword arguments searcher `name` accepts, with their defaults."""
    if name not in SEARCHERS:
        raise ValueError(f"Unknown searcher {name!r}; choose one of {sorted(SEARCHERS)}.")
    defaults = {}
    for cls in SEARCHERS[name].__mro__:  # a subclass's default overrides its base's
        if "__init__" in vars(cls):
            for parameter in inspect.signature(cls.__init__).parameters.values():
                if parameter.default is not parameter.empty:
                    defaults.setdefault(parameter.name, parameter.default)
    return defaults


def make_searcher(name: str, token_space: rules.TokenSpace, seed: int = 0,
                  **hyperparameters) -> Searcher:
    """Builds searcher `name` ("ppo", "reinforce", "random" or "evolution")."""
    accepted = searcher_hyperparameters(name)
    unknown = set(hyperparameters) - set(accepted)
    if unknown:
        raise ValueError(
            f"Searcher {name!r} has no hyperparameters {sorted(unknown)}; it takes "
            f"{sorted(accepted)}.")
    return SEARCHERS[name](token_space, seed, **hyperparameters)
