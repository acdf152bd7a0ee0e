r"""Transfer experiments: do found rules beat the classics on bigger models and other tasks?

`python -m nos_tf.transfer --model=wrn|gnmt|rosenbrock` trains one model with each of
`--optimizers` — Keras's SGD, momentum, Adam and RMSProp, PowerSign, AddSign, and any rule
text — with the same seed and the same data, each at its own learning rate, and writes a
table like the paper's (markdown and CSV) and a PNG of the learning curves to
`--output_dir` (for rosenbrock also the trajectories over the contour plot).

    python -m nos_tf.transfer --flagfile=flags/transfer_rosenbrock.cfg
    python -m nos_tf.transfer --flagfile=flags/transfer_gnmt_cpu.cfg
    python -m nos_tf.transfer --flagfile=flags/transfer_wrn_cpu.cfg \
        --optimizers='adam,powersign,drop(g, 0.3) * exp(sign(g) * sign(m))' \
        --lrs=1e-3,0.05,0.05

The table's `seconds` is the wall time of the final run (training and evaluation), not
counting a learning-rate sweep. A run that blew up is named "(diverged)" in its row and
its curves' legend: wrn's loss or a variable (batch norm's statistics too) left the
floats, gnmt's validation perplexity ended above ten times its target vocabulary (an
untrained model's is near it), rosenbrock's point left the floats. Ctrl-C writes the
table and figures of the optimizers that finished, the title marked "interrupted", and
exits with status 130.

Learning rates: `--lrs` gives one per optimizer (or one for all). Without it, and for
an optimizer whose entry is `sweep` (`--lrs=1.0,sweep,3e-3`), the optimizer's rate is
chosen from `--lr_grid` by a short run of `--sweep_epochs` epochs
(the best final validation accuracy for wrn, the lowest validation perplexity for gnmt,
the fewest steps to the minimum for rosenbrock), as the paper chose each candidate's
learning rate by a short run.

Models (each in nos_tf/models/). Each table has a row per optimizer: `optimizer`,
`learning rate`, the model's columns below, then `seconds`.
- wrn: Wide ResNet on cifar10 through TFDS when it is available, else Fashion-MNIST offline.
  Columns: final val, final test, best val, best test (accuracy %, "best" the highest
  of any epoch).
- gnmt: GNMT-lite on wmt14_translate/de-en through TFDS when it is prepared, else the
  example sentences of Debian's trans-de-en. Columns: train perplexity, validation
  perplexity, test BLEU (perplexities of the last epoch: the training one is the mean over
  its batches, dropout on, as GNMT and tf/nmt log it); a last row gives the test
  BLEU of translation by lookup (the training translation of the most similar training
  sentence), what a small corpus gives without learning to translate, and its seconds.
- rosenbrock: the 2-D Rosenbrock function from a fixed start. Columns: steps to come
  within --rosenbrock_tolerance of the minimum (1, 1) (the Euclidean distance of the point
  (x, y)) and stay there to the end of the run (a dash: never), final distance, final
  value (inf: diverged).
"""

from __future__ import annotations

import csv
import dataclasses
import errno
import math
import os
import re
import sys
import tempfile
import time
from collections.abc import Callable

from absl import app, flags, logging

from nos_tf import flag_checks
from nos_tf.optimizer_spec import OptimizerListParser, OptimizerSpec

# Flag names shared with other binaries (seed, epochs, data_dir, ...) carry a prefix here:
# absl flags are process-wide, and tests import several binaries into one process.

_LOOKUP_TRAIN_PAIRS = 100_000  # The lookup's n-gram vectors of wmt14's 4.5M pairs: many GB.


def _start_point(values: list[str]) -> tuple[float, float] | None:
    """--rosenbrock_start as (x, y), or None if it is not two finite numbers."""
    try:
        point = tuple(float(value) for value in values)
    except ValueError:
        return None
    return point if len(point) == 2 and all(map(math.isfinite, point)) else None


class _PointParser(flags.ListParser):
    """--rosenbrock_start: checked when the flags are parsed, where absl's error names the
    flag, not when the Rosenbrock task starts, where float()'s error named none."""

    def __init__(self):
        super().__init__()
        self.syntactic_help = "two numbers x,y"  # ListParser's own is set per instance.

    def parse(self, argument):
        values = super().parse(argument)
        if _start_point(values) is None:
            raise ValueError("must be two numbers x,y")
        return values


# ----------------------------------------------------------------------------- flags ---

_MODEL = flags.DEFINE_enum(
    "model", None, ["wrn", "gnmt", "rosenbrock"], "The transfer experiment to run.")
_OPTIMIZERS = flags.DEFINE(
    OptimizerListParser(), "optimizers", "sgd,momentum,adam,rmsprop,powersign,addsign",
    "Optimizers to compare: sgd, momentum, adam, rmsprop, powersign, addsign (optionally "
    "-ld, -cd or -rd for a sign decay), or rule texts such as "
    "'g * exp(sign(g) * sign(m))'. Commas inside parentheses belong to the rule. A name "
    "is always the Keras optimizer: the rule of the operand alone is '1 * adam'.",
    serializer=flags.ListSerializer(","))
