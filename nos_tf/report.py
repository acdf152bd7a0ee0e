"""What a search found: the leaderboard of a trial store and a plot of its progress.

    python -m nos_tf.report --store=runs/cpu/search.sqlite [--top=20] [--output=progress.png]

Prints the best rules (one line per fingerprint: its best reward, the learning rate and
the rule, simplified, of that evaluation, and how often the fingerprint was proposed,
cache hits included; `nos_tf.leaderboard`) and a
summary of each run, then writes a PNG of reward per evaluation with the best so far, one
line per run, labelled by searcher. Runs of different proxy protocols (other data, other
epochs) get a leaderboard each: their rewards do not compare.
"""

import itertools
import json
import os
import sys

from absl import app, flags
from matplotlib import ticker
from matplotlib.figure import Figure

from nos_tf import flag_checks, leaderboard
from nos_tf.store import EVALUATED, LeaderboardEntry, StoreError, TrialStore

_STORE = flags.DEFINE_string("store", None, "Path of the trial store (SQLite) to report on.")
_TOP = flags.DEFINE_integer("top", 20, "Number of rules on the leaderboard.", lower_bound=1)
_OUTPUT = flags.DEFINE_string(
    "output", None, "Where to write the progress plot (PNG), or a folder to write it in; "
    "default: the store's path with .png in place of its extension.")


def format_leaderboard(entries: list[LeaderboardEntry]) -> str:
    """`nos_tf.leaderboard`'s table, or a line saying there is nothing to rank yet."""
    if not entries:
        return "no rule has been evaluated successfully yet"
    return leaderboard.format_leaderboard(entries)


def format_leaderboards(store: TrialStore, top: int) -> str:
    """One leaderboard, or one per proxy protocol, headed by its runs and by the protocol
    fields in which it differs from the others."""
    groups: dict[str, list] = {}
    for run in store.runs():
        groups.setdefault(json.dumps(run.protocol, sort_keys=True), []).append(run)
    if len(groups) <= 1:
        return format_leaderboard(store.leaderboard(top=top))
    protocols = [runs[0].protocol or {} for runs in groups.values()]
    differing = sorted(key for key in set().union(*protocols)
                       if len({json.dumps(p.get(key)) for p in protocols}) > 1)
    sections = []
    for runs, protocol in zip(groups.values(), protocols):
        names = ", ".join(repr(run.name) for run in runs)
        fields = ", ".join(f"{key} {protocol.get(key)!r}" for key in differing)
        if runs[0].protocol is None:
            fields = "protocol not recorded"
        sections.append(f"runs {names} ({fields}):\n"
                        + format_leaderboard(store.leaderboard(top=top, run_id=runs[0].run_id)))
    return "\n\n".join(sections)


def format_runs(store: TrialStore) -> str:
    """One line per run: its searcher and how its trials ended."""
    lines = []
    for run in store.runs():
        counts = store.counts(run.run_id)
        statuses = leaderboard.format_statuses(counts)
        lines.append(f"run {run.name!r} ({run.searcher}): "
                     f"{_count(counts[EVALUATED], 'evaluation')} [{statuses or 'none'}], "
                     f"{_count(counts['cached'], 'cache hit')}, {counts['pending']} pending")
    return "\n".join(lines) or "the store holds no runs"


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'s' * (number != 1)}"


def plot_progress(store: TrialStore) -> Figure:
    """Reward of each evaluation in the order it finished, and the best so far, per run.

    Cache hits and rejected rules are left out: neither trained anything, so neither is an
    evaluation.
    """
    figure = Figure(figsize=(8, 5), layout="constrained")
    axes = figure.subplots()
    runs = store.runs()
    searchers = [run.searcher for run in runs]
    for index, run in enumerate(runs):
        rewards = [trial.result.reward
                   for trial in store.trials(run.run_id, states=[EVALUATED], finished_after=0)
                   if trial.result.status != "rejected"]
        label = run.searcher if searchers.count(run.searcher) == 1 else (
            f"{run.searcher} ({run.name})")
        if not rewards:  # Answered from the cache, or not begun: named, with nothing drawn.
            axes.plot([], [], linestyle="none", label=f"{label}: no rule trained")
            continue
        color = f"C{index % 10}"
        steps = range(1, len(rewards) + 1)
        axes.scatter(steps, rewards, s=8, alpha=0.35, color=color)
        # One rule trained: a step line of one point draws nothing, so it gets a marker.
        axes.plot(steps, list(itertools.accumulate(rewards, max)), color=color,
                  drawstyle="steps-post", marker="o" if len(rewards) == 1 else None,
                  label=f"{label}: best so far")
    axes.set_xlabel("rule trained, in the order finished (rejected rules left out)")
    # Whole rules, even for one rule trained (two ticks' default gave 0.945, 0.96, ...).
    axes.xaxis.set_major_locator(ticker.MaxNLocator(integer=True, min_n_ticks=1))
    axes.set_ylabel("reward (validation accuracy)")
    axes.set_title(f"search progress: {os.path.basename(store.path)}")
    if axes.lines:  # Below the axes: inside, it hid the points of late, failed rules.
        figure.legend(loc="outside lower center", ncols=min(3, len(axes.lines)))
    return figure


