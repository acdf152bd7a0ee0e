"""The transfer models: Wide ResNet, GNMT-lite and Rosenbrock."""

import dataclasses
import math
import types

import keras
import numpy as np
import pytest
import tensorflow as tf

import nos_tf
from nos_tf import data, translation_data
from nos_tf.models import gnmt, rosenbrock, wrn

# ------------------------------------------------------------------------ Wide ResNet ---


def test_wrn_28_10_has_the_papers_36_5m_parameters():
    # Zagoruyko & Komodakis, table 4: WRN-28-10 has 36.5M parameters on CIFAR-10
    # (36,479,194 in the authors' implementation; BN moving statistics are not parameters).
    model = wrn.wide_resnet(28, 10, num_classes=10, input_shape=(32, 32, 3))
    trainable = sum(math.prod(weight.shape) for weight in model.trainable_weights)
    assert trainable == 36_479_194
    assert model.output_shape == (None, 10)


def test_weight_decay_adds_the_papers_decay_times_w_to_each_kernels_gradient():
    # The authors' Torch SGD (weightDecay = 5e-4) adds 5e-4 * w to the gradient; batch
    # norm's scales and offsets and the classifier's bias are not decayed.
    model = wrn.wide_resnet(10, 1, num_classes=10, input_shape=(8, 8, 1), weight_decay=5e-4)
    with tf.GradientTape() as tape:
        penalty = tf.add_n(model.losses)
    variables = model.trainable_variables
    gradients = dict(zip((v.path for v in variables), tape.gradient(penalty, variables)))
    kernels = [v for v in variables if v.name == "kernel"]
    assert len(kernels) == 10  # Nine convolutions and the classifier.
    for kernel in kernels:
        np.testing.assert_allclose(gradients[kernel.path], 5e-4 * kernel.numpy(), rtol=1e-5)
    assert all(gradients[v.path] is None for v in variables if v.name != "kernel")


@pytest.mark.parametrize("depth", [8, 15, 4])
def test_wrn_rejects_depths_that_are_not_6n_plus_4(depth):
    with pytest.raises(ValueError, match="6n \\+ 4"):
        wrn.wide_resnet(depth, 1, 10, (32, 32, 3))


def test_step_schedule_divides_by_five_at_30_60_80_percent():
    schedule = wrn.learning_rate_schedule("step", 0.1, total_steps=100)
    # The schedule's step is the number of updates made: update 31 (step 30) is the
    # first after 30% of training, as epoch 61 is the first at 0.2x in WRN's 200.
    rates = [float(schedule(step)) for step in (0, 29, 30, 59, 60, 79, 80, 99)]
    assert rates == pytest.approx([0.1, 0.1, 0.02, 0.02, 0.004, 0.004, 0.0008, 0.0008])
    optimizer = keras.optimizers.SGD(schedule)
    optimizer.iterations.assign(30)  # What Keras's optimizers evaluate it at.
    assert float(optimizer.learning_rate) == pytest.approx(0.02)
    cosine = wrn.learning_rate_schedule("cosine", 0.1, total_steps=100)
    assert float(cosine(0)) == pytest.approx(0.1)
    assert float(cosine(100)) == pytest.approx(0.0, abs=1e-7)
    with pytest.raises(ValueError, match="unknown learning-rate schedule 'linear'"):
        wrn.learning_rate_schedule("linear", 0.1, 100)


def test_augment_is_a_seeded_shifted_crop_or_its_mirror():
    image = tf.random.stateless_uniform((8, 8, 1), seed=(1, 2))
    crops = [wrn.augment(image, tf.constant([0, seed], tf.int64)) for seed in range(20)]
    assert all(crop.shape == (8, 8, 1) for crop in crops)
    # Reflected, as the WRN paper pads (zeros bordered most crops with black).
    padded = np.pad(image.numpy(), ((4, 4), (4, 4), (0, 0)), mode="reflect")
    windows = [padded[i:i + 8, j:j + 8] for i in range(9) for j in range(9)]
    windows += [window[:, ::-1] for window in windows]
    for crop in crops:
        assert any(np.array_equal(crop.numpy(), window) for window in windows)
    assert len({crop.numpy().tobytes() for crop in crops}) > 5
    again = wrn.augment(image, tf.constant([0, 3], tf.int64))
    np.testing.assert_array_equal(again.numpy(), crops[3].numpy())


def test_augmentation_draws_new_crops_and_flips_each_epoch():
    # Eight copies of one image: an epoch's batch differs from the last only by the
    # random draws (they were replayed, by position, every epoch).
    image = tf.random.stateless_uniform((8, 8, 1), seed=(1, 2)).numpy()
    pipeline = wrn.augmented_pipeline(np.stack([image] * 8), np.zeros(8, np.int32),
                                      batch_size=8, seed=0)
    first, second = ([images.numpy() for images, _ in pipeline] for _ in range(2))
    assert not np.array_equal(first[0], second[0])
    again = [images.numpy() for images, _ in wrn.augmented_pipeline(
        np.stack([image] * 8), np.zeros(8, np.int32), batch_size=8, seed=0)]
    np.testing.assert_array_equal(again[0], first[0])  # Still the seed's.