_LEARNING_RATES = flags.DEFINE_list(
    "lrs", [], "One learning rate per optimizer, in order, or one for all; 'sweep' for "
    "one, or the flag empty for all: choose it from --lr_grid by a short run.")
_LR_GRID = flags.DEFINE_list(
    "lr_grid", ["1e-4", "1e-3", "1e-2", "1e-1", "1.0"],
    "Learning rates tried for an optimizer without one in --lrs.")
_SWEEP_EPOCHS = flags.DEFINE_integer(
    "sweep_epochs", 1, "Epochs of each learning-rate trial (wrn, gnmt).", lower_bound=1)
_OUTPUT_DIR = flags.DEFINE_string(
    "output_dir", "runs/transfer", "Where the table (.md, .csv) and PNGs are written.")
_SEED = flags.DEFINE_integer(
    "transfer_seed", 0, "Seed of data splits, initial weights, augmentation and batch order: the "
    "same for every optimizer.", lower_bound=0, upper_bound=2**31 - 1)
_EPOCHS = flags.DEFINE_integer("train_epochs", 5, "Training epochs (wrn, gnmt).", lower_bound=1)
_BATCH_SIZE = flags.DEFINE_integer(
    "train_batch_size", 128, "Batch size (wrn, gnmt).", lower_bound=1)
_VERBOSE = flags.DEFINE_enum(
    "fit_verbose", "auto", ["auto", "0", "1", "2"], "Keras fit verbosity: 1 progress bars, "
    "2 a line per epoch, 0 silent; auto: 1 on a terminal, 2 into a file or pipe (a log).")

# Wide ResNet.
_IMAGE_DATASET = flags.DEFINE_enum(
    "image_dataset", "auto", ["auto", "cifar10", "fashion_mnist", "digits"],
    "wrn data; auto: cifar10 through TFDS if it is here (or TFDS can download it), else "
    "Fashion-MNIST (offline).")
_DATA_DIR = flags.DEFINE_string(
    "datasets_dir", None, "Where datasets are looked for first: a TFDS data dir (cifar10, "
    "wmt14_translate) or a folder of Fashion-MNIST IDX files.")
_TRAIN_EXAMPLES = flags.DEFINE_integer(
    "wrn_train_examples", None, "wrn: training images to keep (default: all).", lower_bound=1)
_VALIDATION_EXAMPLES = flags.DEFINE_integer(
    "wrn_validation_examples", 5000, "wrn: images held out of the training split for "
    "validation.", lower_bound=1)
_TEST_EXAMPLES = flags.DEFINE_integer(
    "wrn_test_examples", None, "wrn: evaluate on only the first N test images (default: "
    "all; test accuracy is measured after every epoch).", lower_bound=1)
_WRN_DEPTH = flags.DEFINE_integer("wrn_depth", 16, "WRN depth d = 6n + 4 (paper: 28).")
_WRN_WIDTH = flags.DEFINE_integer("wrn_width", 2, "WRN widening factor k (paper: 10).")
_WEIGHT_DECAY = flags.DEFINE_float(
    "weight_decay", 5e-4, "wrn: weight decay of conv and classifier kernels: each gradient "
    "gains weight_decay * w (paper: 5e-4), an L2 loss of weight_decay / 2 * sum(w ** 2).",
    lower_bound=0)
_WRN_DROPOUT = flags.DEFINE_float("wrn_dropout", 0.0, "wrn: dropout inside each block.",
                                   lower_bound=0.0)
_LR_SCHEDULE = flags.DEFINE_enum(
    "lr_schedule", "cosine", ["cosine", "step", "constant"],
    "wrn: cosine decay to 0, WRN's step decay (x0.2 at 30/60/80%), or constant.")
_AUGMENT = flags.DEFINE_bool(
    "augment", None, "wrn: random 4-pixel-padded crops and flips (default: yes, except on "
    "digits, whose 8x8 images a 4-pixel shift wipes out and a mirror makes other symbols).")

# GNMT-lite.
_TRANSLATION_DATA = flags.DEFINE_enum(
    "translation_data", "auto", ["auto", "wmt14", "trans_de_en"],
    "gnmt data; auto: wmt14_translate/de-en through TFDS if it is here, else the example "
    "sentences of Debian's trans-de-en (offline).")
_DIRECTION = flags.DEFINE_enum(
    "direction", "en-de", ["en-de", "de-en"], "gnmt: translation direction (paper: en-de).")
_TRAIN_PAIRS = flags.DEFINE_integer(
    "train_pairs", None, "gnmt: training pairs to keep (default: all).", lower_bound=1)
_HELD_OUT_PAIRS = flags.DEFINE_integer(
    "held_out_pairs", 1000, "gnmt: pairs in each of the validation and test splits.",
    lower_bound=1)
_MAX_WORDS = flags.DEFINE_integer(
    "max_words", 20, "gnmt: longest sentence kept, in words (both sides; wmt14: of its "
    "training pairs, its newstest splits being translated whole).", lower_bound=3)
_DICTIONARY_PHRASES = flags.DEFINE_bool(
    "dictionary_phrases", False, "gnmt: also train on the trans-de-en dictionary's ~63k "
    "multi-word entries (entries with example sentences left out). Six times the CPU "
    "preset's pairs: its word pieces took ~13 minutes to learn, each epoch ~5x longer.")
