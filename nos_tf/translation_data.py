"""German–English sentence pairs for the GNMT transfer experiment, and their tokenizer.

The paper transfers its rules to GNMT on WMT'14 English→German. Two sources of pairs:

- ``wmt14`` — ``wmt14_translate/de-en`` through TensorFlow Datasets, when it has been
  prepared in the TFDS data dir (it is 4.5M pairs: it is never downloaded from here);
  training pairs that repeat a validation or test sentence are left out.
- ``trans_de_en`` — the offline default: the example sentences in the German–English
  dictionary of Debian's ``trans-de-en`` package (Frank Richter's *ding* dictionary, GPL),
  read at run time from /usr/share/trans/de-en and never copied. Each dictionary line is
  ``German parts :: English parts`` with parts separated by `` | `` and aligned one to
  one; the parts that are whole sentences on both sides (capitalised, ending in ``.``,
  ``!`` or ``?``), rid of the dictionary's notation (other wordings, optional words,
  alternatives), are the pairs — about 18k of 3–20 words. With ``dictionary_phrases``,
  the dictionary's ~64k multi-word entries join the training split.

`WordPieceTokenizer` (GNMT's word pieces, learned by tensorflow-text) and `WordTokenizer`
(whole words, Keras's `TextVectorization`) turn sentences into ids. BLEU is computed by
sacrebleu on words in the same standardization (lowercased, punctuation split off), i.e.
tokenized case-insensitive BLEU, as GNMT reported tokenized BLEU; word pieces are joined
back into words first.
"""

import abc
import dataclasses
import importlib
import math
import os
import random
import re

import keras
import numpy as np
import tensorflow as tf

from nos_tf.data import (DataUnavailableError, check_data_dir, tfds_builder, tfds_prepared,
                         tfds_read_errors)

TRANS_DE_EN_PATH = "/usr/share/trans/de-en"
"""Where Debian's ``trans-de-en`` package installs the dictionary."""

WMT14_TFDS_NAME = "wmt14_translate/de-en"

SOURCES = ("auto", "wmt14", "trans_de_en")
LANGUAGES = ("de", "en")

_SENTENCE_END = (".", "!", "?")
_DING_SIDES = " :: "
_DING_PARTS = " | "
_DING_BRACKETS = re.compile(r"\{[^}]*\}|\[[^\]]*\]|\([^)]*\)")
"""Grammar, usage and region marks, explanations and optional words: {f}, [ugs.], (been)."""
_DING_MARKS = re.compile(_DING_BRACKETS.pattern + r"|(?<!\S)/[^/]*/(?!\S)")
"""Those and abbreviations (/NEET/): all the marks inside an entry."""
_DING_VARIANTS = "; "
"""Separates a part's variants: synonyms, or a sentence's other wordings."""
_DING_WORD_ALTERNATIVES = re.compile(r"/[^\s/.,;:!?]+")
"""A word's alternatives after its first: "/triggered" in "sounded/triggered"."""
_DING_SPACED_SLASH = re.compile(r"\s/|/\s")
"""Alternatives of several words each, or of whole sentences."""
_SPACE_BEFORE_PUNCTUATION = re.compile(r" (?=[.,;:!?])")

Pair = tuple[str, str]  # (source sentence, target sentence)


@dataclasses.dataclass(frozen=True, eq=False)
class ParallelCorpus:
    """Sentence pairs split three ways; each pair is (source, target) in that direction."""

    origin: str
    source_language: str
    target_language: str
    train: list[Pair]
    validation: list[Pair]
    test: list[Pair]


def parse_direction(direction: str) -> tuple[str, str]:
    """'en-de' -> ('en', 'de'); raises ValueError for anything but en-de and de-en."""
    languages = tuple(direction.split("-"))
    if len(languages) != 2 or sorted(languages) != sorted(LANGUAGES):
        raise ValueError(f"direction must be 'en-de' or 'de-en', got {direction!r}")
    return languages


