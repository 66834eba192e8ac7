"""SentencePiece subwords: training, the pure-Python twin, the graph tokenizer, saving and loading."""

import pytest

from nlpkit.data import read_parallel_tsv
from nlpkit.errors import DataFormatError
from nlpkit.samples import sample_path
from nlpkit.text import PythonSentencePieceTokenizer, load_tokenizer, save_tokenizer

# Unseen characters (Greek, CJK, emoji, c-cedilla), odd spacing, full-width forms that NFKC
# folds, a decomposed umlaut, an empty string and a text of spaces only.
HARD_TEXTS = [
    "",
    "   ",
    "Ωmega 日本語 ça 🙂",
    "  doppelte   Leerzeichen ",
    "ｆｕｌｌ width",
    "a\u0308 und \u00e4",
    "Zwei Männer spielen Fußball\tim Park.",
]


@pytest.fixture(scope="module")
def corpus():
    pairs = read_parallel_tsv(sample_path("translation_train.tsv"), "de", "en")
    return [pair.source for pair in pairs] + [pair.target for pair in pairs]


@pytest.fixture(scope="module")
def tokenizer(corpus):
    return PythonSentencePieceTokenizer.train(corpus, vocabulary_size=200)


def test_training_fixes_special_ids_and_round_trips_text(tokenizer, corpus):
    assert 50 < tokenizer.vocabulary_size <= 200
    assert [tokenizer.id_to_piece(i) for i in range(4)] == ["<pad>", "<unk>", "<s>", "</s>"]
    for text in corpus[:50] + corpus[-50:]:
        ids = tokenizer.encode(text)
        assert ids and min(ids) >= 4, text  # known text never needs <unk> or specials
        assert tokenizer.decode(ids) == text
    # Subwords: some word of the corpus is split into more than one piece.
    assert any(len(tokenizer.tokenize(word)) > 1 for word in corpus[0].split())


def test_vocabulary_size_is_an_upper_bound_and_training_is_deterministic(corpus):
    small = PythonSentencePieceTokenizer.train(corpus[:100], vocabulary_size=5000)
    again = PythonSentencePieceTokenizer.train(corpus[:100], vocabulary_size=5000)
    assert small.vocabulary_size < 5000
    assert small.model_proto == again.model_proto
    bpe = PythonSentencePieceTokenizer.train(corpus, vocabulary_size=150, model_type="bpe")
    assert bpe.decode(bpe.encode(corpus[3])) == corpus[3]


def test_unseen_characters_become_unknown_and_empty_text_has_no_ids(tokenizer):
    assert tokenizer.encode("") == []
    ids = tokenizer.encode("Ω 日本")
    assert 1 in ids  # <unk>
    assert tokenizer.decode([2, *tokenizer.encode("Ein Hund."), 3, 0, 0]) == "Ein Hund."
    assert tokenizer.encode(b"Ein \xff Hund") == tokenizer.encode("Ein \ufffd Hund")


def test_max_length_truncates(corpus):
    short = PythonSentencePieceTokenizer.train(corpus, vocabulary_size=200, max_length=3)
    assert len(short.encode(corpus[0])) == 3


def test_invalid_arguments_are_named(corpus):
    with pytest.raises(ValueError, match="model_type='wordpiece'"):
        PythonSentencePieceTokenizer.train(corpus, model_type="wordpiece")
    with pytest.raises(ValueError, match="vocabulary_size=2"):
        PythonSentencePieceTokenizer.train(corpus, vocabulary_size=2)
    with pytest.raises(ValueError, match="no non-empty sentence"):
        PythonSentencePieceTokenizer.train(["", "  "])
    with pytest.raises(ValueError, match="not a valid SentencePiece model"):
        PythonSentencePieceTokenizer(b"not a model")
    with pytest.raises(TypeError, match="model_proto"):
        PythonSentencePieceTokenizer("text")


def test_save_and_load_give_the_same_ids(tokenizer, tmp_path, corpus):
    spec = save_tokenizer(tokenizer, tmp_path)
    assert spec["type"] == "sentencepiece" and (tmp_path / spec["model"]).is_file()
    loaded = load_tokenizer(tmp_path)
    assert loaded.model_proto == tokenizer.model_proto
    for text in corpus[:20] + HARD_TEXTS:
        assert loaded.encode(text) == tokenizer.encode(text)
    (tmp_path / spec["model"]).unlink()
    with pytest.raises(DataFormatError, match="sentencepiece.model"):
        load_tokenizer(tmp_path)


def test_graph_tokenizer_matches_twin_in_a_saved_model(tokenizer, tmp_path, corpus):
    import tensorflow as tf

    from nlpkit.text import SentencePieceTokenizer, load_graph_tokenizer

    graph = SentencePieceTokenizer.from_python(tokenizer)
    texts = corpus[:40] + corpus[-40:] + HARD_TEXTS
    expected = tokenizer.encode_batch(texts)
    assert graph(tf.constant(texts)).to_list() == expected
    assert graph(tf.constant(texts[0])).numpy().tolist() == expected[0]
    assert [p.decode() for p in graph.tokenize(tf.constant(texts[1])).numpy()] == tokenizer.tokenize(texts[1])
    invalid = tf.constant([b"Ein \xff Hund", b"\xc3"])
    assert graph(invalid).to_list() == [tokenizer.encode(b"Ein \xff Hund"), tokenizer.encode(b"\xc3")]
    detokenized = graph.detokenize(tf.ragged.constant([[2, *e, 3] for e in expected[:5]]))
    assert [t.decode() for t in detokenized.numpy()] == [tokenizer.decode(e) for e in expected[:5]]

    # Inside a SavedModel (the bundle's serving path), after a save and a reload.
    module = tf.Module()
    module.tokenizer = graph
    module.encode = tf.function(
        lambda text: graph(text).to_tensor(), input_signature=[tf.TensorSpec([None], tf.string)]
    )
    tf.saved_model.save(module, str(tmp_path / "saved"))
    reloaded = tf.saved_model.load(str(tmp_path / "saved"))
    dense = reloaded.encode(tf.constant(texts)).numpy()
    assert [[i for i in row if i != 0] for row in dense.tolist()] == expected

    save_tokenizer(graph, tmp_path / "assets")
    assert load_graph_tokenizer(tmp_path / "assets")(tf.constant(texts)).to_list() == expected


def test_graph_tokenizer_matches_twin_on_multi30k():
    """Twin equality on real text: trained on Multi30k train, compared on val and test, both sides."""
    import os

    import tensorflow as tf

    from nlpkit.data import load
    from nlpkit.text import SentencePieceTokenizer

    data_dir = os.environ.get("NLPKIT_DATA")
    if not data_dir:
        pytest.skip("NLPKIT_DATA is not set; twin equality on real text needs the shared datasets")
    train = load("multi30k", "train", data_dir=data_dir, download=False)[:5000]
    tokenizer = PythonSentencePieceTokenizer.train([text for pair in train for text in pair], vocabulary_size=4000)
    graph = SentencePieceTokenizer.from_python(tokenizer)
    texts = [text for split in ("valid", "test") for pair in load("multi30k", split, data_dir=data_dir, download=False)
             for text in pair]
    assert len(texts) == 4028
    assert graph(tf.constant(texts)).to_list() == tokenizer.encode_batch(texts)
    assert sum(1 in ids for ids in tokenizer.encode_batch(texts)) < len(texts)  # mostly covered
