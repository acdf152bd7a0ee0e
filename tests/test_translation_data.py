"""Translation data: the trans-de-en reader, the TFDS wmt14 path, tokenizer and BLEU."""

import os

import pytest
import sacrebleu

from nos_tf import translation_data
from nos_tf.data import DataUnavailableError

# Lines in the ding dictionary's format (written for this test, not taken from it):
# German parts :: English parts, parts aligned one to one and separated by " | ".
LONG_SENTENCES = (
    "Ja | Das Wetter ist heute wirklich sehr schön, aber morgen soll es den ganzen Tag lang "
    "regnen. :: yes | The weather is really very nice today, but tomorrow it is supposed to "
    "rain all day long.")
DING_LINES = """\
# Version :: test
Hund {m} | Hunde {pl} | Der Hund schläft im Garten. :: dog | dogs | The dog sleeps in the garden.
Katze {f} | Die Katze ist schwarz. | Ich mag Katzen. :: cat | The cat is black. | I like cats.
laufen {vi} | Wir laufen jeden Morgen. :: to run | We run every morning.
teilweise | Das ist nur teilweise richtig. :: partly | That is only partly right. | extra part.
Nein. :: No.
""" + LONG_SENTENCES + """
Gehen Sie nach Hause! :: Go home now!
Wo ist der Bahnhof? :: Where is the station?
Der Hund schläft im Garten. :: The dog is asleep in the garden.
kein Satz :: not a sentence
Abholung {f} (von jdm.) | Abholung der Waren am Bahnhof; Warenabholung :: collection (of sb.) | collection of the goods from the station; goods collection
rote Bete {f} [Norddt.] :: beetroot [Br.]; red beet [Am.]
kein Satz :: not a sentence
"""

EXPECTED_PAIRS = [
    ("Der Hund schläft im Garten.", "The dog sleeps in the garden."),
    ("Die Katze ist schwarz.", "The cat is black."),
    ("Ich mag Katzen.", "I like cats."),
    ("Wir laufen jeden Morgen.", "We run every morning."),
    ("Gehen Sie nach Hause!", "Go home now!"),
    ("Wo ist der Bahnhof?", "Where is the station?"),
]


@pytest.fixture(name="ding_file")
def fixture_ding_file(tmp_path):
    path = tmp_path / "de-en"
    path.write_text(DING_LINES, encoding="utf-8")
    return str(path)


def test_reads_aligned_whole_sentences_once(ding_file):
    # Misaligned lines, one-word and over-long sentences, lowercase fragments and the
    # repeated German sentence (with another translation) are all left out.
    assert translation_data.read_trans_de_en(ding_file, 3, 12) == EXPECTED_PAIRS


def test_a_sentence_the_tokenizer_reads_as_one_seen_before_is_left_out(tmp_path):
    # Lowercased, and ’ read as ', these are the first pair's sentences again.
    path = tmp_path / "de-en"
    path.write_text("Es ist mir Ernst damit. :: I’m serious about it.\n"
                    "Es ist mir ernst damit. :: I mean it.\n"
                    "Ich meine es so. :: I'm serious about it.\n"
                    "Das Wetter ist schön. :: The weather is nice.\n", encoding="utf-8")
    assert translation_data.read_trans_de_en(str(path)) == [
        ("Es ist mir Ernst damit.", "I’m serious about it."),
        ("Das Wetter ist schön.", "The weather is nice.")]


def test_a_dictionary_that_is_not_utf8_or_holds_no_sentence_is_named(tmp_path):
    path = tmp_path / "de-en"
    path.write_bytes(b"Das Wetter ist sch\xf6n. :: The weather is nice.\n")
    with pytest.raises(ValueError, match=f"{path} is not the ding dictionary's UTF-8 text"):
        translation_data.read_trans_de_en(str(path))
    path.write_text("# only a comment\n", encoding="utf-8")
    with pytest.raises(ValueError, match=f"{path} holds no German-English example "
                       "sentences of 3-20 words"):
        translation_data.load_parallel_corpus("trans_de_en", trans_path=str(path))


def test_sentences_lose_the_dictionarys_notation_or_are_left_out_where_it_is_ambiguous(
        tmp_path):
    path = tmp_path / "de-en"
    path.write_text(
        "Es spricht (sehr) viel dafür/dagegen, jetzt zu verkaufen. :: "
        "There’s a (good) case for/against selling now.\n"
        "Wie alt bist du?; Wie alt sind Sie? :: How old are you?\n"
        "Das Wetter normalisierte sich (wieder). :: The weather steadied (again).\n"
        "Hör auf, deine Schwester zu ärgern! :: Stop / give over / quit teasing your sister!\n"
        "Ich bin müde. :: I am tired. / I’m tired.\n",
        encoding="utf-8")
    assert translation_data.read_trans_de_en(str(path)) == [
        ("Es spricht viel dafür, jetzt zu verkaufen.", "There’s a case for selling now."),
        ("Wie alt bist du?", "How old are you?"),
        ("Das Wetter normalisierte sich.", "The weather steadied."),
    ]


