"""The transfer binary: optimizer list, learning rates, and each model end to end."""

import csv
import math
import os
import re
import warnings

import binaries
import keras
import pytest
import sacrebleu
from absl import flags
from absl.testing import flagsaver

import nos_tf
from nos_tf import data, transfer, translation_data
from nos_tf.models import gnmt, rosenbrock, wrn
from nos_tf.optimizer_spec import OptimizerSpec

FLAGS = flags.FLAGS
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(autouse=True)
def _restore_flags():
    if not FLAGS.is_parsed():
        FLAGS.mark_as_parsed()
    with flagsaver.flagsaver():
        yield


def _run(output_dir, **flag_values):
    """Runs the binary's main with these flags (strings are parsed as on a command line)."""
    for name, value in flag_values.items():
        FLAGS[name].parse(value)
    FLAGS.output_dir = str(output_dir)
    transfer.main([])


def _read_csv(path):
    with open(path, encoding="utf-8") as file:
        return list(csv.DictReader(file))


# ------------------------------------------------------------------------ optimizers ---


@pytest.mark.parametrize("preset", sorted(
    name for name in os.listdir(binaries.FLAGS_DIR) if name.startswith("transfer_")))
def test_shipped_presets_parse_and_name_their_model(preset):
    arguments = FLAGS.read_flags_from_files(
        [f"--flagfile={binaries.FLAGS_DIR / preset}"], force_gnu=False)
    FLAGS(["transfer", *arguments])
    assert preset.split(".")[0].split("_")[1] == FLAGS.model
    specs = [OptimizerSpec.parse(text) for text in FLAGS.optimizers]
    transfer.learning_rates_for(specs, FLAGS.lrs)  # one each, one for all, or none


def test_bad_rule_on_the_command_line_is_a_clear_error_not_a_traceback():
    process = binaries.run("nos_tf.transfer", "--model=rosenbrock",
                           "--optimizers=adam,g * exp(sign(g) * sign(q))", timeout=300)
    assert process.returncode != 0
    assert "--optimizers" in process.stderr and "'q'" in process.stderr
    assert "Traceback" not in process.stderr


def test_learning_rates_one_each_or_one_for_all():
    specs = [OptimizerSpec.parse(text) for text in ("sgd", "adam", "powersign")]
    assert transfer.learning_rates_for(specs, []) == [None, None, None]
    assert transfer.learning_rates_for(specs, ["0.1"]) == [0.1, 0.1, 0.1]
    assert transfer.learning_rates_for(specs, ["0.1", "1e-3", "0.01"]) == [0.1, 1e-3, 0.01]
    assert transfer.learning_rates_for(specs, ["0.1", "sweep", "0.01"]) == [0.1, None, 0.01]
    with pytest.raises(ValueError, match="2 values for 3 optimizers"):
        transfer.learning_rates_for(specs, ["0.1", "0.2"])
    with pytest.raises(ValueError, match="'fast' is not a number \\(or 'sweep'\\)"):
        transfer.learning_rates_for(specs, ["fast"])
    with pytest.raises(ValueError, match="must be positive"):
        transfer.learning_rates_for(specs, ["0"])


@pytest.mark.parametrize("value", ["a,b", "1", "1,2,3", "nan,1", ""])
def test_bad_rosenbrock_start_names_the_flag_when_parsed(value):
    with pytest.raises(flags.IllegalFlagValueError,
                       match=f"^flag --rosenbrock_start={value}: must be two numbers x,y$"):
        FLAGS["rosenbrock_start"].parse(value)


def test_rosenbrock_start_set_in_code_is_checked_too(tmp_path):
    FLAGS.rosenbrock_start = ["a", "b"]  # Assignment does not go through the flag's parser.
    with pytest.raises(SystemExit, match="^error: --rosenbrock_start must be two numbers x,y, "
                                         "got 'a,b'$"):
        _run(tmp_path, model="rosenbrock", optimizers="adam", lrs="0.1")


# ------------------------------------------------------------------- end to end runs ---


