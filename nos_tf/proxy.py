"""The proxy task: how a candidate update rule earns its reward (Bello et al., section 4).

The paper trains a small ConvNet — two 3×3 convolutions of 32 filters with batch norm and
ReLU, then a classifier — with the candidate rule, batch 100. The learning rate is chosen
from {1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1} by one epoch of training at each, then the network
trains 5 epochs at the best, and the reward is the final accuracy on a validation set held
out from the training split.

`Evaluator` runs that protocol for many rules in one process, and spends as little as it
can on each without changing what the reward measures:

- *Before any training*, a rule that fails to build, ignores the gradient or does not point
  downhill is rejected by `nos_tf.rules.screen` in milliseconds (a fraction of a second
  for a rule with random operands, judged on average over their draws), and a rule whose
  behavioural fingerprint was already scored gets the earlier result.
- *Compile once.* The network is built once; every run starts from the same saved initial
  weights. Its gradient computation is one `tf.function`, traced once for all rules; each
  rule's optimizer is built once (its update traced once, compiled with XLA only with
  `xla_updates`) and reused for every learning rate, its state restored between runs.
  The model itself is not jit-compiled: on CPU, XLA did not run its convolutions faster
  than oneDNN does.
- *Fused batch norm.* The child normalizes with TensorFlow's fused kernel
  (`nos_tf.models.batch_norm`): Keras's function, and a training step 1.5× faster on CPU.
- *Data in memory*, one stream of batches: every learning rate sees the same batches in
  the same order, so their comparison is not blurred by data order.
- *Stop diverging runs at once*: a loss that turns NaN/Inf or explodes ends that run with
  score 0; a rule with no learning rate left (or whose final run diverges) gets reward 0
  and status "diverged".
- *Successive halving* of the learning-rate grid (Jamieson & Talwalkar, 2016): every rate
  trains a fraction of its epoch, the best 1/η go on, until the last survivors have had the
  full lr-search budget and the best of them is chosen — by the paper's criterion, full
  lr-search training then validation accuracy, at a fraction of the cost. The cuts rank
  the runs on the first `halving_validation_examples` of the (shuffled) validation set;
  the choice and the reward read all of it.
- *The search run is the start of the final run.* With the same initial weights, batches
  and optimizer, a fresh final run at the chosen rate would repeat the winner's search run
  step for step, so the final run continues it instead. (Decay operands then see T = the
  final run's steps in the search runs too.)
- *Give up on rules that learn nothing*: optionally, a rule whose best lr-search accuracy
  stays below `abandon_below` is not trained further; its reward is that accuracy.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import time
from typing import Callable

import keras
import numpy as np
import tensorflow as tf

from nos_tf import data as data_lib
from nos_tf import rules as rules_lib
from nos_tf.models.batch_norm import FusedBatchNormalization
from nos_tf.optimizer import RuleOptimizer

PAPER_LEARNING_RATES = (1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0)

OK, DIVERGED, REJECTED, ERROR = "ok", "diverged", "rejected", "error"

_EVAL_BATCH_SIZE = 1000  # Inference only: larger batches are faster and change nothing.


@dataclasses.dataclass(frozen=True)
class ProxyConfig:
    """The proxy task: data, child network training protocol, and the evaluator's levers.

    Attributes:
      dataset: "cifar10" (the paper's), "fashion_mnist" or "digits" (`nos_tf.data`).
      data_dir: where the dataset lives (see `nos_tf.data.load_images`).
      data_source: for a dataset with several kinds of source, the one read
        (`nos_tf.data.source_of`: fashion_mnist's IDX files or TFDS, whose orders hold out
        other validation examples); None: the first found. The binaries set it to the
        kind their machine reads, so each worker of a search reads that one or refuses to
        start.
      train_examples: training examples kept after holding out validation (None: all).
      validation_examples: held out from the training split for the reward (None: 10%).
      batch_size: the paper's 100.
      learning_rates: the grid the learning rate is chosen from.
      lr_search_epochs: epochs of training at each grid point before choosing.
      epochs: epochs of the final run at the chosen rate; its validation accuracy is the
        reward.
      seed: data split, initial weights, batch order and the rule's random operands.
      screen_rules: reject rules by `nos_tf.rules.screen` before training.
      halving_rate: η of successive halving over the grid (keep the best 1/η at each
        rung, at least 2; see `halving_schedule`); 1 trains every rate for the full
        lr-search budget.
      halving_validation_examples: how many validation examples rank the runs at the
        cuts of successive halving (None, or more than the set holds: all). The last
        rung, which chooses the rate, and the reward use the whole validation set. A
        pass over 5,000 Fashion-MNIST images takes ~0.7 s on one core, and the cut made
        6 of a trained rule's 9 passes; on 1,000 images an accuracy's standard error is
        at most 1.6 points, while rates a decade apart after a third of an epoch mostly
        differ by more, and the cut keeps two. On the throughput benchmark's 117 rules
        (revision 4) this took 8% off the evaluator's CPU time and changed 1 of the 35
        trained rules' rewards (0.851 to 0.840; the naive reference's is 0.840).
      continue_best_run: the final run continues the chosen rate's search run instead of
        repeating it from scratch (needs halving to finish the winner's search budget,
        which it does).
      divergence_factor: a run whose loss exceeds this many times the loss of a uniform
        guess, log(num_classes), has exploded and stops. High rates often spike to 20–30×
        in the first steps and recover (measured: SGD at 0.1, Adam at 0.01), so 100×.
        Some spike further and still recover: on the cpu preset's data RMSProp at 0.01
        reached 64–107× over seeds 0–4 (one run was cut, 0.768 after the epoch had it
        gone on), Adam and RMSProp at 0.1 over 200×; where measured, another rate won
        anyway. Part of the protocol: a larger factor costs time on exploding rules.
      abandon_below: a rule whose best lr-search accuracy is below this is not trained
        further (0 trains every rule to the end, as the paper does).
      xla_updates: compile each rule's update with XLA (`RuleOptimizer(jit_compile=True)`).
        Off by default: a compiled update is kept for the life of the process, ~4 MiB a
        rule (a worker that evaluates thousands runs out of memory), and on the cpu preset
        it saves nothing (six paper rules: 119 s of CPU with it, 116 s without). XLA rounds
        otherwise and draws other random numbers, so rewards differ a little either way:
        part of the protocol. Runs recorded before the field existed used XLA.
    """

    dataset: str = "fashion_mnist"
    data_dir: str | None = None
    data_source: str | None = None
    train_examples: int | None = None
    validation_examples: int | None = None
    batch_size: int = 100
    learning_rates: tuple[float, ...] = PAPER_LEARNING_RATES
    lr_search_epochs: int = 1
    epochs: int = 5
    seed: int = 0
    screen_rules: bool = True
    halving_rate: int = 3
    halving_validation_examples: int | None = 1000
    continue_best_run: bool = True
    divergence_factor: float = 100.0
    abandon_below: float = 0.0
    xla_updates: bool = False

    def __post_init__(self):
        object.__setattr__(self, "learning_rates", tuple(float(lr) for lr in self.learning_rates))
        problems = []
        if not self.learning_rates:
            problems.append("learning_rates must name at least one rate")
        elif any(not 0 < lr < math.inf for lr in self.learning_rates):
            problems.append(f"learning_rates must be positive and finite, got "
                            f"{self.learning_rates}")
        elif len(set(self.learning_rates)) < len(self.learning_rates):
            # Each rate's run is recorded under the rate: a copy's would stand for another's.
            problems.append(f"learning_rates must differ, got {self.learning_rates}")
        if self.batch_size < 1:
            problems.append(f"batch_size must be at least 1, got {self.batch_size}")
        if self.train_examples is not None and self.batch_size > self.train_examples:
            problems.append(  # Each epoch would be one step, of fewer examples than asked.
                f"batch_size {self.batch_size} is above train_examples {self.train_examples}")
        if not 0 <= self.seed < 2**31:  # The random operands' seeds are int32.
            problems.append(f"seed must be in [0, 2**31), got {self.seed}")
        if not 1 <= self.lr_search_epochs <= self.epochs:
            problems.append(
                f"need 1 <= lr_search_epochs <= epochs, got {self.lr_search_epochs} and "
                f"{self.epochs}"
            )
        if self.halving_rate < 1:
            problems.append(f"halving_rate must be at least 1, got {self.halving_rate}")
        if self.halving_validation_examples is not None and self.halving_validation_examples < 1:
            problems.append(
                "halving_validation_examples must be at least 1 (or None: all), got "
                f"{self.halving_validation_examples}"
            )
        if not 1 < self.divergence_factor < math.inf:
            problems.append(f"divergence_factor must exceed 1 and be finite, got "
                            f"{self.divergence_factor}")
        if not 0 <= self.abandon_below <= 1:  # An accuracy: above 1 abandons every rule.
            problems.append(f"abandon_below must be in [0, 1], got {self.abandon_below}")
        if problems:
            raise ValueError("invalid ProxyConfig: " + "; ".join(problems))

    def load_data(self) -> data_lib.ImageData:
        """The data the protocol trains and scores on: the split its seed draws from the
        kind of source it names."""
        return data_lib.load_images(
            self.dataset,
            data_dir=self.data_dir,
            validation_examples=self.validation_examples,
            train_examples=self.train_examples,
            seed=self.seed,
            source=self.data_source,
        )

    def protocol(self) -> dict:
        """Every field that can change a reward, JSON-ready: two configs give comparable
        rewards only if these are equal (the trial store shares results between runs by
        it, and resumes a run only with its own).

        `halving_validation_examples` is left out where no cut reads a subset: the runs
        are then ranked on the whole set, as they were before the field existed, so the
        protocols trial stores recorded then still match. Likewise `xla_updates` where it
        is on, as every update was before it existed, and `data_source` but TFDS's: the
        stores that predate it were made on machines with Debian's IDX files.
        """
        fields = dataclasses.asdict(self)
        if self.data_source != data_lib.TFDS:
            del fields["data_source"]
        fields["learning_rates"] = list(self.learning_rates)
        if not self._cuts_read_a_subset():
            del fields["halving_validation_examples"]
        if self.xla_updates:
            del fields["xla_updates"]
        return fields

    def _cuts_read_a_subset(self) -> bool:
        """Whether `halving_validation_examples` changes anything: the schedule has cuts
        (more than one rung; their number does not depend on the steps) and it is below
        the validation set's size, where that is known."""
        subset = self.halving_validation_examples
        rungs = halving_schedule(len(self.learning_rates), self.halving_rate, search_steps=1)
        return (
            subset is not None and len(rungs) > 1
            and (self.validation_examples is None or subset < self.validation_examples)
        )