def test_a_strided_convolution_and_its_shortcut_sample_the_same_pixels():
    # Keras's padding="same" centred a stride-2 3x3 window on odd pixels (it pads an even
    # input after, not before), its block's 1x1 shortcut on even ones.
    impulse = np.zeros((1, 8, 8, 1), np.float32)
    impulse[0, 2, 2, 0] = 1.0
    inputs = keras.Input((8, 8, 1))
    outputs = [wrn.convolution(1, size, strides=2)(inputs) for size in (3, 1)]
    model = keras.Model(inputs, outputs)
    for layer in model.layers:
        if isinstance(layer, keras.layers.Conv2D):  # Each kernel reads its centre alone.
            kernel = np.zeros(layer.kernel.shape, np.float32)
            kernel[layer.kernel.shape[0] // 2, layer.kernel.shape[1] // 2] = 1.0
            layer.kernel.assign(kernel)
    three, one = model(impulse)
    assert three.shape == one.shape == (1, 4, 4, 1)
    assert np.argwhere(three.numpy()[0, ..., 0]).tolist() == [[1, 1]]
    assert np.argwhere(one.numpy()[0, ..., 0]).tolist() == [[1, 1]]


def test_wrn_training_cross_entropy_leaves_out_the_weight_decay_penalty():
    # Keras's loss adds the penalty (at WRN-28-10's initialisation 5.0, against a
    # cross-entropy of 2.3): the transfer curves showed the two summed.
    images = data.load_images("digits", validation_examples=50, train_examples=100)
    histories = [wrn.train_wide_resnet(
        images, lambda rate, steps: keras.optimizers.SGD(rate), 0.0, depth=10, width=1,
        weight_decay=decay, epochs=1, batch_size=50, augmentation=False, verbose=0,
        evaluate_test=False).history for decay in (0.0, 0.5)]
    assert histories[0]["cross_entropy"] == pytest.approx(histories[1]["cross_entropy"])
    assert 1.0 < histories[0]["cross_entropy"][0] < 5.0  # About log(10) for 10 classes.


def test_wrn_standardises_inputs_with_the_training_splits_channel_statistics(monkeypatch):
    rng = np.random.default_rng(0)

    def split(count, brightness):  # Three channels of different means and spreads.
        x = rng.uniform(0, 1, (count, 8, 8, 3)) * [1.0, 0.5, 0.1] + brightness
        return x.astype(np.float32), rng.integers(0, 10, count).astype(np.int32)

    images = data.ImageData("fake", split(40, 0.0), split(20, 0.3), split(20, 0.6), 10,
                            (8, 8, 3))
    built, original = [], wrn.wide_resnet
    monkeypatch.setattr(wrn, "wide_resnet",
                        lambda *args, **kwargs: built.append(original(*args, **kwargs))
                        or built[-1])
    wrn.train_wide_resnet(images, lambda rate, steps: keras.optimizers.SGD(rate), 0.01,
                          depth=10, width=1, epochs=1, batch_size=20, verbose=0)
    inputs = built[0].layers[0].output
    standardise = keras.Model(inputs, built[0].layers[1](inputs))
    standardised = standardise.predict(images.train[0], verbose=0)
    np.testing.assert_allclose(standardised.mean(axis=(0, 1, 2)), 0.0, atol=1e-4)
    np.testing.assert_allclose(standardised.std(axis=(0, 1, 2)), 1.0, atol=1e-3)


@pytest.mark.parametrize("augmentation", [False, True])
def test_wrn_optimizer_counts_exactly_the_steps_its_schedule_spans(augmentation):
    # 230 images in batches of 50: 5 steps an epoch, the last of 30 images.
    images = data.load_images("digits", validation_examples=50, train_examples=230)
    built = []

    def build(learning_rate, total_steps):
        built.append((keras.optimizers.SGD(learning_rate), total_steps))
        return built[-1][0]

    wrn.train_wide_resnet(images, build, 0.01, depth=10, width=1, epochs=3, batch_size=50,
                          augmentation=augmentation, verbose=0, evaluate_test=False)
    optimizer, total_steps = built[0]
    assert total_steps == 15
    assert int(optimizer.iterations) == 15  # Not a step more per epoch.


def _random_images(shape=(8, 8, 1)):
    rng = np.random.default_rng(0)

    def split(count):
        return (rng.uniform(0, 1, (count, *shape)).astype(np.float32),
                rng.integers(0, 10, count).astype(np.int32))

    return data.ImageData("random", split(20), split(10), split(10), 10, shape)


def test_wrn_reads_final_and_best_of_each_split_from_its_own_history(monkeypatch):
    """Best is each split's maximum, final its last epoch: a run whose accuracies all rise
    cannot tell them apart."""
    history = {"loss": [2.0, 1.0, 1.5], "val_loss": [2.0, 1.0, 1.5],
               "cross_entropy": [2.0, 1.0, 1.5],
               "val_accuracy": [0.2, 0.6, 0.4], "test_accuracy": [0.7, 0.3, 0.5]}
    monkeypatch.setattr(keras.Model, "fit",
                        lambda self, *args, **kwargs: types.SimpleNamespace(history=history))
    result = wrn.train_wide_resnet(
        _random_images(), lambda rate, steps: keras.optimizers.SGD(rate), 0.1, depth=10,
        width=1, epochs=3, batch_size=10, augmentation=False, verbose=0)
    assert (result.final_validation, result.final_test) == (0.4, 0.5)
    assert (result.best_validation, result.best_test) == (0.6, 0.7)
    assert not result.diverged


def test_wrn_accuracies_are_the_trained_models_on_each_split(monkeypatch):
    """The test column is the test split's, not the validation set's again."""
    images = data.load_images("digits", validation_examples=60, train_examples=150)
    images = dataclasses.replace(images, test=(images.test[0][:45], images.test[1][:45]))
    built, wide_resnet = [], wrn.wide_resnet
    monkeypatch.setattr(wrn, "wide_resnet",
                        lambda *args, **kwargs: built.append(wide_resnet(*args, **kwargs))
                        or built[-1])
    result = wrn.train_wide_resnet(
        images, lambda rate, steps: keras.optimizers.SGD(rate, momentum=0.9), 0.05,
        depth=10, width=1, epochs=2, batch_size=50, augmentation=False, verbose=0,
        schedule="constant")

    def accuracy(x, y):
        return float(np.mean(np.argmax(built[0].predict(x, verbose=0), axis=-1) == y))

    assert result.final_validation == pytest.approx(accuracy(*images.validation), abs=1e-6)
    assert result.final_test == pytest.approx(accuracy(*images.test), abs=1e-6)


def test_augmented_batches_keep_each_image_with_its_label():
    labels = np.arange(16, dtype=np.int32) % 10
    images = np.broadcast_to(labels[:, None, None, None], (16, 8, 8, 1)).astype(np.float32)
    for batch_images, batch_labels in wrn.augmented_pipeline(images, labels, 4, seed=3):
        np.testing.assert_array_equal(batch_images.numpy()[:, 0, 0, 0], batch_labels.numpy())


def test_augment_shifts_by_up_to_the_full_four_pixels():
    """A crop of a padding by 2 is also a window of the padding by 4: only the shifts
    drawn tell them apart."""
    image = tf.random.stateless_uniform((8, 8, 1), seed=(1, 2))
    padded = np.pad(image.numpy(), ((4, 4), (4, 4), (0, 0)), mode="reflect")
    shifts = set()
    for seed in range(120):
        crop = wrn.augment(image, tf.constant([0, seed], tf.int64)).numpy()
        for i in range(9):
            for j in range(9):
                window = padded[i:i + 8, j:j + 8]
                if np.array_equal(crop, window) or np.array_equal(crop, window[:, ::-1]):
                    shifts.add(max(abs(i - 4), abs(j - 4)))
    assert max(shifts) == 4


def test_wrn_downsamples_only_at_the_second_and_third_groups():
    """32×32 inputs end at 8×8 (the parameter count and output cannot tell)."""
    model = wrn.wide_resnet(16, 2, num_classes=10, input_shape=(32, 32, 3))
    pool = next(layer for layer in model.layers
                if isinstance(layer, keras.layers.GlobalAveragePooling2D))
    assert tuple(pool.input.shape) == (None, 8, 8, 128)


def test_a_blocks_identity_shortcut_is_the_block_input_not_its_pre_activation():
    model = wrn.wide_resnet(16, 2, num_classes=10, input_shape=(16, 16, 3))
    adds = [layer for layer in model.layers if isinstance(layer, keras.layers.Add)]
    assert len(adds) == 6
    for index in (1, 3, 5):  # Each group's second block adds the first block's output.
        assert any(tensor is adds[index - 1].output for tensor in adds[index].input)


def test_tiny_wrn_learns_digits():
    images = data.load_images("digits", validation_examples=200, train_examples=600)

    def build(learning_rate, total_steps):
        del total_steps
        return keras.optimizers.SGD(learning_rate, momentum=0.9)

    # Without augmentation: 4-pixel shifts would wipe out most of an 8x8 digit.
    result = wrn.train_wide_resnet(images, build, 0.05, depth=10, width=1, epochs=3,
                                   batch_size=50, augmentation=False, verbose=0)
    assert result.history["cross_entropy"][-1] < result.history["cross_entropy"][0]
    assert len(result.history["test_accuracy"]) == 3
    assert result.best_validation == max(result.history["validation_accuracy"])
    assert result.final_test == result.history["test_accuracy"][-1]
    assert result.best_validation > 0.5  # Ten classes: chance is 0.1.


def test_a_wrn_whose_batch_norm_statistics_blew_up_has_diverged():
    """SGD at a rate of 100 overflows batch norm's moving variances while the training
    loss stays finite: every image is then one class (a sweep read it as a chance-level
    accuracy, above a slow rate's), and the run was not flagged."""
    images = data.load_images("digits", validation_examples=100, train_examples=300)
    result = wrn.train_wide_resnet(
        images, lambda rate, steps: keras.optimizers.SGD(rate), 100.0, depth=10, width=1,
        epochs=2, batch_size=50, augmentation=False, verbose=0, schedule="constant",
        evaluate_test=False)
    assert result.diverged
    assert all(map(math.isfinite, result.history["cross_entropy"]))  # Its losses did not say.


# -------------------------------------------------------------------------- GNMT-lite ---

VOCABULARY = 23


def _tiny_gnmt(**kwargs):
    keras.utils.set_random_seed(0)
    return gnmt.GNMT(VOCABULARY, VOCABULARY, units=16, embedding_dim=8, **kwargs)


def test_gnmt_logits_shape_and_padding_invariance():
    model = _tiny_gnmt(encoder_layers=3, decoder_layers=3)
    source = np.array([[5, 6, 7, 0, 0], [8, 9, 10, 11, 12]], dtype=np.int32)
    target_in = np.array([[21, 3, 4], [21, 5, 0]], dtype=np.int32)
    logits = model((source, target_in))
    assert logits.shape == (2, 3, VOCABULARY)
    # Padding the source further changes nothing: the encoder and attention mask it.
    alone = model((source[:1, :3], target_in[:1]))
    np.testing.assert_allclose(logits[:1], alone, atol=1e-5)
    longer = model((np.pad(source, ((0, 0), (0, 4))), target_in))
    np.testing.assert_allclose(logits, longer, atol=1e-5)


def test_gnmt_decoder_starts_from_each_encoder_layers_final_state_in_order():
    """The bidirectional layer's forward and backward states, hidden and cell alike, then
    each further layer's."""
    model = _tiny_gnmt(encoder_layers=2, decoder_layers=2)
    source = np.array([[5, 6, 7, 0], [8, 9, 10, 11]], np.int32)
    model((source, np.array([[21, 3], [21, 4]], np.int32)))
    _, _, states = model.encode(source)
    mask = source != 0
    x, forward_h, forward_c, backward_h, backward_c = model.encoder_bidirectional(
        model.source_embedding(source), mask=mask)
    np.testing.assert_allclose(states[0][0], np.concatenate([forward_h, backward_h], -1),
                               atol=1e-6)
    np.testing.assert_allclose(states[0][1], np.concatenate([forward_c, backward_c], -1),
                               atol=1e-6)
    _, h, c = model.encoder_stack[0](x, mask=mask)
    np.testing.assert_allclose(states[1][0], h, atol=1e-6)
    np.testing.assert_allclose(states[1][1], c, atol=1e-6)


@pytest.mark.parametrize("decoder_layers", [1, 2])
def test_gnmt_logits_depend_on_bahdanaus_attention(decoder_layers):
    """The logits read the attention, and it learns all of Bahdanau's score
    vᵀ tanh(W_q q + W_k k): v (Keras's `scale`) and the projections of the query and the
    keys (Keras's layer alone added the decoder's and the encoder's outputs as they were)."""
    model = _tiny_gnmt(encoder_layers=1, decoder_layers=decoder_layers)
    source, target_in = np.array([[5, 6, 7]], np.int32), np.array([[21, 3]], np.int32)
    with tf.GradientTape() as tape:
        logits = model((source, target_in))
    weights = [model.attention.scale, model.attention_query.kernel,
               model.attention_keys.kernel]
    for gradient in tape.gradient(logits, weights):
        assert gradient is not None and float(tf.reduce_sum(tf.abs(gradient))) > 0


def test_gnmt_decodes_alike_from_keys_projected_once():
    """A translator projects the attention's keys once per batch and passes them to every
    step: decoding from them is decoding from the encoder's outputs, and projects nothing
    again."""
    model = _tiny_gnmt(encoder_layers=2, decoder_layers=2)
    source, target_in = np.array([[5, 6, 7], [8, 9, 0]], np.int32), np.array([[21], [21]])
    memory, source_mask, states = model.encode(source)
    expected, _ = model.decode(target_in, states, memory, source_mask)
    keys = model.attention_keys(memory)
    with tf.GradientTape() as tape:
        tape.watch(keys)
        logits, _ = model.decode(target_in, states, memory, source_mask, keys=keys)
    np.testing.assert_allclose(logits, expected, atol=1e-6)
    by_keys, by_projection = tape.gradient(logits, [keys, model.attention_keys.kernel])
    assert float(tf.reduce_sum(tf.abs(by_keys))) > 0  # The keys given are the ones read,
    assert by_projection is None  # not projected from `memory` again.


def test_gnmt_residual_and_bidirectional_layers():
    model = _tiny_gnmt(encoder_layers=3, decoder_layers=2)
    model((np.ones((1, 4), np.int32), np.ones((1, 2), np.int32)))
    assert isinstance(model.encoder_bidirectional, keras.layers.Bidirectional)
    assert len(model.encoder_stack) == 2 and len(model.decoder_stack) == 2
    with pytest.raises(ValueError, match="units must be even"):
        gnmt.GNMT(10, 10, units=15)


@pytest.mark.parametrize("residual_from", [2, 3])
def test_gnmt_residual_connections_start_at_residual_from(residual_from):
    """The encoder's output, recomputed layer by layer: layer 2 (the first above the
    bidirectional one) has a residual connection only when `residual_from` is 2, as GNMT's
    start at layer 3."""
    model = _tiny_gnmt(encoder_layers=3, decoder_layers=3, residual_from=residual_from)
    source = np.array([[5, 6, 7, 8]], np.int32)
    model((source, np.array([[21, 3]], np.int32)))
    memory, _, _ = model.encode(source)
    x = model.encoder_bidirectional(model.source_embedding(source))[0]
    for number, layer in enumerate(model.encoder_stack, start=2):
        output = layer(x)[0]
        x = x + output if number >= residual_from else output
    np.testing.assert_allclose(memory, x, atol=1e-6)
    with pytest.raises(ValueError, match="residual_from must be at least 2"):
        gnmt.GNMT(10, 10, units=16, residual_from=1)


def test_beam_of_one_is_greedy_and_beam_scores_are_the_models_log_probs():
    model = _tiny_gnmt(dropout=0.0)
    translator = gnmt.Translator(model, start_id=21, end_id=22, max_length=7)
    source = np.array([[3, 4, 5, 6], [7, 8, 0, 0], [9, 10, 11, 0]], dtype=np.int32)
    greedy = translator.greedy(source)
    beam_one, _ = translator.beam_search(source, beam_size=1, length_penalty=0.0)
    np.testing.assert_array_equal(greedy, beam_one)
    for beam_size in (2, 4):
        output, scores = translator.beam_search(source, beam_size, length_penalty=0.0)
        assert output.shape[0] == 3 and output.shape[1] <= 7
        np.testing.assert_allclose(
            scores, translator.sequence_log_prob(source, output), rtol=1e-4, atol=1e-4)
        assert (scores <= 0).all()


class _ScriptedDecoder:
    """A decoder whose next-token probabilities depend on the last token only:
    `table[token]` is {next token: probability}; a token not in the table ends (id 2)."""

    def __init__(self, table, vocabulary=20):
        rows = [tf.one_hot(2, vocabulary)] * vocabulary
        for token, probabilities in table.items():
            rows[token] = sum(tf.one_hot(t, vocabulary) * p for t, p in probabilities.items())
        self.log_probs = tf.math.log(tf.stack(rows) + 1e-12)

    def encode(self, source_ids, training=False):
        del training
        zeros = tf.zeros((tf.shape(source_ids)[0], 1))
        return zeros[:, None, :], tf.ones((tf.shape(source_ids)[0], 1), tf.bool), [(zeros, zeros)]

    def attention_keys(self, memory):
        return memory

    def decode(self, target_ids, states, memory, source_mask, training=False, keys=None):
        del memory, source_mask, training, keys
        return tf.gather(self.log_probs, target_ids[:, -1])[:, None, :], states


def test_beam_search_finds_a_likelier_sequence_than_greedy_when_greedy_is_myopic():
    # A decoder whose first step prefers token 5 (p = 0.6) but whose best sentence starts
    # with 6 (0.4 * 1.0), since after 5 the probability spreads over 10 continuations.
    myopic = _ScriptedDecoder({1: {5: 0.6, 6: 0.4}, 5: {t: 0.1 for t in range(7, 17)}})
    translator = gnmt.Translator(myopic, start_id=1, end_id=2, max_length=4)
    source = np.ones((1, 1), np.int32)
    assert translator.greedy(source)[0, 0] == 5
    output, scores = translator.beam_search(source, beam_size=2, length_penalty=0.0)
    assert output[0, :2].tolist() == [6, 2]
    assert scores[0] == pytest.approx(math.log(0.4), abs=1e-5)


def test_beam_search_keeps_beams_by_length_normalised_score_as_gnmt_does():
    # From the start (1): 5 or the end (2). After 5 come 6 and 7 (0.49 each): with the
    # length penalty both outrank the finished [2], which raw log-probabilities keep
    # instead of 7. After 6 comes 8 (0.6) then the end, after 7 the end: [5, 7, 2] has
    # the best normalised score, but a search that kept beams by raw score had lost it.
    decoder = _ScriptedDecoder({1: {5: 0.6, 2: 0.3, 9: 0.1}, 5: {6: 0.49, 7: 0.49, 9: 0.02},
                                6: {8: 0.6, 2: 0.4}})
    translator = gnmt.Translator(decoder, start_id=1, end_id=2, max_length=5)
    output, scores = translator.beam_search(np.ones((1, 1), np.int32), 2, length_penalty=1.0)
    assert output[0].tolist()[:3] == [5, 7, 2]
    assert scores[0] == pytest.approx(math.log(0.6 * 0.49), abs=1e-5)


def test_beam_searchs_final_pick_is_length_normalised():
    # [2] (p 0.5, one token) or [5, 6, 2] (p 0.45, three): raw log-probabilities pick the
    # short one, GNMT's normalisation at α = 1 (-0.69 / 1 against -0.80 / (8/6)) the long.
    decoder = _ScriptedDecoder({1: {2: 0.5, 5: 0.5}, 5: {6: 0.9, 7: 0.1}})
    translator = gnmt.Translator(decoder, start_id=1, end_id=2, max_length=5)
    output, scores = translator.beam_search(np.ones((1, 1), np.int32), 2, length_penalty=1.0)
    assert output[0].tolist()[:3] == [5, 6, 2]
    assert scores[0] == pytest.approx(math.log(0.45), abs=1e-5)


def test_decoding_never_writes_padding_or_the_start_token():
    # Never a target, so their probabilities were never learnt; decoding dropped them.
    decoder = _ScriptedDecoder({1: {0: 0.4, 1: 0.35, 5: 0.25}})
    translator = gnmt.Translator(decoder, start_id=1, end_id=2, max_length=4)
    source = np.ones((1, 1), np.int32)
    assert translator.greedy(source)[0, :2].tolist() == [5, 2]
    output, scores = translator.beam_search(source, beam_size=3, length_penalty=0.0)
    assert output[0, :2].tolist() == [5, 2]
    assert scores[0] == pytest.approx(math.log(0.25), abs=1e-5)


def test_translations_may_be_twice_as_long_as_the_longest_source_by_default():
    never_ends = _ScriptedDecoder({token: {3: 1.0} for token in (1, 3)})
    translator = gnmt.Translator(never_ends, start_id=1, end_id=2)
    sources = np.array([[4, 4, 4, 0, 0], [4, 4, 4, 4, 4]], np.int32)
    assert translator.greedy(sources).shape == (2, 10)
    assert translator.beam_search(sources, 2)[0].shape == (2, 10)
    assert translator.greedy(sources[:1, :3]).shape == (1, 6)


def test_gnmt_memorises_a_handful_of_pairs():
    pairs = [("Ich bin müde.", "I am tired."), ("Das Haus ist alt.", "The house is old."),
             ("Wir essen Brot.", "We eat bread."),
             ("Der Hund bellt laut.", "The dog barks loudly."),
             ("Sie liest ein Buch.", "She reads a book."), ("Es regnet heute.", "It rains today.")]
    corpus = translation_data.ParallelCorpus("test", "de", "en", pairs, pairs[:2], pairs)

    def build(learning_rate, total_steps, **kwargs):
        del total_steps
        return keras.optimizers.Adam(learning_rate, **kwargs)

    result = gnmt.train_translator(
        corpus, build, 0.03, units=32, embedding_dim=16, dropout=0.0, label_smoothing=0.1,
        epochs=20, encoder_layers=1, decoder_layers=1, batch_size=6, vocabulary_size=64,
        verbose=0)
    perplexities = result.history["train_perplexity"]
    assert perplexities[-1] < perplexities[0] / 5
    assert result.test_bleu > 50  # Translating its own training sentences.
    assert result.examples[0][:2] == pairs[0]


_PAIRS = [("Ich bin müde.", "I am tired."), ("Das Haus ist alt.", "The house is old."),
          ("Wir essen Brot.", "We eat bread."), ("Der Hund bellt laut.", "The dog barks."),
          ("Sie liest ein Buch.", "She reads a book."), ("Es regnet heute.", "It rains today.")]
_OTHER_PAIRS = [("Der Baum ist grün.", "The tree is green."), ("Ich esse Brot.", "I eat bread.")]


def _word_tokenizers(pairs):
    return tuple(translation_data.WordTokenizer(64).adapt(list(side)) for side in zip(*pairs))


def _translate_at_rate_0(train, test, tokenizers, **kwargs):
    """An epoch of a tiny GNMT at learning rate 0, validated on the first two training
    pairs: its weights never move, so what it reports is its initial weights'."""
    corpus = translation_data.ParallelCorpus("test", "de", "en", train, train[:2], test)
    return gnmt.train_translator(
        corpus, lambda rate, steps, **options: keras.optimizers.SGD(rate, **options), 0.0,
        units=8, embedding_dim=4, dropout=0.0, encoder_layers=1, decoder_layers=1, epochs=1,
        tokenizers=tokenizers, verbose=0, evaluate_test=False, **kwargs)


def test_gnmt_perplexities_are_unsmoothed_on_the_validation_split_and_smoothing_trains(
        monkeypatch):
    """A second run with label smoothing and another test split: its compiled loss is
    smoothed, its perplexities are the first run's."""
    losses, compile_ = [], keras.Model.compile

    def compile_and_record(self, *args, **kwargs):
        losses.append(kwargs["loss"])
        return compile_(self, *args, **kwargs)

    monkeypatch.setattr(keras.Model, "compile", compile_and_record)
    tokenizers = _word_tokenizers(_PAIRS + _OTHER_PAIRS)
    plain = _translate_at_rate_0(_PAIRS, _PAIRS[2:4], tokenizers, batch_size=3,
                                 label_smoothing=0.0)
    smoothed = _translate_at_rate_0(_PAIRS, _OTHER_PAIRS, tokenizers, batch_size=3,
                                    label_smoothing=0.5)
    assert [loss.label_smoothing for loss in losses] == [0.0, 0.5]
    assert smoothed.train_perplexity == pytest.approx(plain.train_perplexity, rel=1e-6)
    assert smoothed.validation_perplexity == pytest.approx(plain.validation_perplexity, rel=1e-6)


def test_gnmt_seed_sets_the_initial_weights_and_the_shuffle(monkeypatch):
    """At rate 0 the perplexity is the initial weights'."""
    shuffles, make = [], gnmt.teacher_forcing_dataset

    def recording(*args):
        shuffles.append(args[3])
        return make(*args)

    monkeypatch.setattr(gnmt, "teacher_forcing_dataset", recording)
    pairs = _PAIRS[:4]
    tokenizers = _word_tokenizers(pairs)
    first, again, other = (_translate_at_rate_0(pairs, pairs, tokenizers, batch_size=2, seed=seed)
                           for seed in (0, 0, 5))
    assert first.validation_perplexity == again.validation_perplexity
    assert first.validation_perplexity != other.validation_perplexity
    assert shuffles == [0, None, 0, None, 5, None]  # Training shuffled by the seed.


def test_masked_cross_entropy_is_keras_sparse_loss_without_smoothing_and_ignores_padding():
    rng = np.random.default_rng(0)
    logits = tf.constant(rng.normal(size=(3, 5, 7)), tf.float32)
    targets = tf.constant([[4, 2, 6, 0, 0], [1, 1, 0, 0, 0], [5, 3, 2, 6, 2]], tf.int32)
    keras_loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=0)
    assert float(gnmt.MaskedCrossEntropy()(targets, logits)) == pytest.approx(
        float(keras_loss(targets, logits)), rel=1e-5)
    # A longer padding tail changes nothing.
    padded_logits = tf.concat([logits, tf.constant(rng.normal(size=(3, 4, 7)), tf.float32)], 1)
    padded_targets = tf.pad(targets, [[0, 0], [0, 4]])
    assert float(gnmt.MaskedCrossEntropy(0.1)(padded_targets, padded_logits)) == pytest.approx(
        float(gnmt.MaskedCrossEntropy(0.1)(targets, logits)), rel=1e-5)


