"""nos_tf.data: the real loaders on small files written here in the real formats."""

import gzip
import logging
import os
import re
import socket
import threading
import time

import numpy as np
import pytest

from nos_tf import data

# Synthetic examples whose pixels say which example they are and what label they carry, so
# a test can check that splits pair images with their own labels and never overlap.
_NUM_TRAIN, _NUM_TEST = 60, 20


def _coded_images(count, shape, offset=0):
    """uint8 images whose first pixel is the example's id, second its label (id mod 10),
    third white (255), the rest black."""
    images = np.zeros((count, *shape), dtype=np.uint8)
    ids = np.arange(offset, offset + count)
    flat = images.reshape(count, -1)
    flat[:, 0] = ids
    flat[:, 1] = ids % 10
    flat[:, 2] = 255
    return images, (ids % 10).astype(np.uint8)


def _example_ids(x):
    return np.rint(x.reshape(len(x), -1)[:, 0] * 255).astype(int)


def _write_idx(path, array, compress=True):
    header = bytes([0, 0, 0x08, array.ndim]) + np.asarray(array.shape, ">u4").tobytes()
    opener = gzip.open if compress else open
    with opener(path, "wb") as file:
        file.write(header + array.tobytes())


def _write_fashion_mnist_idx(directory, compress=True, num_train=_NUM_TRAIN):
    suffix = ".gz" if compress else ""
    train = _coded_images(num_train, (28, 28))
    test = _coded_images(_NUM_TEST, (28, 28), offset=100)
    for prefix, (images, labels) in (("train", train), ("t10k", test)):
        _write_idx(os.path.join(directory, f"{prefix}-images-idx3-ubyte{suffix}"), images, compress)
        _write_idx(os.path.join(directory, f"{prefix}-labels-idx1-ubyte{suffix}"), labels, compress)


def _write_tfds(directory, name, image_shape):
    """A tiny prepared TFDS dataset with `name`'s real features, as `tfds build` leaves it."""
    import tensorflow as tf
    import tensorflow_datasets as tfds

    features = tfds.builder(name).info.features

    def split(count, offset):
        images, labels = _coded_images(count, image_shape, offset)
        examples = {"image": images, "label": labels.astype(np.int64)}
        if "id" in features:
            examples["id"] = [f"example_{i}" for i in range(offset, offset + count)]
        return tf.data.Dataset.from_tensor_slices(examples)

    version = str(tfds.builder(name).version)
    tfds.dataset_builders.store_as_tfds_dataset(
        name=name, version=version, features=features, data_dir=str(directory),
        split_datasets={"train": split(_NUM_TRAIN, 0), "test": split(_NUM_TEST, 100)},
    )


@pytest.fixture
def no_system_fashion_mnist(monkeypatch, tmp_path):
    """Hides Debian's and Keras's copies so only what a test provides is found."""
    monkeypatch.setattr(data, "DEBIAN_FASHION_MNIST_DIR", str(tmp_path / "no-debian"))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "no-keras"))
    monkeypatch.setattr(data, "_internet_reachable", lambda: False)


def _check_splits(images, num_validation, shape):
    assert images.train[0].shape == (_NUM_TRAIN - num_validation, *shape)
    assert images.validation[0].shape == (num_validation, *shape)
    assert images.test[0].shape == (_NUM_TEST, *shape)
    for x, y in (images.train, images.validation, images.test):
        assert x.dtype == np.float32 and x.min() == 0.0 and x.max() == 1.0  # White is 1.
        np.testing.assert_array_equal(_example_ids(x) % 10, y)  # Each image kept its label.
    train_ids = set(_example_ids(images.train[0]))
    validation_ids = set(_example_ids(images.validation[0]))
    assert not train_ids & validation_ids
    assert train_ids | validation_ids == set(range(_NUM_TRAIN))  # Carved from train only.
    assert set(_example_ids(images.test[0])) == set(range(100, 100 + _NUM_TEST))