def test_rosenbrock_sweeps_rates_and_writes_table_and_plots(tmp_path):
    _run(tmp_path, model="rosenbrock",
         optimizers='adam,powersign,"drop(g, 0.1) * exp(sign(g) * sign(m))"',
         lrs="sweep,0.05,sweep", lr_grid="0.03,0.1,0.3", rosenbrock_steps="600",
         rosenbrock_tolerance="0.1")
    rows = _read_csv(tmp_path / "rosenbrock_results.csv")
    assert float(rows[1]["learning rate"]) == 0.05  # Given, not swept.
    assert list(rows[0]) == ["optimizer", "learning rate", "steps to 0.1", "final distance",
                             "final value", "seconds"]
    # Sign rules step like SGD: PowerSign's given rate, and every rate of the grid for the
    # rule (the sweep takes the first), are too large for this valley.
    assert [row["optimizer"] for row in rows] == [
        "Adam", "PowerSign (diverged)",
        str(nos_tf.parse("drop(g, 0.1) * exp(sign(g) * sign(m))")) + " (diverged)"]
    assert float(rows[1]["final value"]) == float(rows[2]["final value"]) == math.inf
    # The chosen rate reaches the tolerance in the fewest steps of the grid.
    adam_steps = {}
    for rate in (0.03, 0.1, 0.3):
        reached = rosenbrock.descend(keras.optimizers.Adam(rate), steps=600,
                                     tolerance=0.1).steps_to_tolerance
        adam_steps[rate] = float("inf") if reached is None else reached
    assert float(rows[0]["learning rate"]) == min(adam_steps, key=adam_steps.get)
    assert float(rows[0]["steps to 0.1"]) == min(adam_steps.values()) < float("inf")
    markdown = (tmp_path / "rosenbrock_results.md").read_text(encoding="utf-8").splitlines()
    assert markdown[0] == "## Rosenbrock from (-1.2, 1.0)"
    assert markdown[2].startswith("| optimizer | learning rate | steps to 0.1 |")
    assert len(markdown) == 4 + 3 + 2
    # What the steps count, under the table; seconds to the hundredth (a run takes a
    # fraction of one: whole seconds showed 0 in every row).
    assert markdown[-1] == ("Steps to 0.1: the updates after which the Euclidean distance "
                            "to the minimum (1, 1) stays within 0.1 to the end of the 600 "
                            "steps (a dash: never). Final value: f at the last point.")
    assert all(re.fullmatch(r"\d+\.\d\d", line.split(" | ")[-1].rstrip(" |"))
               for line in markdown[4:7])
    for png in ("rosenbrock_trajectories.png", "rosenbrock_curves.png"):
        assert (tmp_path / png).read_bytes()[:8] == PNG_MAGIC


def test_runs_of_one_optimizer_are_each_drawn_and_told_apart(tmp_path, monkeypatch):
    drawn = {}

    def spy(name, function):
        def record(runs, *args, **kwargs):
            drawn[name] = list(runs)
            return function(runs, *args, **kwargs)
        return record

    monkeypatch.setattr(transfer, "plot_curves", spy("curves", transfer.plot_curves))
    monkeypatch.setattr(rosenbrock, "plot_trajectories",
                        spy("trajectories", rosenbrock.plot_trajectories))
    _run(tmp_path, model="rosenbrock", optimizers="adam,sgd,adam,Adam",
         lrs="1e-2,1e-3,1e-3,1e-2", rosenbrock_steps="20")
    names = ["Adam (lr 0.01)", "SGD", "Adam (lr 0.001)", "Adam (lr 0.01) #2"]
    assert [row["optimizer"] for row in _read_csv(tmp_path / "rosenbrock_results.csv")] == names
    assert drawn == {"curves": names, "trajectories": names}
    markdown = (tmp_path / "rosenbrock_results.md").read_text(encoding="utf-8")
    assert "| Adam (lr 0.01) #2 | 0.01 |" in markdown


def test_the_log_shows_each_optimizers_cells_as_the_table_does(tmp_path, monkeypatch):
    # It logged the raw dict: {'final val': 9.000000357627869, ...}.
    lines = []
    monkeypatch.setattr(transfer.logging, "info", lambda text, *args: lines.append(text % args))
    _run(tmp_path, model="rosenbrock", optimizers="sgd", lrs="1e-3", rosenbrock_steps="20",
         rosenbrock_tolerance="0.1")
    done = next(line for line in lines if line.startswith("SGD done in "))
    cells = _read_csv(tmp_path / "rosenbrock_results.csv")[0]
    assert done.split(": ", 1)[1] == (
        f"steps to 0.1 —, final distance {float(cells['final distance']):.2e}, "
        f"final value {float(cells['final value']):.2e}")


def test_a_diverged_rosenbrock_run_is_infinitely_far_not_a_dash_like_one_that_never_came_near(
        tmp_path):
    # A diverged run's row was all dashes (its distance and value nan): it read as a run
    # that never came within the tolerance, not as one that blew up.
    _run(tmp_path, model="rosenbrock", optimizers="sgd,sgd", lrs="1e-4,1.0",
         rosenbrock_steps="50", rosenbrock_tolerance="0.1")
    slow, diverged = _read_csv(tmp_path / "rosenbrock_results.csv")
    assert slow["steps to 0.1"] == diverged["steps to 0.1"] == "nan"
    assert 0 < float(slow["final distance"]) < 10 and float(slow["final value"]) < 10
    assert float(diverged["final distance"]) == float(diverged["final value"]) == math.inf
    assert (slow["optimizer"], diverged["optimizer"]) == (
        "SGD (lr 0.0001)", "SGD (lr 1) (diverged)")
    markdown = (tmp_path / "rosenbrock_results.md").read_text(encoding="utf-8")
    assert "| SGD (lr 1) (diverged) | 1 | — | inf | inf |" in markdown