def test_label_smoothing_penalises_a_confident_correct_prediction():
    targets = tf.constant([[3, 0]], tf.int32)
    confident = tf.constant([[[0.0, 0.0, 0.0, 20.0], [0.0, 0.0, 0.0, 0.0]]], tf.float32)
    assert float(gnmt.MaskedCrossEntropy(0.0)(targets, confident)) < 1e-6
    # Smoothed targets put 0.1 / 4 on each class: predicting 1.0 for one costs ~0.075 * 20.
    assert float(gnmt.MaskedCrossEntropy(0.1)(targets, confident)) == pytest.approx(1.5, rel=1e-3)
    with pytest.raises(ValueError, match="label_smoothing"):
        gnmt.MaskedCrossEntropy(1.0)


def test_token_cross_entropy_weights_every_real_token_alike_across_batches():
    rng = np.random.default_rng(1)
    metric = gnmt.TokenCrossEntropy()
    batches = [(tf.constant([[2, 3, 0, 0]]), tf.constant(rng.normal(size=(1, 4, 5)), tf.float32)),
               (tf.constant([[1, 4, 2, 3], [2, 0, 0, 0]]),
                tf.constant(rng.normal(size=(2, 4, 5)), tf.float32))]
    per_token = []
    for targets, logits in batches:
        metric.update_state(targets, logits)
        log_probs = tf.nn.log_softmax(logits).numpy()
        per_token += [-log_probs[b, t, k] for (b, t), k in np.ndenumerate(targets.numpy()) if k]
    assert len(per_token) == 7
    assert float(metric.result()) == pytest.approx(np.mean(per_token), rel=1e-5)


