"""Image classification data for the proxy task: in-memory splits and tf.data pipelines.

The paper scores each candidate rule by the *validation* accuracy of a small ConvNet, with
the validation set held out from the training split; the test split is never part of the
reward. `load_images` returns all three splits as numpy arrays (float32 in [0, 1], NHWC),
small enough for every dataset here to live in memory, so a search loads them once and
every candidate trains from RAM.

Datasets:

- ``cifar10`` — the paper's, through TensorFlow Datasets (``--data_dir`` is TFDS's).
- ``fashion_mnist`` — the default that works offline: the IDX files of Debian's
  ``dataset-fashion-mnist`` package, else the Keras download cache, else TFDS (which
  downloads where there is internet). ``data_dir``, when given, is the only place looked
  in (its IDX files, else a TFDS dataset there): what a user names explicitly is never
  passed over for what the system has. The IDX files and TFDS order the examples
  differently, so the validation split depends on which is read (`source_of`).
- ``digits`` — scikit-learn's bundled 8×8 digits: tiny, for fast tests.

A dataset that cannot be found offline raises `DataUnavailableError`, whose message says
how to provide it; nothing here waits on a network that is not there.
"""

import contextlib
import dataclasses
import gzip
import math
import numbers
import os
import socket
import threading
import zlib

import numpy as np
import tensorflow as tf
from absl import logging

DEBIAN_FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
"""Where Debian's ``dataset-fashion-mnist`` package installs the IDX files."""

_FASHION_MNIST_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}

_FASHION_MNIST_CLASSES = 10

_DIGITS_TEST_FRACTION = 0.2  # digits ships as one set; a fixed fifth is its test split.

_NETWORK_PROBE = ("storage.googleapis.com", 443)  # Where TFDS keeps its metadata.
_NETWORK_PROBE_TIMEOUT_S = 3.0


IDX, TFDS = "idx", "tfds"
_KINDS_OF_SOURCE = {"fashion_mnist": (IDX, TFDS)}
"""The kinds of source of each dataset that has several (`source_of`)."""


class DataUnavailableError(ValueError):
    """A dataset is neither on this machine nor downloadable from it."""


class DataIncompleteError(DataUnavailableError):
    """Part of a dataset is where it was looked for, the rest missing or corrupt: to be
    shown, not a reason to look for the dataset elsewhere (where another copy would
    replace, unsaid, the one the user named)."""


Split = tuple[np.ndarray, np.ndarray]


@dataclasses.dataclass(frozen=True, eq=False)
class ImageData:
    """Train / validation / test splits; x float32 in [0, 1] NHWC, y int32 class ids.

    `origin` says where the examples were read from: fashion_mnist has several sources,
    and a result is only understood knowing which one it came from.
    """

    name: str
    train: Split
    validation: Split
    test: Split
    num_classes: int
    image_shape: tuple[int, int, int]
    origin: str = ""


def source_of(name: str, data_dir: str | None = None) -> str | None:
    """The kind of source `load_images(name, data_dir)` reads on this machine, for a
    dataset that has several: fashion_mnist's IDX files (`IDX`: Debian's, the Keras
    cache's or `data_dir`'s) or TFDS (`TFDS`). None for a dataset with one source.

    The validation split is drawn from the order of the training examples, and TFDS
    shuffles them as it prepares a dataset: the same seed holds out other examples from
    each source. The kind is so part of what a reward means (the proxy protocol), and a
    machine that would read the other one is to read this one (`load_images`'s `source`)
    or none.
    """
    if name not in _KINDS_OF_SOURCE:
        return None
    return IDX if _fashion_mnist_idx_files(data_dir)[0] else TFDS