def test_lookup_translates_by_the_most_similar_training_source():
    train = [("Der Hund schläft im Garten.", "The dog sleeps in the garden."),
             ("Die Katze ist schwarz.", "The cat is black."),
             ("Wo ist der Bahnhof?", "Where is the station?")]
    assert translation_data.lookup_translations(
        train, ["Die schwarze Katze.", "Wo ist bitte der Bahnhof?", "Der Hund schläft."]) == [
            "the cat is black .", "where is the station ?", "the dog sleeps in the garden ."]


def test_word_limits_filter_both_sides(ding_file):
    pairs = translation_data.read_trans_de_en(ding_file, min_words=1, max_words=3)
    assert ("Nein.", "No.") in pairs
    assert all(len(side.split()) <= 3 for pair in pairs for side in pair)


def test_phrases_are_multi_word_entries_cleaned_of_marks_from_entries_without_sentences(
        ding_file):
    # Entries with an example sentence (the dog, the cat, "Ja | Das Wetter ...") give no
    # phrase; one-word sides, a misaligned line and the repeated entry none either.
    assert translation_data.read_trans_de_en_phrases(ding_file) == [
        ("kein Satz", "not a sentence"),
        ("Abholung der Waren am Bahnhof", "collection of the goods from the station"),
    ]
    assert translation_data.read_trans_de_en_phrases(ding_file, min_words=3, max_words=7) == [
        ("Abholung der Waren am Bahnhof", "collection of the goods from the station")]
    assert translation_data.read_trans_de_en_phrases(ding_file, max_words=4) == [
        ("kein Satz", "not a sentence")]


def test_phrases_keep_a_words_first_alternative_as_sentences_do(tmp_path):
    """Kept, "adopt/pass" read as "adopt / pass" and taught the model to write slashes."""
    path = tmp_path / "de-en"
    path.write_text("einen Antrag annehmen :: to adopt/pass a motion\n"
                    "wenn / obwohl morgen Schule ist :: on a school night\n", encoding="utf-8")
    assert translation_data.read_trans_de_en_phrases(str(path)) == [
        ("einen Antrag annehmen", "to adopt a motion")]


def test_dictionary_phrases_join_the_training_split_only(ding_file):
    plain, with_phrases = (translation_data.load_parallel_corpus(
        "trans_de_en", "en-de", trans_path=ding_file, max_words=12, validation_pairs=1,
        test_pairs=2, seed=3, dictionary_phrases=phrases) for phrases in (False, True))
    assert with_phrases.train == plain.train + [
        ("not a sentence", "kein Satz"),
        ("collection of the goods from the station", "Abholung der Waren am Bahnhof")]
    assert (with_phrases.validation, with_phrases.test) == (plain.validation, plain.test)
    assert "2 dictionary phrases" in with_phrases.origin


def test_missing_dictionary_says_how_to_install(tmp_path):
    with pytest.raises(DataUnavailableError, match="apt-get install trans-de-en"):
        translation_data.read_trans_de_en(str(tmp_path / "absent"))


@pytest.mark.skipif(
    not os.path.isfile(translation_data.TRANS_DE_EN_PATH),
    reason="Debian's trans-de-en is not installed (`make data` installs it)",
)
def test_debian_dictionary_yields_about_18k_sentence_pairs():
    pairs = translation_data.read_trans_de_en()
    assert 15_000 < len(pairs) < 21_000
    assert all(3 <= len(side.split()) <= 20 for pair in pairs for side in pair)
    assert len({de for de, _ in pairs}) == len(pairs) == len({en for _, en in pairs})
    phrases = translation_data.read_trans_de_en_phrases()
    assert 50_000 < len(phrases) < 80_000
    assert not {de for de, _ in pairs} & {de for de, _ in phrases}
    assert not any(mark in side for pair in phrases for side in pair for mark in "{}[]")


def test_corpus_splits_are_disjoint_oriented_and_seeded(ding_file):
    corpus = translation_data.load_parallel_corpus(
        "trans_de_en", "en-de", trans_path=ding_file, max_words=12,
        validation_pairs=1, test_pairs=2, seed=3)
    assert (corpus.source_language, corpus.target_language) == ("en", "de")
    splits = corpus.train + corpus.validation + corpus.test
    assert sorted(splits) == sorted((en, de) for de, en in EXPECTED_PAIRS)
    assert (len(corpus.train), len(corpus.validation), len(corpus.test)) == (3, 1, 2)
    assert corpus.origin == f"trans-de-en example sentences ({ding_file})"  # The file read.
    again = translation_data.load_parallel_corpus(
        "trans_de_en", "en-de", trans_path=ding_file, max_words=12,
        validation_pairs=1, test_pairs=2, seed=3)
    assert again.test == corpus.test
    german_first = translation_data.load_parallel_corpus(
        "trans_de_en", "de-en", trans_path=ding_file, max_words=12,
        validation_pairs=1, test_pairs=2, seed=3)
    assert german_first.test == [pair[::-1] for pair in corpus.test]