def test_teacher_forcing_batches_shift_the_target():
    source = [np.array([3, 4], np.int32), np.array([5, 6, 7], np.int32)]
    target = [np.array([1, 8, 9, 2], np.int32), np.array([1, 10, 2], np.int32)]
    (source_batch, target_in), target_out = next(iter(
        gnmt.teacher_forcing_dataset(source, target, batch_size=2)))
    assert source_batch.numpy().tolist() == [[3, 4, 0], [5, 6, 7]]
    assert target_in.numpy().tolist() == [[1, 8, 9], [1, 10, 2]]
    assert target_out.numpy().tolist() == [[8, 9, 2], [10, 2, 0]]


def test_length_penalty_is_gnmts():
    assert gnmt.gnmt_length_penalty(7, 0.6) == pytest.approx((12 / 6) ** 0.6)
    assert gnmt.gnmt_length_penalty(7, 0.0) == 1.0


# ------------------------------------------------------------------------- Rosenbrock ---


def test_rosenbrock_minimum_and_start():
    assert rosenbrock.rosenbrock(np.array(rosenbrock.MINIMUM)) == 0.0
    assert rosenbrock.rosenbrock(np.array(rosenbrock.START)) == pytest.approx(24.2)


def test_descent_drives_keras_and_rule_optimizers():
    for optimizer in (keras.optimizers.Adam(0.02), nos_tf.PowerSign(1e-3),
                      nos_tf.RuleOptimizer("drop(g, 0.1) * exp(sign(g) * sign(m))", 1e-3)):
        descent = rosenbrock.descend(optimizer, steps=300)
        assert descent.trajectory.shape == (301, 2)
        np.testing.assert_allclose(descent.trajectory[0], rosenbrock.START, rtol=1e-6)
        values = [rosenbrock.rosenbrock(point) for point in descent.trajectory]
        assert values[-1] < values[0] / 2
        assert optimizer.iterations.numpy() == 300


