r"""Scores update rules, or the classic optimizers, on the proxy task.

    python -m nos_tf.evaluate --flagfile=flags/cpu.cfg --rule="g * exp(sign(g) * sign(m))"
    python -m nos_tf.evaluate --flagfile=flags/cpu.cfg --baselines
    python -m nos_tf.evaluate --flagfile=flags/cpu.cfg --rule=g --rule=-g --num_seeds=3

Prints, for each rule, the reward (final validation accuracy), the chosen learning rate
and the validation accuracy of every rate tried, then a summary table. With --num_seeds
each is scored under consecutive proxy seeds and the summary shows mean ± std.
The protocol's flags are those of `nos_tf.proxy_flags`.
"""

import dataclasses
import functools
import math
import statistics
import sys

from absl import app, flags

from nos_tf import data, flag_checks, proxy, proxy_flags, rules
from nos_tf.optimizer_spec import OptimizerSpec

flags.adopt_module_key_flags(proxy_flags)  # --help shows the protocol's flags too.

_RULES = flags.DEFINE_multi_string(
    "rule", [], "An update rule in the language of nos_tf.parse, e.g. "
    "'g * exp(sign(g) * sign(m))'. Repeat the flag to score several.")


@flags.validator("rule")
def _rules_parse(texts: list[str]) -> bool:
    """A rule that is not in the language is a flag error, found before any data loads."""
    for text in texts:
        try:
            rules.parse(text)
        except rules.RuleSyntaxError as error:
            raise flags.ValidationError(str(error)) from None
    return True


_BASELINES = flags.DEFINE_bool(
    "baselines", False, "Also score Keras's SGD, SGD with momentum 0.9, Adam and RMSProp "
    "under the same protocol (transfer's sgd, momentum, adam, rmsprop).")
_NUM_SEEDS = flags.DEFINE_integer(
    "num_seeds", 1, "Score everything under this many proxy seeds, from --proxy_seed on.",
    lower_bound=1)


@flags.multi_flags_validator(
    [proxy_flags.PROXY_SEED.name, _NUM_SEEDS.name],
    message="--proxy_seed + --num_seeds - 1 must be below 2**31: seeds are int32")
def _last_seed_fits(values: dict) -> bool:
    """The last seed too, found before the first one's rules train."""
    return values[proxy_flags.PROXY_SEED.name] + values[_NUM_SEEDS.name] - 1 < 2**31


_BASELINES_NAMED = ("sgd", "momentum", "adam", "rmsprop")  # The paper's hand-made ones.


def format_result(result: proxy.EvalResult) -> str:
    """One evaluation: reward, status, chosen lr, then validation accuracy per lr and the
    training steps it is after (fewer for a rate successive halving pruned, whose accuracy
    is on `halving_validation_examples`, or for one that diverged, shown as such)."""
    lr = "-" if result.lr is None else f"{result.lr:g}"
    lines = [
        f"{result.rule}",
        f"  reward {result.reward:.4f}  status {result.status}  lr {lr}  "
        f"({result.wall_time:.1f} s)" + (f"  {result.reason}" if result.reason else ""),
    ]
    if result.lr_scores:
        lines.append(f"  {'lr':>8s}  {'val_acc':>8s}  {'steps':>5s}")
        for rate, score in sorted(result.lr_scores.items()):
            steps = result.lr_steps.get(rate, "")  # Unknown for results from the store.
            chosen = "  <- chosen" if rate == result.lr else ""
            accuracy = "diverged" if rate in result.diverged_lrs else f"{score:7.4f}"
            lines.append(f"  {rate:>8g}  {accuracy:>8s}  {steps:>5}{chosen}")
    return "\n".join(lines)