@dataclasses.dataclass
class EvalResult:
    """What one evaluation found.

    Attributes:
      rule: the rule's text (or the optimizer's name for a baseline).
      fingerprint: the rule's behavioural fingerprint ("" when it never got one).
      reward: final validation accuracy; 0 when rejected, diverged or failed.
      status: "ok", "diverged", "rejected" or "error" (executors add "timeout", "failed").
      lr: the chosen learning rate (None when none was chosen).
      lr_scores: validation accuracy of each learning rate tried, after the most training
        it got (halving stops the worse ones early; a rate that did not reach the last
        rung is scored on the cut's `halving_validation_examples`; a diverged run
        scores 0).
      wall_time: seconds.
      reason: why it was rejected, diverged or failed, or notes on a cache hit.
      worker: who evaluated it (filled in by executors).
      lr_steps: the training steps each of `lr_scores` is after: the lr-search budget,
        or fewer for a rate halving pruned (or one that diverged). Without it a pruned
        rate's accuracy, after a fraction of an epoch, reads as a full lr-search score.
        Not kept by the trial store ({} for results read back from it).
      diverged_lrs: the rates of `lr_scores` whose run diverged, in increasing order: their
        0 is not an accuracy, and without them reads like a pruned rate's. Not kept by the
        trial store either.
    """

    rule: str
    fingerprint: str
    reward: float
    status: str
    lr: float | None = None
    lr_scores: dict[float, float] = dataclasses.field(default_factory=dict)
    wall_time: float = 0.0
    reason: str = ""
    worker: str = ""
    lr_steps: dict[float, int] = dataclasses.field(default_factory=dict)
    diverged_lrs: list[float] = dataclasses.field(default_factory=list)

    def to_dict(self) -> dict:
        """JSON-able: lr_scores and lr_steps become lists of [lr, value] pairs (JSON keys
        are text)."""
        fields = dataclasses.asdict(self)
        fields["lr_scores"] = [[float(lr), float(s)] for lr, s in sorted(self.lr_scores.items())]
        fields["lr_steps"] = [[float(lr), int(n)] for lr, n in sorted(self.lr_steps.items())]
        fields["diverged_lrs"] = [float(lr) for lr in self.diverged_lrs]
        return fields

    @classmethod
    def from_dict(cls, fields: dict) -> "EvalResult":
        fields = dict(fields)
        fields["lr_scores"] = {float(lr): float(s) for lr, s in fields.get("lr_scores", [])}
        fields["lr_steps"] = {float(lr): int(n) for lr, n in fields.get("lr_steps", [])}
        return cls(**fields)