def test_a_sweep_logs_what_each_rate_scored_in_words(tmp_path, monkeypatch):
    # It logged "learning rate 0.0001 scores -5001.13", the score the sweep ranks by.
    lines = []
    monkeypatch.setattr(transfer.logging, "info", lambda text, *args: lines.append(text % args))
    _run(tmp_path, model="rosenbrock", optimizers="adam", lrs="sweep",
         lr_grid="1e-4,0.03,0.3,1e9", rosenbrock_steps="600", rosenbrock_tolerance="0.1")
    swept = {line.split(": ", 2)[1]: line.split(": ", 2)[2] for line in lines
             if line.startswith("Adam: learning rate ") and ": " in line[20:]}
    assert swept["learning rate 0.0001"].startswith(
        "not within 0.1 of the minimum: final distance ")
    assert any(re.fullmatch(r"within 0\.1 of the minimum after \d+ steps", text)
               for text in (swept["learning rate 0.03"], swept["learning rate 0.3"])), swept
    assert swept["learning rate 1e+09"] == "diverged"


def test_cells_are_formatted_by_the_tasks_formats():
    cells = {"final val": 9.000000357627869, "final test": 10.25, "best val": float("nan"),
             "best test": 11}
    assert transfer.format_cells(cells, transfer._WideResNetTask.formats) == (
        "final val 9.0, final test 10.2, best val —, best test 11")
    assert transfer.format_cells({"x": 0.123456}, {}) == "x 0.123"
    # A diverged translator's perplexity filled its cell with 305 digits.
    cells = {"train perplexity": math.exp(700), "validation perplexity": 35.4123}
    assert transfer.format_cells(cells, transfer._TranslationTask.formats) == (
        "train perplexity 1.01e+304, validation perplexity 35.41")


def test_a_diverged_runs_curve_leaves_the_others_drawn(tmp_path):
    """matplotlib's log axis overflowed on a perplexity of 1e304 (a RuntimeWarning), and
    every optimizer's panel came out empty."""
    curves = {"Adam": {"validation perplexity": [298.0, 250.0]},
              "SGD (diverged)": {"validation perplexity": [math.exp(700), math.inf]}}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        path = transfer.plot_curves(curves, str(tmp_path / "curves.png"), "title")
    assert (tmp_path / "curves.png").read_bytes()[:8] == PNG_MAGIC and path.endswith(".png")


def test_drawing_the_figures_leaves_the_callers_backend_and_figures_alone(tmp_path):
    """They called matplotlib.use("Agg"), which in a notebook switched its backend and
    closed every figure the user had open."""
    import matplotlib  # pylint: disable=import-outside-toplevel
    from matplotlib import pyplot  # pylint: disable=import-outside-toplevel

    backend = matplotlib.get_backend()
    matplotlib.use("svg")  # Any backend other than Agg, as a notebook's inline one is.
    try:
        figure = pyplot.figure()
        transfer.plot_curves({"SGD": {"loss": [2.0, 1.0]}}, str(tmp_path / "c.png"), "t")
        descent = rosenbrock.descend(keras.optimizers.SGD(1e-3), steps=3)
        rosenbrock.plot_trajectories({"SGD": descent}, str(tmp_path / "t.png"))
        assert matplotlib.get_backend() == "svg"
        assert pyplot.fignum_exists(figure.number)
    finally:
        pyplot.close("all")
        matplotlib.use(backend)


@pytest.mark.parametrize("task", [transfer._WideResNetTask, transfer._TranslationTask])
def test_the_help_names_every_column_of_the_models_table(task):
    # --help said gnmt's columns were "train perplexity, test BLEU": it left out the
    # validation perplexity (which chooses a swept rate) and seconds.
    doc = " ".join(transfer.__doc__.split())
    paragraph = doc.split(f"- {task.name}: ", 1)[1].split(" - ", 1)[0]
    assert f"Columns: {', '.join(task.columns)}" in paragraph, paragraph
    assert "`optimizer`, `learning rate`, the model's columns below, then `seconds`" in doc


def _interrupt(monkeypatch, when, error=KeyboardInterrupt):
    """Ctrl-C (or `error`) in the Rosenbrock task: while it is built, or in the run of
    optimizer `when`."""
    if when == "building the task":
        def build(self):
            raise error
        monkeypatch.setattr(transfer._RosenbrockTask, "__init__", build)
        return
    run = transfer._RosenbrockTask.run

    def run_until(self, spec, learning_rate, sweep):
        if spec.label == when:
            raise error
        return run(self, spec, learning_rate, sweep)
    monkeypatch.setattr(transfer._RosenbrockTask, "run", run_until)


