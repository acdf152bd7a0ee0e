"""The report binary: leaderboard table, run summary and progress plot of a trial store."""

import os
import types

import binaries
import matplotlib.image
import pytest

from nos_tf import report
from nos_tf.proxy import EvalResult
from nos_tf.store import StoreError, TrialStore

pytestmark = pytest.mark.xdist_group("report")  # The `binary` fixture's runs, made once.


def add_evaluations(store, run_id, evaluations):
    """Proposes and finishes each (rule, reward, status); a known rule becomes a cache hit."""
    for rule, reward, status in evaluations:
        trial = store.propose(run_id, rule, f"fp-{rule}", tokens=[0])
        if trial.result is None:
            store.finish(trial.trial_id, EvalResult(
                rule=rule, fingerprint=f"fp-{rule}", reward=reward, status=status,
                lr=0.1 if status == "ok" else None, lr_scores={0.1: reward}, wall_time=2.0,
                worker="host:1"))


def make_store(path: str) -> str:
    """Two runs: PPO finds m * exp(v) after a rejected and a diverged rule; random search
    proposes g twice (the second a cache hit) and leaves one trial pending."""
    with TrialStore(path) as store:
        ppo = store.start_run("ppo-1", "ppo", {"batch_size": 4})
        add_evaluations(store, ppo.run_id, [
            ("g", 0.6, "ok"), ("1", 0.0, "rejected"), ("exp(g)", 0.0, "diverged"),
            ("m * exp(v)", 0.9, "ok"), ("adam", 0.8, "ok")])
        random = store.start_run("random-1", "random", {})
        add_evaluations(store, random.run_id, [("sign(m)", 0.7, "ok"), ("g", 0.6, "ok")])
        store.propose(random.run_id, "v", "fp-v")
    return path


@pytest.fixture
def store_path(tmp_path):
    """`make_store`'s store."""
    return make_store(str(tmp_path / "search.db"))


@pytest.fixture(scope="module")
def binary(tmp_path_factory):
    """The report binary's runs that the tests of the binary read, all in one process
    (`binaries.run_each`), the ones given a store on one of `make_store`'s: the store's
    path and bytes before them (`store`, `store_bytes`), their folder, and each run's
    process by name."""
    folder = tmp_path_factory.mktemp("report")
    store = make_store(str(folder / "search.db"))
    store_bytes = open(store, "rb").read()
    (folder / "a_file").write_text("not a folder")
    commands = {
        "leaderboard": [f"--store={store}", "--top=2"],
        "missing_store": [f"--store={folder / 'nowhere.db'}"],
        "no_store": [],
        "extra_argument": ["--store=runs/search.sqlite", "extra"],
        "top_0": ["--store=runs/search.sqlite", "--top=0"],
        "unwritable_output": [f"--store={store}", f"--output={folder / 'a_file'}/plot.png"],
        "txt_output": [f"--store={store}", f"--output={folder}/plot.txt"],
    }
    processes = binaries.run_each("nos_tf.report", list(commands.values()))
    return types.SimpleNamespace(store=store, store_bytes=store_bytes, folder=folder,
                                 **dict(zip(commands, processes)))


def test_leaderboard_table_ranks_rules_with_their_counts(store_path, tmp_path):
    text = report.write_report(store_path, top=4, output=str(tmp_path / "plot.png"))
    table = text.split("\n\n")[0].splitlines()
    assert table[0].split() == ["rank", "reward", "lr", "count", "rule"]
    assert [line.split(maxsplit=4) for line in table[1:]] == [
        ["1", "0.9000", "0.1", "1", "m * exp(v)"],
        ["2", "0.8000", "0.1", "1", "adam"],
        ["3", "0.7000", "0.1", "1", "sign(m)"],
        ["4", "0.6000", "0.1", "2", "g"]]  # Proposed by both runs.
    assert "run 'ppo-1' (ppo): 5 evaluations [diverged 1, ok 3, rejected 1], 0 cache hits" in text
    assert "run 'random-1' (random): 1 evaluation [ok 1], 1 cache hit, 1 pending" in text


def test_progress_plot_has_a_best_so_far_line_per_run(store_path):
    with TrialStore(store_path) as store:
        figure = report.plot_progress(store)
    [axes] = figure.axes
    lines = {line.get_label(): list(line.get_ydata()) for line in axes.get_lines()}
    # Rejected rules and cache hits trained nothing, so they are not evaluations.
    assert lines == {"ppo: best so far": [0.6, 0.6, 0.9, 0.9],
                     "random: best so far": [0.7]}
    # Its axis counts rules trained, which the text's "evaluations" (rejected ones
    # included) are not, in whole numbers (it had ticks at 1.5, 2.5, ...).
    assert axes.get_xlabel().startswith("rule trained")
    figure.canvas.draw()
    assert all(tick == int(tick) for tick in axes.get_xticks())
    # The legend is outside the axes: inside, at the lower right, it hid late rules'
    # points, diverged ones (reward 0) among them.
    [legend] = figure.legends
    assert not legend.get_window_extent().overlaps(axes.get_window_extent())


