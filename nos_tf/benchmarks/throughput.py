r"""Proxy-task throughput: the project's Evaluator against the naive way, on the same rules.

    python -m nos_tf.benchmarks.throughput                        # the full run (hours)
    python -m nos_tf.benchmarks.throughput --num_rules=12 --train_examples=2000 \
        --validation_examples=1000 --paper_rules=powersign,addsign,m_exp_v

Scores a fixed, seeded list of rules — `--num_rules` sampled uniformly from the
controller's token space (`nos_tf.rules.TokenSpace(--num_units)`), plus the paper's rules
— two ways, interleaved rule by rule so both see the same load on a shared machine:

- naive: what a user would write: for each grid learning rate a fresh model and
  `model.fit` with Keras's defaults for the lr-search epochs (on a machine without an
  accelerator Keras's `jit_compile="auto"` leaves the model's step to TensorFlow's
  kernels, as the evaluator does; RuleOptimizer XLA-compiles its own update here, and
  in the evaluator only with `--xla_updates`),
  then a fresh final run at the best; reward = its last val_accuracy, or 0 if its loss
  went NaN/Inf or exploded (the protocol's "diverged", here judged on the epoch losses
  after the run rather than by stopping it).
  It takes the same initial weights and batches (`nos_tf.data.make_pipeline`) as the
  evaluator, so the rewards differ only by what the evaluator's levers change. Its
  child normalizes with `keras.layers.BatchNormalization`, as a user's would.
- evaluator: `nos_tf.proxy.Evaluator` with the proxy flags (screening, fingerprint cache,
  successive halving, divergence stop, continued final run, one compiled step, the
  fused batch-norm kernel: the same function, a 1.5x faster step,
  `nos_tf.benchmarks.batch_norm`).

Prints both rewards and times per rule, then the seconds per rule of each (wall clock and
process CPU time, the latter less sensitive to other load on the machine), the speed-ups,
the Spearman correlation of the two reward lists, and the rules whose two rewards differ
most (what the correlation loses). The defaults: Fashion-MNIST with 10,000 training and
5,000 validation images, the proxy flags' protocol otherwise (the paper's learning-rate
grid and epochs, the evaluator's levers as `nos_tf.search` has them), 100 sampled rules
and the paper's 17. The proxy flags (`--train_examples`, `--abandon_below`, ...) are
listed in --help with this module's own.

The defaults take hours (the naive reference about 120 s of CPU a rule, as measured below).
With `--results_file`, each rule's row is appended to a JSON-lines file as it finishes, and
a run that was killed takes the rows of the same protocol back instead of measuring them
again; every rule's two figures still come from one process, side by side. The evaluator's
fingerprint cache starts empty in each process, which can only make it look slower.
`--num_shards` and `--shard_index` split the list between processes that share one
results file (one pinned to each core, say); a last run without them prints the figures
of the whole list from the file:

    taskset -c 0 python -m nos_tf.benchmarks.throughput --results_file=rows.jsonl \
        --abandon_below=0.2 --num_shards=2 --shard_index=0 &
    taskset -c 1 python -m nos_tf.benchmarks.throughput --results_file=rows.jsonl \
        --abandon_below=0.2 --num_shards=2 --shard_index=1
    python -m nos_tf.benchmarks.throughput --results_file=rows.jsonl --abandon_below=0.2

Measured on the defaults with `--abandon_below=0.2`, one core per process, over the 117
rules (100 sampled and the paper's 17): the evaluator 10.4x faster in process CPU (naive
118.5 s a rule, evaluator 11.4 s) and 11.1x by the wall clock (127.4 s and 11.5 s),
Spearman 0.78 between the two reward lists. A results file's rows carry the protocol and
this module's REVISION, a number raised whenever what a row measures changes (2: the
evaluator's fused batch norm; 3: random operands drawn by Philox; 4: halving's cuts ranked
on 1,000 validation images; 5: the evaluator's updates not XLA-compiled; 6: quotients
in products fingerprinted as one rule; 7: operands spelled out, such as `m / sqrt(v)`,
fingerprinted as the operand; 8: a division's δ kept from the graph optimizer's folding,
so `g / (sign(g) - 1)` trains as it is screened, the current one). These figures are REVISION 4's,
from rows of two sessions: the naive reference's halves and the rules the screen rejected
were measured at REVISION 3, which measures the same for them; the 35 rules the
evaluator trained were measured at REVISION 4, two processes pinned to one core each as
before. The CPU figure is the one less sensitive to the two halves being measured at
different times. A run on the paper's 17 rules alone
(`--num_rules=0`, two shards), both ways side by side, gave the same rewards as those rows,
and 2.71x in CPU (2.80x wall) where those rows give 2.80x (3.02x): 3% less, which would
put the whole list at ~10.1x in CPU. At REVISION 5 (updates not XLA-compiled, the
default) the same run gave 2.7x in CPU (2.8x wall): no change. At REVISION 3 the whole
list gave 9.5x in CPU and 9.6x wall, at REVISION 2 9.3x and 9.7x; Spearman 0.78 at both.
The screen decides most of both figures. A rejected rule costs milliseconds, so the
sampled rules, most of them rejected, ran 18.3x faster in CPU, and the paper's rules,
which all train, 2.8x. Where both train a rule, the two rewards mostly agree to three
digits (Spearman 0.94 over the 35 the evaluator trained).

Seven rules the naive reference trains above 0.2 are rejected by the screen as not
descent directions and score 0 here: a constant plus a sign term (`clip(g3, 1e-3) -
sqrt(sign(m))`, naive 0.70), an update that is never negative (`sqrt(adam)`, 0.56); no
cosine on random probes tells them from rules at chance
(`nos_tf.rules.semantics.MIN_DESCENT_COSINE`). Training them would not buy the correlation
either: 80 rules learn nothing (naive 0.2 or less), and the naive reference scores 46 of
them 0 — every learning rate diverged, or the final run did — and the others chance. An
evaluator exact on every other rule that scores those 80 alike reaches 0.85 (the figure
the benchmark prints after the correlation); one that also told the 0s from chance would
reach 0.97. The split is the rule's, not the seed's: on 26 of the 80 picked at random,
the evaluator with every lever off (`--noscreen_rules --halving_rate=1
--nocontinue_best_run --abandon_below=0`) gave the naive reference's split for 24, and on
`--proxy_seed=1` the same split as on seed 0 for 16 of 17. Only training tells it:
training every rule the NaN screen passes, the other levers kept, gave Spearman 0.88 at
about 5x (at REVISION 2, with the evaluator's rows for the rules the screen had rejected
measured in separate runs). Nor does a run without training tell it. The screen
rejects 82 rules: 17 give NaN on its probes, and the naive reference scores all 17 0;
the other 65 are constant or not downhill. Each of those 65 was applied to the child at
every grid rate, for the lr-search epoch and for a final run's five, with the gradients
frozen at the initial weights. Taking "exploded at the smallest rate" for 0 got 14 of
the 65 wrong (Spearman 0.87, had the evaluator scored them so). Nor did the rates at
which a rule exploded tell the two groups apart: of the rules that exploded in the
lr-search epoch at the largest rate only, the naive reference scores 5 at 0 and 6 above.
"""