def test_ctrl_c_keeps_the_optimizers_that_finished(tmp_path, monkeypatch, capsys):
    _interrupt(monkeypatch, when="Adam")
    with pytest.raises(SystemExit) as info:
        _run(tmp_path, model="rosenbrock", optimizers="sgd,adam,rmsprop", lrs="1e-3",
             rosenbrock_steps="20")
    assert info.value.code == 130  # The shell's status for SIGINT: scripts see the Ctrl-C.
    assert [row["optimizer"] for row in _read_csv(tmp_path / "rosenbrock_results.csv")] == [
        "SGD"]
    markdown = (tmp_path / "rosenbrock_results.md").read_text(encoding="utf-8")
    assert markdown.startswith("## Rosenbrock from (-1.2, 1.0) (interrupted: 1 of 3 optimizers)")
    assert (tmp_path / "rosenbrock_curves.png").read_bytes()[:8] == PNG_MAGIC
    last_line = capsys.readouterr().err.strip().splitlines()[-1]
    assert last_line.startswith("interrupted: wrote the 1 of 3 optimizers that finished: ")
    assert str(tmp_path / "rosenbrock_results.md") in last_line


@pytest.mark.parametrize("error, message", [
    (ValueError("cannot build"), "cannot build"),
    (MemoryError("out of memory"), "MemoryError: out of memory")])
def test_an_optimizer_that_fails_keeps_those_that_finished(tmp_path, monkeypatch, error,
                                                           message):
    _interrupt(monkeypatch, when="Adam", error=error)
    with pytest.raises(SystemExit) as info:
        _run(tmp_path, model="rosenbrock", optimizers="sgd,adam,rmsprop", lrs="1e-3",
             rosenbrock_steps="20")
    first, second = str(info.value.code).splitlines()
    assert first == f"error: optimizer 'Adam': {message}"
    assert second.startswith("wrote the 1 of 3 optimizers that finished: ")
    assert [row["optimizer"] for row in _read_csv(tmp_path / "rosenbrock_results.csv")] == [
        "SGD"]
    assert (tmp_path / "rosenbrock_results.md").read_text(encoding="utf-8").startswith(
        "## Rosenbrock from (-1.2, 1.0) (stopped by Adam's error: 1 of 3 optimizers)")


@pytest.mark.parametrize("name, value", [
    ("transfer_seed", 2**31), ("transfer_seed", -1), ("gnmt_units", 15),
    ("encoder_layers", 0), ("decoder_layers", 0), ("gnmt_dropout", 1.0),
    ("wrn_dropout", -0.1), ("clip_norm", -1.0), ("length_penalty", -0.5),
    ("rosenbrock_tolerance", 0.0), ("gnmt_embedding_dim", 0), ("gnmt_embedding_dim", -4),
    ("gnmt_residual_from", 1),
    # absl's bounds let nan through, and inf past a lower bound: these failed as Keras's
    # refusal of an optimizer argument (weight decay's `l2`), or clipped nothing.
    ("weight_decay", math.nan), ("weight_decay", math.inf), ("label_smoothing", math.nan),
    ("clip_norm", math.nan), ("length_penalty", math.nan), ("rosenbrock_tolerance", math.inf)])
def test_impossible_model_flags_are_refused_as_they_are_parsed(name, value):
    """Not after the data has loaded, as each optimizer's error in turn (a seed past
    int32 failed only the rule optimizers, after the Keras ones had trained)."""
    with pytest.raises(flags.IllegalFlagValueError, match=name):
        setattr(FLAGS, name, value)


@pytest.mark.parametrize("when", ["building the task", "SGD"])
def test_ctrl_c_before_any_optimizer_finished_says_so(tmp_path, monkeypatch, capsys, when):
    _interrupt(monkeypatch, when)
    with pytest.raises(SystemExit) as info:
        _run(tmp_path, model="rosenbrock", optimizers="sgd,adam", lrs="1e-3",
             rosenbrock_steps="20")
    assert info.value.code == 130
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "interrupted: no results were written")
    assert not os.listdir(tmp_path)


