"""Wide ResNet (Zagoruyko & Komodakis, 2016) and the paper's CIFAR-10 training protocol.

WRN-d-k: a 3×3 convolution with 16 filters, then three groups of (d − 4) / 6 pre-activation
basic blocks (BN-ReLU-conv3×3-BN-ReLU-conv3×3) with 16k, 32k and 64k filters, the second and
third groups starting with stride 2, then BN-ReLU, global average pooling and a softmax
layer. A 1×1 convolution projects the shortcut where the shape changes. The paper's
transfer table uses WRN-28-10 (36.5M parameters); WRN-16-2 is a CPU-sized relative.

`train_wide_resnet` is the protocol of the paper's table: inputs standardised per channel
with the training split's mean and standard deviation, the WRN paper's augmentation
(4-pixel reflection padding, random crop back to size, horizontal flip) of training
images only, weight decay on the weights of convolutions and the classifier, a cosine or
step learning-rate schedule, and validation and test accuracy after every epoch, from
which final and best values are read.

One deliberate difference from the authors' code: it decays every parameter, and this
decays neither batch norm's scales and offsets nor the classifier's bias, as is common
practice now. Every optimizer of a table gets the same decay either way.
"""

import dataclasses
import functools
import math
import time
from collections.abc import Callable

import keras
import numpy as np
import tensorflow as tf

from nos_tf import data
from nos_tf.models.batch_norm import FusedBatchNormalization

SCHEDULES = ("cosine", "step", "constant")
_STEP_DECAY_FRACTIONS = (0.3, 0.6, 0.8)  # WRN's epochs 60, 120, 160 of 200 ...
_STEP_DECAY_FACTOR = 0.2  # ... each multiplying the learning rate by 0.2.
_CROP_PADDING = 4

OptimizerFactory = Callable[..., keras.optimizers.Optimizer]
"""build(learning_rate, total_steps, **keras_optimizer_kwargs) -> a fresh optimizer."""


def check_architecture(depth: int, width: int) -> None:
    """Raises ValueError unless WRN-`depth`-`width` exists (`depth` = 6n + 4, n >= 1)."""
    if depth < 10 or (depth - 4) % 6:
        raise ValueError(f"WRN depth must be 6n + 4 with n >= 1 (10, 16, 22, 28, ...), got {depth}")
    if width < 1:
        raise ValueError(f"WRN width must be at least 1, got {width}")


def wide_resnet(
    depth: int,
    width: int,
    num_classes: int,
    input_shape: tuple[int, int, int],
    weight_decay: float = 5e-4,
    dropout: float = 0.0,
    input_statistics: tuple[np.ndarray, np.ndarray] | None = None,
    batch_norm: type[keras.layers.BatchNormalization] = FusedBatchNormalization,
) -> keras.Model:
    """WRN-`depth`-`width` as a functional Keras model returning class logits.

    `weight_decay` is the paper's: each kernel's gradient gains `weight_decay * w`, as
    SGD's weightDecay of the authors' Torch code (and PyTorch's) adds it, to kernels
    alone here (see the module's docstring). Keras's
    `L2(l2)` adds `l2 * sum(w**2)` to the loss, whose gradient is `2 * l2 * w`, so the
    penalty is `L2(weight_decay / 2)`; `L2(5e-4)` would decay twice as fast. Being part
    of the loss, it reaches every optimizer alike, rule optimizers included.

    `input_statistics`, the training images' per-channel (mean, variance), standardises
    the inputs inside the model, as the authors' code does (torchvision's Normalize), so that the
    model takes images as the data holds them ([0, 1]) and the validation and test images
    are standardised with the training statistics.

    `batch_norm` is the layer class: by default TensorFlow's fused kernel, which computes
    Keras's `BatchNormalization` and makes WRN-16-2's training step 1.28× faster on CPU
    (`nos_tf.models.batch_norm`).
    """
    check_architecture(depth, width)
    blocks_per_group = (depth - 4) // 6
    regularizer = keras.regularizers.L2(weight_decay / 2) if weight_decay else None

    conv = functools.partial(convolution, regularizer=regularizer)

    def bn_relu(x):
        # Torch's batch-norm defaults, as in the authors' code: Keras's momentum of 0.99
        # leaves the moving statistics far from the data for the first few hundred steps.
        normalized = batch_norm(momentum=0.9, epsilon=1e-5)(x)
        return keras.layers.ReLU()(normalized)

    def block(x, filters, strides):
        activated = bn_relu(x)
        # The projection shares the pre-activation, as in the authors' implementation.
        if x.shape[-1] == filters and strides == 1:
            shortcut = x
        else:
            shortcut = conv(filters, 1, strides)(activated)
        y = conv(filters, 3, strides)(activated)
        y = bn_relu(y)
        if dropout:
            y = keras.layers.Dropout(dropout)(y)
        y = conv(filters, 3)(y)
        return keras.layers.Add()([shortcut, y])

    inputs = keras.Input(input_shape)
    x = inputs
    if input_statistics is not None:
        mean, variance = input_statistics
        x = keras.layers.Normalization(axis=-1, mean=mean, variance=variance)(x)
    x = conv(16, 3)(x)
    for group, filters in enumerate((16 * width, 32 * width, 64 * width)):
        for index in range(blocks_per_group):
            x = block(x, filters, strides=2 if group and not index else 1)
    x = keras.layers.GlobalAveragePooling2D()(bn_relu(x))
    outputs = keras.layers.Dense(num_classes, kernel_regularizer=regularizer)(x)
    return keras.Model(inputs, outputs, name=f"wrn_{depth}_{width}")