import dataclasses
import json
import math
import sys
import time

import keras
import numpy as np
from absl import app, flags, logging
from scipy import stats

import nos_tf
from nos_tf import data, proxy, proxy_flags, rules
from nos_tf.benchmarks import run_main

flags.adopt_module_key_flags(proxy_flags)  # --help shows the protocol's flags too.

_NUM_RULES = flags.DEFINE_integer(
    "num_rules", 100, "Rules sampled from the token space.", lower_bound=0)
_NUM_UNITS = flags.DEFINE_integer(
    "num_units", 2, "Units per sampled rule (as the search's --units).", lower_bound=1,
    upper_bound=rules.MAX_UNITS)
_RULE_SEED = flags.DEFINE_integer("rule_seed", 0, "Seed of the rule sample.", lower_bound=0)
_RESULTS_FILE = flags.DEFINE_string(
    "results_file", None,
    "JSON-lines file of per-rule results, appended as each rule finishes; rows of the same "
    "protocol and REVISION already there are reused, so a killed run continues where it "
    "stopped.")
_NUM_SHARDS = flags.DEFINE_integer(
    "num_shards", 1, "Split the rule list into this many shards (for parallel processes).",
    lower_bound=1)
_SHARD_INDEX = flags.DEFINE_integer(
    "shard_index", 0, "Score only this shard: the rules at positions shard_index, "
    "shard_index + num_shards, ... of the list.", lower_bound=0)