_VOCABULARY_SIZE = flags.DEFINE_integer(
    "vocabulary_size", 8000,
    "gnmt: tokens (word pieces or words) per language, special tokens included.",
    lower_bound=5)
_TOKENIZER = flags.DEFINE_enum(
    "tokenizer", "wordpiece", ["wordpiece", "word"],
    "gnmt: split sentences into word pieces (as GNMT does) or whole words.")
_GNMT_UNITS = flags.DEFINE_integer(
    "gnmt_units", 256, "gnmt: LSTM width, even: the bidirectional first layer's two "
    "directions have half each (paper: 1024).", lower_bound=2)
_GNMT_EMBEDDING = flags.DEFINE_integer(
    "gnmt_embedding_dim", None, "gnmt: embedding width (default: --gnmt_units).",
    lower_bound=1)
_ENCODER_LAYERS = flags.DEFINE_integer(
    "encoder_layers", 2, "gnmt: encoder LSTM layers, the first bidirectional (paper: 8).",
    lower_bound=1)
_DECODER_LAYERS = flags.DEFINE_integer(
    "decoder_layers", 2, "gnmt: decoder layers (paper: 8).", lower_bound=1)
_RESIDUAL_FROM = flags.DEFINE_integer(
    "gnmt_residual_from", 2, "gnmt: the first layer of each stack (1 at the bottom) with a "
    "residual connection around it (paper: 3; 2 gives a two-layer stack one).",
    lower_bound=2)
_GNMT_DROPOUT = flags.DEFINE_float("gnmt_dropout", 0.2, "gnmt: dropout between layers.",
                                   lower_bound=0.0)
_LABEL_SMOOTHING = flags.DEFINE_float(
    "label_smoothing", 0.0, "gnmt: label smoothing of the training loss (perplexities are "
    "reported unsmoothed).", lower_bound=0.0, upper_bound=0.99)
_CLIP_NORM = flags.DEFINE_float(
    "clip_norm", 5.0, "gnmt: global gradient norm clip (0: none).", lower_bound=0.0)
_BEAM_SIZE = flags.DEFINE_integer(
    "beam_size", 1, "gnmt: test decoding: 1 greedy, more beam search.", lower_bound=1)
_LENGTH_PENALTY = flags.DEFINE_float(
    "length_penalty", 0.6, "gnmt: GNMT's length penalty alpha for beam search.",
    lower_bound=0.0)

# Rosenbrock.
_START = flags.DEFINE(_PointParser(), "rosenbrock_start", ["-1.2", "1.0"],
                      "rosenbrock: start (x, y).", serializer=flags.CsvListSerializer(","))
_STEPS = flags.DEFINE_integer("rosenbrock_steps", 5000, "rosenbrock: updates per run.",
                              lower_bound=1)
_TOLERANCE = flags.DEFINE_float(
    "rosenbrock_tolerance", 1e-3,
    "rosenbrock: Euclidean distance of (x, y) to the minimum (1, 1) that counts as "
    "reached, once a run stays within it to the end.")

# Model flags that no bound expresses, checked as they are parsed: found later, they
# failed each optimizer's run in turn, after the data had loaded.
flags.register_validator(
    "gnmt_units", lambda units: units % 2 == 0,
    "--gnmt_units must be even: the bidirectional first layer's two directions have half each")
flags.register_validator("wrn_dropout", lambda rate: rate < 1, "--wrn_dropout must be below 1")
flags.register_validator("gnmt_dropout", lambda rate: rate < 1, "--gnmt_dropout must be below 1")
flag_checks.require_finite(_WEIGHT_DECAY, _LABEL_SMOOTHING, _CLIP_NORM, _LENGTH_PENALTY)
flag_checks.require_finite(_TOLERANCE, positive=True)


# ------------------------------------------------------------------------- the tasks ---


@dataclasses.dataclass
class Outcome:
    """One optimizer's run: its table cells, learning curves, and a score to pick rates."""

    cells: dict[str, float]  # Column -> value, in the task's column order.
    curves: dict[str, list[float]]  # Curve name -> value per epoch (or per step).
    score: float  # Higher is better; nan counts as worst.
    details: object = None  # The model module's own result.
    score_text: str = ""  # What the score is, in words, for the log of a rate sweep.
    # Blew up (NaN weights, a loss far past a guess's): the run's row and curves say so,
    # as its numbers alone did not (wrn's accuracies of NaN weights are chance's).
    diverged: bool = False


class _Task:
    """How one model is trained and reported; subclasses fill in the model's parts."""

    name: str
    columns: tuple[str, ...]
    formats: dict[str, str] = {}

    def run(self, spec: OptimizerSpec, learning_rate: float, sweep: bool) -> Outcome:
        raise NotImplementedError

    def write_figures(self, outcomes: dict[str, Outcome], output_dir: str) -> list[str]:
        """`outcomes`: each run's, by its row's name in the table (see `run_label`)."""
        return [plot_curves({label: outcome.curves for label, outcome in outcomes.items()},
                            os.path.join(output_dir, f"{self.name}_curves.png"),
                            title=self.title)]

    def reference_rows(self) -> list[dict]:
        """Rows for the table beside the optimizers' that say what its figures mean."""
        return []

    def note(self) -> str | None:
        """A line under the table on how a column is measured, where it needs one."""
        return None

    @property
    def title(self) -> str:
        return self.name