def test_the_translators_of_many_optimizers_log_no_retracing_warning(caplog):
    """A transfer run decodes with one translator per optimizer; from the fifth,
    TensorFlow logged "excessive" retracing of their encoding and decoding steps."""
    with caplog.at_level("WARNING", logger="tensorflow"):
        for seed in range(6):
            keras.utils.set_random_seed(seed)
            model = gnmt.GNMT(9, 9, units=8, embedding_dim=4)
            translator = gnmt.Translator(model, start_id=7, end_id=8, max_length=3)
            ids, _ = translator.beam_search(np.ones((4, 5), np.int32), 4, 0.6)
            assert len(ids) == 4
    assert not [record for record in caplog.records if "retracing" in record.getMessage()]


def test_descents_of_many_optimizers_log_no_retracing_warning(caplog):
    """A transfer run compiles one loop per optimizer; from the fifth, TensorFlow logged
    "triggered tf.function retracing ... define your @tf.function outside of the loop"."""
    with caplog.at_level("WARNING", logger="tensorflow"):
        for rate in (1e-4, 2e-4, 3e-4, 4e-4, 5e-4, 6e-4):
            rosenbrock.descend(keras.optimizers.SGD(rate), steps=2)
    assert not [record for record in caplog.records if "retracing" in record.getMessage()]