def load_images(
    name: str,
    data_dir: str | None = None,
    validation_examples: int | None = None,
    train_examples: int | None = None,
    seed: int = 0,
    source: str | None = None,
) -> ImageData:
    """Loads dataset `name` and holds out a validation set from its training split.

    Args:
      name: "cifar10", "fashion_mnist" or "digits".
      data_dir: where the data is (IDX files for fashion_mnist, a TFDS data dir for both);
        given, nothing else is looked in.
      validation_examples: size of the validation set carved from the training split;
        None holds out a tenth of it (5,000 of CIFAR-10's 50,000, as is customary).
      train_examples: keep only this many of the remaining training examples (None: all).
      seed: chooses which examples go to validation and which training ones are kept.
      source: for a dataset with several kinds of source (`source_of`), the one to read
        (the others are not looked in); None: the first found.

    Raises:
      ValueError: unknown name, or split sizes the training split cannot hold, or a
        source `name` does not have.
      DataUnavailableError: the dataset is not on this machine and cannot be downloaded,
        or not from `source`.
    """
    if name not in _LOADERS:
        raise ValueError(f"unknown dataset {name!r}; choose one of {sorted(_LOADERS)}")
    if source is not None and name not in _KINDS_OF_SOURCE:
        raise ValueError(f"{name} has one source; source={source!r} must be None")
    if source not in (None, *_KINDS_OF_SOURCE.get(name, ())):
        raise ValueError(f"unknown source {source!r} of {name}; choose "
                         f"{' or '.join(map(repr, _KINDS_OF_SOURCE[name]))}")
    check_data_dir(data_dir)
    loader = _LOADERS[name]
    (train_x, train_y), test, num_classes, origin = (
        loader(data_dir) if source is None else loader(data_dir, source))
    logging.info("%s: %s", name, origin)
    _check_splits_alike(name, origin, train_x, test[0])
    available = len(train_x)
    if available < 2:
        raise ValueError(f"{name} ({origin}) has {available} training examples; a "
                         "training and a validation set need at least 2")
    for argument, value in (("validation_examples", validation_examples),
                            ("train_examples", train_examples)):
        if value is not None and (isinstance(value, bool)
                                  or not isinstance(value, numbers.Integral)):
            raise ValueError(f"{argument} must be a whole number, got {value!r}")
    if validation_examples is None:  # A tenth, and one of fewer than 10.
        validation_examples = max(1, available // 10)
    if not 0 < validation_examples < available:
        raise ValueError(
            f"validation_examples={validation_examples} must be between 1 and "
            f"{available - 1}: {name} has {available} training examples"
        )
    remaining = available - validation_examples
    if train_examples is None:
        train_examples = remaining
    if not 0 < train_examples <= remaining:
        raise ValueError(
            f"train_examples={train_examples} must be between 1 and {remaining}: {name} "
            f"has {available} training examples and {validation_examples} are held out"
        )
    order = np.random.default_rng(seed).permutation(available)
    held_out = order[:validation_examples]
    kept = order[validation_examples : validation_examples + train_examples]
    return ImageData(
        name=name,
        train=(train_x[kept], train_y[kept]),
        validation=(train_x[held_out], train_y[held_out]),
        test=test,
        num_classes=num_classes,
        image_shape=tuple(train_x.shape[1:]),
        origin=origin,
    )


def _check_splits_alike(name, origin, train_images, test_images):
    """Raises DataIncompleteError unless both splits hold images of one non-empty shape:
    a test split of other images loaded, and the child network met it only when tested."""
    shapes = {tuple(train_images.shape[1:]), tuple(test_images.shape[1:])}
    if len(shapes) > 1 or 0 in next(iter(shapes)):
        raise DataIncompleteError(
            f"{name} ({origin}) is not one dataset's splits: training images of shape "
            f"{train_images.shape[1:]} and test images of shape {test_images.shape[1:]}")


def check_data_dir(data_dir: str | None) -> None:
    """Raises DataUnavailableError for a local `data_dir` that is not a directory.

    A mistyped directory would otherwise go unnoticed: digits and the translation
    loader's "auto" use other data, and TFDS would download into the new directory.
    Remote paths (gs://...) are left to TFDS.
    """
    if data_dir and "://" not in data_dir and not os.path.isdir(data_dir):
        raise DataUnavailableError(
            f"{data_dir} is not a directory: pass --data_dir=DIR where the data is, or "
            "leave it out")


def make_pipeline(
    images,
    labels,
    batch_size: int,
    *,
    shuffle_seed: int | None = None,
    epochs: int | None = 1,
    reshuffle_each_iteration: bool = True,
    skip_batches: int = 0,
) -> tf.data.Dataset:
    """A tf.data pipeline over in-memory examples: seeded shuffle → batch → prefetch.

    The examples stay where they are (in memory, the cache of every epoch); the pipeline
    shuffles their *indices* — each epoch a permutation keyed by `shuffle_seed` and the
    epoch — and gathers each batch. Two pipelines made with the same arguments (and the
    same global TF seed, which `Dataset.random` combines with `shuffle_seed`) yield the
    same batches. Iterating one pipeline again (as `model.fit` does each epoch) draws a
    new order, as `Dataset.shuffle` does, unless `reshuffle_each_iteration=False`: then
    the pipeline is a fixed stream that every iteration replays, whatever the global TF
    seed — the proxy gives every learning rate of a rule the same batches this way and
    resumes a paused run with `skip_batches`. `shuffle_seed=None` keeps the given order;
    `epochs=None` repeats forever. The last batch of an epoch may be smaller.

    A finite pipeline declares how many batches it holds: `model.fit` then stops each
    epoch at the last one. Without that (the index shuffle makes the count unknown to
    tf.data) fit runs the iterator dry, and that failed step still advances
    `optimizer.iterations` (Keras 3.15): one step per epoch more than were taken, so
    learning-rate schedules and the rules' decays ran ahead of training.
    """
    images = tf.convert_to_tensor(images)
    labels = tf.convert_to_tensor(labels)
    count = int(images.shape[0])
    if int(labels.shape[0]) != count:  # tf.gather would drop labels, or fail mid-epoch.
        raise ValueError(f"{count} images and {int(labels.shape[0])} labels: one label an "
                         "image is needed")
    if count == 0 or batch_size < 1:
        raise ValueError(f"need examples and a positive batch size; got {count}, {batch_size}")

    def batches_of_epoch(iteration_key, epoch):
        indices = tf.data.Dataset.range(count).batch(batch_size)
        if shuffle_seed is None:
            return indices
        seed = tf.stack([iteration_key, epoch])
        return indices.map(
            lambda batch: tf.random.experimental.index_shuffle(batch, seed, count - 1)
        )

    if shuffle_seed is not None and reshuffle_each_iteration:
        iteration_keys = tf.data.Dataset.random(
            seed=shuffle_seed, rerandomize_each_iteration=True
        ).take(1)
    else:
        iteration_keys = tf.data.Dataset.from_tensors(tf.constant(shuffle_seed or 0, tf.int64))
    epoch_numbers = tf.data.Dataset.range(epochs) if epochs is not None else (
        tf.data.Dataset.counter()
    )
    indices = iteration_keys.flat_map(
        lambda key: epoch_numbers.flat_map(lambda epoch: batches_of_epoch(key, epoch))
    ).skip(skip_batches)
    if epochs is not None:
        batches = max(0, epochs * math.ceil(count / batch_size) - skip_batches)
        indices = indices.apply(tf.data.experimental.assert_cardinality(batches))
    dataset = indices.map(lambda batch: (tf.gather(images, batch), tf.gather(labels, batch)))
    return dataset.prefetch(1).with_options(_ONE_THREAD)


def _one_thread_options() -> tf.data.Options:
    """tf.data options for pipelines whose every batch is one gather from memory.

    One thread is plenty for that, and tf.data's own pool (sized to the machine) and its
    autotuner otherwise compete with training for the cores. Measured on 2 cores with
    the proxy evaluator held to one thread (six paper rules): alone, 70 s either way; two
    such evaluators side by side ran 1.53x as fast as one alone with tf.data's defaults,
    1.83x with these options (`nos_tf.benchmarks.scaling` measures the same through Ray).
    """
    options = tf.data.Options()
    options.threading.private_threadpool_size = 1
    options.threading.max_intra_op_parallelism = 1
    options.autotune.enabled = False
    return options


_ONE_THREAD = _one_thread_options()


# --------------------------------------------------------------------------- loaders ---
# Each returns (train, test, num_classes, origin) with x float32 in [0, 1], NHWC, y int32,
# and origin saying where they were read from.


def _load_digits(data_dir):
    """Bundled with scikit-learn: a `data_dir` is not read, and the log says so, since a
    user who names one expects it to matter."""
    if data_dir:
        logging.warning("data_dir=%s is not read: digits are bundled with scikit-learn",
                        data_dir)
    from sklearn import datasets, model_selection  # pylint: disable=import-outside-toplevel

    digits = datasets.load_digits()
    images = (digits.images / 16.0).astype(np.float32)[..., np.newaxis]
    labels = digits.target.astype(np.int32)
    train_x, test_x, train_y, test_y = model_selection.train_test_split(
        images, labels, test_size=_DIGITS_TEST_FRACTION, random_state=0, stratify=labels
    )
    return (train_x, train_y), (test_x, test_y), 10, "scikit-learn's bundled digits"


def _load_fashion_mnist(data_dir, source=None):
    """Reads the IDX files in `data_dir`, else a TFDS dataset there; without a `data_dir`,
    Debian's IDX files, else the Keras cache's, else TFDS's default data dir. A `source`
    (`IDX` or `TFDS`) keeps to that kind.

    Once `data_dir` is given nothing else is looked in: Debian's copy would replace, unsaid,
    the data the user named (even a TFDS Fashion-MNIST there, which Debian's IDX files
    would come before).
    """
    if source == TFDS:  # Not even looked at: a stray IDX file there is no concern of it.
        return _load_tfds("fashion_mnist", data_dir)
    paths, directory, idx_dirs = _fashion_mnist_idx_files(data_dir)
    how_to_give_idx_files = (
        "install Debian's IDX files with `apt-get install dataset-fashion-mnist`"
        + (" and name no data directory" if data_dir else "")
        + ", or pass --data_dir=DIR with train-images-idx3-ubyte.gz, "
        "train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz and "
        "t10k-labels-idx1-ubyte.gz in DIR"
    )
    if paths:
        splits = {
            split: _read_idx_split(images, labels, _FASHION_MNIST_CLASSES)
            for split, (images, labels) in paths.items()
        }
        origin = f"IDX files in {directory}"
        return splits["train"], splits["test"], _FASHION_MNIST_CLASSES, origin
    if source == IDX:
        raise DataUnavailableError(
            f"fashion_mnist is to be read from its IDX files, and none are in "
            f"{' or '.join(idx_dirs)}: the validation split was drawn from their order "
            f"(TFDS's copy orders the examples otherwise, so holds out others); "
            f"{how_to_give_idx_files}")
    return _load_tfds("fashion_mnist", data_dir, offline_hint="or " + how_to_give_idx_files)


def _fashion_mnist_idx_files(data_dir):
    """Where `_load_fashion_mnist` finds the IDX files: ({split: (images path, labels
    path)} or None, the folder holding them, the folders looked in).

    A `data_dir` with only some of the IDX files is an error naming those missing, not a
    directory without them.
    """
    if data_dir:
        idx_dirs = [data_dir]
    else:
        idx_dirs = [DEBIAN_FASHION_MNIST_DIR, _keras_cache_dir("fashion-mnist")]
    for directory in idx_dirs:
        paths, missing = _find_idx_files(directory, _FASHION_MNIST_FILES)
        if paths:
            return paths, directory, idx_dirs
        if data_dir and len(missing) < sum(map(len, _FASHION_MNIST_FILES.values())):
            raise DataIncompleteError(
                f"{data_dir} holds some of Fashion-MNIST's IDX files but not "
                f"{', '.join(missing)}: add them, or pass --data_dir=DIR where all four are"
            )
    return None, None, idx_dirs


def _load_cifar10(data_dir):
    return _load_tfds("cifar10", data_dir)


_LOADERS = {
    "cifar10": _load_cifar10,
    "fashion_mnist": _load_fashion_mnist,
    "digits": _load_digits,
}


def tfds_prepared(builder) -> bool:
    """Whether a TFDS `builder`'s dataset is prepared in its data directory.

    `DatasetBuilder.is_prepared` logs "Variant folder ... has no dataset_info.json" when
    the folder does not exist at all, which reads as a broken dataset; a dataset that was
    never prepared is the usual case offline, so that is checked first, quietly.

    Raises DataIncompleteError for a folder that holds files but no dataset_info.json (a
    copy made halfway): read as "not there", another copy replaced it unsaid.
    """
    if not tf.io.gfile.isdir(builder.data_dir):
        return False
    if builder.is_prepared():
        return True
    if tf.io.gfile.listdir(builder.data_dir):
        raise DataIncompleteError(
            f"dataset {_tfds_name(builder)!r} in {builder.data_dir} is incomplete: it has "
            f"no dataset_info.json: {_how_to_mend(_tfds_name(builder))}")
    return False


def tfds_builder(name: str, data_dir: str | None):
    """TFDS's builder of `name` in `data_dir`, or in TFDS's own data dirs where `data_dir`
    is None or empty (a flag cleared with `--data_dir=`): TFDS reads an empty data_dir as
    the current directory, where it missed a prepared dataset and would download another.

    Raises DataIncompleteError where the dataset's dataset_info.json, which TFDS reads
    here, is not JSON (cut short): protobuf's ParseError named neither file nor remedy.
    """
    import tensorflow_datasets as tfds  # pylint: disable=import-outside-toplevel
    from google.protobuf import json_format  # pylint: disable=import-outside-toplevel

    try:
        return tfds.builder(name, data_dir=data_dir or None)
    except json_format.Error as error:
        first_line = str(error).strip().split("\n")[0]
        raise DataIncompleteError(
            f"dataset {name!r} in {data_dir or 'TFDS data dir'} is incomplete or corrupt: "
            f"its dataset_info.json cannot be read ({first_line}): {_how_to_mend(name)}"
        ) from None


def _tfds_name(builder) -> str:
    """The name `tfds build` takes: "cifar10", "wmt14_translate/de-en"."""
    config = builder.builder_config
    return builder.name + (f"/{config.name}" if config else "")


def _how_to_mend(name: str) -> str:
    """What to do about a TFDS copy of `name` made halfway."""
    return f"prepare it again (`tfds build {name} --data_dir=DIR`) and copy all of DIR here"


def _load_tfds(name, data_dir, offline_hint=""):
    """Reads a TFDS image dataset's train and test splits, downloading it if it can."""
    import tensorflow_datasets as tfds  # pylint: disable=import-outside-toplevel

    builder = tfds_builder(name, data_dir)
    if not tfds_prepared(builder):
        how = (
            f"prepare it on a machine with internet (`tfds build {name} --data_dir=DIR`), "
            f"copy DIR here and pass --data_dir=DIR"
            + (f"; {offline_hint}" if offline_hint else "")
        )
        if not _internet_reachable():
            raise DataUnavailableError(
                f"dataset {name!r} is not in {builder.data_dir} and this machine cannot "
                f"download it (no internet): {how}"
            )
        try:
            builder.download_and_prepare()
        except Exception as error:  # Network, disk, missing extras: all end the same way.
            raise DataUnavailableError(
                f"could not download dataset {name!r} into {builder.data_dir} "
                f"({type(error).__name__}: {error}): {how}"
            ) from error
    splits = {}
    for split in ("train", "test"):
        with tfds_read_errors(name, builder.data_dir):
            images, labels = tfds.as_numpy(
                builder.as_dataset(split=split, batch_size=-1, as_supervised=True)
            )
        splits[split] = (_to_unit_float(images), labels.astype(np.int32))
    num_classes = builder.info.features["label"].num_classes
    return splits["train"], splits["test"], num_classes, f"TFDS {name} in {builder.data_dir}"


@contextlib.contextmanager
def tfds_read_errors(name, data_dir):
    """Turns TensorFlow's error reading a prepared TFDS dataset (a shard missing or cut
    short: a copy made halfway, as the offline advice is to copy one) into a
    DataIncompleteError that names the dataset's folder and how to mend it."""
    try:
        yield
    except tf.errors.OpError as error:
        first_line = (error.message or "").strip().split("\n")[0]
        raise DataIncompleteError(
            f"dataset {name!r} in {data_dir} is incomplete or corrupt "
            f"({type(error).__name__}: {first_line}): {_how_to_mend(name)}"
        ) from None


def _internet_reachable():
    """Whether a TFDS download could start, answered within a few seconds.

    The probe runs in a thread that is waited for no longer than that: the connection's
    timeout does not cover looking up the host's name, which a resolver that does not
    answer can hold for tens of seconds.
    """
    reached, answered = threading.Event(), threading.Event()

    def probe():
        try:
            socket.create_connection(_NETWORK_PROBE, timeout=_NETWORK_PROBE_TIMEOUT_S).close()
            reached.set()
        except OSError:
            pass
        finally:
            answered.set()  # A refusal, offline, comes at once: no need to wait it out.

    threading.Thread(target=probe, name="internet-probe", daemon=True).start()
    answered.wait(_NETWORK_PROBE_TIMEOUT_S)
    return reached.is_set()


# ------------------------------------------------------------------------------ IDX ---


def read_idx(path: str) -> np.ndarray:
    """Reads an IDX file (the MNIST family's format), gzipped or not, as a numpy array.

    The header is two zero bytes, a type code (0x08 = unsigned byte, the only type the
    MNIST family uses), the number of dimensions, then each dimension as a big-endian
    uint32; the data follows in C order.

    A file that cannot be read as one (unreadable, not gzip, cut short in the gzip stream,
    the header or the data) raises DataIncompleteError naming `path`: the error is about
    that file, not about a buffer size or a reshape deep inside numpy or gzip.
    """
    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rb") as file:
            raw = file.read()
    except (EOFError, gzip.BadGzipFile, zlib.error) as error:
        raise DataIncompleteError(f"{path} is truncated or corrupt ({error})") from error
    except OSError as error:  # Permissions, a disk's read error.
        raise DataIncompleteError(
            f"{path} cannot be read ({error.strerror or error})") from error
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise DataIncompleteError(f"{path} is not an IDX file (bad magic number)")
    if raw[2] != 0x08:
        raise DataIncompleteError(
            f"{path} is an IDX file of type code {raw[2]:#04x}, not of unsigned bytes "
            "(0x08), which the MNIST family's are")
    ndim = raw[3]
    header_bytes = 4 + 4 * ndim
    if len(raw) < header_bytes:
        raise DataIncompleteError(
            f"{path} is truncated or corrupt: its header names {ndim} dimensions but "
            f"ends after {len(raw)} bytes"
        )
    shape = tuple(int(d) for d in np.frombuffer(raw[4:header_bytes], dtype=">u4"))
    data = np.frombuffer(raw[header_bytes:], dtype=np.uint8)
    expected = math.prod(shape)  # Python ints: numpy's product of a huge header wraps.
    if data.size != expected:
        raise DataIncompleteError(
            f"{path} is truncated or corrupt: header says shape {shape} "
            f"({expected} values) but holds {data.size}"
        )
    return data.reshape(shape)


def _read_idx_split(images_path, labels_path, num_classes):
    """One split's (images, labels) from its IDX files, checked to belong together.

    Each file is valid on its own when the two are swapped, from different splits or
    from another dataset: unchecked, those gave 1-D "images", an IndexError while
    splitting, or labels no classifier head can have.
    """
    images, labels = read_idx(images_path), read_idx(labels_path)
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise DataIncompleteError(
            f"{images_path} and {labels_path} are not one split's images and labels: "
            f"shapes {images.shape} and {labels.shape}, where N x height x width and N "
            "are needed"
        )
    if labels.size and labels.max() >= num_classes:
        raise DataIncompleteError(f"{labels_path} holds label {labels.max()}; the classes are "
                         f"0 to {num_classes - 1}")
    return _to_unit_float(images), labels.astype(np.int32)


def _find_idx_files(directory, names_by_split):
    """The IDX files of `names_by_split` in `directory`, gzipped or not.

    Returns ({split: (images path, labels path)} if every file is there, else None;
    the base names of those that are not).
    """
    found, missing = {}, []
    for split, names in names_by_split.items():
        paths = []
        for base in names:
            candidates = [os.path.join(directory, base + suffix) for suffix in (".gz", "")]
            existing = [path for path in candidates if os.path.isfile(path)]
            if existing:
                paths.append(existing[0])
            else:
                missing.append(base)
        found[split] = tuple(paths)
    return (None if missing else found), missing


def _keras_cache_dir(subdir):
    """Where `keras.datasets` keeps its downloads ($KERAS_HOME, default ~/.keras)."""
    keras_home = os.environ.get("KERAS_HOME", os.path.join("~", ".keras"))
    return os.path.join(os.path.expanduser(keras_home), "datasets", subdir)


def _to_unit_float(images):
    """uint8 images, NHW or NHWC, as float32 NHWC in [0, 1]."""
    images = np.asarray(images, dtype=np.float32) / 255.0
    return images[..., np.newaxis] if images.ndim == 3 else images