def write_report(store_path: str, top: int, output: str | None = None) -> str:
    """The report's text (leaderboard, runs); writes the plot to `output` (a file, or a
    folder to put it in; default: next to the store, named as it is). The store is only
    read, as it was at one instant: a search may be writing.

    Raises:
      StoreError: `store_path` is not a trial store.
      ValueError: `output` names an image format matplotlib cannot write.
      OSError: the plot cannot be written there.
    """
    text, figure, output = read_report(store_path, top, output)
    save_plot(figure, output)
    return f"{text}\n\nprogress plot: {output}"


def read_report(store_path: str, top: int, output: str | None = None
                ) -> tuple[str, Figure, str]:
    """`write_report`'s text and figure, and the path the figure goes to, nothing written:
    so that the binary shows the text even where the plot cannot be written (a store on
    a read-only disk, whose default plot goes beside it)."""
    if not os.path.isfile(store_path):
        raise StoreError(f"no trial store at {store_path}")
    plot_name = os.path.splitext(os.path.basename(store_path))[0] + ".png"
    output = output or os.path.join(os.path.dirname(store_path), plot_name)
    if output.endswith(("/", os.sep)) or os.path.isdir(output):  # A folder: the plot in it.
        output = os.path.join(output, plot_name)
    if not os.path.splitext(output)[1]:
        output += ".png"  # What matplotlib writes for a name without an extension.
    _check_image_format(output)
    with TrialStore(store_path, readonly=True) as store, store.snapshot():
        text = "\n\n".join([format_leaderboards(store, top), format_runs(store)])
        figure = plot_progress(store)
    return text, figure, output


def save_plot(figure: Figure, output: str) -> None:
    if os.path.dirname(output):
        os.makedirs(os.path.dirname(output), exist_ok=True)
    figure.savefig(output, dpi=120)


def _check_image_format(output: str) -> None:
    """Before the store is read: matplotlib names an unknown format only when saving."""
    extension = os.path.splitext(output)[1].lstrip(".").lower()
    formats = Figure().canvas.get_supported_filetypes()
    if extension and extension not in formats:
        raise ValueError(f"--output={output}: matplotlib writes no .{extension} image "
                         f"(it writes {', '.join(sorted(formats))})")


def main(argv):
    # Every error of this binary's is one line, as search and transfer say theirs, without
    # absl's usage text (the whole docstring and every flag) above it that app.UsageError
    # prints. A flag value wrong on its own (--top=0) is absl's error, found while parsing.
    if len(argv) > 1:
        sys.exit(f"error: unexpected arguments: {' '.join(argv[1:])}")
    # Checked here rather than with flags.mark_flag_as_required, whose validator would
    # also bind any other program that imports this module and parses flags.
    if not _STORE.value:
        sys.exit("error: --store is required: the trial store to report on")
    try:
        text, figure, output = read_report(_STORE.value, _TOP.value, _OUTPUT.value)
    except (StoreError, ValueError) as error:  # StoreError is a ValueError too.
        sys.exit(f"error: {error}")
    print(text)  # Before the plot: where it cannot be written, the text is still shown.
    try:
        save_plot(figure, output)
    except OSError as error:  # --output in a folder that cannot be made or written
        sys.exit(f"error: cannot write the plot: {error} (--output=PATH puts it elsewhere)")
    print(f"\nprogress plot: {output}")


if __name__ == "__main__":
    app.run(main, flags_parser=flag_checks.parse_flags_of_the_command_line)