def build_child_network(
    image_shape: tuple[int, ...], num_classes: int, seed: int = 0, filters: int = 32,
    batch_norm: type[keras.layers.BatchNormalization] = FusedBatchNormalization,
) -> keras.Model:
    """The paper's child: two 3×3 conv layers (32 filters), batch norm, ReLU; a linear head.

    The head flattens the feature maps: global average pooling throws away where things
    are, and after one short epoch leaves every learning rate near chance. Batch norm
    uses momentum 0.9 so that its moving statistics — which validation uses — settle
    within the first hundred steps of a short run. Initial weights are fixed by `seed`.

    `batch_norm` is the layer class: by default TensorFlow's fused kernel, which computes
    Keras's `BatchNormalization` and makes the training step 1.5× faster on CPU
    (`nos_tf.models.batch_norm`).
    """
    seeds = iter(range(seed * 1000, seed * 1000 + 1000))
    layers = [keras.Input(shape=tuple(image_shape))]
    for _ in range(2):
        layers += [
            keras.layers.Conv2D(
                filters, 3, padding="same", use_bias=False,  # BN's β is the bias.
                kernel_initializer=keras.initializers.HeNormal(seed=next(seeds)),
            ),
            batch_norm(momentum=0.9),
            keras.layers.ReLU(),
        ]
    layers += [
        keras.layers.Flatten(),
        keras.layers.Dense(
            num_classes, kernel_initializer=keras.initializers.GlorotUniform(seed=next(seeds))
        ),
    ]
    return keras.Sequential(layers, name="child")