@pytest.mark.parametrize("direction", ["en-fr", "en", "de-de", ""])
def test_bad_direction_is_named(direction):
    with pytest.raises(ValueError, match="direction must be 'en-de' or 'de-en'"):
        translation_data.parse_direction(direction)


def test_held_out_splits_must_fit(ding_file):
    with pytest.raises(ValueError, match="trans-de-en has 6 pairs"):
        translation_data.load_parallel_corpus(
            "trans_de_en", trans_path=ding_file, max_words=12, validation_pairs=3,
            test_pairs=3)


def _store_tiny_wmt14(data_dir):
    """A TFDS wmt14_translate/de-en with a few pairs, read back by TFDS's own builder."""
    import tensorflow_datasets as tfds  # pylint: disable=import-outside-toplevel

    splits = {
        "train": [("Guten Morgen, meine Freunde.", "Good morning, my friends."),
                  ("Die Sonne scheint heute hell.", "The sun shines brightly today."),
                  ("Das Haus ist sehr alt.", "The house is very old."),
                  ("Wir essen jetzt zu Mittag.", "We are having lunch now."),
                  # The test's German but for case and spacing: the same sentence.
                  ("die Sonne scheint heute hell .", "Today the sun is bright."),
                  # The test's English with other German: the same sentence on one side.
                  ("Heute scheint die Sonne hell.", "The sun is shining brightly today."),
                  ("Kurz.", "Short.")],
        "validation": [("Wir essen jetzt zu Mittag.", "We are having lunch now.")],
        "test": [("Die Sonne scheint heute hell.", "The sun is shining brightly today."),
                 ("Ja.", "Yes.")],
    }
    tfds.dataset_builders.store_as_tfds_dataset(
        name="wmt14_translate", version="1.0.0", config="de-en",
        features=tfds.features.Translation(languages=("de", "en")),
        split_datasets={name: [(i, {"de": de, "en": en}) for i, (de, en) in enumerate(pairs)]
                        for name, pairs in splits.items()},
        data_dir=data_dir)
    return splits


def test_wmt14_through_tfds(tmp_path, ding_file, caplog):
    data_dir = str(tmp_path / "tfds")
    with pytest.raises(DataUnavailableError, match="tfds is not a directory"):
        translation_data.load_parallel_corpus("auto", data_dir=data_dir, trans_path=ding_file)
    os.mkdir(data_dir)
    assert not translation_data.wmt14_prepared(data_dir)
    assert "dataset_info" not in caplog.text  # A dataset never prepared is not a broken one.
    with pytest.raises(DataUnavailableError, match="tfds build wmt14_translate/de-en"):
        translation_data.load_parallel_corpus("wmt14", data_dir=data_dir)
    fallback = translation_data.load_parallel_corpus(
        "auto", data_dir=data_dir, trans_path=ding_file, max_words=12, validation_pairs=1,
        test_pairs=1)
    assert fallback.origin.startswith("trans-de-en")

    splits = _store_tiny_wmt14(data_dir)
    corpus = translation_data.load_parallel_corpus("auto", "en-de", data_dir=data_dir)
    assert corpus.origin.startswith("wmt14_translate/de-en")
    # "Kurz." is too short to train on; the test and the validation sentences are not
    # trained on, in any case or spacing. The test split is read whole: its BLEU is newstest2014's, short "Ja."
    # included (it was dropped by the training pairs' word limits).
    assert sorted(corpus.train) == sorted(
        (en, de) for de, en in (splits["train"][0], splits["train"][2]))
    assert corpus.validation == [(en, de) for de, en in splits["validation"]]
    assert sorted(corpus.test) == sorted((en, de) for de, en in splits["test"])
    capped = translation_data.load_parallel_corpus("wmt14", data_dir=data_dir, train_pairs=1)
    assert len(capped.train) == 1
    # A copy made halfway: TensorFlow's NotFoundError, named as the dataset's problem.
    next(tmp_path.glob("tfds/wmt14_translate/de-en/*/*-train.tfrecord*")).unlink()
    with pytest.raises(DataUnavailableError, match="wmt14_translate/de-en' in .* is "
                       "incomplete or corrupt"):
        translation_data.load_parallel_corpus("wmt14", data_dir=data_dir)


