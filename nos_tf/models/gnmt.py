"""GNMT-lite: Google's neural machine translator (Wu et al., 2016) in its shape, at small size.

What is kept from GNMT: an LSTM encoder whose first layer is bidirectional and whose
upper layers are unidirectional; a decoder LSTM stack whose bottom layer's output queries
an additive (Bahdanau) attention over the encoder, with the attention context fed as
input to every decoder layer above it; residual connections around the upper layers of
both stacks; the decoder starting from the encoder's final states; greedy or beam
decoding with GNMT's length penalty; a word-piece vocabulary per language (or whole
words, `tokenizer="word"`). What is not: a vocabulary shared by both languages, model
parallelism, coverage penalty, quantisation. Depth and width are arguments (GNMT used
8 + 8 layers of 1024 units; flags/transfer_gnmt_cpu.cfg uses 2 + 2 of 128).

GNMT starts its residual connections at the third layer of each 8-layer stack; this lite
version starts them at the second by default (`residual_from`), so that a two-layer stack
has one; flags/transfer_gnmt_paper.cfg starts them at the third.

`train_translator` is the experiment's protocol: teacher-forced training with masked
cross-entropy, gradient clipping (GNMT clips the global norm at 5), per-epoch train and
validation perplexity, then test BLEU by decoding.
"""

import dataclasses
import functools
import math
import time
from collections.abc import Callable

import keras
import numpy as np
import tensorflow as tf

from nos_tf import translation_data

PAD_ID = 0

OptimizerFactory = Callable[..., keras.optimizers.Optimizer]
"""build(learning_rate, total_steps, **keras_optimizer_kwargs) -> a fresh optimizer."""

_LENGTH_BUCKETS = (8, 12, 16, 24, 32)  # Batches group sentences of similar length.


def gnmt_length_penalty(length, alpha: float):
    """GNMT's length normalisation ((5 + |Y|) / 6)^alpha; alpha = 0 disables it."""
    return ((5.0 + length) / 6.0) ** alpha