@pytest.mark.parametrize("compress", [True, False])
def test_fashion_mnist_reads_idx_files_from_data_dir(tmp_path, no_system_fashion_mnist, compress):
    _write_fashion_mnist_idx(tmp_path, compress)
    images = data.load_images("fashion_mnist", data_dir=str(tmp_path), validation_examples=10)
    _check_splits(images, 10, (28, 28, 1))
    assert images.num_classes == 10 and images.image_shape == (28, 28, 1)


def test_fashion_mnist_reads_the_keras_cache(tmp_path, no_system_fashion_mnist, monkeypatch):
    keras_home = tmp_path / "keras-home"
    cache = keras_home / "datasets" / "fashion-mnist"
    cache.mkdir(parents=True)
    _write_fashion_mnist_idx(cache)
    monkeypatch.setenv("KERAS_HOME", str(keras_home))
    images = data.load_images("fashion_mnist", validation_examples=10)
    _check_splits(images, 10, (28, 28, 1))


def test_fashion_mnist_falls_back_to_tfds(tmp_path, no_system_fashion_mnist):
    _write_tfds(tmp_path, "fashion_mnist", (28, 28, 1))
    images = data.load_images("fashion_mnist", data_dir=str(tmp_path), validation_examples=10)
    _check_splits(images, 10, (28, 28, 1))


def test_cifar10_reads_a_prepared_tfds_dir(tmp_path, no_system_fashion_mnist):
    _write_tfds(tmp_path, "cifar10", (32, 32, 3))
    images = data.load_images("cifar10", data_dir=str(tmp_path), validation_examples=15)
    _check_splits(images, 15, (32, 32, 3))
    assert images.num_classes == 10


def test_an_empty_data_dir_reads_tfds_default_not_the_current_directory(
        tmp_path, no_system_fashion_mnist, monkeypatch):
    """`--data_dir=` (a flagfile's cleared) is no data_dir: TFDS read "" as the current
    directory, missed the dataset prepared in its default one, and would download it."""
    import tensorflow_datasets as tfds

    _write_tfds(tmp_path / "default", "cifar10", (32, 32, 3))
    monkeypatch.setattr(tfds.core.constants, "DATA_DIR", str(tmp_path / "default"))
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    images = data.load_images("cifar10", data_dir="", validation_examples=15)
    _check_splits(images, 15, (32, 32, 3))


@pytest.mark.parametrize("spoil", ["delete", "truncate"])
def test_a_tfds_copy_made_halfway_is_named_not_a_tensorflow_traceback(
        tmp_path, no_system_fashion_mnist, spoil):
    _write_tfds(tmp_path, "cifar10", (32, 32, 3))
    shard = next(tmp_path.glob("cifar10/*/cifar10-test.tfrecord*"))
    if spoil == "delete":
        shard.unlink()
    else:
        shard.write_bytes(shard.read_bytes()[:-100])
    with pytest.raises(data.DataIncompleteError,
                       match=r"dataset 'cifar10' in .* is incomplete or corrupt .*tfds build"):
        data.load_images("cifar10", data_dir=str(tmp_path), validation_examples=15)


def test_a_tfds_copy_without_its_dataset_info_is_incomplete_not_absent(
        tmp_path, no_system_fashion_mnist):
    """Read as "not there", a copy without dataset_info.json was passed over: transfer's
    wrn trained on Fashion-MNIST instead, logging that cifar10 was not available."""
    _write_tfds(tmp_path, "cifar10", (32, 32, 3))
    next(tmp_path.glob("cifar10/*/dataset_info.json")).unlink()
    with pytest.raises(data.DataIncompleteError,
                       match=r"dataset 'cifar10' in .*cifar10/.* is incomplete: it has no "
                             r"dataset_info.json: prepare it again \(`tfds build cifar10"):
        data.load_images("cifar10", data_dir=str(tmp_path), validation_examples=15)


