"""Does the controller learn? PPO against random search, same budget, same rewards.

    python -m nos_tf.benchmarks.search_efficiency [--searchers=ppo,random] [--seeds=20]
        [--evaluations=240] [--batch_size=12] [--units=1]
    python -m nos_tf.benchmarks.search_efficiency --reward=proxy --flagfile=flags/smoke.cfg

Runs each searcher for `--evaluations` proposals on each of `--seeds` seeds, all scored by
the same reward source, and prints for each searcher: the best reward after N
evaluations, the number of evaluations until the first rule that scores at least tuned
Adam (Adam with the best learning rate of the same sweep the rules get), how many distinct
rules it had trained by then, and the mean batch reward of its first and last quarters. The
closing line gives the ratio of PPO's evaluations-to-Adam to random search's, of their
means and of their medians (searches that never reach the target within the budget bias
the mean, not the median), each with a 95% bootstrap interval over seeds. Target: ≤ 0.5,
with PPO's mean batch reward rising.

An evaluation is one told proposal, repeats and screened-out rules included (the search
itself answers those from its store for free, so this count is conservative for a
searcher that repeats itself). The count of distinct rules trained is what the search pays
for instead; both searchers propose mostly rules the screen rejects, so it is about a
quarter of the proposals, and it gave the same ratio (seeds 0-139: 0.65 by the median
against 0.64 by proposals). Rules that `nos_tf.screen` rejects score 0, as in the
search; rewards are cached by fingerprint across searchers and seeds (they are
deterministic), so the searchers really are scored by one function.

A rarer target, `--functions=rosenbrock --evaluations=960` (tuned Adam's 0.2697 on
Rosenbrock alone; random search's median first hit 400 evaluations over seeds 0-39), gives
the controller time to learn before luck finds the target, and shows where the paper's PPO
(`--searcher_hyperparameter=entropy_floor=0`) fails: it collapses onto a near miss
(`drop(adam, 0.3)`, 0.2357) and repeats it, so 21 of 40 searches never reached the
target, against 10 of random search's; with `--searcher_hyperparameter=avoid_repeats=1`,
10 (median 222, PPO / random 0.56). The controller's default entropy floor keeps it from
collapsing: every search of the 40 reached the target, PPO / random 0.56 by the mean
(95% interval 0.42-0.75) and 0.61 by the median (0.39-0.90); with avoid_repeats as well,
0.47 (0.37-0.61) and 0.59 (0.38-0.85). On the default target the floor changed one of
seeds 0-39 (see `nos_tf.controller.PolicyGradientSearcher`).

Reward sources (`--reward`):
  functions  cheap: the rule's RuleOptimizer minimizes small deterministic problems
             (`--functions`: an ill-conditioned quadratic, Rosenbrock's valley) for
             `--function_steps` steps at each rate of `--function_learning_rates`; a
             problem's score is the fraction of `--function_decades` orders of magnitude by
             which its loss fell (0 when it rose or diverged), the reward the mean score at
             the best rate. With the defaults (200 steps, 12 decades) tuned Adam scores
             0.526 and about 1 random rule in 100 scores as much: a target that luck
             reaches in about a hundred evaluations and a learning searcher sooner.
             About 0.2 s to train a new rule on one core: the rule's update runs op by
             op (RuleOptimizer's jit_compile=False); the screen before it takes
             milliseconds, or 0.2-0.8 s for a rule with random operands (noise, drop).
             Compiled with XLA training took 0.67 s, and every compiled update stayed in
             the process until a 40-seed PPO run died in LLVM ("Cannot allocate
             memory"); the two differ only in the random streams of noise and drop,
             which XLA draws differently.
  proxy      the search's own reward: the child network of `nos_tf.proxy.Evaluator`,
             configured by the proxy flags (`--flagfile=flags/smoke.cfg`: digits, seconds
             per rule; the preset's search flags set this benchmark's `--units=2
             --batch_size=4` too, unless given after it). Tuned Adam is the rule `adam`
             under the same learning-rate search.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Sequence

import numpy as np
import tensorflow as tf
from absl import app, flags

import nos_tf
from nos_tf import controller, flag_checks, proxy, proxy_flags
from nos_tf.benchmarks import run_main

_REWARD = flags.DEFINE_enum(
    "reward", "functions", ["functions", "proxy"],
    "What scores a rule: small deterministic minimization problems, or the proxy child net.")
_SEARCHERS = flags.DEFINE_list("searchers", ["ppo", "random"], "Searchers to compare.")
_SEEDS = flags.DEFINE_integer(
    "seeds", 20,
    "Seeds (independent searches) per searcher. One search's first hit ranges from 3 to "
    "more than 240 evaluations, so the ratio moves with the seeds: PPO / random by the "
    "median was 0.47 over seeds 0-39 and 0.72 over seeds 40-139; over all 140, 0.62 and "
    "0.64 in two measurements (95% bootstrap interval about 0.45-0.85), and by the mean "
    "0.66 and 0.67 (0.55-0.81).", lower_bound=1)
_FIRST_SEED = flags.DEFINE_integer(
    "first_seed", 0, "Seeds are first_seed .. first_seed + seeds - 1 (fresh seeds check a "
    "setting chosen on others).", lower_bound=0)
_EVALUATIONS = flags.DEFINE_integer(
    "evaluations", 240, "Proposals told per search.", lower_bound=1)
_BATCH_SIZE = flags.DEFINE_integer("batch_size", 12, "Proposals per ask/tell.", lower_bound=1)
_UNITS = flags.DEFINE_integer(
    "units", 1, "Units per rule (TokenSpace num_units).", lower_bound=1,
    upper_bound=nos_tf.rules.MAX_UNITS)
_SAMPLED_AHEAD = flags.DEFINE_bool(
    "sampled_ahead", False, "Sample each batch before the one before it is told, as the "
    "search does to keep Ray's workers busy: every batch but the first is learnt from "
    "after an update it was sampled before.")
_LEARNING_RATE = flags.DEFINE_float(
    "controller_learning_rate", None, "Adam learning rate of ppo/reinforce (default: theirs).")
_HYPERPARAMETERS = flags.DEFINE_multi_string(
    "searcher_hyperparameter", [],
    "name=value for every searcher that takes it, e.g. epochs=8 or entropy_weight=0.01.")
_FUNCTIONS = flags.DEFINE_list(
    "functions", ["quadratic", "rosenbrock"], "Problems of --reward=functions.")
_FUNCTION_STEPS = flags.DEFINE_integer(
    "function_steps", 200, "Optimizer steps per problem (functions).", lower_bound=1)
_FUNCTION_LEARNING_RATES = flags.DEFINE_list(
    "function_learning_rates", ["1e-3", "1e-2", "1e-1", "1"],
    "Learning rates each rule (and Adam) is tried with; the best counts (functions).")
_FUNCTION_DECADES = flags.DEFINE_float(
    "function_decades", 12.0,
    "Orders of magnitude of loss reduction that score 1 (functions).")
flag_checks.require_finite(_FUNCTION_DECADES, positive=True)

ADAM = "adam"


@flags.validator("searchers", f"must name searchers of {sorted(controller.SEARCHERS)}")
def _searchers_exist(names: list[str]) -> bool:
    return bool(names) and set(names) <= set(controller.SEARCHERS)


@flags.validator("function_learning_rates",
                 "must be positive finite numbers separated by commas")
def _learning_rates_are_numbers(texts: list[str]) -> bool:
    try:
        return bool(texts) and all(0 < float(text) < math.inf for text in texts)
    except ValueError:
        return False


# --- The cheap reward: minimize small problems with the rule's RuleOptimizer. -------------


@dataclasses.dataclass(frozen=True)
class Problem:
    """A deterministic minimization problem with minimum 0: loss(x) from x0."""

    x0: tuple[float, ...]
    loss: Callable[[tf.Tensor], tf.Tensor]


def _quadratic(x):
    """½ Σ hᵢ xᵢ², curvatures hᵢ from 0.01 to 1 (condition number 100)."""
    curvatures = tf.constant(np.logspace(-2, 0, 10), x.dtype)
    return 0.5 * tf.reduce_sum(curvatures * x * x, axis=-1)


def _rosenbrock(x):
    """(1 − x)² + 100 (y − x²)², the curved valley the paper's Rosenbrock test uses."""
    return (1.0 - x[..., 0]) ** 2 + 100.0 * (x[..., 1] - x[..., 0] ** 2) ** 2