def convolution(
    filters: int,
    kernel_size: int,
    strides: int = 1,
    regularizer: keras.regularizers.Regularizer | None = None,
) -> Callable[[keras.KerasTensor], keras.KerasTensor]:
    """A bias-free convolution whose output pixel i is centred on input pixel strides * i.

    Keras's `padding="same"` pads an even-sized input asymmetrically when the stride is
    2 (none before, one after), centring a strided 3×3 window on the odd pixels while its
    block's strided 1×1 shortcut samples the even ones: the two branches added would see
    different pixels. The authors' code pads a 3×3 convolution by one pixel on each side
    (PyTorch's `padding=1`), as TensorFlow's official ResNet does (`conv2d_fixed_padding`);
    so does this one where the stride is above 1.
    """
    def apply(x):
        padding = "same"
        if strides > 1 and kernel_size > 1:
            x = keras.layers.ZeroPadding2D(kernel_size // 2)(x)
            padding = "valid"
        return keras.layers.Conv2D(
            filters, kernel_size, strides=strides, padding=padding, use_bias=False,
            kernel_initializer="he_normal", kernel_regularizer=regularizer,
        )(x)

    return apply


def learning_rate_schedule(
    kind: str, learning_rate: float, total_steps: int
) -> float | keras.optimizers.schedules.LearningRateSchedule:
    """The learning rate over training: cosine to 0, WRN's step decay, or constant."""
    if kind == "cosine":
        return keras.optimizers.schedules.CosineDecay(learning_rate, decay_steps=total_steps)
    if kind == "step":
        # Keras evaluates the schedule at the number of updates already made, and
        # PiecewiseConstantDecay keeps a value up to and including its boundary: the
        # update after `decay_at` updates (epoch 61's first of 200) takes the new rate
        # when the boundary is `decay_at - 1`. So the rate drops after 60 epochs, as the
        # paper says; the authors' code drops it one epoch sooner (at the start of its
        # 60th).
        boundaries = [max(1, int(total_steps * fraction)) - 1
                      for fraction in _STEP_DECAY_FRACTIONS]
        values = [learning_rate * _STEP_DECAY_FACTOR**i for i in range(len(boundaries) + 1)]
        return keras.optimizers.schedules.PiecewiseConstantDecay(boundaries, values)
    if kind == "constant":
        return learning_rate
    raise ValueError(f"unknown learning-rate schedule {kind!r}; choose one of {SCHEDULES}")


def augment(image: tf.Tensor, seed: tf.Tensor) -> tf.Tensor:
    """One image, padded by 4 pixels, randomly cropped back and maybe mirrored.

    The padding reflects the image, as the WRN paper's ("filling missing pixels with
    reflections of original image") and its authors' code (`padding_mode='reflect'`) do:
    zeros would border each crop with black, about two standard deviations below the mean.
    """
    height, width, channels = image.shape
    crop_seed, flip_seed = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    padded = tf.pad(image, [[_CROP_PADDING] * 2, [_CROP_PADDING] * 2, [0, 0]], mode="REFLECT")
    cropped = tf.image.stateless_random_crop(padded, (height, width, channels), seed=crop_seed)
    return tf.image.stateless_random_flip_left_right(cropped, seed=flip_seed)


def augmented_pipeline(
    images: np.ndarray, labels: np.ndarray, batch_size: int, seed: int
) -> tf.data.Dataset:
    """Shuffled, augmented training batches, the same stream for a given seed."""
    dataset = tf.data.Dataset.from_tensor_slices((images, labels)).cache()
    dataset = dataset.shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
    # A stateless seed per image, new each epoch: without rerandomize_each_iteration every
    # epoch would replay the first's crops and flips, by position in the shuffled order.
    randomness = tf.data.Dataset.random(seed=seed, rerandomize_each_iteration=True).batch(2)
    dataset = tf.data.Dataset.zip(dataset, randomness).map(
        lambda example, image_seed: (augment(example[0], image_seed), example[1]),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)


class _EvaluateEachEpoch(keras.callbacks.Callback):
    """Adds the accuracy on extra splits (the test set) to each epoch's logs."""

    def __init__(self, splits: dict[str, tf.data.Dataset]):
        super().__init__()
        self.splits = splits

    def on_epoch_end(self, epoch, logs=None):
        for name, dataset in self.splits.items():
            metrics = self.model.evaluate(dataset, verbose=0, return_dict=True)
            logs[f"{name}_accuracy"] = metrics["accuracy"]


@dataclasses.dataclass
class ClassificationResult:
    """Accuracies in [0, 1], read from the per-epoch history."""

    final_validation: float
    final_test: float
    best_validation: float
    best_test: float
    # Per epoch: cross_entropy (the training loss without weight decay's penalty),
    # validation_accuracy, test_accuracy.
    history: dict[str, list[float]]
    train_seconds: float
    # The last epoch's training or validation loss is not finite, or a variable is not
    # (batch norm's moving variance overflows to inf while its batches' losses stay
    # finite, from SGD at a rate of 100): the accuracies are those of one class predicted
    # for every image (about chance).
    diverged: bool = False


def train_wide_resnet(
    images: data.ImageData,
    build_optimizer: OptimizerFactory,
    learning_rate: float,
    *,
    depth: int = 16,
    width: int = 2,
    weight_decay: float = 5e-4,
    dropout: float = 0.0,
    epochs: int = 10,
    batch_size: int = 128,
    schedule: str = "cosine",
    augmentation: bool = True,
    seed: int = 0,
    verbose: int | str = "auto",
    evaluate_test: bool = True,
) -> ClassificationResult:
    """Trains WRN-depth-width on `images` with `build_optimizer(schedule, total_steps)`.

    Best validation and best test accuracy are each the maximum over epochs, as in the
    paper's table. `evaluate_test=False` (a learning-rate sweep) leaves test accuracies nan.
    """
    keras.utils.set_random_seed(seed)
    train_x, train_y = images.train
    if augmentation:
        train = augmented_pipeline(train_x, train_y, batch_size, seed)
    else:
        train = data.make_pipeline(train_x, train_y, batch_size, shuffle_seed=seed)
    validation = data.make_pipeline(*images.validation, batch_size * 2)
    test = data.make_pipeline(*images.test, batch_size * 2)
    total_steps = epochs * -(-len(train_x) // batch_size)
    model = wide_resnet(
        depth, width, images.num_classes, images.image_shape, weight_decay, dropout,
        input_statistics=(train_x.mean(axis=(0, 1, 2)), train_x.var(axis=(0, 1, 2))),
    )
    model.compile(
        optimizer=build_optimizer(
            learning_rate_schedule(schedule, learning_rate, total_steps), total_steps
        ),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        # Keras's loss includes the weight decay's penalty, which can outweigh the data's
        # (WRN-28-10's is 5.0 at initialisation, against 2.3): the curves show this.
        metrics=["accuracy", keras.metrics.SparseCategoricalCrossentropy(
            name="cross_entropy", from_logits=True)],
        jit_compile=False,  # XLA makes convolutions on CPU ~3x slower than oneDNN.
    )
    callbacks = [_EvaluateEachEpoch({"test": test})] if evaluate_test else []
    started = time.perf_counter()
    fit = model.fit(
        train, validation_data=validation, epochs=epochs, callbacks=callbacks,
        shuffle=False, verbose=verbose,
    )
    train_seconds = time.perf_counter() - started
    history = {
        "cross_entropy": fit.history["cross_entropy"],
        "validation_accuracy": fit.history["val_accuracy"],
        "test_accuracy": fit.history.get("test_accuracy", [float("nan")] * epochs),
    }
    return ClassificationResult(
        final_validation=history["validation_accuracy"][-1],
        final_test=history["test_accuracy"][-1],
        best_validation=max(history["validation_accuracy"]),
        best_test=max(history["test_accuracy"]),
        history=history,
        train_seconds=train_seconds,
        diverged=not (all(map(math.isfinite, (fit.history["loss"][-1],
                                               fit.history["val_loss"][-1])))
                      and all(np.isfinite(keras.ops.convert_to_numpy(variable)).all()
                              for variable in model.variables)),
    )