class _WideResNetTask(_Task):
    name = "wrn"
    columns = ("final val", "final test", "best val", "best test")
    formats = dict.fromkeys(columns, "{:.1f}")

    def __init__(self):
        from nos_tf import data  # pylint: disable=import-outside-toplevel
        from nos_tf.models import wrn  # pylint: disable=import-outside-toplevel

        try:  # Before the data loads.
            wrn.check_architecture(_WRN_DEPTH.value, _WRN_WIDTH.value)
        except ValueError as error:
            raise ValueError(f"--wrn_depth={_WRN_DEPTH.value} --wrn_width={_WRN_WIDTH.value}: "
                             f"{error}") from None

        def load(name):
            """`name` from --datasets_dir if it is there, else from the default places
            (TFDS's data dir; for fashion_mnist Debian's files and the Keras cache): the
            folder is where datasets are looked for first, and one holding only CIFAR-10,
            or nothing, must not stop auto's offline Fashion-MNIST. A folder that does not
            exist is still an error (a typo), and so is part of `name` there (a copy
            made halfway): another copy must not replace it unsaid."""
            def from_(data_dir):
                return data.load_images(
                    name, data_dir=data_dir, train_examples=_TRAIN_EXAMPLES.value,
                    validation_examples=_VALIDATION_EXAMPLES.value, seed=_SEED.value)
            try:
                return from_(_DATA_DIR.value)
            except data.DataIncompleteError:
                raise
            except data.DataUnavailableError:
                if not (_DATA_DIR.value and os.path.isdir(_DATA_DIR.value)):
                    raise
            logging.info("%s is not in --datasets_dir=%s; looking in the default places",
                         name, _DATA_DIR.value)
            return from_(None)

        if _IMAGE_DATASET.value == "auto":
            try:
                self.images = load("cifar10")
            except data.DataIncompleteError:
                raise  # Part of CIFAR-10 is there: the user meant it, not Fashion-MNIST.
            except data.DataUnavailableError as error:
                logging.warning("cifar10 is not available (%s); using fashion_mnist",
                                _with_own_flag_names(str(error)))
                self.images = load("fashion_mnist")
        else:
            self.images = load(_IMAGE_DATASET.value)
        if _TEST_EXAMPLES.value is not None:
            test_x, test_y = self.images.test
            self.images = dataclasses.replace(
                self.images,
                test=(test_x[:_TEST_EXAMPLES.value], test_y[:_TEST_EXAMPLES.value]))
        logging.info("wrn data: %s, %d train / %d validation / %d test images %s",
                     self.images.name, len(self.images.train[0]),
                     len(self.images.validation[0]), len(self.images.test[0]),
                     self.images.image_shape)

    @property
    def title(self):
        return f"WRN-{_WRN_DEPTH.value}-{_WRN_WIDTH.value} on {self.images.name}"

    @property
    def augmentation(self) -> bool:
        """--augment, or by default CIFAR's crops and flips except on 8x8 digits (with
        them a small WRN's test accuracy on digits was 29% instead of 99%)."""
        if _AUGMENT.value is not None:
            return _AUGMENT.value
        return self.images.name != "digits"

    def run(self, spec, learning_rate, sweep):
        from nos_tf.models import wrn  # pylint: disable=import-outside-toplevel

        result = wrn.train_wide_resnet(
            self.images, _builder(spec), learning_rate,
            depth=_WRN_DEPTH.value, width=_WRN_WIDTH.value, weight_decay=_WEIGHT_DECAY.value,
            dropout=_WRN_DROPOUT.value, epochs=_SWEEP_EPOCHS.value if sweep else _EPOCHS.value,
            batch_size=_BATCH_SIZE.value, schedule=_LR_SCHEDULE.value,
            augmentation=self.augmentation,
            seed=_SEED.value, verbose=fit_verbosity(), evaluate_test=not sweep)
        return Outcome(
            cells=dict(zip(self.columns, _percent([
                result.final_validation, result.final_test,
                result.best_validation, result.best_test]))),
            curves={"train cross-entropy": result.history["cross_entropy"],
                    "validation accuracy %": _percent(result.history["validation_accuracy"]),
                    "test accuracy %": _percent(result.history["test_accuracy"])},
            # A diverged run's accuracy is chance's, which beat a slow rate's in a sweep.
            score=math.nan if result.diverged else result.final_validation,
            details=result,
            score_text=f"validation accuracy {100 * result.final_validation:.2f}%",
            diverged=result.diverged,
        )


def _percent(fractions):
    return [100.0 * fraction for fraction in fractions]