def test_a_tfds_copy_whose_dataset_info_is_cut_short_is_named(tmp_path, no_system_fashion_mnist):
    """protobuf's ParseError was a traceback: no ValueError, so no binary caught it."""
    _write_tfds(tmp_path, "cifar10", (32, 32, 3))
    info = next(tmp_path.glob("cifar10/*/dataset_info.json"))
    info.write_bytes(info.read_bytes()[:40])
    with pytest.raises(data.DataIncompleteError,
                       match=r"dataset 'cifar10' in .* is incomplete or corrupt: its "
                             r"dataset_info.json cannot be read"):
        data.load_images("cifar10", data_dir=str(tmp_path), validation_examples=15)


def test_a_resolver_that_does_not_answer_is_offline_within_the_probes_timeout(monkeypatch):
    """The connection's timeout does not cover the host name's lookup."""
    released = threading.Event()

    def silent_resolver(*args, **kwargs):
        released.wait(60)
        raise socket.gaierror("no answer")

    monkeypatch.setattr(socket, "getaddrinfo", silent_resolver)
    monkeypatch.setattr(data, "_NETWORK_PROBE_TIMEOUT_S", 0.5)
    started = time.monotonic()
    try:
        assert not data._internet_reachable()
        assert time.monotonic() - started < 30  # not the resolver's 60 s
    finally:
        released.set()


def test_a_refused_probe_is_offline_at_once(monkeypatch):
    """Offline, the probe usually fails at once: not a reason to wait out its timeout."""
    monkeypatch.setattr(data, "_NETWORK_PROBE", ("127.0.0.1", 1))  # Nothing listens there.
    monkeypatch.setattr(data, "_NETWORK_PROBE_TIMEOUT_S", 60.0)
    started = time.monotonic()
    assert not data._internet_reachable()
    assert time.monotonic() - started < 30


@pytest.mark.parametrize("name", ["cifar10", "fashion_mnist"])
def test_missing_dataset_offline_says_how_to_provide_it(tmp_path, no_system_fashion_mnist, name,
                                                        caplog):
    (tmp_path / "empty").mkdir()
    with pytest.raises(data.DataUnavailableError) as error:
        data.load_images(name, data_dir=str(tmp_path / "empty"))
    assert "dataset_info" not in caplog.text  # TFDS's warning of a broken dataset.
    message = str(error.value)
    assert name in message and "--data_dir" in message and "tfds build" in message
    if name == "fashion_mnist":
        assert "apt-get install dataset-fashion-mnist" in message


@pytest.mark.parametrize("name", ["fashion_mnist", "digits"])
def test_a_data_dir_that_does_not_exist_is_named_not_passed_over(tmp_path, name):
    """The loaders fall back to Debian's files: a mistyped directory would go unnoticed."""
    with pytest.raises(data.DataUnavailableError, match="typo is not a directory: pass --data_dir=DIR"):
        data.load_images(name, data_dir=str(tmp_path / "typo"))


@pytest.fixture
def other_debian_fashion_mnist(monkeypatch, no_system_fashion_mnist, tmp_path):
    """Debian's IDX files, faked: 40 training examples, where a test's own data has 60."""
    debian = tmp_path / "debian"
    debian.mkdir()
    _write_fashion_mnist_idx(debian, num_train=40)
    monkeypatch.setattr(data, "DEBIAN_FASHION_MNIST_DIR", str(debian))
    assert len(data.load_images("fashion_mnist", validation_examples=10).train[0]) == 30


def test_a_data_dir_holding_tfds_fashion_mnist_wins_over_debians_files(
        tmp_path, other_debian_fashion_mnist):
    _write_tfds(tmp_path / "tfds", "fashion_mnist", (28, 28, 1))
    images = data.load_images("fashion_mnist", data_dir=str(tmp_path / "tfds"),
                              validation_examples=10)
    _check_splits(images, 10, (28, 28, 1))


def test_a_data_dir_without_fashion_mnist_is_not_replaced_by_debians_files(
        tmp_path, other_debian_fashion_mnist):
    (tmp_path / "empty").mkdir()
    with pytest.raises(data.DataUnavailableError,
                       match="dataset-fashion-mnist` and name no data directory"):
        data.load_images("fashion_mnist", data_dir=str(tmp_path / "empty"))
    partial = tmp_path / "partial"
    partial.mkdir()
    _write_fashion_mnist_idx(partial)
    os.remove(partial / "t10k-labels-idx1-ubyte.gz")
    with pytest.raises(data.DataUnavailableError,
                       match="holds some of Fashion-MNIST's IDX files but not "
                             "t10k-labels-idx1-ubyte: add them, or pass --data_dir=DIR"):
        data.load_images("fashion_mnist", data_dir=str(partial))