class GNMT(keras.Model):
    """An encoder-decoder LSTM translator with attention. Called on (source, target_in) ids,
    both right-padded with 0, it returns next-token logits [batch, target_length, vocab]."""

    def __init__(
        self,
        source_vocabulary_size: int,
        target_vocabulary_size: int,
        *,
        units: int = 256,
        embedding_dim: int | None = None,
        encoder_layers: int = 2,
        decoder_layers: int = 2,
        dropout: float = 0.0,
        pass_encoder_state: bool = True,
        residual_from: int = 2,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if units % 2:
            raise ValueError(f"units must be even (the bidirectional layer halves it), got {units}")
        if encoder_layers < 1 or decoder_layers < 1:
            raise ValueError(
                f"need at least one encoder and one decoder layer, got {encoder_layers} "
                f"and {decoder_layers}"
            )
        if residual_from < 2:  # The bottom layers' inputs are embeddings, not `units` wide.
            raise ValueError(f"residual_from must be at least 2 (the first layer with a "
                             f"residual connection, from 1 at the bottom), got {residual_from}")
        self.residual_from = residual_from
        embedding_dim = embedding_dim or units
        self.units = units
        self.pass_encoder_state = pass_encoder_state
        self.source_embedding = keras.layers.Embedding(source_vocabulary_size, embedding_dim)
        self.target_embedding = keras.layers.Embedding(target_vocabulary_size, embedding_dim)
        self.encoder_bidirectional = keras.layers.Bidirectional(
            keras.layers.LSTM(units // 2, return_sequences=True, return_state=True),
            merge_mode="concat",
        )
        self.encoder_stack = [
            keras.layers.LSTM(units, return_sequences=True, return_state=True)
            for _ in range(encoder_layers - 1)
        ]
        self.decoder_stack = [
            keras.layers.LSTM(units, return_sequences=True, return_state=True)
            for _ in range(decoder_layers)
        ]
        # Bahdanau's score vᵀ tanh(W_q q + W_k k): Keras's layer is the vᵀ tanh(q + k)
        # part, so the query and the keys are projected first (without it, the decoder's
        # output and the encoder's would be added as they are). The values stay the
        # encoder's outputs, as in Bahdanau et al. and tf/nmt.
        self.attention_query = keras.layers.Dense(units, use_bias=False)
        self.attention_keys = keras.layers.Dense(units, use_bias=False)
        self.attention = keras.layers.AdditiveAttention()
        self.dropout = keras.layers.Dropout(dropout)
        self.output_projection = keras.layers.Dense(target_vocabulary_size)

    def call(self, inputs, training=False):
        source_ids, target_in_ids = inputs
        memory, source_mask, states = self.encode(source_ids, training=training)
        logits, _ = self.decode(target_in_ids, states, memory, source_mask, training=training)
        return logits

    def encode(self, source_ids, training=False):
        """Source ids [B, S] -> (encoder outputs [B, S, units], source mask [B, S],
        the decoder's initial (h, c) per layer).

        As in GNMT (and tf/nmt's `pass_hidden_state`), decoder layer i starts from the
        final state of encoder layer i (the bidirectional layer's forward and backward
        states side by side); decoder layers above the encoder's depth, or all of them
        with `pass_encoder_state=False`, start from zeros.
        """
        mask = keras.ops.not_equal(source_ids, PAD_ID)
        x = self.dropout(self.source_embedding(source_ids), training=training)
        x, forward_h, forward_c, backward_h, backward_c = self.encoder_bidirectional(
            x, mask=mask, training=training
        )
        final_states = [(keras.ops.concatenate([forward_h, backward_h], axis=-1),
                         keras.ops.concatenate([forward_c, backward_c], axis=-1))]
        for number, layer in enumerate(self.encoder_stack, start=2):
            output, h, c = layer(x, mask=mask, training=training)
            x = self._residual(number, x, self.dropout(output, training=training))
            final_states.append((h, c))
        zeros = keras.ops.zeros_like(final_states[0][0])
        if not self.pass_encoder_state:
            final_states = []
        states = [
            final_states[i] if i < len(final_states) else (zeros, zeros)
            for i in range(len(self.decoder_stack))
        ]
        return x, mask, states

    def decode(self, target_ids, states, memory, source_mask, training=False, keys=None):
        """Runs the decoder over target ids [B, T] from `states`; returns (logits, states).

        Called with the whole shifted target while training and with one token at a time
        while translating: the same layers and weights either way. `keys`, the attention's
        projection of `memory` (`attention_keys(memory)`), is computed here unless given:
        a translator computes it once per batch, not at every step. A one-layer decoder has
        no layer above the bottom to take the attention context, so its output projection
        takes it beside the LSTM's output (as Luong et al. 2015 do); otherwise attention
        would be computed and ignored.
        """
        x = self.dropout(self.target_embedding(target_ids), training=training)
        bottom, *upper = self.decoder_stack
        x, h, c = bottom(x, initial_state=list(states[0]), training=training)
        new_states = [(h, c)]
        context = self.attention(
            [self.attention_query(x), memory,
             self.attention_keys(memory) if keys is None else keys],
            mask=[None, source_mask], training=training,
        )
        for number, (layer, state) in enumerate(zip(upper, states[1:]), start=2):
            output, h, c = layer(
                keras.ops.concatenate([x, context], axis=-1), initial_state=list(state),
                training=training,
            )
            x = self._residual(number, x, self.dropout(output, training=training))
            new_states.append((h, c))
        if not upper:  # No layer above the bottom to feed the context to: the output reads it.
            x = keras.ops.concatenate([x, context], axis=-1)
        return self.output_projection(x), new_states

    def _residual(self, number, below, output):
        """Layer `number`'s (1 at the bottom) output, with the residual connection around
        it from `residual_from` up."""
        return below + output if number >= self.residual_from else output


# ---------------------------------------------------------------------- decoding ---


class Translator:
    """Greedy and beam decoding for a trained `GNMT`, one compiled step at a time.

    A translation stops at the end token or after `max_length` tokens; by default, as
    tf/nmt's `decoding_length_factor`, after twice the longest source in the batch: a
    fixed cap cut long sentences short (and made beam search prefer short beams).
    """

    def __init__(self, model: GNMT, start_id: int, end_id: int, max_length: int | None = None,
                 length_factor: float = 2.0):
        self.model = model
        self.start_id = start_id
        self.end_id = end_id
        self.max_length = max_length
        self.length_factor = length_factor
        # As partials, not bound methods: TensorFlow counts traces per function *code*,
        # and the translators of a transfer run (one per optimizer) logged "excessive
        # retracing" from the fifth, as if one function were traced again and again.
        self._encode = tf.function(functools.partial(Translator._attended_and_states, self),
                                   reduce_retracing=True)
        self._step = tf.function(functools.partial(Translator._log_probs_step, self),
                                 reduce_retracing=True)

    def _attended_and_states(self, source_ids):
        """What every decoding step attends to, (encoder outputs, their projection as the
        attention's keys, source mask), made once per batch; and the decoder's first
        states."""
        memory, source_mask, states = self.model.encode(source_ids)
        return (memory, self.model.attention_keys(memory), source_mask), states

    def _log_probs_step(self, token_ids, states, attended):
        memory, keys, source_mask = attended
        logits, states = self.model.decode(token_ids[:, None], states, memory, source_mask,
                                           keys=keys)
        return tf.nn.log_softmax(logits[:, 0, :]), states

    def _next_token_log_probs(self, tokens, states, attended):
        """Log-probabilities of the next token ([rows, vocabulary], numpy), and the new
        states. Padding and the start token are never a target, so the model never learnt
        their probability: they are ruled out (decoding dropped them, unsaid)."""
        log_probs, states = self._step(tf.constant(tokens), states, attended)
        log_probs = log_probs.numpy()
        log_probs[:, [PAD_ID, self.start_id]] = -np.inf
        return log_probs, states

    def steps_for(self, source_ids: np.ndarray) -> int:
        """The most tokens a translation of this batch may have."""
        if self.max_length is not None:
            return self.max_length
        longest = int(np.max(np.sum(np.asarray(source_ids) != PAD_ID, axis=1), initial=0))
        return max(1, round(self.length_factor * longest))

    def greedy(self, source_ids: np.ndarray) -> np.ndarray:
        """The most likely next token at each step: ids [B, <= steps] (0 after the end)."""
        attended, states = self._encode(tf.constant(source_ids))
        tokens = np.full(len(source_ids), self.start_id, dtype=np.int32)
        finished = np.zeros(len(source_ids), dtype=bool)
        output = []
        for _ in range(self.steps_for(source_ids)):
            log_probs, states = self._next_token_log_probs(tokens, states, attended)
            tokens = np.argmax(log_probs, axis=-1).astype(np.int32)
            output.append(np.where(finished, PAD_ID, tokens))
            finished |= tokens == self.end_id
            if finished.all():
                break
        return np.stack(output, axis=1)

    def beam_search(
        self, source_ids: np.ndarray, beam_size: int = 4, length_penalty: float = 0.6
    ) -> tuple[np.ndarray, np.ndarray]:
        """Beam search: (ids [B, <= steps], log-probabilities [B]) of the best beam.

        As in GNMT's beam search, beams are ranked by summed log-probability divided by
        GNMT's length penalty (the end token counted in the length), both when the best
        `beam_size` continuations are kept at each step and for the final pick. A finished
        beam carries on at no cost, padding, its length unchanged, so finished and
        unfinished beams compete on equal terms.
        """
        if beam_size < 1:
            raise ValueError(f"beam_size must be at least 1, got {beam_size}")
        batch = len(source_ids)
        attended, states = self._encode(tf.constant(source_ids))
        flat = np.repeat(np.arange(batch), beam_size)  # Row b * beam_size + k is beam k of b.
        attended = tuple(tf.gather(tensor, flat) for tensor in attended)
        states = [(tf.gather(h, flat), tf.gather(c, flat)) for h, c in states]
        scores = np.full((batch, beam_size), -np.inf)
        scores[:, 0] = 0.0  # All beams start identical: keep one so they do not repeat.
        tokens = np.full(batch * beam_size, self.start_id, dtype=np.int32)
        finished = np.zeros((batch, beam_size), dtype=bool)
        lengths = np.zeros((batch, beam_size), dtype=np.int32)
        history = []  # (parent beam, token) per step, each [B, K].
        for _ in range(self.steps_for(source_ids)):
            log_probs, states = self._next_token_log_probs(tokens, states, attended)
            log_probs = log_probs.reshape(batch, beam_size, -1)
            vocabulary = log_probs.shape[-1]
            log_probs[finished] = -np.inf
            log_probs[finished, PAD_ID] = 0.0
            candidates = scores[..., None] + log_probs  # [B, K, V]
            next_lengths = lengths + ~finished  # A beam's continuations share its length.
            ranked = candidates / gnmt_length_penalty(next_lengths, length_penalty)[..., None]
            best = tf.math.top_k(ranked.reshape(batch, -1), k=beam_size).indices.numpy()
            scores = np.take_along_axis(candidates.reshape(batch, -1), best, axis=1)
            parents, tokens_2d = best // vocabulary, (best % vocabulary).astype(np.int32)
            lengths = np.take_along_axis(next_lengths, parents, axis=1)
            was_finished = np.take_along_axis(finished, parents, axis=1)
            finished = was_finished | (tokens_2d == self.end_id)
            history.append((parents, tokens_2d))
            rows = (np.arange(batch)[:, None] * beam_size + parents).reshape(-1)
            states = [(tf.gather(h, rows), tf.gather(c, rows)) for h, c in states]
            tokens = tokens_2d.reshape(-1)
            if finished.all():
                break
        ranked = scores / gnmt_length_penalty(lengths, length_penalty)
        has_finished = finished.any(axis=1, keepdims=True)  # Then prefer finished beams.
        beam = np.argmax(np.where(finished | ~has_finished, ranked, -np.inf), axis=1)
        best_scores = scores[np.arange(batch), beam]
        output = np.zeros((batch, len(history)), dtype=np.int32)
        for step in reversed(range(len(history))):
            parents, tokens_2d = history[step]
            output[:, step] = tokens_2d[np.arange(batch), beam]
            beam = parents[np.arange(batch), beam]
        return output, best_scores

    def sequence_log_prob(self, source_ids: np.ndarray, output_ids: np.ndarray) -> np.ndarray:
        """Teacher-forced log-probability of each output (ids up to and including the end)."""
        output_ids = np.asarray(output_ids)
        target_in = np.concatenate(
            [np.full((len(output_ids), 1), self.start_id, dtype=np.int32), output_ids[:, :-1]],
            axis=1,
        )
        log_probs = tf.nn.log_softmax(self.model((source_ids, target_in))).numpy()
        picked = np.take_along_axis(log_probs, output_ids[..., None], axis=-1)[..., 0]
        return np.where(output_ids != PAD_ID, picked, 0.0).sum(axis=1)


# ------------------------------------------------------------------------ training ---


def _real_tokens(target_ids, dtype):
    """1.0 where a target id is a token, 0.0 where it is padding."""
    return keras.ops.cast(keras.ops.not_equal(target_ids, PAD_ID), dtype)


class MaskedCrossEntropy(keras.losses.Loss):
    """Mean cross-entropy of next-token logits over the target tokens that are not padding,
    against targets smoothed by `label_smoothing` (Szegedy et al. 2016).

    Keras's `SparseCategoricalCrossentropy(ignore_class=...)` has no label smoothing, and
    `CategoricalCrossentropy` has no padding mask; this is the second with the first's
    mask. Padding positions are zeroed and the rest scaled by all / unmasked, so the
    "sum_over_batch_size" reduction averages over real tokens only, as Keras's own masked
    losses do.

    A mean over tokens, where tf/nmt's loss (`_compute_loss`) sums over a sentence's
    tokens and averages over sentences: its gradients are ours times the mean target
    length in tokens (on the CPU preset's test set 9.0 in whole words with `</s>`, more in
    word pieces). So GNMT's SGD rate of 1.0 and gradient-norm clip of 5 are, on this
    scale, a rate about ten times larger and a clip about ten times smaller; the presets'
    rates were measured here, not taken from GNMT's recipe.
    """

    def __init__(self, label_smoothing: float = 0.0, name: str = "masked_cross_entropy",
                 **kwargs):
        super().__init__(name=name, **kwargs)
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1), got {label_smoothing}")
        self.label_smoothing = label_smoothing

    def call(self, y_true, y_pred):
        y_true = keras.ops.cast(y_true, "int32")
        per_token = keras.losses.categorical_crossentropy(
            keras.ops.one_hot(y_true, keras.ops.shape(y_pred)[-1], dtype=y_pred.dtype),
            y_pred, from_logits=True, label_smoothing=self.label_smoothing)
        mask = _real_tokens(y_true, per_token.dtype)
        scale = keras.ops.cast(keras.ops.size(mask), mask.dtype) / keras.ops.maximum(
            keras.ops.sum(mask), 1.0)
        return per_token * mask * scale

    def get_config(self):
        return {**super().get_config(), "label_smoothing": self.label_smoothing}


class TokenCrossEntropy(keras.metrics.Metric):
    """Cross-entropy per target token (padding excluded), over all tokens seen: the log of
    the perplexity GNMT reports. Unsmoothed, so that it stays the perplexity whatever the
    training loss's label smoothing."""

    def __init__(self, name: str = "token_cross_entropy", **kwargs):
        super().__init__(name=name, **kwargs)
        self.total = self.add_variable(shape=(), initializer="zeros", name="total")
        self.tokens = self.add_variable(shape=(), initializer="zeros", name="tokens")

    def update_state(self, y_true, y_pred, sample_weight=None):
        del sample_weight  # Padding is the only weighting.
        y_true = keras.ops.cast(y_true, "int32")
        per_token = keras.losses.sparse_categorical_crossentropy(y_true, y_pred, from_logits=True)
        mask = _real_tokens(y_true, per_token.dtype)
        self.total.assign_add(keras.ops.sum(per_token * mask))
        self.tokens.assign_add(keras.ops.sum(mask))

    def result(self):
        return self.total / keras.ops.maximum(self.tokens, 1.0)


def pad(rows: list[np.ndarray]) -> np.ndarray:
    """Right-pads id arrays with PAD_ID into one [len(rows), longest] int32 array."""
    return keras.utils.pad_sequences(rows, padding="post", value=PAD_ID, dtype="int32")


def teacher_forcing_dataset(
    source_ids: list[np.ndarray],
    target_ids: list[np.ndarray],
    batch_size: int,
    shuffle_seed: int | None = None,
) -> tf.data.Dataset:
    """((source, target[:-1]), target[1:]) batches, bucketed by length to save padding.

    `target_ids` carry start and end ids. The order is fixed by `shuffle_seed` (None:
    as given), so every optimizer sees the same batches.
    """
    def generate():
        for source, target in zip(source_ids, target_ids):
            yield source, target

    dataset = tf.data.Dataset.from_generator(
        generate,
        output_signature=(
            tf.TensorSpec([None], tf.int32),
            tf.TensorSpec([None], tf.int32),
        ),
    ).cache()
    if shuffle_seed is not None:
        dataset = dataset.shuffle(len(source_ids), seed=shuffle_seed)
    dataset = dataset.bucket_by_sequence_length(
        lambda source, target: tf.maximum(tf.shape(source)[0], tf.shape(target)[0]),
        bucket_boundaries=list(_LENGTH_BUCKETS),
        bucket_batch_sizes=[batch_size] * (len(_LENGTH_BUCKETS) + 1),
    )
    dataset = dataset.map(lambda source, target: ((source, target[:, :-1]), target[:, 1:]))
    batches = sum(1 for _ in dataset)  # Bucketing makes it data-dependent; Keras wants it.
    dataset = dataset.apply(tf.data.experimental.assert_cardinality(batches))
    return dataset.prefetch(tf.data.AUTOTUNE)


@dataclasses.dataclass
class TranslationResult:
    """What one training run measured; perplexities are exp(mean token cross-entropy)."""

    # The last epoch's, as GNMT and tf/nmt report it: the mean over its batches, with
    # dropout on and the weights still moving (above the trained model's own).
    train_perplexity: float
    validation_perplexity: float
    diverged: bool  # Ended far worse than a uniform guess: see `_diverged`.
    test_bleu: float
    history: dict[str, list[float]]  # Per epoch: train_perplexity, validation_perplexity.
    examples: list[tuple[str, str, str]]  # (source, reference, translation), a few.
    train_seconds: float
    decode_seconds: float


def learn_tokenizers(
    corpus: translation_data.ParallelCorpus, tokenizer: str = "wordpiece",
    vocabulary_size: int = 8000,
) -> tuple[translation_data.Tokenizer, translation_data.Tokenizer]:
    """(source, target) tokenizers of kind `tokenizer`, each of `vocabulary_size` ids,
    learned from the corpus's training split."""
    if tokenizer not in translation_data.TOKENIZERS:
        raise ValueError(f"unknown tokenizer {tokenizer!r}; choose one of "
                         f"{sorted(translation_data.TOKENIZERS)}")
    make_tokenizer = translation_data.TOKENIZERS[tokenizer]
    return (make_tokenizer(vocabulary_size).adapt([source for source, _ in corpus.train]),
            make_tokenizer(vocabulary_size).adapt([target for _, target in corpus.train]))


def train_translator(
    corpus: translation_data.ParallelCorpus,
    build_optimizer: OptimizerFactory,
    learning_rate: float,
    *,
    units: int = 256,
    embedding_dim: int | None = None,
    encoder_layers: int = 2,
    decoder_layers: int = 2,
    residual_from: int = 2,
    dropout: float = 0.2,
    label_smoothing: float = 0.0,
    clip_norm: float | None = 5.0,
    vocabulary_size: int = 8000,
    tokenizer: str = "wordpiece",
    epochs: int = 5,
    batch_size: int = 64,
    beam_size: int = 1,
    length_penalty: float = 0.6,
    seed: int = 0,
    verbose: int | str = "auto",
    evaluate_test: bool = True,
    tokenizers: tuple[translation_data.Tokenizer, translation_data.Tokenizer] | None = None,
) -> TranslationResult:
    """Trains GNMT-lite on `corpus` with `build_optimizer(learning_rate, total_steps, ...)`.

    The optimizer is asked to clip the global gradient norm at `clip_norm` (None: not at
    all), as GNMT does.
    The loss is the token cross-entropy against targets smoothed by `label_smoothing`;
    the perplexities reported are of the unsmoothed cross-entropy.
    Each language gets its own `tokenizer` ("wordpiece" or "word",
    `translation_data.TOKENIZERS`) of `vocabulary_size` ids, learned from the training
    split, unless `tokenizers` gives them (`learn_tokenizers`: learned once, they serve
    every optimizer of an experiment).

    Test BLEU is of greedy (beam_size=1) or beam-search translations of the test split.
    `evaluate_test=False` skips decoding (a learning-rate sweep needs only perplexities);
    its result has test_bleu = nan.
    """
    keras.utils.set_random_seed(seed)
    source_tokenizer, target_tokenizer = tokenizers or learn_tokenizers(
        corpus, tokenizer, vocabulary_size)

    def dataset(pairs, shuffle_seed=None):
        sources, targets = zip(*pairs)
        return teacher_forcing_dataset(
            source_tokenizer.encode(list(sources)),
            target_tokenizer.encode(list(targets), add_start_end=True),
            batch_size,
            shuffle_seed,
        )

    train, validation = dataset(corpus.train, shuffle_seed=seed), dataset(corpus.validation)
    steps_per_epoch = int(train.cardinality())
    model = GNMT(
        source_tokenizer.vocabulary_size,
        target_tokenizer.vocabulary_size,
        units=units,
        embedding_dim=embedding_dim,
        encoder_layers=encoder_layers,
        decoder_layers=decoder_layers,
        residual_from=residual_from,
        dropout=dropout,
    )
    model.compile(
        optimizer=build_optimizer(
            learning_rate, steps_per_epoch * epochs, global_clipnorm=clip_norm
        ),
        loss=MaskedCrossEntropy(label_smoothing),
        metrics=[TokenCrossEntropy()],
        jit_compile=False,
    )
    started = time.perf_counter()
    history = model.fit(
        train, validation_data=validation, epochs=epochs, shuffle=False, verbose=verbose
    )
    train_seconds = time.perf_counter() - started
    curves = {
        "train_perplexity": [
            _perplexity(loss) for loss in history.history["token_cross_entropy"]],
        "validation_perplexity": [
            _perplexity(loss) for loss in history.history["val_token_cross_entropy"]],
    }
    started = time.perf_counter()
    bleu, examples = math.nan, []
    if evaluate_test:
        translator = Translator(model, target_tokenizer.start_id, target_tokenizer.end_id)
        bleu, examples = _test_bleu(corpus.test, source_tokenizer, target_tokenizer,
                                    translator, batch_size, beam_size, length_penalty)
    return TranslationResult(
        train_perplexity=curves["train_perplexity"][-1],
        validation_perplexity=curves["validation_perplexity"][-1],
        diverged=_diverged(curves["validation_perplexity"][-1],
                           target_tokenizer.vocabulary_size),
        test_bleu=bleu,
        history=curves,
        examples=examples,
        train_seconds=train_seconds,
        decode_seconds=time.perf_counter() - started,
    )


def _perplexity(loss):
    """exp(loss); inf past a float's range, and for nan. The cap at exp(700) it replaces
    printed a diverged run's perplexity in 305 digits, the same for every loss above 700,
    and overflowed matplotlib's log axis, blanking every optimizer's curves."""
    try:
        return math.exp(loss) if not math.isnan(loss) else math.inf
    except OverflowError:
        return math.inf


_DIVERGED_FACTOR = 10


def _diverged(validation_perplexity: float, vocabulary_size: int) -> bool:
    """Whether a run ended an order of magnitude worse than the uniform guess over the
    target vocabulary (perplexity = its size), near which an untrained model starts:
    its weights blown up, not merely slow."""
    return not validation_perplexity <= _DIVERGED_FACTOR * vocabulary_size


def _test_bleu(pairs, source_tokenizer, target_tokenizer, translator, batch_size,
               beam_size, length_penalty):
    sources, references = (list(side) for side in zip(*pairs))
    source_ids = source_tokenizer.encode(sources)
    hypotheses = []
    decode_batch = max(1, batch_size * 4 // beam_size)
    for start in range(0, len(sources), decode_batch):
        batch = pad(source_ids[start:start + decode_batch])
        if beam_size == 1:
            output = translator.greedy(batch)
        else:
            output, _ = translator.beam_search(batch, beam_size, length_penalty)
        hypotheses.extend(target_tokenizer.decode(row) for row in output)
    bleu = translation_data.corpus_bleu(hypotheses, references)
    return bleu, list(zip(sources, references, hypotheses))[:5]