def test_wrn_rows_put_each_accuracy_in_its_column_and_sweeps_rank_by_final_validation(
        monkeypatch):
    calls = []

    def train(images, build, learning_rate, **kwargs):
        calls.append(kwargs)
        return wrn.ClassificationResult(
            final_validation=0.1, final_test=0.2, best_validation=0.3, best_test=0.4,
            history={"cross_entropy": [2.0, 1.0], "validation_accuracy": [0.05, 0.1],
                     "test_accuracy": [0.15, 0.2]},
            train_seconds=1.0)

    monkeypatch.setattr(wrn, "train_wide_resnet", train)
    FLAGS.weight_decay = 1e-3
    task = object.__new__(transfer._WideResNetTask)
    split = (None, None)
    task.images = data.ImageData("fake", split, split, split, 10, (8, 8, 1))
    outcome = task.run(OptimizerSpec.parse("sgd"), 0.1, sweep=False)
    assert outcome.cells == pytest.approx(
        {"final val": 10.0, "final test": 20.0, "best val": 30.0, "best test": 40.0})
    assert outcome.curves["validation accuracy %"] == pytest.approx([5.0, 10.0])
    assert outcome.curves["test accuracy %"] == pytest.approx([15.0, 20.0])
    assert outcome.score == pytest.approx(0.1)  # The final validation accuracy.
    assert calls[0]["weight_decay"] == 1e-3


def test_gnmt_rows_put_each_perplexity_in_its_column_and_the_flags_reach_the_trainer(
        monkeypatch):
    calls = []

    def train(corpus, build, learning_rate, **kwargs):
        calls.append(kwargs)
        return gnmt.TranslationResult(
            train_perplexity=30.0, validation_perplexity=40.0, diverged=False,
            test_bleu=5.0, history={"train_perplexity": [50.0, 30.0],
                                    "validation_perplexity": [60.0, 40.0]},
            examples=[], train_seconds=1.0, decode_seconds=1.0)

    monkeypatch.setattr(gnmt, "train_translator", train)
    for name, value in [("label_smoothing", "0.2"), ("length_penalty", "1.5"),
                        ("beam_size", "3"), ("gnmt_residual_from", "3"), ("clip_norm", "2")]:
        FLAGS[name].parse(value)
    task = object.__new__(transfer._TranslationTask)
    task.corpus, task.tokenizers = None, None
    outcome = task.run(OptimizerSpec.parse("adam"), 0.1, sweep=False)
    assert outcome.cells == {"train perplexity": 30.0, "validation perplexity": 40.0,
                             "test BLEU": 5.0}
    assert outcome.score == -40.0  # Sweeps rank by validation perplexity.
    assert {key: calls[0][key] for key in ("label_smoothing", "length_penalty",
                                           "beam_size", "residual_from", "clip_norm")} == {
        "label_smoothing": 0.2, "length_penalty": 1.5, "beam_size": 3, "residual_from": 3,
        "clip_norm": 2.0}


def test_the_lookup_row_recalls_training_sentences_not_the_test_ones():
    train = [("Der Hund schläft im Garten.", "The dog sleeps in the garden."),
             ("Die Katze ist schwarz.", "The cat is black.")]
    test = [("Der Hund ist schwarz.", "The dog is black."),
            ("Die Katze schläft.", "The cat sleeps.")]
    task = object.__new__(transfer._TranslationTask)
    task.corpus = translation_data.ParallelCorpus("test", "de", "en", train, test, test)
    [row] = task.reference_rows()
    expected = translation_data.corpus_bleu(
        translation_data.lookup_translations(train, [de for de, _ in test]),
        [en for _, en in test])
    assert row["test BLEU"] == pytest.approx(expected) and expected < 100


def test_rosenbrock_row_is_the_descents_distance_and_value(tmp_path):
    _run(tmp_path, model="rosenbrock", optimizers="sgd", lrs="1e-3", rosenbrock_steps="20")
    [row] = _read_csv(tmp_path / "rosenbrock_results.csv")
    descent = rosenbrock.descend(keras.optimizers.SGD(1e-3), steps=20)
    assert float(row["final distance"]) == pytest.approx(descent.final_distance, rel=1e-6)
    assert float(row["final value"]) == pytest.approx(descent.final_value, rel=1e-6)
    assert not math.isclose(descent.final_distance, descent.final_value, rel_tol=1e-2)


def _store_tiny_cifar10(data_dir):
    """A TFDS cifar10 of random images, read back by TFDS's own cifar10 builder."""
    import numpy as np  # pylint: disable=import-outside-toplevel
    import tensorflow_datasets as tfds  # pylint: disable=import-outside-toplevel

    rng = np.random.default_rng(0)

    def examples(count):
        return [(i, {"id": f"{i}", "label": i % 10,
                     "image": rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)})
                for i in range(count)]

    tfds.dataset_builders.store_as_tfds_dataset(
        name="cifar10", version="3.0.2", data_dir=data_dir,
        features=tfds.features.FeaturesDict({
            "id": tfds.features.Text(), "image": tfds.features.Image(shape=(32, 32, 3)),
            "label": tfds.features.ClassLabel(num_classes=10)}),
        split_datasets={"train": examples(60), "test": examples(30)})