def test_the_source_used_is_said_and_tried_in_the_documented_order(
        tmp_path, no_system_fashion_mnist, monkeypatch, caplog):
    caplog.set_level(logging.INFO)
    debian, keras_home = tmp_path / "debian", tmp_path / "keras-home"
    cache = keras_home / "datasets" / "fashion-mnist"
    for directory in (debian, cache):
        directory.mkdir(parents=True)
        _write_fashion_mnist_idx(directory)
    monkeypatch.setenv("KERAS_HOME", str(keras_home))

    def origin(**kwargs):
        return data.load_images("fashion_mnist", validation_examples=10, **kwargs).origin

    monkeypatch.setattr(data, "DEBIAN_FASHION_MNIST_DIR", str(debian))
    assert origin() == f"IDX files in {debian}"
    assert f"fashion_mnist: IDX files in {debian}" in caplog.text
    monkeypatch.setattr(data, "DEBIAN_FASHION_MNIST_DIR", str(tmp_path / "no-debian"))
    assert origin() == f"IDX files in {cache}"
    _write_tfds(tmp_path / "tfds", "fashion_mnist", (28, 28, 1))
    assert origin(data_dir=str(tmp_path / "tfds")).startswith(
        f"TFDS fashion_mnist in {tmp_path / 'tfds'}")
    assert data.load_images("digits").origin == "scikit-learn's bundled digits"


def test_a_source_is_found_named_and_kept_to(tmp_path, no_system_fashion_mnist):
    """IDX files and TFDS order the training examples otherwise (TFDS shuffles them as it
    prepares a dataset), and the validation split is drawn from that order: a search keeps
    to the kind its own machine reads (`source_of`), and a worker without it says so."""
    both, tfds_only = tmp_path / "both", tmp_path / "tfds"
    both.mkdir()
    _write_fashion_mnist_idx(both)
    for directory in (both, tfds_only):
        _write_tfds(directory, "fashion_mnist", (28, 28, 1))
    assert data.source_of("fashion_mnist", str(both)) == data.IDX
    assert data.source_of("fashion_mnist", str(tfds_only)) == data.TFDS
    assert data.source_of("fashion_mnist") == data.TFDS  # Neither Debian's nor Keras's.
    assert data.source_of("digits") is None and data.source_of("cifar10") is None

    def load(directory, source):
        return data.load_images("fashion_mnist", data_dir=str(directory),
                                validation_examples=10, source=source)

    assert load(both, None).origin.startswith("IDX files")
    from_idx, from_tfds = load(both, data.IDX), load(both, data.TFDS)
    assert from_idx.origin.startswith("IDX files")
    assert from_tfds.origin.startswith("TFDS fashion_mnist")
    # The same examples and seed; each source holds out others.
    assert set(_example_ids(from_idx.validation[0])) != set(_example_ids(from_tfds.validation[0]))
    with pytest.raises(data.DataUnavailableError,
                       match=r"fashion_mnist is to be read from its IDX files, and none are "
                             r"in .*tfds: the validation split .*`apt-get install "
                             r"dataset-fashion-mnist` and name no data directory"):
        load(tfds_only, data.IDX)
    with pytest.raises(ValueError, match="digits has one source; source='tfds' must be None"):
        data.load_images("digits", source=data.TFDS)
    with pytest.raises(ValueError, match="unknown source 'keras' of fashion_mnist"):
        load(both, "keras")


def test_tfds_as_the_source_does_not_look_at_idx_files(tmp_path, no_system_fashion_mnist):
    """A stray IDX file beside a TFDS copy stopped source=TFDS, which reads no IDX file."""
    _write_tfds(tmp_path, "fashion_mnist", (28, 28, 1))
    _write_idx(tmp_path / "train-images-idx3-ubyte.gz", np.zeros((3, 28, 28), np.uint8))
    images = data.load_images("fashion_mnist", data_dir=str(tmp_path), validation_examples=10,
                              source=data.TFDS)
    assert images.origin.startswith("TFDS fashion_mnist")