def test_word_tokenizer_round_trip_with_unknown_words():
    tokenizer = translation_data.WordTokenizer(max_tokens=50).adapt(
        ["Über den Fluss, bitte!", "Der Fluss ist breit."])
    ids = tokenizer.encode(["Der Fluss ist tief!"], add_start_end=True)[0]
    assert ids[0] == tokenizer.start_id and ids[-1] == tokenizer.end_id
    assert tokenizer.decode(ids[1:]) == "der fluss ist [UNK] !"
    assert tokenizer.decode(tokenizer.encode(["ÜBER den Fluss!"])[0]) == "über den fluss !"
    assert tokenizer.vocabulary_size == len({"", "[UNK]", "über", "den", "fluss", ",", "bitte",
                                             "!", "der", "ist", "breit", ".", "<s>", "</s>"})


def test_word_tokenizer_keeps_the_most_frequent_words():
    tokenizer = translation_data.WordTokenizer(max_tokens=6).adapt(["a a a b b c"])
    assert tokenizer.decode(tokenizer.encode(["a b c"])[0]) == "a b [UNK]"


_COMPOUNDS = ["Der Regenschirm ist nass.", "Der Regen fällt.", "Ein Schirm hilft.",
              "Die Regenjacke ist neu.", "Der Sonnenschirm ist alt."] * 3


def test_wordpiece_tokenizer_spells_unseen_words_in_pieces():
    tokenizer = translation_data.WordPieceTokenizer(max_tokens=60).adapt(_COMPOUNDS)
    assert 5 < tokenizer.vocabulary_size <= 60
    ids = tokenizer.encode(["Die Sonnenjacke ist nass."], add_start_end=True)[0]
    assert ids[0] == tokenizer.start_id and ids[-1] == tokenizer.end_id
    assert 1 not in ids  # "sonnenjacke" was never seen, but its pieces were.
    assert len(ids) > 2 + 5  # at least one word took several pieces
    assert tokenizer.decode(ids[1:]) == "die sonnenjacke ist nass ."
    # A character it has never seen makes its word unknown, not the sentence.
    assert tokenizer.decode(tokenizer.encode(["Der Zug ist nass."])[0]) == "der [UNK] ist nass ."


def test_wordpiece_tokenizer_vocabulary_respects_max_tokens():
    small = translation_data.WordPieceTokenizer(max_tokens=48).adapt(_COMPOUNDS)
    large = translation_data.WordPieceTokenizer(max_tokens=200).adapt(_COMPOUNDS)
    assert small.vocabulary_size <= 48 < large.vocabulary_size
    sentence = ["Der Regenschirm ist nass."]
    assert len(large.encode(sentence)[0]) < len(small.encode(sentence)[0])
    for tokenizer in (small, large):  # Fewer pieces, same words.
        assert tokenizer.decode(tokenizer.encode(sentence)[0]) == "der regenschirm ist nass ."


def test_tokenizer_needs_room_for_tokens():
    with pytest.raises(ValueError, match="max_tokens"):
        translation_data.WordPieceTokenizer(max_tokens=4)


def test_bleu_is_sacrebleus_on_the_tokenized_references():
    references = ["Ich bin müde.", "Das Haus ist alt, aber schön."]
    assert translation_data.corpus_bleu(
        ["ich bin müde .", "das haus ist alt , aber schön ."], references) == pytest.approx(100.0)
    hypotheses = ["ich bin sehr müde .", "das haus ist schön ."]
    expected = sacrebleu.corpus_bleu(
        hypotheses, [["ich bin müde .", "das haus ist alt , aber schön ."]], tokenize="none")
    assert translation_data.corpus_bleu(hypotheses, references) == pytest.approx(expected.score)
    assert 0.0 < expected.score < 100.0


@pytest.mark.parametrize("sizes", [{"validation_pairs": 3, "test_pairs": -1},
                                   {"validation_pairs": 0, "test_pairs": 2},
                                   {"validation_pairs": 1, "test_pairs": 1, "train_pairs": 0}])
def test_split_sizes_below_one_are_named(ding_file, sizes):
    """A negative size sliced from the end: test pairs that were training pairs too."""
    with pytest.raises(ValueError, match="_pairs must be at least 1"):
        translation_data.load_parallel_corpus(
            "trans_de_en", trans_path=ding_file, max_words=12, **sizes)


def test_standardize_is_traced_once_for_any_number_of_sentences():
    """Traced per shape, it warned of "excessive" retracing in every gnmt run."""
    before = translation_data.standardize.experimental_get_tracing_count()
    for count in range(1, 7):
        translation_data.tokenize(["Ein Satz."] * count)
    translation_data.WordTokenizer(max_tokens=20).adapt(["Ein Satz.", "Noch einer!"]).encode(
        ["Ein Satz."] * 3)
    assert translation_data.standardize.experimental_get_tracing_count() - before <= 1