def test_wrn_on_cifar10_through_tfds_has_the_papers_columns(tmp_path):
    data_dir = str(tmp_path / "tfds")
    _store_tiny_cifar10(data_dir)
    _run(tmp_path, model="wrn", optimizers="momentum,adam", lrs="0.05,1e-3",
         image_dataset="auto", datasets_dir=data_dir, wrn_validation_examples="10",
         wrn_test_examples="20", wrn_depth="10", wrn_width="1", train_epochs="2",
         train_batch_size="25", fit_verbose="0")
    markdown = (tmp_path / "wrn_results.md").read_text(encoding="utf-8").splitlines()
    assert markdown[0] == "## WRN-10-1 on cifar10"  # auto: cifar10 once TFDS has it.
    rows = _read_csv(tmp_path / "wrn_results.csv")
    assert list(rows[0]) == ["optimizer", "learning rate", "final val", "final test",
                             "best val", "best test", "seconds"]
    assert [(row["optimizer"], float(row["learning rate"])) for row in rows] == [
        ("Momentum", 0.05), ("Adam", 1e-3)]
    for row in rows:
        accuracies = [float(row[column]) for column in ("final val", "final test",
                                                        "best val", "best test")]
        # 10 validation and 20 test images: accuracies are multiples of 10% and 5%.
        assert all(0.0 <= accuracy <= 100.0 for accuracy in accuracies)
        for column, step in (("final val", 10), ("final test", 5)):
            value = float(row[column])
            assert value == pytest.approx(step * round(value / step), abs=1e-3)
        assert float(row["best val"]) >= float(row["final val"])
        assert float(row["best test"]) >= float(row["final test"])
    assert (tmp_path / "wrn_curves.png").read_bytes()[:8] == PNG_MAGIC


def _run_tiny_gnmt_on_tfds_wmt14(tmp_path, **flag_values):
    """A GNMT-lite of 16 units a layer, 2 epochs on a tiny wmt14 the test writes."""
    from test_translation_data import _store_tiny_wmt14  # pylint: disable=import-outside-toplevel

    data_dir = str(tmp_path / "tfds")
    _store_tiny_wmt14(data_dir)
    _run(tmp_path, model="gnmt", datasets_dir=data_dir, gnmt_units="16",
         gnmt_embedding_dim="8", encoder_layers="1", decoder_layers="1",
         vocabulary_size="40", train_epochs="2", train_batch_size="2", held_out_pairs="1",
         fit_verbose="0", **flag_values)


def test_gnmt_through_tfds_wmt14_reports_perplexity_and_bleu(tmp_path, caplog):
    _run_tiny_gnmt_on_tfds_wmt14(tmp_path, optimizers="addsign", lrs="0.01", beam_size="2",
                                 label_smoothing="0.1")
    # One layer a stack: the default --gnmt_residual_from=2 gives none a residual connection.
    assert "--gnmt_residual_from=2 is above both stacks" in caplog.text
    rows = _read_csv(tmp_path / "gnmt_results.csv")
    assert list(rows[0]) == ["optimizer", "learning rate", "train perplexity",
                             "validation perplexity", "test BLEU", "seconds"]
    assert [row["optimizer"] for row in rows] == ["AddSign", "lookup: nearest training sentence"]
    assert float(rows[0]["train perplexity"]) > 1.0
    assert 0.0 <= float(rows[0]["test BLEU"]) <= 100.0
    # The lookup row has a BLEU and nothing an optimizer's run would give.
    assert 0.0 <= float(rows[1]["test BLEU"]) <= 100.0
    assert [rows[1][column] for column in ("learning rate", "train perplexity")] == ["nan"] * 2
    markdown = (tmp_path / "gnmt_results.md").read_text(encoding="utf-8")
    assert "| lookup: nearest training sentence | — | — | — |" in markdown
    assert markdown.endswith("\nTest BLEU: sacrebleu nrefs:1|case:lc|eff:no|tok:none|"
                             f"smooth:exp|version:{sacrebleu.__version__}, on lowercased words "
                             "with punctuation split off (tokenized BLEU, as GNMT reported).\n")
    assert (tmp_path / "gnmt_curves.png").read_bytes()[:8] == PNG_MAGIC


def test_a_diverged_translators_row_says_so(tmp_path, caplog):
    """Its perplexities were capped at exp(700), the same for any loss past 700 and
    printed in 305 digits, with nothing said of the blow-up."""
    _run_tiny_gnmt_on_tfds_wmt14(tmp_path, optimizers="adam,sgd", lrs="1e-3,1e6",
                                 clip_norm="0")
    adam, sgd, _ = _read_csv(tmp_path / "gnmt_results.csv")
    assert (adam["optimizer"], sgd["optimizer"]) == ("Adam", "SGD (diverged)")
    assert float(adam["validation perplexity"]) < 400  # 10 x the target vocabulary: sane.
    assert float(sgd["validation perplexity"]) > 400
    assert "SGD diverged at learning rate 1e+06" in caplog.text