@pytest.mark.parametrize("num_train, held_out", [(60, 6), (59, 5), (5, 1)])
def test_a_tenth_of_the_training_examples_is_held_out_by_default(
        tmp_path, no_system_fashion_mnist, num_train, held_out):
    """A tenth, and one of fewer than 10: a tenth of 5 was 0, refused as
    "validation_examples=0", a value nobody passed."""
    _write_fashion_mnist_idx(tmp_path, num_train=num_train)
    images = data.load_images("fashion_mnist", data_dir=str(tmp_path))
    assert (len(images.train[0]), len(images.validation[0])) == (num_train - held_out, held_out)


def test_splits_of_other_image_shapes_are_refused(tmp_path, no_system_fashion_mnist):
    _write_fashion_mnist_idx(tmp_path)
    _write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", np.zeros((_NUM_TEST, 14, 14), np.uint8))
    with pytest.raises(data.DataIncompleteError, match=r"training images of shape \(28, 28, "
                                                       r"1\) and test images of shape \(14"):
        data.load_images("fashion_mnist", data_dir=str(tmp_path), validation_examples=10)


@pytest.mark.parametrize("argument", ["validation_examples", "train_examples"])
def test_sizes_must_be_whole_numbers(argument):
    with pytest.raises(ValueError, match=f"{argument} must be a whole number, got 2.5"):
        data.load_images("digits", **{argument: 2.5})


def test_split_depends_on_seed_only(tmp_path, no_system_fashion_mnist):
    _write_fashion_mnist_idx(tmp_path)

    def validation_ids(seed):
        images = data.load_images(
            "fashion_mnist", data_dir=str(tmp_path), validation_examples=10, seed=seed
        )
        return sorted(_example_ids(images.validation[0]))

    assert validation_ids(0) == validation_ids(0)
    assert validation_ids(0) != validation_ids(1)


def test_train_examples_subsamples_what_validation_leaves(tmp_path, no_system_fashion_mnist):
    _write_fashion_mnist_idx(tmp_path)
    images = data.load_images(
        "fashion_mnist", data_dir=str(tmp_path), validation_examples=10, train_examples=25
    )
    assert len(images.train[0]) == 25 and len(images.validation[0]) == 10
    assert not set(_example_ids(images.train[0])) & set(_example_ids(images.validation[0]))


def test_digits_ships_with_scikit_learn():
    images = data.load_images("digits", validation_examples=100)
    assert images.image_shape == (8, 8, 1) and images.num_classes == 10
    assert len(images.validation[0]) == 100
    assert len(images.train[0]) + 100 + len(images.test[0]) == 1797
    assert set(np.unique(images.train[1])) == set(range(10))


def test_digits_says_a_data_dir_is_not_read(tmp_path, caplog):
    data.load_images("digits", data_dir=str(tmp_path))
    assert f"data_dir={tmp_path} is not read" in caplog.text


@pytest.mark.skipif(
    not os.path.isdir(data.DEBIAN_FASHION_MNIST_DIR),
    reason="Debian's dataset-fashion-mnist is not installed (`make data` installs it)",
)
def test_real_fashion_mnist_from_debian():
    images = data.load_images("fashion_mnist", train_examples=1000)
    assert len(images.validation[0]) == 6000 and len(images.test[0]) == 10000
    assert images.train[0].shape == (1000, 28, 28, 1)


@pytest.mark.parametrize(
    "kwargs, problem",
    [
        ({"name": "mnist"}, "unknown dataset"),
        ({"name": "digits", "validation_examples": 5000}, "validation_examples=5000"),
        ({"name": "digits", "train_examples": 5000}, "train_examples=5000"),
    ],
)
def test_bad_requests_are_named(kwargs, problem):
    with pytest.raises(ValueError, match=problem):
        data.load_images(**kwargs)