class _TranslationTask(_Task):
    name = "gnmt"
    columns = ("train perplexity", "validation perplexity", "test BLEU")
    formats = {"train perplexity": "{:.2f}", "validation perplexity": "{:.2f}",
               "test BLEU": "{:.1f}"}

    def __init__(self):
        from nos_tf import translation_data  # pylint: disable=import-outside-toplevel

        translation_data.check_libraries(_TOKENIZER.value)
        deepest = max(_ENCODER_LAYERS.value, _DECODER_LAYERS.value)
        if _RESIDUAL_FROM.value > deepest:  # Allowed (none wanted), but said.
            logging.warning(
                "--gnmt_residual_from=%d is above both stacks (--encoder_layers=%d, "
                "--decoder_layers=%d): no layer has a residual connection",
                _RESIDUAL_FROM.value, _ENCODER_LAYERS.value, _DECODER_LAYERS.value)
        self.corpus = translation_data.load_parallel_corpus(
            _TRANSLATION_DATA.value, _DIRECTION.value, data_dir=_DATA_DIR.value,
            max_words=_MAX_WORDS.value, train_pairs=_TRAIN_PAIRS.value,
            validation_pairs=_HELD_OUT_PAIRS.value, test_pairs=_HELD_OUT_PAIRS.value,
            seed=_SEED.value, dictionary_phrases=_DICTIONARY_PHRASES.value)
        logging.info("gnmt data: %s, %s, %d train / %d validation / %d test pairs",
                     self.corpus.origin, _DIRECTION.value, len(self.corpus.train),
                     len(self.corpus.validation), len(self.corpus.test))
        from nos_tf.models import gnmt  # pylint: disable=import-outside-toplevel

        started = time.perf_counter()
        self.tokenizers = gnmt.learn_tokenizers(
            self.corpus, _TOKENIZER.value, _VOCABULARY_SIZE.value)
        logging.info("gnmt %s vocabularies of %d and %d ids learned in %.0f s",
                     _TOKENIZER.value, *(t.vocabulary_size for t in self.tokenizers),
                     time.perf_counter() - started)

    def reference_rows(self):
        """Test BLEU of translation by lookup (`translation_data.lookup_translations`, from
        at most `_LOOKUP_TRAIN_PAIRS` training pairs): what recalling training sentences
        scores, so that the optimizers' BLEU reads against it."""
        from nos_tf import translation_data  # pylint: disable=import-outside-toplevel

        started = time.perf_counter()
        sources, references = (list(side) for side in zip(*self.corpus.test))
        translations = translation_data.lookup_translations(
            self.corpus.train[:_LOOKUP_TRAIN_PAIRS], sources)
        return [{"optimizer": "lookup: nearest training sentence",
                 "test BLEU": translation_data.corpus_bleu(translations, references),
                 "seconds": round(time.perf_counter() - started, 1)}]

    def note(self):
        from nos_tf import translation_data  # pylint: disable=import-outside-toplevel

        return f"Test {translation_data.bleu_description()}."

    @property
    def title(self):
        return (f"GNMT-lite {_ENCODER_LAYERS.value}+{_DECODER_LAYERS.value}x{_GNMT_UNITS.value}, "
                f"{_DIRECTION.value}")

    def run(self, spec, learning_rate, sweep):
        from nos_tf.models import gnmt  # pylint: disable=import-outside-toplevel

        result = gnmt.train_translator(
            self.corpus, _builder(spec), learning_rate,
            units=_GNMT_UNITS.value, embedding_dim=_GNMT_EMBEDDING.value,
            encoder_layers=_ENCODER_LAYERS.value, decoder_layers=_DECODER_LAYERS.value,
            residual_from=_RESIDUAL_FROM.value, dropout=_GNMT_DROPOUT.value,
            label_smoothing=_LABEL_SMOOTHING.value,
            clip_norm=_CLIP_NORM.value or None,
            tokenizers=self.tokenizers,
            epochs=_SWEEP_EPOCHS.value if sweep else _EPOCHS.value,
            batch_size=_BATCH_SIZE.value, beam_size=_BEAM_SIZE.value,
            length_penalty=_LENGTH_PENALTY.value, seed=_SEED.value,
            verbose=fit_verbosity(), evaluate_test=not sweep)
        if not sweep:
            for source, reference, translation in result.examples[:3]:
                logging.info("%s | %s\n  reference:   %s\n  translation: %s",
                             spec.label, source, reference, translation)
            logging.info("%s: training %.0f s, decoding the test set %.0f s", spec.label,
                         result.train_seconds, result.decode_seconds)
        return Outcome(
            cells={"train perplexity": result.train_perplexity,
                   "validation perplexity": result.validation_perplexity,
                   "test BLEU": result.test_bleu},
            curves={"train perplexity": result.history["train_perplexity"],
                    "validation perplexity": result.history["validation_perplexity"]},
            score=math.nan if result.diverged else -result.validation_perplexity,
            details=result,
            score_text=f"validation perplexity {format_cell(result.validation_perplexity)}",
            diverged=result.diverged,
        )