def load_parallel_corpus(
    source: str = "auto",
    direction: str = "en-de",
    *,
    data_dir: str | None = None,
    trans_path: str = TRANS_DE_EN_PATH,
    min_words: int = 3,
    max_words: int = 20,
    train_pairs: int | None = None,
    validation_pairs: int = 1000,
    test_pairs: int = 1000,
    seed: int = 0,
    dictionary_phrases: bool = False,
) -> ParallelCorpus:
    """Loads German–English pairs from `source`, oriented as `direction`.

    Args:
      source: "wmt14", "trans_de_en", or "auto" (wmt14 if TFDS has it prepared in
        `data_dir`, else trans_de_en).
      direction: "en-de" (the paper's) or "de-en".
      data_dir: the TFDS data dir for wmt14 (None: TFDS's default).
      trans_path: the trans-de-en dictionary file.
      min_words, max_words: keep pairs whose both sides have this many words (wmt14: its
        training pairs; its newstest splits are read whole).
      train_pairs: cap on training pairs (None: all; wmt14 has 4.5M).
      validation_pairs, test_pairs: sizes of the held-out splits, at least 1 each.
        trans_de_en holds them out of its shuffled pairs; wmt14 takes the first that many
        of its own newstest splits, fewer where a split has fewer.
      seed: the shuffle that splits trans_de_en.
      dictionary_phrases: also train on the trans-de-en dictionary's multi-word entries
        (`read_trans_de_en_phrases`, read from `trans_path`), after the training pairs.

    Raises:
      ValueError: an unknown source or direction, or sizes the data cannot hold.
      DataUnavailableError: the requested source is not on this machine.
    """
    source_language, target_language = parse_direction(direction)
    if source not in SOURCES:
        raise ValueError(f"unknown translation source {source!r}; choose one of {SOURCES}")
    if not 1 <= min_words <= max_words:
        raise ValueError(f"need 1 <= min_words <= max_words, got {min_words}, {max_words}")
    # Checked for both sources: trans_de_en slices its shuffled pairs by these sizes, and
    # a negative one made a slice from the end, a test split overlapping the training one.
    sizes = {"validation_pairs": validation_pairs, "test_pairs": test_pairs}
    if train_pairs is not None:
        sizes["train_pairs"] = train_pairs
    for name, value in sizes.items():
        _check_positive(name, value)
    check_data_dir(data_dir)
    if source in ("auto", "wmt14"):
        # Once: the probe and the loader share it.
        builder = tfds_builder(WMT14_TFDS_NAME, data_dir)
        if source == "auto":
            source = "wmt14" if tfds_prepared(builder) else "trans_de_en"
    if source == "wmt14":
        splits, origin = _load_wmt14(
            builder, min_words, max_words, train_pairs, validation_pairs, test_pairs
        )
    else:
        pairs = read_trans_de_en(trans_path, min_words, max_words)
        if not pairs:
            raise ValueError(f"{trans_path} holds no German-English example sentences of "
                             f"{min_words}-{max_words} words")
        splits = _split_trans_de_en(pairs, train_pairs, validation_pairs, test_pairs, seed)
        origin = f"trans-de-en example sentences ({trans_path})"
    if dictionary_phrases:
        train, validation, test = splits
        splits = (train + read_trans_de_en_phrases(trans_path), validation, test)
        origin += f" + {len(splits[0]) - len(train)} dictionary phrases"
    orient = (lambda pair: pair) if source_language == "de" else (lambda pair: pair[::-1])
    train, validation, test = ([orient(pair) for pair in split] for split in splits)
    return ParallelCorpus(origin, source_language, target_language, train, validation, test)


def read_trans_de_en(
    path: str = TRANS_DE_EN_PATH, min_words: int = 3, max_words: int = 20
) -> list[Pair]:
    """The (German, English) example sentences of the ding dictionary, in file order,
    in plain text (`_plain_sentence`).

    A sentence that occurs twice on either side is kept once (its first pair), so a test
    sentence never reappears, with another translation, in training. Twice means the same
    `sentence_keys`.
    """
    candidates = []
    for entry in _ding_entries(path):
        for de, en in entry:
            de, en = _plain_sentence(de), _plain_sentence(en)
            if all(side and _is_sentence(side, min_words, max_words) for side in (de, en)):
                candidates.append((de, en))
    if not candidates:
        return []
    words = sentence_keys([side for pair in candidates for side in pair])
    pairs, seen_german, seen_english = [], set(), set()
    for pair, de_words, en_words in zip(candidates, words[0::2], words[1::2]):
        if de_words in seen_german or en_words in seen_english:
            continue
        seen_german.add(de_words)
        seen_english.add(en_words)
        pairs.append(pair)
    return pairs


def sentence_keys(sentences: list[str]) -> list[str]:
    """What tells sentences apart: their words after `tokenize`, which lowercases and splits
    punctuation off ("Es ist mir ernst damit." and "Es ist mir Ernst damit ." are one
    sentence), with ’ and ' taken as one (they are different tokens, but "I’m" and "I'm"
    are not different sentences)."""
    return [text.replace("’", "'") for text in tokenize(sentences)]