_PAPER_RULES = flags.DEFINE_list(
    "paper_rules", list(nos_tf.PAPER_RULES),
    "Names of nos_tf.PAPER_RULES to add to the sample (empty: none).")

_SHOW_DISAGREEMENTS = 5  # Rules listed at the end, those whose two rewards differ most.

REVISION = 8
"""What the code measures, beside the flags: bumped whenever the evaluator or the naive
reference changes what a row holds (the screen, the child's layers, a lever), so that a
results file's older rows are measured again rather than mixed with new ones.
2: the evaluator's fused batch norm, the screen averaged over random draws.
3: random operands drawn by Philox named (`nos_tf.rules.semantics.RANDOM_ALGORITHM`):
other numbers, and fewer seconds both ways. For rules without random operands revision
2 would measure the same.
4: halving's cuts rank on 1,000 validation images (`halving_validation_examples`, a
flag and so also in the protocol's text). The naive reference, and the evaluator's
rejected rules, measure what revision 3 did.
5: the evaluator's updates are not XLA-compiled (`xla_updates`, in the protocol's text
too), and fingerprints read zero, tiny and large inputs (its cache may train a rule that
revision 4 answered from it). The naive reference measures what revision 4 did.
6: fingerprints order a quotient within a product canonically (`g * m / v` is
`g / v * m`): the evaluator's cache may answer a rule that revision 5 trained. The naive
reference measures what revision 5 did.
7: fingerprints name operands spelled out (`m / sqrt(v)` is `adam`, `g * g` is `g2`):
the evaluator's cache may answer a rule that revision 6 trained.
8: a division's δ is read from a variable, which the graph optimizer cannot fold away:
rules such as `g / (sign(g) - 1)` divided by exactly 0 in training, both ways, and
now train as they are screened."""

flags.set_default(proxy_flags.TRAIN_EXAMPLES, 10_000)
flags.set_default(proxy_flags.VALIDATION_EXAMPLES, 5_000)


def sample_rules(num_rules: int, num_units: int, seed: int) -> list[str]:
    """`num_rules` rules from uniformly random valid tokens, the same for the same seed."""
    space = rules.TokenSpace(num_units)
    rng = np.random.default_rng(seed)
    sampled = []
    for _ in range(num_rules):
        tokens = [rng.choice(np.flatnonzero(space.mask(p))) for p in range(len(space.sizes))]
        sampled.append(str(space.decode(tokens)))
    return sampled