def test_the_plots_points_are_each_evaluations_reward(store_path):
    with TrialStore(store_path) as store:
        figure = report.plot_progress(store)
    ppo_points = figure.axes[0].collections[0].get_offsets()
    assert ppo_points[:, 0].tolist() == [1, 2, 3, 4]
    assert ppo_points[:, 1].tolist() == [0.6, 0.0, 0.9, 0.8]  # Not the best so far.


def test_top_limits_the_leaderboard_of_one_protocol_and_of_each(store_path, tmp_path):
    table = report.write_report(store_path, top=2, output=str(tmp_path / "p.png"))
    assert [line.split()[0] for line in table.split("\n\n")[0].splitlines()[1:]] == ["1", "2"]
    path = str(tmp_path / "protocols.db")
    with TrialStore(path) as store:
        for name, dataset in [("d", "digits"), ("f", "fashion_mnist")]:
            run = store.start_run(name, "ppo", {}, protocol={"dataset": dataset})
            add_evaluations(store, run.run_id, [(f"g * {r}", r, "ok") for r in (0.5, 0.6, 0.7)])
    digits, fashion = report.write_report(path, top=1, output=str(tmp_path / "q.png")
                                          ).split("\n\n")[:2]
    assert len(digits.splitlines()) == len(fashion.splitlines()) == 3  # Heading, header, 1.


def test_runs_of_one_searcher_are_told_apart_by_name(tmp_path):
    path = str(tmp_path / "search.db")
    with TrialStore(path) as store:
        for name, rule in [("seed-0", "g"), ("seed-1", "m")]:
            add_evaluations(store, store.start_run(name, "ppo", {}).run_id, [(rule, 0.5, "ok")])
        figure = report.plot_progress(store)
        labels = [line.get_label() for line in figure.axes[0].get_lines()]
    assert labels == ["ppo (seed-0): best so far", "ppo (seed-1): best so far"]
    # One rule trained a run: its axis still counts whole rules (it had 0.945, 0.96, ...).
    axes = figure.axes[0]
    figure.canvas.draw()
    assert [tick for tick in axes.get_xticks() if 0.5 <= tick <= 1.5] == [1]


def test_a_run_of_one_rule_is_drawn_and_one_of_none_is_named(tmp_path):
    """A step line of one point drew nothing (the legend named a line not there), and a
    run whose rules were all cache hits was missing from plot and legend alike."""
    path = str(tmp_path / "search.db")
    with TrialStore(path) as store:
        add_evaluations(store, store.start_run("first", "ppo", {}).run_id, [("g", 0.5, "ok")])
        add_evaluations(store, store.start_run("again", "random", {}).run_id, [("g", 0.5, "ok")])
        figure = report.plot_progress(store)
    lines = {line.get_label(): line for line in figure.axes[0].get_lines()}
    assert list(lines) == ["ppo: best so far", "random: no rule trained"]
    assert lines["ppo: best so far"].get_marker() == "o"
    assert not len(lines["random: no rule trained"].get_xdata())


def test_a_missing_store_is_named_not_created(tmp_path):
    missing = str(tmp_path / "nowhere.db")
    with pytest.raises(StoreError, match="no trial store at .*nowhere.db"):
        report.write_report(missing, top=5)
    assert not os.path.exists(missing)


def test_the_binary_prints_the_leaderboard_and_writes_the_png(binary):
    process = binary.leaderboard
    assert process.returncode == 0, process.stderr[-2000:]
    assert process.stdout.splitlines()[1].split(maxsplit=4) == [
        "1", "0.9000", "0.1", "1", "m * exp(v)"]
    table = process.stdout.split("\n\n")[0].splitlines()
    assert [line.split()[0] for line in table[1:]] == ["1", "2"]  # --top=2 of 4 rules.
    png = binary.store.removesuffix(".db") + ".png"
    assert f"progress plot: {png}" in process.stdout
    height, width, _ = matplotlib.image.imread(png).shape
    assert (width, height) == (960, 600)  # 8 x 5 inches at 120 dpi.


def test_the_binary_names_bad_input(binary):
    process = binary.missing_store
    assert process.returncode != 0
    assert process.stderr.splitlines()[-1] == (
        f"error: no trial store at {binary.folder / 'nowhere.db'}")
    assert "Traceback" not in process.stderr
    assert "--top" not in process.stderr  # One line, not absl's usage text of every flag.