def max_loss(config: ProxyConfig, num_classes: int) -> float:
    """The loss past which a run has exploded (the protocol's "diverged"):
    `divergence_factor` times the loss of a uniform guess, log(num_classes)."""
    return config.divergence_factor * math.log(num_classes)


def halving_schedule(
    num_rates: int, halving_rate: int, search_steps: int
) -> list[tuple[int, int]]:
    """Successive halving's rungs over a grid of `num_rates` learning rates.

    Returns (runs trained at this rung, steps each has trained by its end) per rung: the
    best ⌈n/η^k⌉ runs of rung k−1 go on, and budgets grow by η up to the full
    `search_steps`, which the last rung — the fewest runs that still leave a choice, at
    least 2 — reaches.
    So the choice is made as the paper makes it, on full lr-search runs, e.g. for 6 rates
    and η = 3: all 6 for a third of the budget, then the best 2 to the end (3.3 of 6 runs'
    worth of training). `halving_rate` 1 trains every rate for the whole budget.
    A grid of n ≤ η rates (more than 2) is cut once, to its best 2: keeping ⌈n/η⌉ = 1
    would leave no choice, and skipping the cut would make any η ≥ n train every rate
    fully, as η = 1 does — a larger η pruning less than a smaller one.
    """
    rungs = 1 if halving_rate > 1 and num_rates > 2 else 0
    while rungs and math.ceil(num_rates / halving_rate ** (rungs + 1)) >= 2:
        rungs += 1
    return [
        (
            num_rates if rung == 0 else max(2, math.ceil(num_rates / halving_rate**rung)),
            max(1, math.ceil(search_steps / halving_rate ** (rungs - rung))),
        )
        for rung in range(rungs + 1)
    ]