class NaiveReference:
    """The protocol as a user would first write it: one `model.fit` per run."""

    def __init__(self, config: proxy.ProxyConfig):
        self.config = config
        self.data = config.load_data()
        self.steps_per_epoch = math.ceil(len(self.data.train[0]) / config.batch_size)

    def _fit(self, rule: str, learning_rate: float, epochs: int) -> float:
        """A fresh child trained `epochs` epochs; its final validation accuracy."""
        config = self.config
        model = proxy.build_child_network(  # with the batch-norm layer a user would use
            self.data.image_shape, self.data.num_classes, seed=config.seed,
            batch_norm=keras.layers.BatchNormalization,
        )
        model.compile(
            optimizer=nos_tf.RuleOptimizer(
                rule, learning_rate=learning_rate,
                decay_steps=epochs * self.steps_per_epoch, seed=config.seed,
            ),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=["accuracy"],
        )
        batches = data.make_pipeline(
            *self.data.train, config.batch_size, shuffle_seed=config.seed, epochs=None,
            reshuffle_each_iteration=False,
        )
        history = model.fit(
            batches, epochs=epochs, steps_per_epoch=self.steps_per_epoch,
            validation_data=self.data.validation, verbose=0,
            shuffle=False,  # The pipeline's order: Keras ignores its default, warning each fit.
        ).history
        if self._diverged(history["loss"], history["val_loss"][-1]):
            return 0.0
        return float(history["val_accuracy"][-1])

    def _diverged(self, train_losses: list[float], validation_loss: float) -> bool:
        """The protocol's "diverged", read off the losses after the run (the evaluator
        stops at the first bad step instead): a training loss that turned NaN/Inf or
        exploded past `divergence_factor` × the loss of a uniform guess, or weights that
        give non-finite validation outputs. Such a run scores 0."""
        limit = proxy.max_loss(self.config, self.data.num_classes)
        exploded = any(not loss <= limit for loss in train_losses)  # NaN compares False.
        return exploded or not math.isfinite(validation_loss)

    def reward(self, rule: str) -> float:
        try:
            scores = {
                lr: self._fit(rule, lr, self.config.lr_search_epochs)
                for lr in self.config.learning_rates
            }
            best = max(scores, key=scores.get)
            return self._fit(rule, best, self.config.epochs)
        except Exception as error:  # A rule that cannot even be trained scores nothing,
            # but say why: this is how RuleOptimizer's failure on rules without a
            # per-coordinate input (`ld`) once passed for agreement with the evaluator.
            logging.warning("naive reference could not train %r: %s", rule, error)
            return 0.0


@dataclasses.dataclass
class RuleResult:
    """One rule scored both ways, with the seconds each took."""

    rule: str
    naive_reward: float
    naive_wall: float
    naive_cpu: float
    reward: float
    wall: float
    cpu: float
    status: str


class ResultsFile:
    """Per-rule results in a JSON-lines file, each row tagged with the protocol it was
    measured under; only rows of the current protocol are taken back."""

    def __init__(self, path: str | None, protocol: str):
        self.path, self.protocol = path, protocol
        self.earlier: dict[str, RuleResult] = {}
        if path is None:
            return
        try:
            with open(path, "a+") as file:  # created if missing: fails now, not after a rule
                file.seek(0)
                text = file.read()
                whole_rows = text[:text.rfind("\n") + 1]
                rows = [_read_row(line, number)
                        for number, line in enumerate(whole_rows.splitlines(), start=1)]
                last = text[len(whole_rows):]
                if last:  # Without its newline: a row cut short by a kill, or an edit's.
                    if not last.startswith(_ROW_START):  # Another program's file.
                        raise ValueError(f"line {len(rows) + 1} is not a row of this "
                                         "benchmark's results")
                    try:  # Whole (the file edited): kept, ended as `append` ends rows.
                        rows.append(_read_row(last, len(rows) + 1))
                        file.write("\n")
                    except ValueError:  # Cut short by a kill: measured again.
                        file.truncate(len(whole_rows.encode()))
        except (OSError, ValueError) as error:  # Nothing written to it: ours or the user's.
            raise app.UsageError(f"--results_file={path} cannot be used: {error}") from None
        other_protocols = 0
        for row_protocol, result in rows:
            if row_protocol == protocol:
                self.earlier[result.rule] = result
            else:
                other_protocols += 1
        if other_protocols:  # Measured again, and appended beside them: say so.
            print(f"--results_file={path}: {other_protocols} rows of another protocol, "
                  "flags or revision are not used (give the flags they were measured "
                  "with to take them back)", file=sys.stderr)

    def append(self, result: RuleResult) -> None:
        if self.path is not None:
            with open(self.path, "a") as out:
                out.write(json.dumps({"protocol": self.protocol, **dataclasses.asdict(result)})
                          + "\n")