# A WRN-10-1 trained for an epoch on 300 of scikit-learn's digits, at a constant rate.
_TINY_WRN_ON_DIGITS = dict(
    model="wrn", image_dataset="digits", wrn_train_examples="300",
    wrn_validation_examples="200", wrn_test_examples="100", wrn_depth="10", wrn_width="1",
    train_epochs="1", lr_schedule="constant", fit_verbose="0")


def test_a_diverged_wide_resnets_row_says_so(tmp_path):
    # Its accuracies, those of NaN weights, read as a slow optimizer's.
    _run(tmp_path, optimizers="sgd,sgd", lrs="1e-3,1e6", **_TINY_WRN_ON_DIGITS)
    assert [row["optimizer"] for row in _read_csv(tmp_path / "wrn_results.csv")] == [
        "SGD (lr 0.001)", "SGD (lr 1e+06) (diverged)"]


def test_wrn_auto_with_cifar10_copied_halfway_stops_instead_of_using_fashion_mnist(tmp_path):
    data_dir = tmp_path / "tfds"
    _store_tiny_cifar10(str(data_dir))
    next(data_dir.glob("cifar10/*/cifar10-train.tfrecord*")).unlink()
    with pytest.raises(SystemExit, match="error: dataset 'cifar10' in .* is incomplete"):
        _run(tmp_path, model="wrn", optimizers="adam", lrs="1e-3", image_dataset="auto",
             datasets_dir=str(data_dir))


def test_a_wrn_sweep_ranks_a_diverged_rate_below_a_slow_one(tmp_path, monkeypatch):
    """A rate whose loss went NaN scores chance's accuracy (one class predicted for all),
    which outranked a slow rate's below chance: the sweep chose the diverged rate."""
    lines = []
    monkeypatch.setattr(transfer.logging, "info", lambda text, *args: lines.append(text % args))
    _run(tmp_path, optimizers="sgd", lrs="sweep", lr_grid="1e-6,1e6", **_TINY_WRN_ON_DIGITS)
    assert "SGD: learning rate 1e+06: diverged" in lines
    [row] = _read_csv(tmp_path / "wrn_results.csv")
    assert float(row["learning rate"]) == 1e-6


def test_wrn_auto_without_cifar10_in_datasets_dir_trains_on_the_offline_default(tmp_path):
    # --datasets_dir is where datasets are looked for first: one without CIFAR-10 (or
    # Fashion-MNIST) is no reason to fail where Debian's Fashion-MNIST is installed.
    (tmp_path / "empty").mkdir()
    _run(tmp_path, model="wrn", optimizers="adam", lrs="1e-3", image_dataset="auto",
         datasets_dir=str(tmp_path / "empty"), wrn_train_examples="50",
         wrn_validation_examples="10", wrn_test_examples="10", wrn_depth="10",
         wrn_width="1", train_epochs="1", train_batch_size="25", fit_verbose="0")
    markdown = (tmp_path / "wrn_results.md").read_text(encoding="utf-8").splitlines()
    assert markdown[0] == "## WRN-10-1 on fashion_mnist"


@pytest.mark.parametrize("image_dataset, augment, expected", [
    ("digits", None, False),  # A 4-pixel shift wipes out an 8x8 digit.
    ("digits", "true", True),
    ("fashion_mnist", None, True),
    ("fashion_mnist", "false", False),
])
def test_wrn_augments_by_default_except_8x8_digits(image_dataset, augment, expected):
    FLAGS["image_dataset"].parse(image_dataset)
    if augment is not None:
        FLAGS["augment"].parse(augment)
    FLAGS["wrn_validation_examples"].parse("10")
    assert transfer._WideResNetTask().augmentation is expected


def test_missing_dataset_is_a_clear_error(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit, match="error: .*cifar10"):
        _run(tmp_path, model="wrn", optimizers="adam", lrs="1e-3", image_dataset="cifar10",
             datasets_dir=str(tmp_path / "empty"))
    with pytest.raises(SystemExit, match="typo is not a directory: pass --datasets_dir=DIR"):
        _run(tmp_path, model="wrn", optimizers="adam", lrs="1e-3",
             image_dataset="fashion_mnist", datasets_dir=str(tmp_path / "typo"))


def test_a_datasets_dir_with_part_of_a_dataset_is_an_error_not_replaced_by_debians(tmp_path):
    partial = tmp_path / "partial"
    partial.mkdir()
    for name in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"):
        (partial / name).write_bytes(b"")
    with pytest.raises(SystemExit, match="partial holds some of Fashion-MNIST's IDX files but "
                       "not t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte: add them, or "
                       "pass --datasets_dir=DIR"):
        _run(tmp_path, model="wrn", optimizers="adam", lrs="1e-3",
             image_dataset="fashion_mnist", datasets_dir=str(partial))