PROBLEMS = {
    "quadratic": Problem(x0=(1.0,) * 10, loss=_quadratic),
    "rosenbrock": Problem(x0=(-1.2, 1.0), loss=_rosenbrock),
}


@flags.validator("functions", f"must name problems of {sorted(PROBLEMS)}")
def _functions_exist(names: list[str]) -> bool:
    return bool(names) and set(names) <= set(PROBLEMS)


class FunctionsReward:
    """Reward of a rule: how far its RuleOptimizer gets on `problems` in `steps` steps."""

    def __init__(self, problems: Sequence[str], steps: int, learning_rates: Sequence[float],
                 decades: float, jit_compile: bool = False):
        unknown = set(problems) - set(PROBLEMS)
        if unknown:
            raise ValueError(f"Unknown --functions {sorted(unknown)}; choose from {sorted(PROBLEMS)}.")
        self.problems = [PROBLEMS[name] for name in problems]
        self.steps, self.learning_rates, self.decades = steps, list(learning_rates), decades
        self.jit_compile = jit_compile

    def __call__(self, rule: nos_tf.Rule) -> float:
        final = self._final_losses(rule)  # [learning rates, problems]
        initial = np.array([float(p.loss(tf.constant(p.x0))) for p in self.problems])
        with np.errstate(divide="ignore", invalid="ignore"):
            reduction = np.log10(initial / final) / self.decades
        # A loss of exactly 0 (the minimum reached) is an infinite reduction: the full
        # score. One that is NaN or infinite (diverged) scores 0.
        scores = np.nan_to_num(np.clip(reduction, 0.0, 1.0), nan=0.0)
        return float(scores.mean(axis=1).max())

    def _final_losses(self, rule):
        """Minimizes every problem at every learning rate at once; the losses at the end.

        Each problem's variable has one row per learning rate, and the optimizer's learning
        rate is the column of rates (a callable learning rate, which Keras reads each
        step): `w -= lr * rule(...)` then updates row i with rate i. The rule is element-
        wise, so rows never interact, and one optimizer, compiled once, does the sweep.
        """
        rates = tf.constant(self.learning_rates, tf.float32)[:, tf.newaxis]
        variables = [tf.Variable(tf.tile([p.x0], [len(self.learning_rates), 1]))
                     for p in self.problems]
        optimizer = nos_tf.RuleOptimizer(
            rule, learning_rate=lambda: rates, decay_steps=self.steps, seed=0,
            jit_compile=self.jit_compile)
        optimizer.build(variables)

        def losses():  # [learning rates, problems]
            return tf.stack([p.loss(v) for p, v in zip(self.problems, variables)], axis=1)

        @tf.function
        def minimize():
            for _ in tf.range(self.steps):
                with tf.GradientTape() as tape:
                    total = tf.reduce_sum(losses())
                optimizer.apply_gradients(zip(tape.gradient(total, variables), variables))
            return losses()

        return minimize().numpy().astype(np.float64)