def read_trans_de_en_phrases(
    path: str = TRANS_DE_EN_PATH, min_words: int = 2, max_words: int = 12
) -> list[Pair]:
    """The ding dictionary's multi-word entries as (German, English) pairs: more text to
    learn words from than its ~18k example sentences (about 63k pairs of 2-12 words).

    Each part gives one pair: the first of its "; "-separated synonyms on each side, with
    the dictionary's marks ({f}, [Am.], (etw.), /NEET/) removed and the first of each
    word's alternatives kept, as in the example sentences ("to adopt/pass a motion" is
    "to adopt a motion"; a side with a spaced slash, "wenn / obwohl", gives no pair).
    Entries (lines) that hold an example sentence give none, so that nothing from a
    held-out sentence's entry is trained on; a pair seen before is kept once.
    """
    pairs, seen = [], set()
    for entry in _ding_entries(path):
        entry = [tuple(" ".join(_DING_MARKS.sub(" ", side).split(";")[0].split())
                       for side in part) for part in entry]
        if any(_is_sentence(side, 1, math.inf) for part in entry for side in part):
            continue  # Marks removed first: "Halt den Mund! [ugs.]" is a sentence too.
        for pair in entry:
            pair = tuple(map(_first_alternatives, pair))
            if None in pair or pair in seen or not _pair_has_words(pair, min_words, max_words):
                continue
            seen.add(pair)
            pairs.append(pair)
    return pairs


def _ding_entries(path):
    """Each dictionary line's aligned (German part, English part) pairs, stripped."""
    if not os.path.isfile(path):
        raise DataUnavailableError(
            f"the German-English dictionary {path} is not here: install it with "
            "`apt-get install trans-de-en` (or `make data`), or use --translation_data=wmt14"
        )
    with open(path, encoding="utf-8") as dictionary:
        try:
            lines = dictionary.readlines()
        except UnicodeDecodeError as error:
            raise ValueError(f"{path} is not the ding dictionary's UTF-8 text: {error}") from None
    for line in lines:
        if line.startswith("#") or _DING_SIDES not in line:
            continue
        german, english = line.rstrip("\n").split(_DING_SIDES, 1)
        german_parts, english_parts = german.split(_DING_PARTS), english.split(_DING_PARTS)
        if len(german_parts) != len(english_parts):
            continue  # Not aligned part by part: cannot tell which goes with which.
        yield [(de.strip(), en.strip()) for de, en in zip(german_parts, english_parts)]


def _plain_sentence(text):
    """An example sentence without the dictionary's notation, as a translator would write
    it, or None where the notation is ambiguous.

    Of a sentence's "; "-separated wordings the first is kept; optional words and marks
    ("(been)", "[ugs.]") are left out; of a word's alternatives ("sounded/triggered")
    the first is kept. A slash with a space beside it ("Stop / give over / quit", "That’s
    asking for trouble. / That’s just inviting problems.") gives no sentence: where its
    alternatives end cannot be told. "It’s (been) an age/ages since we’ve played that
    game." becomes "It’s an age since we’ve played that game.". About one pair in six
    holds such notation; kept, it would teach the model to write it, and a reference
    holding two wordings or both alternatives is one no translation can match. An
    alternative of several words after a slash with no space ("personally/in person")
    loses only its first word, and a few sentences come out wrong ("personally person").
    """
    text = _first_alternatives(_DING_BRACKETS.sub(" ", text.split(_DING_VARIANTS)[0]))
    return None if text is None else _SPACE_BEFORE_PUNCTUATION.sub("", text)


def _first_alternatives(text):
    """`text` with the first of each word's alternatives ("sounded/triggered" →
    "sounded"), or None where a slash with a space beside it leaves unsaid where its
    alternatives end."""
    if _DING_SPACED_SLASH.search(text):
        return None
    return " ".join(_DING_WORD_ALTERNATIVES.sub("", text).split())


def _has_words(text, min_words, max_words):
    return min_words <= len(text.split()) <= max_words


def _pair_has_words(pair, min_words, max_words):
    return all(_has_words(side, min_words, max_words) for side in pair)


def _is_sentence(text, min_words, max_words):
    return (
        text[:1].isupper()
        and text.endswith(_SENTENCE_END)
        and _has_words(text, min_words, max_words)
    )