@pytest.mark.parametrize("run, message", [
    ("no_store", "error: --store is required: the trial store to report on"),
    ("extra_argument", "error: unexpected arguments: extra"),
])
def test_misuse_is_one_line_not_the_usage_text(binary, run, message):
    # They were app.UsageErrors: absl printed the docstring and every flag above them.
    process = getattr(binary, run)
    assert process.returncode == 1
    assert process.stderr.splitlines()[-1] == message
    assert "--top" not in process.stderr and "Traceback" not in process.stderr


def test_a_bad_flag_value_is_still_absls_error(binary):
    process = binary.top_0
    assert process.returncode != 0
    assert "flag --top=0" in process.stderr and "Traceback" not in process.stderr


def test_runs_of_other_protocols_get_a_leaderboard_each(tmp_path):
    path = str(tmp_path / "search.db")
    with TrialStore(path) as store:
        for name, dataset, reward in [("d", "digits", 0.9), ("f", "fashion_mnist", 0.8),
                                      ("d2", "digits", 0.95)]:
            run = store.start_run(name, "ppo", {}, protocol={"dataset": dataset, "epochs": 3})
            add_evaluations(store, run.run_id, [(f"g * {reward}", reward, "ok")])
    text = report.write_report(path, top=5, output=str(tmp_path / "plots" / "p.png"))
    digits, fashion = text.split("\n\n")[:2]
    assert digits.startswith("runs 'd', 'd2' (dataset 'digits'):")
    assert [line.split()[1] for line in digits.splitlines()[2:]] == ["0.9500", "0.9000"]
    assert fashion.startswith("runs 'f' (dataset 'fashion_mnist'):")
    assert [line.split()[1] for line in fashion.splitlines()[2:]] == ["0.8000"]
    assert os.path.isfile(tmp_path / "plots" / "p.png")  # its folder made on the way


def test_an_unwritable_output_is_named(binary):
    process = binary.unwritable_output
    assert process.returncode != 0
    assert process.stderr.splitlines()[-1].startswith("error: cannot write the plot: ")
    assert process.stderr.splitlines()[-1].endswith("(--output=PATH puts it elsewhere)")
    # The text is shown all the same (a store on a read-only disk, its plot beside it).
    assert "m * exp(v)" in process.stdout
    assert "Traceback" not in process.stderr and "--top" not in process.stderr


def test_a_rule_this_version_cannot_read_is_shown_as_stored(tmp_path):
    # A store written by another version: one such rule made the whole report a traceback.
    path = str(tmp_path / "search.db")
    with TrialStore(path) as store:
        run = store.start_run("old", "ppo", {})
        add_evaluations(store, run.run_id, [("g * old_operand", 0.9, "ok"), ("g", 0.8, "ok")])
    rows = report.write_report(path, top=5).splitlines()[1:3]
    assert rows[0].split(maxsplit=4)[4] == "g * old_operand  (not in this version's rule language)"
    assert rows[1].split(maxsplit=4)[4] == "g"


def test_the_report_only_reads_the_store(binary):
    assert binary.leaderboard.returncode == 0, binary.leaderboard.stderr[-2000:]
    assert open(binary.store, "rb").read() == binary.store_bytes  # After every run.


def test_a_plot_named_without_an_extension_is_a_png_said_where_it_is(store_path, tmp_path):
    # matplotlib adds ".png"; the report printed the name without it.
    text = report.write_report(store_path, top=5, output=str(tmp_path / "plot"))
    assert text.endswith(f"progress plot: {tmp_path / 'plot.png'}")
    assert (tmp_path / "plot.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_plot_given_a_folder_goes_in_it_named_as_the_store(store_path, tmp_path):
    # `--output=runs/` printed runs/.png, and matplotlib wrote a hidden runs/.png.png.
    name = os.path.splitext(os.path.basename(store_path))[0] + ".png"
    for folder in (f"{tmp_path / 'new'}/", str(tmp_path)):
        text = report.write_report(store_path, top=5, output=folder)
        written = os.path.join(folder, name)
        assert text.endswith(f"progress plot: {written}")
        assert open(written, "rb").read(8) == b"\x89PNG\r\n\x1a\n"


def test_an_image_format_matplotlib_cannot_write_is_named(binary):
    process = binary.txt_output
    assert process.returncode != 0
    assert process.stderr.splitlines()[-1].startswith(
        f"error: --output={binary.folder}/plot.txt: matplotlib writes no .txt image (it "
        "writes ")
    assert "Traceback" not in process.stderr