@pytest.mark.parametrize("model, flag, value, message", [
    ("wrn", "wrn_validation_examples", "5000", "error: --wrn_validation_examples=5000 must be "
     "between 1 and "),
    ("gnmt", "held_out_pairs", "20000", "error: 2 x --held_out_pairs = 40000 must be between"),
])
def test_sizes_the_data_cannot_hold_are_named_by_transfers_flags(tmp_path, model, flag, value,
                                                                  message):
    """Not by the loader's arguments (validation_examples=, validation_pairs + test_pairs)."""
    with pytest.raises(SystemExit, match=re.escape(message)):
        _run(tmp_path, model=model, optimizers="adam", lrs="1e-3", image_dataset="digits",
             **{flag: value})


def test_missing_dataset_error_names_transfers_own_flag(tmp_path):
    # wmt14 is looked for in --datasets_dir only: no download is tried, whatever the network.
    (tmp_path / "empty").mkdir()
    with pytest.raises(SystemExit) as info:
        _run(tmp_path, model="gnmt", optimizers="adam", lrs="1e-3", translation_data="wmt14",
             datasets_dir=str(tmp_path / "empty"))
    message = str(info.value)
    assert message.startswith("error: wmt14_translate/de-en is not prepared")
    assert "pass --datasets_dir=DIR" in message and "pass --data_dir" not in message
    assert "`tfds build wmt14_translate/de-en --data_dir=DIR`" in message  # TFDS's own flag.


def test_a_wide_resnet_that_cannot_exist_is_refused_before_its_data_loads(tmp_path):
    with pytest.raises(SystemExit, match=(r"^error: --wrn_depth=11 --wrn_width=2: "
                                          r"WRN depth must be 6n \+ 4 .*got 11$")):
        _run(tmp_path, model="wrn", optimizers="adam", lrs="1e-3", wrn_depth="11",
             datasets_dir=str(tmp_path / "no such folder"))  # Its error would come first.


@pytest.mark.parametrize("flag, terminal, verbose", [
    ("auto", True, 1), ("auto", False, 2), ("1", False, 1), ("0", True, 0)])
def test_progress_bars_on_a_terminal_and_a_line_per_epoch_in_a_log(
        monkeypatch, flag, terminal, verbose):
    monkeypatch.setattr(transfer.sys.stdout, "isatty", lambda: terminal)
    with flagsaver.flagsaver(fit_verbose=flag):
        assert transfer.fit_verbosity() == verbose


def test_mismatched_learning_rates_are_a_clear_error(tmp_path):
    with pytest.raises(SystemExit, match="error: --lrs has 2 values for 3 optimizers"):
        _run(tmp_path, model="rosenbrock", optimizers="sgd,adam,powersign", lrs="0.1,0.2")
    with pytest.raises(SystemExit, match="must be positive and finite, got inf"):
        _run(tmp_path, model="rosenbrock", optimizers="sgd", lrs="inf")


def test_stray_arguments_are_an_error(tmp_path):
    # A quoting slip (`--optimizers=adam, rmsprop`) leaves "rmsprop" as an argument:
    # running without it would quietly drop an optimizer from the comparison.
    with pytest.raises(SystemExit, match="^error: unexpected arguments: rmsprop$"):
        FLAGS.output_dir = str(tmp_path)
        transfer.main(["transfer", "rmsprop"])
    assert not os.listdir(tmp_path)


@pytest.mark.parametrize("where", ["under a file", "a file", "in /proc"])
def test_unwritable_output_dir_is_a_clear_error_before_the_task_is_built(
        tmp_path, monkeypatch, where):
    if where in ("under a file", "a file"):
        (tmp_path / "file").write_text("", encoding="utf-8")
        output_dir = tmp_path / "file"
        if where == "under a file":
            output_dir = output_dir / "transfer"
    else:  # Exists, so only writing a file into it finds it unusable.
        if not os.path.isdir("/proc/self"):
            pytest.skip("no procfs here")
        output_dir = "/proc"
    # Data loading (and for gnmt, learning tokenizers) comes after the check.
    monkeypatch.setitem(transfer._TASKS, "rosenbrock",
                        lambda: pytest.fail("the task was built before --output_dir"))
    with pytest.raises(SystemExit, match=r"^error: cannot write to --output_dir=\S+: \w") as info:
        _run(output_dir, model="rosenbrock", optimizers="adam", lrs="0.1")
    if where == "a file":  # It said "File exists", which read as a refusal to overwrite.
        assert str(info.value.code).endswith(": it is a file, not a folder")