def _split_trans_de_en(pairs, train_pairs, validation_pairs, test_pairs, seed):
    held_out = validation_pairs + test_pairs
    if not 0 < held_out < len(pairs):
        raise ValueError(
            f"validation_pairs + test_pairs = {held_out} must be between 1 and "
            f"{len(pairs) - 1}: trans-de-en has {len(pairs)} pairs"
        )
    pairs = list(pairs)
    random.Random(seed).shuffle(pairs)
    test, validation, train = (
        pairs[:test_pairs],
        pairs[test_pairs:held_out],
        pairs[held_out:],
    )
    if train_pairs is not None:
        train = train[:train_pairs]
    return train, validation, test


def wmt14_prepared(data_dir: str | None = None) -> bool:
    """Whether TFDS holds wmt14_translate/de-en in `data_dir` (nothing is downloaded)."""
    return tfds_prepared(tfds_builder(WMT14_TFDS_NAME, data_dir))


_WMT14_READ_BATCH = 4096  # Pairs read (and their sentence keys computed) at once.


def _load_wmt14(builder, min_words, max_words, train_pairs, validation_pairs, test_pairs):
    """(de, en) pairs of WMT'14's train split and newstest2013 / newstest2014 splits.

    A training pair that shares its German or its English side with a validation or test
    pair (the same `sentence_keys`: case and spacing aside) is left out, as
    `read_trans_de_en` keeps every sentence once: WMT's training corpora hold some
    newstest sentences, and trained on, they would be recalled, not translated, in the
    BLEU (and matched exactly by `lookup_translations`).

    The word limits select training pairs only: newstest2013 and newstest2014 are read
    whole (up to their pair counts), as tf/nmt translates every test sentence, so that the
    BLEU is newstest2014's and not that of its sentences of 3-50 words.
    """
    import tensorflow_datasets as tfds  # pylint: disable=import-outside-toplevel

    if not tfds_prepared(builder):
        raise DataUnavailableError(
            f"{WMT14_TFDS_NAME} is not prepared in {builder.data_dir}: build it on a machine "
            f"with internet (`tfds build wmt14_translate/de-en --data_dir=DIR`), copy DIR "
            "here and pass --data_dir=DIR; or use --translation_data=trans_de_en"
        )

    def read(split, limit, held_out=None):
        """The split's pairs; for training (`held_out` given: the German and the English
        `sentence_keys` of the held-out pairs), those within the word limits that repeat
        no held-out sentence. Read in batches, which `sentence_keys` takes at once."""
        pairs = []
        for batch in tfds.as_numpy(builder.as_dataset(split=split).batch(_WMT14_READ_BATCH)):
            chunk = [(de.decode("utf-8"), en.decode("utf-8"))
                     for de, en in zip(batch["de"], batch["en"])]
            if held_out is not None:
                keys = sentence_keys([side for pair in chunk for side in pair])
                chunk = [pair for pair, de_key, en_key in zip(chunk, keys[0::2], keys[1::2])
                         if de_key not in held_out[0] and en_key not in held_out[1]
                         and _pair_has_words(pair, min_words, max_words)]
            pairs += chunk
            if limit is not None and len(pairs) >= limit:
                pairs = pairs[:limit]
                break
        if not pairs:
            raise ValueError(f"{WMT14_TFDS_NAME} split {split!r} has no pair"
                             + (f" of {min_words}-{max_words} words" if held_out else ""))
        return pairs

    with tfds_read_errors(WMT14_TFDS_NAME, builder.data_dir):
        validation, test = read("validation", validation_pairs), read("test", test_pairs)
        held_out = tuple(frozenset(sentence_keys(list(sides)))
                         for sides in zip(*(validation + test)))
        splits = (read("train", train_pairs, held_out), validation, test)
    return splits, f"{WMT14_TFDS_NAME} (TFDS, {builder.data_dir})"


def _check_positive(name, value):
    if value < 1:
        raise ValueError(f"{name} must be at least 1, got {value}")


# -------------------------------------------------------------------------- tokens ---


@tf.function(input_signature=[tf.TensorSpec(shape=None, dtype=tf.string)])
def standardize(text: tf.Tensor) -> tf.Tensor:
    """Lowercases and sets punctuation and symbols apart as words of their own.

    Traced once for strings of any shape: traced per shape, every new number of sentences
    (each `tokenize` call, each batch size) traced it again, and TensorFlow warned of the
    "excessive number of tracings".
    """
    text = tf.strings.lower(text, encoding="utf-8")
    return tf.strings.regex_replace(text, r"([\p{P}\p{S}])", r" \1 ")