def test_a_split_without_examples_is_named(tmp_path, no_system_fashion_mnist):
    _write_fashion_mnist_idx(tmp_path)
    _write_idx(tmp_path / "train-images-idx3-ubyte.gz", np.zeros((0, 28, 28), np.uint8))
    _write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.zeros(0, np.uint8))
    with pytest.raises(ValueError, match="fashion_mnist .* has 0 training examples"):
        data.load_images("fashion_mnist", data_dir=str(tmp_path))


def test_read_idx_rejects_bad_files(tmp_path):
    not_idx = tmp_path / "not-idx"
    not_idx.write_bytes(b"\x12\x34\x56\x78rest")
    with pytest.raises(ValueError, match="bad magic"):
        data.read_idx(str(not_idx))
    truncated = tmp_path / "truncated"
    _write_idx(str(truncated), np.zeros((4, 3), np.uint8), compress=False)
    truncated.write_bytes(truncated.read_bytes()[:-2])
    with pytest.raises(ValueError, match="truncated"):
        data.read_idx(str(truncated))


def _swap(directory, first, second):
    os.rename(directory / first, directory / "swapping")
    os.rename(directory / second, directory / first)
    os.rename(directory / "swapping", directory / second)


@pytest.mark.parametrize(
    "spoil, problem",
    [
        (lambda directory: _swap(directory, "t10k-images-idx3-ubyte.gz",
                                 "t10k-labels-idx1-ubyte.gz"), "are not one split's"),
        (lambda directory: _write_idx(directory / "train-labels-idx1-ubyte.gz",
                                      np.zeros(_NUM_TRAIN - 1, np.uint8)), "are not one split's"),
        (lambda directory: _write_idx(directory / "train-labels-idx1-ubyte.gz",
                                      np.full(_NUM_TRAIN, 10, np.uint8)), "holds label 10"),
    ],
    ids=["swapped", "fewer labels", "label 10"],
)
def test_idx_images_and_labels_must_make_one_split(tmp_path, no_system_fashion_mnist, spoil,
                                                   problem):
    """Each file valid alone, the pair not: swapped, of other sizes, labels past 9. A
    DataIncompleteError, which the binaries show in a line (a ValueError was a traceback
    in the benchmarks)."""
    _write_fashion_mnist_idx(tmp_path)
    spoil(tmp_path)
    with pytest.raises(data.DataIncompleteError, match=problem):
        data.load_images("fashion_mnist", data_dir=str(tmp_path), validation_examples=10)