@dataclasses.dataclass(eq=False)  # A run is itself: `in` and `==` compare identity.
class _Run:
    """One training run at one learning rate, pausable: its weights (batch-norm statistics
    included) and optimizer state live here while another run uses the model."""

    learning_rate: float
    weights: list
    optimizer_state: list
    steps: int = 0
    score: float = 0.0
    scored_on: int = 0  # Validation examples `score` was measured on.
    diverged: bool = False


class Evaluator:
    """Scores update rules on the proxy task. Loads the data and builds the model once.

    Construct one per process (`functools.partial(Evaluator, config)` for workers), then
    call `evaluate(rule)` as often as needed; results do not depend on what was evaluated
    before.
    """

    def __init__(self, config: ProxyConfig):
        self.config = config
        self.data = config.load_data()
        self._child = _ChildNetwork(self.data, config)
        self._results_by_fingerprint: dict[str, EvalResult] = {}

    # ------------------------------------------------------------------ public API ---

    def evaluate(self, rule: rules_lib.Rule | str) -> EvalResult:
        """Screens, deduplicates and trains one rule; never raises for a bad rule."""
        start = time.monotonic()
        text = str(rule)
        try:
            rule = rules_lib.as_rule(rule)
            text = str(rule)
            fingerprint = rule.fingerprint()
        except Exception as error:  # A syntax error is the rule's fault, not ours.
            return EvalResult(text, "", 0.0, REJECTED, reason=f"fails to build: {error}",
                              wall_time=time.monotonic() - start)
        earlier = self._results_by_fingerprint.get(fingerprint)
        if earlier is not None:
            return dataclasses.replace(  # Copies of the containers: the cache's are its own.
                earlier, rule=text, wall_time=time.monotonic() - start,
                reason=_join(earlier.reason, f"cached: same fingerprint as {earlier.rule}"),
                lr_scores=dict(earlier.lr_scores), lr_steps=dict(earlier.lr_steps),
                diverged_lrs=list(earlier.diverged_lrs),
            )
        reason = rules_lib.screen(rule) if self.config.screen_rules else None
        if reason is not None:
            result = EvalResult(text, fingerprint, 0.0, REJECTED, reason=reason)
        else:
            result = self._score(
                text, fingerprint, functools.partial(self._rule_optimizer, rule)
            )
        result.wall_time = time.monotonic() - start
        if result.status != ERROR:  # Errors may be transient (memory); try them again.
            self._results_by_fingerprint[fingerprint] = result
        return result

    def evaluate_optimizer(
        self, name: str, make_optimizer: Callable[[float], keras.optimizers.Optimizer]
    ) -> EvalResult:
        """Scores a plain Keras optimizer (a baseline) under the same protocol.

        `make_optimizer(learning_rate)` returns a fresh optimizer. Like a rule's, it is
        made once for the learning-rate search, at the grid's first rate, and each run sets
        its own rate (the final run makes another without `continue_best_run`): so it must
        take a float learning rate (not a schedule), and be the same at every rate.
        """
        start = time.monotonic()
        result = self._score(name, "", lambda lr, decay_steps: make_optimizer(lr))
        result.wall_time = time.monotonic() - start
        return result

    # ------------------------------------------------------------------- protocol ---

    def _rule_optimizer(self, rule, learning_rate, decay_steps):
        return RuleOptimizer(
            rule, learning_rate=learning_rate, decay_steps=decay_steps, seed=self.config.seed,
            jit_compile=self.config.xla_updates,
        )

    def _score(self, text, fingerprint, make_optimizer) -> EvalResult:
        """The protocol: choose the learning rate, train at it, read validation accuracy."""
        config = self.config
        search_steps = config.lr_search_epochs * self._child.steps_per_epoch
        final_steps = config.epochs * self._child.steps_per_epoch
        search_decay_steps = final_steps if config.continue_best_run else search_steps
        try:
            optimizer = make_optimizer(config.learning_rates[0], search_decay_steps)
            trainer = _Trainer(self._child, optimizer)
            runs = [trainer.new_run(lr) for lr in config.learning_rates]
            best = self._search(trainer, runs, search_steps)
            result = EvalResult(
                text, fingerprint, 0.0, OK, lr=best.learning_rate,
                lr_scores={run.learning_rate: run.score for run in runs},
                lr_steps={run.learning_rate: run.steps for run in runs},
                diverged_lrs=sorted(run.learning_rate for run in runs if run.diverged),
            )
            if best.diverged:
                result.status, result.lr = DIVERGED, None
                result.reason = "diverged at every learning rate"
                return result
            if best.score < config.abandon_below:
                result.reward = best.score
                result.reason = (
                    f"abandoned after the lr search: best accuracy {best.score:.4f} < "
                    f"abandon_below={config.abandon_below}"
                )
                return result
            if not config.continue_best_run:
                trainer = _Trainer(self._child, make_optimizer(best.learning_rate, final_steps))
                best = trainer.new_run(best.learning_rate)
            trainer.train(best, final_steps)
            if best.diverged:
                result.status, result.reason = DIVERGED, "diverged in the final run"
                return result
            result.reward = best.score
            return result
        except Exception as error:  # The rule (or optimizer) broke training: report it.
            return EvalResult(text, fingerprint, 0.0, ERROR,
                              reason=f"{type(error).__name__}: {error}")

    def _search(self, trainer: "_Trainer", runs: list[_Run], search_steps: int) -> _Run:
        """Successive halving over `runs` (see `halving_schedule`); returns the best run.

        If every survivor of the last cut diverges later in the epoch, the runs the cuts set
        aside are finished the same way: the rule is diverged only if every rate diverges,
        as in the paper's protocol, where each trains the whole epoch. (A rate that leads
        early and then explodes is the typical unstable rule; without this it outranked a
        slower rate that would have been chosen, and the rule scored 0.) Their cuts reuse
        the scores the first cuts gave them; their last rung scores on the whole set.
        """
        alive = list(runs)
        schedule = halving_schedule(len(runs), self.config.halving_rate, search_steps)
        for rung, (survivors, budget) in enumerate(schedule):
            choosing = rung == len(schedule) - 1  # The cuts before it rank on a subset.
            examples = None if choosing else self.config.halving_validation_examples
            alive = alive[:survivors]
            for run in alive:
                trainer.train(run, budget, validation_examples=examples)
            # A diverged run goes after a live one that scored 0 too; stable: other ties
            # keep grid order.
            alive.sort(key=lambda run: (not run.diverged, run.score), reverse=True)
        set_aside = [run for run in runs if not run.diverged and run not in alive]
        if alive[0].diverged and set_aside:
            return self._search(trainer, set_aside, search_steps)
        return alive[0]