class _RosenbrockTask(_Task):
    name = "rosenbrock"
    # A run takes a fraction of a second: whole seconds would show 0 for every row.
    formats = {"final distance": "{:.2e}", "final value": "{:.2e}", "seconds": "{:.2f}"}

    def __init__(self):
        self.start = _start_point(_START.value)
        if self.start is None:  # Set in code, where the flag's parser does not check.
            raise ValueError(f"--rosenbrock_start must be two numbers x,y, got "
                             f"{','.join(map(str, _START.value))!r}")
        self.columns = (f"steps to {_TOLERANCE.value:g}", "final distance", "final value")
        self.formats = {**self.formats, self.columns[0]: "{:.0f}"}

    @property
    def title(self):
        return f"Rosenbrock from {self.start}"

    def note(self):
        return (f"Steps to {_TOLERANCE.value:g}: the updates after which the Euclidean "
                f"distance to the minimum (1, 1) stays within {_TOLERANCE.value:g} to the "
                f"end of the {_STEPS.value} steps (a dash: never). Final value: f at the "
                "last point.")

    def run(self, spec, learning_rate, sweep):
        from nos_tf.models import rosenbrock  # pylint: disable=import-outside-toplevel

        del sweep  # A run takes seconds: the sweep runs the real thing.
        descent = rosenbrock.descend(
            spec.build(learning_rate, _STEPS.value, seed=_SEED.value),
            self.start, _STEPS.value, _TOLERANCE.value)
        reached = descent.steps_to_tolerance
        distance = descent.final_distance
        # A run that diverged ends at a non-finite point: infinitely far, where one that
        # never came within the tolerance has a dash for its steps and a distance.
        diverged = not math.isfinite(descent.final_value)
        return Outcome(
            cells={self.columns[0]: math.nan if reached is None else reached,
                   "final distance": math.inf if diverged else distance,
                   "final value": math.inf if diverged else descent.final_value},
            curves={"distance to minimum (log10)": [
                math.log10(max(d, 1e-12)) if math.isfinite(d) else math.nan
                for d in descent.distances]},
            # Reaching sooner is better; among runs that never reach, closer is better; a
            # diverged run's nan ranks below all (and is logged as "diverged").
            score=(-reached if reached is not None else
                   math.nan if diverged else -_STEPS.value - min(distance, 1e9)),
            details=descent,
            score_text=(f"within {_TOLERANCE.value:g} of the minimum after {reached} steps"
                        if reached is not None else
                        f"not within {_TOLERANCE.value:g} of the minimum: final distance "
                        f"{distance:.3g}"),
            diverged=diverged,
        )

    def write_figures(self, outcomes, output_dir):
        from nos_tf.models import rosenbrock  # pylint: disable=import-outside-toplevel

        path = os.path.join(output_dir, "rosenbrock_trajectories.png")
        rosenbrock.plot_trajectories(
            {label: outcome.details for label, outcome in outcomes.items()}, path,
            start=self.start)
        return [*super().write_figures(outcomes, output_dir), path]


_TASKS: dict[str, Callable[[], _Task]] = {
    "wrn": _WideResNetTask, "gnmt": _TranslationTask, "rosenbrock": _RosenbrockTask,
}


def _builder(spec: OptimizerSpec):
    return lambda learning_rate, total_steps, **kwargs: spec.build(
        learning_rate, total_steps, seed=_SEED.value, **kwargs)


# ------------------------------------------------------------------------ the report ---


# A loader's words (a regular expression) -> what transfer's user set.
_LOADER_ARGUMENT_FLAGS = {
    r"pass --data_dir=": f"pass --{_DATA_DIR.name}=",
    r"^validation_examples=": f"--{_VALIDATION_EXAMPLES.name}=",
    r"^train_examples=": f"--{_TRAIN_EXAMPLES.name}=",
    r"^validation_pairs \+ test_pairs = ": f"2 x --{_HELD_OUT_PAIRS.name} = ",
}


def _with_own_flag_names(message: str) -> str:
    """A loader's error message with transfer's flags for what it names.

    nos_tf.data and nos_tf.translation_data say "pass --data_dir=DIR", the flag of the
    binaries that share nos_tf.proxy_flags; transfer cannot define --data_dir too (absl
    flags are process-wide, and that module is imported in the same process), so its flag
    is --datasets_dir. TFDS's own `tfds build ... --data_dir=DIR` in the message stays.
    The loaders' arguments are named as the flags that set them.
    """
    for loaders, own in _LOADER_ARGUMENT_FLAGS.items():
        message = re.sub(loaders, own, message)
    return message


SWEEP = "sweep"


def learning_rates_for(specs: list[OptimizerSpec], rates: list[str]) -> list[float | None]:
    """--lrs as one float (or None: sweep) per optimizer."""
    if not rates:
        return [None] * len(specs)
    if len(rates) == 1:
        rates = rates * len(specs)
    if len(rates) != len(specs):
        raise ValueError(
            f"--lrs has {len(rates)} values for {len(specs)} optimizers "
            f"({', '.join(spec.label for spec in specs)}): give one each, or one for all")
    return [None if rate.strip().lower() == SWEEP else _positive_float("--lrs", rate)
            for rate in rates]


def _positive_float(flag, text):
    try:
        value = float(text)
    except ValueError:
        hint = f" (or '{SWEEP}')" if flag == "--lrs" else ""
        raise ValueError(f"{flag}: {text!r} is not a number{hint}") from None
    if not 0 < value < math.inf:
        raise ValueError(f"{flag}: learning rates must be positive and finite, got {text}")
    return value


def run_label(label: str, learning_rate: float, repeated: bool, taken) -> str:
    """A run's name in the table and in the figures' legends, unlike those `taken`.

    The optimizer's label, with the learning rate where the label is `repeated` in
    --optimizers (`adam,adam --lrs=1e-2,1e-3`: "Adam (lr 0.01)", "Adam (lr 0.001)"), and
    a count where that repeats too (the same optimizer twice at a swept rate). The figures
    key their lines by it, so two runs of one name would otherwise be drawn as one.
    """
    name = f"{label} (lr {learning_rate:g})" if repeated else label
    unique, count = name, 1
    while unique in taken:
        count += 1
        unique = f"{name} #{count}"
    return unique