def test_steps_to_tolerance_counts_until_it_stays():
    descent = rosenbrock.descend(keras.optimizers.SGD(1e-3, momentum=0.9), steps=3000,
                                 tolerance=1e-2)
    reached = descent.steps_to_tolerance
    assert reached is not None
    assert (descent.distances[reached:] <= 1e-2).all()
    assert descent.distances[reached - 1] > 1e-2
    stuck = rosenbrock.descend(keras.optimizers.SGD(1e-5), steps=10)
    assert stuck.steps_to_tolerance is None


def test_steps_to_tolerance_may_be_the_last_step():
    distances = rosenbrock.descend(keras.optimizers.SGD(1e-3), steps=10).distances
    last = max(k for k in range(1, len(distances)) if distances[k] < distances[:k].min())
    again = rosenbrock.descend(keras.optimizers.SGD(1e-3), steps=last,
                               tolerance=float(distances[last]))
    assert again.steps_to_tolerance == last


def test_trajectory_plot_rings_where_each_run_ended_even_under_another(tmp_path):
    along = np.linspace(rosenbrock.START, rosenbrock.MINIMUM, 11)
    short = rosenbrock.Descent(along[:6], None, 1e-3)  # Hidden under `full`'s path...
    full = rosenbrock.Descent(along, 10, 1e-3)
    diverged = rosenbrock.Descent(np.concatenate([along[:3], [[np.inf, np.nan]]]), None, 1e-3)
    descents = {"short": short, "full": full, "diverged": diverged}
    lines = rosenbrock.trajectories_figure(descents).axes[0].lines
    for label, end in (("short", along[5]), ("full", along[10]), ("diverged", along[2])):
        path = next(line for line in lines if line.get_label() == label)
        rings = [line for line in lines if line.get_marker() == "o"
                 and line.get_color() == path.get_color()]
        assert len(rings) == 1  # ... but its end is still marked.
        np.testing.assert_allclose(np.ravel(rings[0].get_xydata()), end)
    rosenbrock.plot_trajectories(descents, str(tmp_path / "paths.png"))
    assert (tmp_path / "paths.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_trajectory_plot_frames_the_valley_when_a_run_diverges():
    """A diverging run's last finite points (here up to 1e30) do not set the window: it
    still frames the start, the minimum and the runs that stayed near them."""
    along = np.linspace(rosenbrock.START, rosenbrock.MINIMUM, 11)
    exploding = [[4.7, 3.4], [-924.0, 103.0], [8.6e9, 4.6e6], [-6.9e30, 4.0e20]]
    diverged = rosenbrock.Descent(
        np.concatenate([along[:1], exploding, [[np.inf, np.nan]] * 3]), None, 1e-3)
    axes = rosenbrock.trajectories_figure(
        {"converged": rosenbrock.Descent(along, 10, 1e-3), "diverged": diverged}).axes[0]
    (x_low, x_high), (y_low, y_high) = axes.get_xlim(), axes.get_ylim()
    assert -5 < x_low < -1.2 and 1 < x_high < 5, (x_low, x_high)
    assert -5 < y_low < 1 and 1 < y_high < 6, (y_low, y_high)