class Tokenizer(abc.ABC):
    """Sentences <-> integer ids for the translator, start and end tokens included.

    Every tokenizer first applies `standardize`, so that its tokens join back into the
    text `tokenize` gives the BLEU references. Id 0 is padding and id 1 stands for
    anything outside the vocabulary; the last two ids are the start and end of a sentence.
    Subclasses learn the vocabulary in `adapt` and split words into ids in `_encode_rows`.
    """

    PADDING, UNKNOWN = "", "[UNK]"
    START, END = "<s>", "</s>"  # Never produced by `standardize`, which splits off < and >.
    libraries: tuple[str, ...] = ()  # Modules of the gnmt extra it needs (`import_extra`).

    def __init__(self, max_tokens: int):
        if max_tokens < 5:
            raise ValueError(f"max_tokens must leave room for tokens, got {max_tokens}")
        self.max_tokens = max_tokens
        self._vocabulary = None

    @abc.abstractmethod
    def adapt(self, sentences: list[str]) -> "Tokenizer":
        """Learns the vocabulary, at most `max_tokens` ids (but see WordPieceTokenizer),
        from `sentences`."""

    @abc.abstractmethod
    def _encode_rows(self, sentences: list[str]) -> list[list[int]]:
        """The ids of each sentence, without start and end."""

    def _join(self, tokens: list[str]) -> str:
        """Tokens as space-separated words."""
        return " ".join(tokens)

    @property
    def vocabulary_size(self) -> int:
        return len(self._vocabulary)

    @property
    def start_id(self) -> int:
        return self.vocabulary_size - 2

    @property
    def end_id(self) -> int:
        return self.vocabulary_size - 1

    def encode(self, sentences: list[str], add_start_end: bool = False) -> list[np.ndarray]:
        """One int32 id array per sentence, optionally wrapped in start/end ids."""
        rows = self._encode_rows(sentences)
        if add_start_end:
            rows = [[self.start_id, *row, self.end_id] for row in rows]
        return [np.asarray(row, dtype=np.int32) for row in rows]

    def decode(self, ids) -> str:
        """Ids up to the first end id, as space-separated words (start and padding dropped)."""
        tokens = []
        for token in np.asarray(ids).tolist():
            if token == self.end_id:
                break
            if token not in (0, self.start_id):
                tokens.append(self._vocabulary[token])
        return self._join(tokens)


class WordTokenizer(Tokenizer):
    """One id per word or punctuation mark: Keras `TextVectorization`'s most frequent
    words; every other word is [UNK]."""

    def adapt(self, sentences: list[str]) -> "WordTokenizer":
        counter = keras.layers.TextVectorization(
            max_tokens=self.max_tokens - 2, standardize=standardize
        )
        counter.adapt(tf.constant(sentences))
        words = counter.get_vocabulary(include_special_tokens=False)
        self._layer = keras.layers.TextVectorization(
            standardize=standardize, ragged=True, vocabulary=words + [self.START, self.END]
        )
        self._vocabulary = np.array(self._layer.get_vocabulary())
        return self

    def _encode_rows(self, sentences):
        return self._layer(tf.constant(sentences)).to_list()


class WordPieceTokenizer(Tokenizer):
    """Word pieces, as GNMT translates (Wu et al. 2016, section 4.1): a rare word is
    spelled in frequent pieces ("regen", "##schirm") instead of becoming [UNK].

    The vocabulary is learned by tensorflow-text's BERT word-piece learner from the
    standardized words; words are split greedily, longest piece first, by tensorflow-
    text's `FastWordpieceTokenizer`. On the small trans-de-en corpus, word pieces let a
    vocabulary of a few thousand cover every training word, which a word vocabulary of
    that size cannot (1 test word in 10 was [UNK] at 4,000 words).

    The learner keeps every character of the training text, alone and as a continuation,
    so that any word written in that alphabet can be spelled: a `max_tokens` below twice
    the alphabet's size is exceeded by that much.
    """

    _SUFFIX = "##"  # Marks a piece that continues the word before it.
    libraries = ("tensorflow_text",)

    def adapt(self, sentences: list[str]) -> "WordPieceTokenizer":
        text = import_extra("tensorflow_text")
        bert_vocab = import_extra("tensorflow_text.tools.wordpiece_vocab.bert_vocab_from_dataset")

        texts = tf.data.Dataset.from_tensor_slices(standardize(tf.constant(sentences)))
        pieces = bert_vocab.bert_vocab_from_dataset(
            texts.batch(1024),
            vocab_size=self.max_tokens - 2,
            reserved_tokens=["[PAD]", self.UNKNOWN],  # ids 0 and 1; "[PAD]" is never a word.
            bert_tokenizer_params={"lower_case": False},  # `standardize` lowercased.
            # The learner's default lowest piece count, 10, caps a small corpus's
            # vocabulary far below max_tokens.
            learn_params={"lower_thresh": 1},
        )
        self._pieces = text.FastWordpieceTokenizer(
            pieces, suffix_indicator=self._SUFFIX, unknown_token=self.UNKNOWN,
            no_pretokenization=True, token_out_type=tf.int32,
        )
        self._vocabulary = np.array([self.PADDING, *pieces[1:], self.START, self.END])
        return self

    def _encode_rows(self, sentences):
        words = tf.strings.split(standardize(tf.constant(sentences)))
        return self._pieces.tokenize(words).merge_dims(1, 2).to_list()

    def _join(self, tokens):
        words = []
        for token in tokens:
            if token.startswith(self._SUFFIX) and words:
                words[-1] += token[len(self._SUFFIX):]
            else:
                words.append(token)
        return " ".join(words)