def format_cell(value, number_format: str | None = None) -> str:
    """A cell as the markdown table shows it: a float by `number_format` (default 3
    significant digits; from a million on, always: a diverged translator's perplexity
    filled a cell with 305 digits in "{:.2f}"), nan as a dash; anything else as its text."""
    if isinstance(value, float):
        if math.isnan(value):
            return "—"
        return ("{:.3g}" if number_format is None or abs(value) >= 1e6 else
                number_format).format(value)
    return str(value)


def format_cells(cells: dict[str, object], formats: dict[str, str]) -> str:
    """An optimizer's cells for the log, as the table shows them: "final val 91.2, ..."."""
    return ", ".join(f"{column} {format_cell(value, formats.get(column))}"
                     for column, value in cells.items())


def write_table(rows: list[dict], columns: list[str], formats: dict[str, str],
                path_stem: str, title: str, note: str | None = None) -> str:
    """Writes rows as `path_stem`.csv (full precision) and .md under a `title` heading,
    with `note` under the table; returns the markdown."""
    with open(f"{path_stem}.csv", "w", newline="", encoding="utf-8") as file:
        writer = csv.DictWriter(file, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)

    def cell(column, value):
        return format_cell(value, formats.get(column)).replace("|", "\\|")

    lines = [f"## {title}", "", "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(cell(c, row[c]) for c in columns) + " |" for row in rows]
    if note:
        lines += ["", note]
    markdown = "\n".join(lines) + "\n"
    with open(f"{path_stem}.md", "w", encoding="utf-8") as file:
        file.write(markdown)
    return markdown


# matplotlib's log axis overflows computing its margins past about 1e300, leaving every
# panel empty; a diverged translator's perplexity is up to 1.8e308.
_LOG_AXIS_CEILING = 1e200


def plot_curves(curves: dict[str, dict[str, list[float]]], path: str, title: str) -> str:
    """Writes `curves_figure` to `path` (PNG); returns the path."""
    curves_figure(curves, title).savefig(path, dpi=110)
    return path


def curves_figure(curves: dict[str, dict[str, list[float]]], title: str):
    """One panel per curve name, one line per optimizer; x is the epoch (or step). A
    matplotlib Figure of its own, outside pyplot: drawing it neither switches the caller's
    backend nor closes their figures (as `matplotlib.use` does)."""
    from matplotlib import ticker  # pylint: disable=import-outside-toplevel
    from matplotlib.figure import Figure  # pylint: disable=import-outside-toplevel

    names = list(dict.fromkeys(name for by_name in curves.values() for name in by_name))
    figure = Figure(figsize=(5.5 * len(names), 4))
    axes = figure.subplots(1, len(names), squeeze=False)
    for axis, name in zip(axes[0], names):
        log_scale = "perplexity" in name
        for label, by_name in curves.items():
            values = by_name.get(name, [])
            if log_scale:  # Off the log scale, as inf is, not overflowing it.
                values = [value if value < _LOG_AXIS_CEILING else math.inf
                          for value in values]
            start = 0 if name.startswith("distance") else 1  # Steps from 0, epochs from 1.
            axis.plot(range(start, start + len(values)), values, label=label,
                      marker="" if len(values) > 50 else "o", markersize=3)
        axis.set_title(name)
        axis.set_xlabel("step" if name.startswith("distance") else "epoch")
        axis.xaxis.set_major_locator(ticker.MaxNLocator(integer=True, min_n_ticks=1))
        if log_scale:
            axis.set_yscale("log")
        axis.grid(alpha=0.3)
    axes[0][0].legend(fontsize="small")
    figure.suptitle(title)
    figure.tight_layout()
    return figure


def prepare_output_dir(path: str) -> None:
    """Creates `path` and writes a file there, raising OSError if it cannot: the table is
    written once every optimizer has trained (hours for wrn and gnmt), so a directory that
    cannot hold it is to be found out before the first run, not after the last."""
    if os.path.lexists(path) and not os.path.isdir(path):  # makedirs: "File exists".
        raise NotADirectoryError(errno.ENOTDIR, "it is a file, not a folder", path)
    os.makedirs(path, exist_ok=True)
    with tempfile.TemporaryFile(dir=path):
        pass


def fit_verbosity() -> int:
    """--fit_verbose as Keras's `verbose`: progress bars redraw themselves on a terminal,
    but in a log each redraw is another line of escape codes."""
    if _VERBOSE.value == "auto":
        return 1 if sys.stdout.isatty() else 2
    return int(_VERBOSE.value)


def choose_learning_rate(task: _Task, spec: OptimizerSpec, grid: list[float]) -> float:
    """The grid rate whose short run scores best (nan and inf count as worst)."""
    scores = {}
    for rate in grid:
        logging.info("%s: trying learning rate %g", spec.label, rate)
        outcome = task.run(spec, rate, sweep=True)
        score = outcome.score
        scores[rate] = score if math.isfinite(score) else -math.inf
        logging.info("%s: learning rate %g: %s", spec.label, rate,
                     outcome.score_text if math.isfinite(score) else "diverged")
    return max(grid, key=lambda rate: scores[rate])


def write_results(task: _Task, rows: list[dict], outcomes: dict[str, Outcome],
                  title: str) -> list[str]:
    """Writes the table of `rows` and the task's figures of `outcomes` to --output_dir and
    prints the table; returns the files' paths. Cells a row lacks (a reference row has no
    learning rate) are nan, shown as a dash."""
    columns = ["optimizer", "learning rate", *task.columns, "seconds"]
    rows = [{**dict.fromkeys(columns, math.nan), **row} for row in rows]
    formats = {"learning rate": "{:g}", "seconds": "{:.0f}", **task.formats}
    stem = os.path.join(_OUTPUT_DIR.value, f"{task.name}_results")
    markdown = write_table(rows, columns, formats, stem, title, task.note())
    figures = task.write_figures(outcomes, _OUTPUT_DIR.value)
    print(f"\n{markdown}")
    return [f"{stem}.md", f"{stem}.csv", *figures]


def _write_finished(task: _Task, rows: list[dict], outcomes: dict, total: int,
                    why: str) -> str:
    """Writes the optimizers that finished when the run stopped early (Ctrl-C, an error),
    under a title that says why the table is partial; returns what to tell the user.

    Each run takes minutes to hours, so none that finished is thrown away. The reference
    rows are left out: gnmt's lookup takes minutes, and the run was asked to stop.
    """
    if not rows:
        return "no results were written"
    paths = write_results(task, rows, outcomes,
                          f"{task.title} ({why}: {len(rows)} of {total} optimizers)")
    return f"wrote the {len(rows)} of {total} optimizers that finished: {', '.join(paths)}"


def _exit_interrupted(what: str):
    """Ends the run after Ctrl-C with one line, not a traceback, and the shell's status for
    SIGINT (128 + 2), so scripts still see that it was interrupted."""
    print(f"interrupted: {what}", file=sys.stderr)
    sys.exit(130)


def main(argv):
    if len(argv) > 1:  # One line, as every error below: not absl's usage text.
        sys.exit(f"error: unexpected arguments: {' '.join(argv[1:])}")
    specs = [OptimizerSpec.parse(text) for text in _OPTIMIZERS.value]
    try:
        rates = learning_rates_for(specs, _LEARNING_RATES.value)
        grid = [_positive_float("--lr_grid", rate) for rate in _LR_GRID.value]
        if None in rates and not grid:
            raise ValueError("--lr_grid is empty and --lrs does not give every rate")
    except ValueError as error:
        sys.exit(f"error: {error}")
    try:  # Before the task loads its data (for gnmt, learns its tokenizers too).
        prepare_output_dir(_OUTPUT_DIR.value)
    except OSError as error:
        sys.exit(f"error: cannot write to --output_dir={_OUTPUT_DIR.value}: "
                 f"{error.strerror or error}")
    try:
        task = _TASKS[_MODEL.value]()
    except KeyboardInterrupt:  # While loading data, or learning gnmt's tokenizers.
        _exit_interrupted("no results were written")
    except ValueError as error:  # Data not there (DataUnavailableError), bad flag values.
        sys.exit(f"error: {_with_own_flag_names(str(error))}")
    except ImportError as error:  # gnmt without the libraries of nos_tf's gnmt extra.
        sys.exit(f"error: {error}")

    labels = [spec.label for spec in specs]
    outcomes, rows = {}, []
    try:
        for spec, rate in zip(specs, rates):
            try:
                if rate is None:
                    rate = choose_learning_rate(task, spec, grid)
                logging.info("%s: training at learning rate %g", spec.label, rate)
                started = time.perf_counter()
                outcome = task.run(spec, rate, sweep=False)
            except Exception as error:  # pylint: disable=broad-except
                # A rule that cannot build (a ValueError: a bad operand, say) or TensorFlow's
                # error (out of memory): the optimizers that finished are written first.
                what = str(error)
                if not isinstance(error, ValueError):
                    logging.exception("optimizer %s failed", spec.label)
                    what = f"{type(error).__name__}: {error}"
                kept = _write_finished(task, rows, outcomes, len(specs),
                                       f"stopped by {spec.label}'s error")
                sys.exit(f"error: optimizer {spec.label!r}: {what}\n{kept}")
            seconds = time.perf_counter() - started
            label = run_label(spec.label, rate, labels.count(spec.label) > 1, outcomes)
            if outcome.diverged:
                logging.warning("%s diverged at learning rate %g", label, rate)
                label += " (diverged)"
            outcomes[label] = outcome
            rows.append({"optimizer": label, "learning rate": rate, **outcome.cells,
                         "seconds": round(seconds, 2)})
            logging.info("%s done in %.0f s: %s", label, seconds,
                         format_cells(outcome.cells, task.formats))
        rows += task.reference_rows()
    except KeyboardInterrupt:
        _exit_interrupted(_write_finished(task, rows, outcomes, len(specs), "interrupted"))
    paths = write_results(task, rows, outcomes, task.title)
    print("Wrote", ", ".join(paths))


if __name__ == "__main__":
    flags.mark_flag_as_required("model")
    app.run(main, flags_parser=flag_checks.parse_flags_of_the_command_line)