class _ChildNetwork:
    """The child network on its data: one model, one batch stream, compiled once.

    Every run starts from the same initial weights and follows the same stream of
    training batches; the loss-and-gradients step and the validation forward pass are
    `tf.function`s traced once for all rules (not jit-compiled, see the module docstring).
    """

    def __init__(self, images: data_lib.ImageData, config: ProxyConfig):
        self.validation = images.validation
        self.steps_per_epoch = math.ceil(len(images.train[0]) / config.batch_size)
        self.batches = data_lib.make_pipeline(
            *images.train, config.batch_size, shuffle_seed=config.seed, epochs=None,
            reshuffle_each_iteration=False,
        )
        self.model = build_child_network(images.image_shape, images.num_classes, config.seed)
        self.initial_weights = self.model.get_weights()
        self._max_loss = max_loss(config, images.num_classes)
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        model = self.model

        @tf.function
        def loss_and_gradients(images, labels):
            with tf.GradientTape() as tape:
                value = loss(labels, model(images, training=True))
            return value, tape.gradient(value, model.trainable_variables)

        self.loss_and_gradients = loss_and_gradients
        self._logits = tf.function(lambda images: model(images, training=False))

    def exploded(self, loss: float) -> bool:
        """NaN/Inf, or `divergence_factor` times the loss of a uniform guess."""
        return not math.isfinite(loss) or loss > self._max_loss

    def validation_size(self, examples: int | None = None) -> int:
        """How many validation examples `validation_accuracy(examples)` reads."""
        total = len(self.validation[1])
        return total if examples is None else min(examples, total)

    def validation_accuracy(self, examples: int | None = None) -> float | None:
        """Accuracy of the current weights on the first `examples` of the validation set
        (None: all; it is held out in random order, so any prefix is a random sample);
        None if logits are not finite (the weights blew up in the last step)."""
        count = self.validation_size(examples)
        images, labels = self.validation[0][:count], self.validation[1][:count]
        correct = 0
        for start in range(0, len(images), _EVAL_BATCH_SIZE):
            logits = self._logits(images[start : start + _EVAL_BATCH_SIZE])
            if not bool(tf.reduce_all(tf.math.is_finite(logits))):
                return None
            predicted = np.argmax(logits.numpy(), axis=-1)
            correct += int(np.sum(predicted == labels[start : start + _EVAL_BATCH_SIZE]))
        return correct / len(images)