# Every row starts so (json.dumps keeps the order `append` gives): a file whose last,
# unfinished line does not is not one a killed benchmark left, and is not cut.
_ROW_START = '{"protocol": '


def _read_row(line: str, number: int) -> tuple[str, RuleResult]:
    """Line `number` of a results file: (its protocol, its result); ValueError naming
    the line when it is not a row `ResultsFile.append` wrote."""
    try:
        row = json.loads(line)
        return row.pop("protocol"), RuleResult(**row)
    except (ValueError, KeyError, TypeError, AttributeError):
        raise ValueError(f"line {number} is not a row of this benchmark's results") from None


def _timed(function, *args):
    wall, cpu = time.perf_counter(), time.process_time()
    value = function(*args)
    return value, time.perf_counter() - wall, time.process_time() - cpu


def _spearman(a: list[float], b: list[float]) -> float:
    """Spearman's rho, NaN without scipy's warning where a list is constant (a short run
    whose rules all stay at chance): no ranking to compare."""
    if len(set(a)) < 2 or len(set(b)) < 2:
        return math.nan
    return float(stats.spearmanr(a, b).statistic)


def _spearman_if_alike(naive_rewards: list[float], alike: list[bool]) -> float:
    """Spearman's rho of the naive rewards against the same list with one value (the
    lowest) wherever `alike`.

    With `alike` the rules that learn nothing, this is the correlation of an evaluator
    exact on every rule that learns, and which scores the others alike: what their ranks
    alone take from the figure. The naive reference scores such a rule 0 when every
    learning rate, or the final run, diverges, and chance otherwise, and Spearman counts
    those ranks as much as any; an evaluator that rejects such rules before training, or
    abandons them after the lr search, does not learn which.
    """
    floor = min(naive_rewards, default=0.0)
    return _spearman(naive_rewards, [floor if tie else reward
                                     for reward, tie in zip(naive_rewards, alike)])


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    unknown = sorted(set(_PAPER_RULES.value) - set(nos_tf.PAPER_RULES))
    if unknown:
        raise app.UsageError(f"unknown --paper_rules {unknown}; known: {list(nos_tf.PAPER_RULES)}")
    try:
        config = proxy_flags.config_from_flags()
    except ValueError as error:
        raise app.UsageError(str(error)) from None
    rule_list = sample_rules(_NUM_RULES.value, _NUM_UNITS.value, _RULE_SEED.value)
    rule_list += [nos_tf.PAPER_RULES[name] for name in _PAPER_RULES.value]
    if _SHARD_INDEX.value >= _NUM_SHARDS.value:
        raise app.UsageError(f"--shard_index={_SHARD_INDEX.value} must be below "
                             f"--num_shards={_NUM_SHARDS.value}.")
    # Every num_shards-th rule, so that each shard gets its part of the paper's rules,
    # which close the list and cost the most.
    if not rule_list:
        raise app.UsageError("No rules: set --num_rules or --paper_rules.")
    all_rules = len(rule_list)
    rule_list = rule_list[_SHARD_INDEX.value::_NUM_SHARDS.value]
    if not rule_list:
        raise app.UsageError(f"Shard {_SHARD_INDEX.value} of {_NUM_SHARDS.value} is empty: "
                             f"the list has {all_rules} rules.")

    results_file = ResultsFile(_RESULTS_FILE.value, f"{config!r} revision {REVISION}")
    naive, naive_wall, naive_cpu = _timed(NaiveReference, config)
    evaluator, fast_wall, fast_cpu = _timed(proxy.Evaluator, config)
    shard = (f" (shard {_SHARD_INDEX.value} of {_NUM_SHARDS.value})"
             if _NUM_SHARDS.value > 1 else "")
    print(f"{len(rule_list)} rules{shard}; {config}")
    print(f"setup: naive {naive_wall:.1f} s, evaluator {fast_wall:.1f} s (data, model)\n")
    print(f"{'naive':>7s} {'wall s':>7s} {'evaluator':>9s} {'wall s':>7s}  {'status':<9s} rule")
    results = []
    for rule in rule_list:
        result = results_file.earlier.get(rule)
        if result is None:
            naive_reward, naive_rule_wall, naive_rule_cpu = _timed(naive.reward, rule)
            evaluation, wall, cpu = _timed(evaluator.evaluate, rule)
            result = RuleResult(rule, naive_reward, naive_rule_wall, naive_rule_cpu,
                                evaluation.reward, wall, cpu, evaluation.status)
            results_file.append(result)
        results.append(result)
        print(f"{result.naive_reward:7.4f} {result.naive_wall:7.1f} {result.reward:9.4f} "
              f"{result.wall:7.1f}  {result.status:<9s} {rule}"
              + ("  (from --results_file)" if rule in results_file.earlier else ""), flush=True)
    naive_wall += sum(result.naive_wall for result in results)
    naive_cpu += sum(result.naive_cpu for result in results)
    fast_wall += sum(result.wall for result in results)
    fast_cpu += sum(result.cpu for result in results)
    naive_rewards = [result.naive_reward for result in results]
    fast_rewards = [result.reward for result in results]
    trained = [result.status != proxy.REJECTED for result in results]

    count = len(rule_list)
    rho = _spearman(naive_rewards, fast_rewards)
    print(f"\nper rule, wall clock: naive {naive_wall / count:.2f} s, evaluator "
          f"{fast_wall / count:.2f} s -> speed-up {naive_wall / fast_wall:.1f}x")
    print(f"per rule, process CPU: naive {naive_cpu / count:.2f} s, evaluator "
          f"{fast_cpu / count:.2f} s -> speed-up {naive_cpu / fast_cpu:.1f}x")
    print(f"Spearman correlation of the rewards: {rho:.3f} over {count} rules")
    # Rejected rules all score 0 here but scatter around chance in the naive run; among
    # the rules both trained, the correlation shows what the training levers change.
    both = [i for i, was_trained in enumerate(trained) if was_trained]
    if len(both) >= 3:
        rho_trained = _spearman([naive_rewards[i] for i in both], [fast_rewards[i] for i in both])
        print(f"Spearman over the {len(both)} rules the evaluator trained: {rho_trained:.3f}")
    # Twice chance: a rule below learns nothing (the setup abandons such rules
    # with --abandon_below=0.2 on its 10 classes).
    chance_bound = 2 / naive.data.num_classes
    learns_nothing = [reward <= chance_bound for reward in naive_rewards]
    print(f"{sum(learns_nothing)} rules score at most {chance_bound:.2g} the naive way, "
          f"{naive_rewards.count(0.0)} of them 0 (diverged or failed); an evaluator exact on "
          f"every other rule and scoring these alike would reach Spearman "
          f"{_spearman_if_alike(naive_rewards, learns_nothing):.3f}")
    # What the correlation loses, rule by rule: with most sampled rules at chance both
    # ways, a few rules scored far apart (a screened-out rule that trains, a chaotic one)
    # move it more than all the others.
    by_disagreement = sorted(results, key=lambda r: abs(r.naive_reward - r.reward), reverse=True)
    print("\nlargest disagreements (naive, evaluator, status, rule):")
    for result in by_disagreement[:_SHOW_DISAGREEMENTS]:
        print(f"{result.naive_reward:7.4f} {result.reward:9.4f}  {result.status:<9s} {result.rule}")


if __name__ == "__main__":
    run_main(main)