TOKENIZERS = {"word": WordTokenizer, "wordpiece": WordPieceTokenizer}


def import_extra(module: str):
    """`module`, one of the libraries of nos_tf's `gnmt` extra, or an ImportError that says
    how to install them: setup.py leaves them out of nos_tf's own requirements
    (tensorflow-text has no wheel for some platforms TensorFlow has), so that a user of
    RuleOptimizer does without them. One installed but failing to import (a library it
    lacks, a build for another TensorFlow) raises its own error."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as error:
        if not error.name or not f"{module}.".startswith(f"{error.name}."):
            raise  # Not `module` or a package above it that is missing.
        raise ImportError(
            f"GNMT translation needs {module.partition('.')[0]}: pip install 'nos_tf[gnmt]' "
            "(in a checkout: pip install -e '.[gnmt]')") from None


def check_libraries(tokenizer: str) -> None:
    """Imports what translating with `tokenizer` (a key of `TOKENIZERS`) and scoring BLEU
    need, so that a missing one is named before the data loads and tokenizers learn."""
    for module in ("sacrebleu", *TOKENIZERS[tokenizer].libraries):
        import_extra(module)


def tokenize(sentences: list[str]) -> list[str]:
    """Sentences as the tokenizer sees them, every word kept: the BLEU references."""
    standardized = standardize(tf.constant(sentences)).numpy()
    return [" ".join(text.decode("utf-8").split()) for text in standardized]


def lookup_translations(train: list[Pair], sources: list[str]) -> list[str]:
    """Translation by lookup, tokenized as `tokenize` does: each source gets the training
    translation of the training source most like it (cosine of tf-idf weighted character
    3-5-grams, scikit-learn's `TfidfVectorizer`).

    It is the yardstick for a translator trained on a small corpus: its BLEU says how much
    a test set can be matched by recalling training sentences, so a model's BLEU shows
    what it learned only by how far it is above this one's.
    """
    from sklearn.feature_extraction.text import TfidfVectorizer  # pylint: disable=import-outside-toplevel

    vectorizer = TfidfVectorizer(analyzer="char_wb", ngram_range=(3, 5))
    train_vectors = vectorizer.fit_transform([source for source, _ in train])
    nearest = np.asarray((vectorizer.transform(sources) @ train_vectors.T).argmax(axis=1))
    return tokenize([train[index][1] for index in nearest.ravel()])


def _bleu():
    """sacrebleu's BLEU on text `tokenize` made (lowercased, punctuation split off)."""
    return import_extra("sacrebleu").BLEU(tokenize="none", lowercase=True, force=True)


def corpus_bleu(hypotheses: list[str], references: list[str]) -> float:
    """sacrebleu's corpus BLEU of tokenized hypotheses against raw reference sentences."""
    return _bleu().corpus_score(hypotheses, [tokenize(references)]).score


def bleu_description() -> str:
    """What `corpus_bleu` scores, with sacrebleu's signature, to print beside its figures:
    they are not the cased, detokenized BLEU of sacrebleu's defaults (lower: the
    translators' vocabularies are lowercased)."""
    metric = _bleu()
    metric.corpus_score(["a"], [["a"]])  # Its signature names the references' number.
    return (f"BLEU: sacrebleu {metric.get_signature()}, on lowercased words with "
            "punctuation split off (tokenized BLEU, as GNMT reported)")