def proxy_reward() -> Callable[[nos_tf.Rule], float]:
    """The search's reward: the proxy flags' child network trained with the rule."""
    try:
        evaluator = proxy.Evaluator(proxy_flags.config_from_flags())
    except ValueError as error:  # An impossible protocol, data that is not there.
        raise app.UsageError(str(error)) from None
    return lambda rule: float(evaluator.evaluate(rule).reward)


class CachedReward:
    """The search's reward protocol around a scorer: rules that `nos_tf.screen` rejects
    score 0 (when `screen`), and each fingerprint is scored once."""

    def __init__(self, score: Callable[[nos_tf.Rule], float], screen: bool = True):
        self.score, self.screen = score, screen
        self.cache: dict[str, float] = {}
        self.rejected: set[str] = set()  # fingerprints the screen answered, untrained

    def __call__(self, rule: nos_tf.Rule) -> float:
        key = rule.fingerprint()
        if key not in self.cache:
            if self.screen and nos_tf.screen(rule) is not None:
                self.rejected.add(key)
                self.cache[key] = 0.0
            else:
                self.cache[key] = self.score(rule)
        return self.cache[key]

    def trains(self, rule: nos_tf.Rule) -> bool:
        """Whether scoring `rule` (already scored) took training, not only the screen."""
        return rule.fingerprint() not in self.rejected


# --- The comparison. ----------------------------------------------------------------------


@dataclasses.dataclass
class SearchRun:
    rewards: np.ndarray  # in the order told
    # After each proposal told, how many distinct rules this search has had trained: what
    # its evaluations cost in `nos_tf.search`, where a repeat is a cache hit and a rule the
    # screen rejects costs milliseconds.
    rules_trained: np.ndarray
    batch_means: np.ndarray
    distinct_rules: int
    best_rule: str