class _Trainer:
    """Trains runs of one optimizer (one rule) on the child network, one at a time.

    The optimizer is built and its update compiled once; each run keeps its own copy of
    the optimizer's state (moments, step, learning rate), swapped in while it trains.
    """

    def __init__(self, child: _ChildNetwork, optimizer: keras.optimizers.Optimizer):
        self._child = child
        self._optimizer = optimizer
        variables = child.model.trainable_variables
        optimizer.build(variables)
        self._apply = tf.function(lambda gradients: optimizer.apply(gradients, variables))

    def new_run(self, learning_rate: float) -> _Run:
        self._optimizer.learning_rate = learning_rate
        state = [v.numpy() for v in self._optimizer.variables]  # The initial state, at this lr.
        return _Run(learning_rate, self._child.initial_weights, state)

    def train(self, run: _Run, until_step: int, validation_examples: int | None = None) -> None:
        """Trains `run` up to `until_step` (total steps) and scores it on the first
        `validation_examples` of the validation set (None: all); a run whose loss
        explodes stops at once, diverged, with score 0. A run already that far is scored
        again only if its score read fewer examples."""
        child = self._child
        examples = child.validation_size(validation_examples)
        if run.diverged or (run.steps >= until_step and run.scored_on >= examples):
            return
        child.model.set_weights(run.weights)
        for variable, value in zip(self._optimizer.variables, run.optimizer_state):
            variable.assign(value)
        score = None
        for images, labels in child.batches.skip(run.steps).take(max(0, until_step - run.steps)):
            loss, gradients = child.loss_and_gradients(images, labels)
            self._apply(gradients)
            run.steps += 1
            if child.exploded(float(loss)):
                break
        else:
            score = child.validation_accuracy(examples)
        if score is None:
            run.diverged, run.score = True, 0.0
            run.weights = run.optimizer_state = None  # Never trained again.
            return
        run.score, run.scored_on = score, examples
        run.weights = child.model.get_weights()
        run.optimizer_state = [v.numpy() for v in self._optimizer.variables]


def _join(*parts: str) -> str:
    return "; ".join(part for part in parts if part)