def format_summary(results_by_name: dict[str, list[proxy.EvalResult]]) -> str:
    """Best first: reward (mean ± std over seeds; an `error` is no reward and is left
    out, its status shown), statuses, chosen lrs (in increasing order), mean seconds (the
    evaluator builds and traces the child network once, in the first evaluation, which a
    footnote says where there are several rows)."""
    rows = []
    for name, results in results_by_name.items():
        rewards = [r.reward for r in results if r.status != proxy.ERROR]
        mean = statistics.mean(rewards) if rewards else None
        spread = f"{statistics.stdev(rewards):.4f}" if len(rewards) > 1 else "-"
        statuses = ",".join(sorted({r.status for r in results}))
        rates = sorted({r.lr for r in results if r.lr is not None})
        lrs = ",".join([f"{lr:g}" for lr in rates]
                       + ["-"] * any(r.lr is None for r in results))
        seconds = statistics.mean(r.wall_time for r in results)
        rows.append((mean, spread, statuses, lrs, seconds, name))
    rows.sort(key=lambda row: math.inf if row[0] is None else -row[0])  # Errors last.
    lines = [f"{'reward':>8s} {'± std':>8s}  {'status':<9s} {'lr':<13s} {'s':>6s}  rule"]
    for mean, spread, statuses, lrs, seconds, name in rows:
        reward = f"{'-':>8s}" if mean is None else f"{mean:8.4f}"
        lines.append(
            f"{reward} {spread:>8s}  {statuses:<9s} {lrs:<13s} {seconds:6.1f}  {name}"
        )
    if len(rows) > 1:
        first = next(iter(results_by_name))
        lines.append(f"s: wall seconds an evaluation; {first}'s include building and "
                     "tracing the child network, which every evaluation after reuses.")
    return "\n".join(lines)


def main(argv):
    # Each of these errors is one line, as search says its own: app.UsageError would print
    # this module's docstring and every one of its flags above it. A flag value that is
    # wrong on its own is absl's error, found while the flags are parsed.
    if len(argv) > 1:
        sys.exit(f"error: unexpected arguments: {' '.join(argv[1:])}")
    if not _RULES.value and not _BASELINES.value:
        sys.exit("error: nothing to score: pass --rule=RULE (repeatable) or --baselines")
    try:
        config = proxy_flags.config_from_flags()
    except ValueError as error:
        sys.exit(f"error: {error}")
    results_by_name: dict[str, list[proxy.EvalResult]] = {}
    try:
        _score(config, results_by_name)
    except KeyboardInterrupt:
        if results_by_name:
            print("\nInterrupted: the summary holds what finished.", file=sys.stderr)
            print(f"\n{format_summary(results_by_name)}")
        else:
            print("\nInterrupted before any rule finished.", file=sys.stderr)
        sys.exit(130)
    print()
    print(format_summary(results_by_name))


def _score(config: proxy.ProxyConfig, results_by_name: dict) -> None:
    """Scores the rules and baselines under each seed, printing each result as it comes
    and adding it to `results_by_name`."""
    for seed in range(config.seed, config.seed + _NUM_SEEDS.value):
        try:
            evaluator = proxy.Evaluator(dataclasses.replace(config, seed=seed))
        except (data.DataUnavailableError, ValueError) as error:
            sys.exit(f"error: {proxy_flags.with_flag_names(str(error))}")
        print(f"# proxy seed {seed}: {config.dataset}, {len(evaluator.data.train[0])} "
              f"training / {len(evaluator.data.validation[0])} validation examples", flush=True)
        jobs = [functools.partial(evaluator.evaluate, rule) for rule in _distinct(_RULES.value)]
        if _BASELINES.value:  # Keras's, at its defaults but for the learning rate.
            jobs += [functools.partial(evaluator.evaluate_optimizer, spec.label,
                                       functools.partial(spec.build, total_steps=None))
                     for spec in map(OptimizerSpec.parse, _BASELINES_NAMED)]
        for job in jobs:
            result = job()
            results_by_name.setdefault(result.rule, []).append(result)  # before a Ctrl-C can
            print(format_result(result), flush=True)


def _distinct(texts: list[str]) -> list[str]:
    """Each rule once, in the order given, by the text its results carry: the summary
    gathers results by that text, so a rule named twice read as two seeds' scores (a
    spread of ± 0, and the cache hit's ~0 s halving the mean wall time)."""
    return list(dict.fromkeys(str(rules.as_rule(text)) for text in texts))


if __name__ == "__main__":
    app.run(main, flags_parser=flag_checks.parse_flags_of_the_command_line)