def run_search(name: str, seed: int, reward: CachedReward, space: nos_tf.TokenSpace,
               hyperparameters: dict, evaluations: int, batch_size: int,
               sampled_ahead: bool = False) -> SearchRun:
    """One search: `evaluations` proposals, told in batches (with `sampled_ahead`, each
    asked before the one before it is told); hyperparameters that searcher `name` does not
    take are ignored (so one set can serve ppo and random)."""
    searcher = _make_searcher(name, space, seed, hyperparameters)
    rewards, rules_trained, batch_means, rules = [], [], [], {}
    trained: set[str] = set()
    asked: list[list[controller.Proposal]] = []
    proposed = 0
    while len(rewards) < evaluations:
        while proposed < evaluations and len(asked) < 1 + sampled_ahead:
            asked.append(searcher.ask(min(batch_size, evaluations - proposed)))
            proposed += len(asked[-1])
        batch = asked.pop(0)
        batch_rewards = [reward(proposal.rule) for proposal in batch]
        searcher.tell(batch, batch_rewards)
        for proposal in batch:
            if reward.trains(proposal.rule):
                trained.add(proposal.rule.fingerprint())
            rules_trained.append(len(trained))
        rewards += batch_rewards
        batch_means.append(np.mean(batch_rewards))
        rules.update({str(p.rule): r for p, r in zip(batch, batch_rewards)})
    return SearchRun(np.array(rewards), np.array(rules_trained), np.array(batch_means),
                     len(rules), max(rules, key=rules.get))


def evaluations_to_reach(rewards: np.ndarray, target: float) -> int | None:
    reached = np.flatnonzero(rewards >= target)
    return int(reached[0]) + 1 if reached.size else None


def rules_trained_to_reach(run: SearchRun, target: float) -> int | None:
    """Distinct rules the search had trained when it first reached `target`."""
    reached = evaluations_to_reach(run.rewards, target)
    return int(run.rules_trained[reached - 1]) if reached else None


_VALUE_KINDS = {bool: "true or false", int: "an integer", float: "a number"}


def _searcher_hyperparameters() -> dict:
    """--controller_learning_rate and each --searcher_hyperparameter name=value, the value
    read as the type of the name's default (`normalize_advantages=false` is a bool).

    Raises:
      app.UsageError: not name=value, a name none of --searchers takes (it would be
        ignored silently; so would --controller_learning_rate without ppo or reinforce),
        or a value not of its type.
    """
    hyperparameters = {}
    defaults = {}
    for name in _SEARCHERS.value:
        defaults.update(controller.searcher_hyperparameters(name))
    if _LEARNING_RATE.value is not None:
        if "learning_rate" not in defaults:
            raise app.UsageError(
                f"--controller_learning_rate: none of the searchers {_SEARCHERS.value} has "
                "a controller to learn (ppo and reinforce do).")
        hyperparameters["learning_rate"] = _LEARNING_RATE.value
    for item in _HYPERPARAMETERS.value:
        key, separator, value = item.partition("=")
        if not separator:
            raise app.UsageError(f"--searcher_hyperparameter={item!r} is not name=value.")
        if key not in defaults:
            raise app.UsageError(
                f"--searcher_hyperparameter={item!r}: none of the searchers "
                f"{_SEARCHERS.value} takes {key!r}; they take {sorted(defaults)}.")
        kind = type(defaults[key])
        try:
            hyperparameters[key] = (flags.BooleanParser().parse(value) if kind is bool
                                    else kind(value))
        except ValueError:
            raise app.UsageError(f"--searcher_hyperparameter={item!r}: {key} takes "
                                 f"{_VALUE_KINDS[kind]}, not {value!r}.") from None
    return hyperparameters


def _make_searcher(name: str, space: nos_tf.TokenSpace, seed: int,
                   hyperparameters: dict) -> controller.Searcher:
    """Searcher `name` with those of `hyperparameters` it takes."""
    accepted = controller.searcher_hyperparameters(name)
    return controller.make_searcher(
        name, space, seed, **{k: v for k, v in hyperparameters.items() if k in accepted})


def _check_searchers(space: nos_tf.TokenSpace, hyperparameters: dict) -> None:
    """Raises app.UsageError when a searcher of --searchers refuses its hyperparameters:
    found while the first search started, it came as a traceback, after the target was
    scored (with --reward=proxy, a whole protocol's training)."""
    for name in _SEARCHERS.value:
        try:
            _make_searcher(name, space, 0, hyperparameters)
        except ValueError as error:
            raise app.UsageError(f"the {name} searcher refuses --controller_learning_rate "
                                 f"or --searcher_hyperparameter: {error}") from None