def _cut_gzip(path):
    _write_idx(path, np.zeros((50, 28, 28), np.uint8))
    raw = path.read_bytes()
    path.write_bytes(raw[: len(raw) // 2])


@pytest.mark.parametrize(
    "name, write",
    [
        ("header", lambda path: path.write_bytes(bytes([0, 0, 0x08, 3, 0, 0, 0]))),
        # 65536 ** 4 values, whose product in numpy's int64 wraps to the 0 the file holds.
        ("huge-header", lambda path: path.write_bytes(bytes([0, 0, 0x08, 4]) + bytes(
            [0, 1, 0, 0]) * 4)),
        ("not-gzip.gz", lambda path: path.write_bytes(b"plain bytes, not gzip")),
        ("cut-gzip.gz", _cut_gzip),
    ],
)
def test_read_idx_names_the_file_it_cannot_read(tmp_path, name, write):
    """Not numpy's buffer-size error nor gzip's EOFError, which do not say which file."""
    path = tmp_path / name
    write(path)
    with pytest.raises(data.DataIncompleteError,
                       match=re.escape(f"{path} is truncated or corrupt")):
        data.read_idx(str(path))


def test_an_unreadable_idx_file_is_named(tmp_path, no_system_fashion_mnist):
    """Its PermissionError (or a disk's EIO) was a traceback that named no dataset."""
    _write_fashion_mnist_idx(tmp_path)
    (tmp_path / "train-images-idx3-ubyte.gz").unlink()
    (tmp_path / "train-images-idx3-ubyte.gz").mkdir()  # Unreadable as a file, even by root.
    with pytest.raises(data.DataIncompleteError, match=re.escape(
            f"{tmp_path / 'train-images-idx3-ubyte.gz'} cannot be read (Is a directory)")):
        data.read_idx(str(tmp_path / "train-images-idx3-ubyte.gz"))


def test_an_idx_file_of_another_type_says_so(tmp_path):
    path = tmp_path / "floats"
    path.write_bytes(bytes([0, 0, 0x0D, 1, 0, 0, 0, 1]) + np.float32(1).tobytes())
    with pytest.raises(data.DataIncompleteError, match="type code 0x0d, not of unsigned bytes"):
        data.read_idx(str(path))


# ------------------------------------------------------------------------- pipelines ---


def _batches(pipeline):
    return [(x.numpy(), y.numpy()) for x, y in pipeline]


def test_pipeline_visits_every_example_once_per_epoch_in_a_seeded_order():
    images = np.arange(10, dtype=np.float32)[:, None]
    labels = np.arange(10, dtype=np.int32)
    first = _batches(data.make_pipeline(images, labels, 4, shuffle_seed=7, epochs=2))
    again = _batches(data.make_pipeline(images, labels, 4, shuffle_seed=7, epochs=2))
    other_seed = _batches(data.make_pipeline(images, labels, 4, shuffle_seed=8, epochs=2))
    assert [len(y) for _, y in first] == [4, 4, 2, 4, 4, 2]
    epochs = [np.concatenate([y for _, y in first[:3]]), np.concatenate([y for _, y in first[3:]])]
    for epoch in epochs:
        assert sorted(epoch) == list(range(10))
    assert list(epochs[0]) != list(epochs[1])  # Reshuffled each epoch.
    for (x, y), (x2, y2) in zip(first, again):
        np.testing.assert_array_equal(x[:, 0], y)  # Images stay with their labels.
        np.testing.assert_array_equal(y, y2)
    assert [list(y) for _, y in first] != [list(y) for _, y in other_seed]


def test_a_pipeline_needs_a_label_an_image():
    with pytest.raises(ValueError, match="23 images and 30 labels"):
        data.make_pipeline(np.zeros((23, 2), np.float32), np.zeros(30, np.int32), 5)


def test_pipeline_reshuffles_when_iterated_again_unless_fixed():
    """`model.fit` iterates a one-epoch pipeline once per epoch: each should be new."""
    images = np.arange(10, dtype=np.float32)[:, None]
    labels = np.arange(10, dtype=np.int32)

    def orders(pipeline):
        return [np.concatenate([y for _, y in _batches(pipeline)]).tolist() for _ in range(2)]

    first, second = orders(data.make_pipeline(images, labels, 4, shuffle_seed=3))
    assert first != second and sorted(first) == sorted(second) == list(range(10))
    assert orders(data.make_pipeline(images, labels, 4, shuffle_seed=3)) == [first, second]
    fixed = data.make_pipeline(images, labels, 4, shuffle_seed=3, reshuffle_each_iteration=False)
    fixed_first, fixed_second = orders(fixed)
    assert fixed_first == fixed_second
    other_seed = data.make_pipeline(images, labels, 4, shuffle_seed=4,
                                    reshuffle_each_iteration=False)
    assert orders(other_seed)[0] != fixed_first  # Fixed, but still the seed's order.


def test_fixed_pipeline_resumes_with_skip_and_keeps_order_without_seed():
    images = np.arange(10, dtype=np.float32)[:, None]
    labels = np.arange(10, dtype=np.int32)

    def stream(skip):
        return data.make_pipeline(
            images, labels, 3, shuffle_seed=1, epochs=None, reshuffle_each_iteration=False,
            skip_batches=skip,
        )

    whole = _batches(stream(0).take(9))
    resumed = _batches(stream(5).take(4))
    for (_, y), (_, y2) in zip(whole[5:], resumed):
        np.testing.assert_array_equal(y, y2)
    in_order = np.concatenate([y for _, y in _batches(data.make_pipeline(images, labels, 3))])
    np.testing.assert_array_equal(in_order, labels)
