"""A trial store's best rules and how its trials ended, as text: what `nos_tf.search`
ends with and `nos_tf.report` prints, in one form (a module of its own because both
binaries define --store and --top, so neither can import the other)."""

from nos_tf import rules
from nos_tf.store import LeaderboardEntry


def format_leaderboard(entries: list[LeaderboardEntry]) -> str:
    """A fixed-width table, best first: rank, reward, learning rate, how often the rule was
    proposed (cache hits included), and the rule, simplified: ready for RuleOptimizer."""
    header = ("rank", "reward", "lr", "count", "rule")
    rows = [(str(entry.rank), f"{entry.reward:.4f}",
             "-" if entry.lr is None else f"{entry.lr:g}", str(entry.count),
             shown(entry.rule))
            for entry in entries]
    widths = [max(len(row[column]) for row in [header, *rows]) for column in range(5)]
    aligns = (">", ">", ">", ">", "<")  # Numbers align right, the rule left.
    return "\n".join(
        "  ".join(f"{cell:{align}{width}}" for cell, align, width in zip(row, aligns, widths))
        .rstrip() for row in [header, *rows])


def simplified(rule_text: str) -> rules.Rule:
    """A stored rule simplified: the same update."""
    return rules.simplify(rules.parse(rule_text))


def shown(rule_text: str) -> str:
    """A stored rule as the leaderboard shows it: simplified, or as stored when this
    version's language cannot read it (a store written by another version)."""
    try:
        return str(simplified(rule_text))
    except rules.RuleSyntaxError:
        return f"{rule_text}  (not in this version's rule language)"


def statuses(counts: dict[str, int]) -> dict[str, int]:
    """The evaluations of `TrialStore.counts` by status, in order: {"diverged": 1, ...}."""
    return {key.removeprefix("status:"): count
            for key, count in sorted(counts.items()) if key.startswith("status:")}


def format_statuses(counts: dict[str, int]) -> str:
    """The evaluations of `TrialStore.counts` by status: "diverged 1, ok 3, rejected 1"."""
    return ", ".join(f"{status} {count}" for status, count in statuses(counts).items())