def _first_quarter(values: np.ndarray) -> np.ndarray:
    """The first quarter of `values`, at least one."""
    return values[:max(1, len(values) // 4)]


def _last_quarter(values: np.ndarray) -> np.ndarray:
    """The last quarter of `values`, at least one (`values[-0:]` is all of them)."""
    return values[-max(1, len(values) // 4):]


def _mean_to_target(reached: list[int | None]) -> float:
    """Mean evaluations to the target; a search that never reached it counts its whole
    budget (a lower bound, so a searcher that often fails looks better than it is)."""
    return float(np.mean([n or _EVALUATIONS.value for n in reached]))


def expected_to_target(hit_rate: float, budget: int) -> float:
    """Random search's expected evaluations to the target, counted as `_mean_to_target`
    counts them (a search that never reaches it, as the budget).

    Random proposals are independent, so the first hit is geometric with mean 1 / p, a
    steadier estimate than a few seeds' first hits. Censored at the budget B it is
    E[min(first hit, B)] = (1 - (1 - p)^B) / p: against the uncensored 1 / p, random
    search's own mean would read as faster than itself (0.91 at p = 1/100, B = 240).
    """
    return (1.0 - (1.0 - hit_rate) ** budget) / hit_rate


def _median_to_target(reached: list[int | None]) -> float:
    """Median evaluations to the target. Unlike the mean it is exact under the budget's
    censoring: an unreached search only has to sort above every reached one, which it
    does, as long as fewer than half never reached the target (else inf). One search's
    first hit ranges from 3 to more than the budget, so over 20 seeds the mean swings with
    its few longest searches; the median does not."""
    return float(np.median([n or math.inf for n in reached]))


def ratio_with_interval(ppo: list[int | None], random: list[int | None],
                        statistic: Callable[[list[int | None]], float],
                        resamples: int = 10_000) -> tuple[float, float, float]:
    """`statistic(ppo) / statistic(random)` and its 95% bootstrap interval over seeds (each
    searcher's searches resampled with replacement): how far another draw of as many
    seeds could move the ratio. NaN where random's statistic is not finite; an upper bound
    of inf where more than 2.5% of the draws have PPO's statistic infinite (the median of a
    draw in which most PPO searches never reached the target)."""
    def ratio(a, b):
        denominator = statistic(b)
        return statistic(a) / denominator if math.isfinite(denominator) else math.nan

    rng = np.random.default_rng(0)
    draws = [ratio([ppo[i] for i in rng.integers(len(ppo), size=len(ppo))],
                   [random[i] for i in rng.integers(len(random), size=len(random))])
             for _ in range(resamples)]
    if np.all(np.isnan(draws)):  # random never (or rarely) reached the target
        return ratio(ppo, random), math.nan, math.nan
    # The draws' own quantiles, not interpolated between neighbours: interpolation
    # computes inf - inf where the bound falls among infinite draws and returns NaN, as if
    # the bound were undefined, when it is unbounded.
    low, high = np.nanpercentile(draws, [2.5, 97.5], method="inverted_cdf")
    return ratio(ppo, random), float(low), float(high)


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    space = nos_tf.TokenSpace(_UNITS.value)
    hyperparameters = _searcher_hyperparameters()
    _check_searchers(space, hyperparameters)
    if _REWARD.value == "functions":
        # Each rule is a new small graph, run once: Grappler's rewrites cost more than they
        # save, and TensorFlow's warning about retracing is expected.
        tf.config.optimizer.set_experimental_options({"disable_meta_optimizer": True})
        tf.get_logger().setLevel("ERROR")
        reward = CachedReward(FunctionsReward(
            _FUNCTIONS.value, _FUNCTION_STEPS.value,
            [float(lr) for lr in _FUNCTION_LEARNING_RATES.value], _FUNCTION_DECADES.value))
    else:
        reward = CachedReward(proxy_reward(), screen=proxy_flags.SCREEN_RULES.value)
    target = reward.score(nos_tf.parse(ADAM))
    print(f"reward={_REWARD.value}  units={_UNITS.value}  "
          f"{_EVALUATIONS.value} evaluations x {_SEEDS.value} seeds from "
          f"{_FIRST_SEED.value}, batches of "
          f"{_BATCH_SIZE.value}{' sampled ahead' * _SAMPLED_AHEAD.value}  searcher "
          f"hyperparameters {hyperparameters or 'default'}")
    print(f"tuned Adam's reward (the target): {target:.4f}")

    to_target, trained_to_target, hit_rates = {}, {}, {}
    for name in _SEARCHERS.value:
        started = time.time()
        runs = [run_search(name, seed, reward, space, hyperparameters, _EVALUATIONS.value,
                           _BATCH_SIZE.value, _SAMPLED_AHEAD.value)
                for seed in range(_FIRST_SEED.value, _FIRST_SEED.value + _SEEDS.value)]
        to_target[name] = [evaluations_to_reach(run.rewards, target) for run in runs]
        trained_to_target[name] = [rules_trained_to_reach(run, target) for run in runs]
        hits = np.concatenate([run.rewards >= target for run in runs])
        hit_rates[name] = hits.mean()
        last_hits = np.mean([_last_quarter(run.rewards) >= target for run in runs])
        first = np.mean([_first_quarter(run.batch_means).mean() for run in runs])
        last = np.mean([_last_quarter(run.batch_means).mean() for run in runs])
        best = [run.rewards.max() for run in runs]
        # Rewards are cached across searchers: a later one pays only for rules new to it.
        print(f"\n{name}  ({time.time() - started:.0f} s, rules scored before not again)")
        print(f"  best reward after {_EVALUATIONS.value}: "
              + "  ".join(f"{b:.4f}" for b in best) + f"   mean {np.mean(best):.4f}")
        print("  evaluations to tuned Adam's reward: "
              + "  ".join(str(n) if n else f">{_EVALUATIONS.value}" for n in to_target[name])
              + f"   mean {_mean_to_target(to_target[name]):.0f}, median "
              f"{_median_to_target(to_target[name]):.0f}")
        print("  distinct rules trained until then (the search's cost: repeats and screened "
              "rules are free): "
              + "  ".join(str(n) if n else "-" for n in trained_to_target[name])
              + f"   median {_median_to_target(trained_to_target[name]):.0f}")
        print(f"  proposals scoring >= Adam: {hits.mean():.1%} of all, {last_hits:.1%} of "
              "each search's last quarter")
        print(f"  mean batch reward, first quarter {first:.4f} -> last quarter {last:.4f}")
        print(f"  distinct rules per search: {[run.distinct_rules for run in runs]}")
        print(f"  best rules: {[run.best_rule for run in runs]}")

    if {"ppo", "random"} <= set(to_target) and not any(
            to_target["ppo"] + to_target["random"]):
        # Every search counts the budget: a ratio of 1.00 would read as a tie.
        print("\nneither ppo nor random reached tuned Adam in any search: no ratio "
              "(raise --evaluations or --seeds)")
    elif {"ppo", "random"} <= set(to_target):
        mean = ratio_with_interval(to_target["ppo"], to_target["random"], _mean_to_target)
        median = ratio_with_interval(to_target["ppo"], to_target["random"], _median_to_target)
        reached = {name: sum(map(bool, to_target[name])) for name in ("ppo", "random")}
        # Beside the ratios: where many searches count the budget, the mean's ratio is
        # pulled towards 1 (one hit against none read as a tie, 1.00 (1.00-1.00)).
        print(f"\nsearches that reached tuned Adam: ppo {reached['ppo']} of "
              f"{len(to_target['ppo'])}, random {reached['random']} of "
              f"{len(to_target['random'])}")
        print("evaluations to tuned Adam, ppo / random (95% bootstrap interval over "
              f"seeds): mean {mean[0]:.2f} ({mean[1]:.2f}-{mean[2]:.2f}; unreached "
              f"searches count the budget), median {median[0]:.2f} "
              f"({median[1]:.2f}-{median[2]:.2f}); target <= 0.5")
        trained = ratio_with_interval(trained_to_target["ppo"], trained_to_target["random"],
                                      _median_to_target)
        print(f"distinct rules trained to tuned Adam, ppo / random: median {trained[0]:.2f} "
              f"({trained[1]:.2f}-{trained[2]:.2f})")
        if hit_rates["random"] > 0:
            expected = expected_to_target(hit_rates["random"], _EVALUATIONS.value)
            versus = (f"ppo's mean / that: {_mean_to_target(to_target['ppo']) / expected:.2f}"
                      if any(to_target["ppo"]) else "ppo never reached it")
            print(f"random search's expected evaluations from its hit rate, unreached "
                  f"searches counting the budget: {expected:.0f} (uncensored "
                  f"{1 / hit_rates['random']:.0f}); {versus}")
    print(f"distinct fingerprints scored: {len(reward.cache)}")


if __name__ == "__main__":
    run_main(main)
