"""Word vectors: co-occurrence counts, PPMI, PPMI + SVD learning, file reading, embedding tables."""

import collections
import doctest
import gzip
import subprocess
import sys

import numpy as np
import pytest
import scipy.sparse

from nlpkit.errors import DataFormatError
from nlpkit.text import Vocabulary
from nlpkit.text.embeddings import (
    standardize_dimensions,
    cooccurrence_matrix,
    embedding_matrix,
    learn_frequent_word_vectors,
    learn_word_vectors,
    ppmi_matrix,
    read_word_vectors,
)

INDEX = {"a": 0, "b": 1, "c": 2}


def dense(token_lists, window, index=INDEX):
    return cooccurrence_matrix(token_lists, index, window=window).toarray()


# ---------------------------------------------------------------- cooccurrence_matrix


def test_cooccurrence_window_one():
    counts = dense([["a", "b", "c"]], window=1)
    np.testing.assert_array_equal(counts, [[0, 1, 0], [1, 0, 1], [0, 1, 0]])


def test_cooccurrence_weights_are_one_over_distance():
    counts = dense([["a", "b", "c"]], window=2)
    np.testing.assert_allclose(counts, [[0, 1, 0.5], [1, 0, 1], [0.5, 1, 0]])
    counts = dense([["a", "c", "c", "c", "b"]], window=5)
    assert counts[0, 1] == pytest.approx(1 / 4)
    assert counts[0, 2] == pytest.approx(1 + 1 / 2 + 1 / 3)
    # Each of the three c's sees the other two: at distances 1, 1, 2 in both directions.
    assert counts[2, 2] == pytest.approx(2 * (1 + 1 + 1 / 2))


def test_cooccurrence_window_limits_distance():
    counts = dense([["a", "b", "b", "c"]], window=2)
    assert counts[0, 2] == 0.0
    assert dense([["a", "b", "b", "c"]], window=3)[0, 2] == pytest.approx(1 / 3)


def test_unknown_tokens_count_as_distance_but_not_as_words():
    counts = dense([["a", "x", "b"]], window=1)
    assert not counts.any()
    counts = dense([["a", "x", "b"]], window=2)
    np.testing.assert_allclose(counts[:2, :2], [[0, 0.5], [0.5, 0]])


def test_no_window_across_texts():
    counts = dense([["a"], ["b"], ["c", "a"]], window=5)
    np.testing.assert_array_equal(counts, [[0, 0, 1], [0, 0, 0], [1, 0, 0]])
    # The same tokens as one text do co-occur.
    assert dense([["a", "b", "c", "a"]], window=5)[0, 1] > 0


def test_cooccurrence_docstring_and_edge_cases():
    globs = {"cooccurrence_matrix": cooccurrence_matrix}
    (test,) = doctest.DocTestFinder().find(cooccurrence_matrix, "cooccurrence_matrix", globs=globs)
    assert doctest.DocTestRunner().run(test).failed == 0
    empty = cooccurrence_matrix([], INDEX, window=2)
    assert scipy.sparse.issparse(empty) and empty.shape == (3, 3) and empty.nnz == 0
    assert cooccurrence_matrix([[], ["a"]], INDEX).nnz == 0
    counts = cooccurrence_matrix(iter([["a", "b"]]), INDEX)
    assert isinstance(counts, scipy.sparse.csr_matrix) and counts[0, 1] == 1.0


def test_cooccurrence_is_symmetric_on_random_text():
    rng = np.random.default_rng(0)
    words = list("abcdefgh")
    index = {word: row for row, word in enumerate(words[:6])}
    texts = [list(rng.choice(words, size=int(rng.integers(0, 15)))) for _ in range(30)]
    counts = cooccurrence_matrix(texts, index, window=3).toarray()
    np.testing.assert_allclose(counts, counts.T)
    # Brute force: every ordered pair of positions within the window, in both directions.
    expected = np.zeros_like(counts)
    for tokens in texts:
        for i, left in enumerate(tokens):
            for j in range(max(0, i - 3), min(len(tokens), i + 4)):
                if j != i and left in index and tokens[j] in index:
                    expected[index[left], index[tokens[j]]] += 1.0 / abs(i - j)
    np.testing.assert_allclose(counts, expected)


@pytest.mark.parametrize("window", [0, -1])
def test_invalid_window_names_the_value(window):
    with pytest.raises(ValueError, match=f"window={window}"):
        cooccurrence_matrix([["a"]], INDEX, window=window)


# ---------------------------------------------------------------- ppmi_matrix


@pytest.mark.parametrize("smoothing", [1.0, 0.75])
def test_ppmi_is_zero_for_independent_pairs(smoothing):
    # A constant matrix: every word's contexts are distributed like all contexts.
    counts = scipy.sparse.csr_matrix(np.full((4, 4), 3.0))
    np.testing.assert_allclose(ppmi_matrix(counts, smoothing).toarray(), 0.0, atol=1e-6)


def test_ppmi_is_zero_for_an_outer_product_without_smoothing():
    rows, columns = np.array([1.0, 2.0, 5.0]), np.array([3.0, 1.0, 4.0])
    counts = scipy.sparse.csr_matrix(np.outer(rows, columns))
    np.testing.assert_allclose(ppmi_matrix(counts, context_smoothing=1.0).toarray(), 0.0, atol=1e-6)


def test_ppmi_is_positive_within_blocks_and_matches_a_dense_formula():
    counts = np.array([[4, 2, 0, 1], [2, 6, 1, 0], [0, 1, 3, 5], [1, 0, 5, 2]], float)
    ppmi = ppmi_matrix(scipy.sparse.csr_matrix(counts)).toarray()
    assert ppmi.dtype == np.float32
    assert np.all(ppmi >= 0)
    total = counts.sum()
    context = counts.sum(axis=0) ** 0.75
    with np.errstate(divide="ignore"):
        expected_counts = counts.sum(axis=1, keepdims=True) * (context / context.sum())
        pmi = np.log(counts / expected_counts)
    np.testing.assert_allclose(ppmi, np.maximum(pmi, 0), rtol=1e-5, atol=1e-6)
    assert ppmi[0, 0] > 0 and ppmi[2, 3] > 0
    assert ppmi[0, 2] == 0  # never co-occur


def test_ppmi_of_an_empty_matrix():
    result = ppmi_matrix(scipy.sparse.csr_matrix((3, 3)))
    assert result.shape == (3, 3) and result.nnz == 0 and result.dtype == np.float32


# ---------------------------------------------------------------- learn_word_vectors


def two_topic_corpus(seed=0):
    rng = np.random.default_rng(seed)
    topics = [[f"sport{i}" for i in range(6)], [f"food{i}" for i in range(6)]]
    texts = []
    for index in range(300):
        words = topics[index % 2]
        texts.append(list(rng.choice(words, size=int(rng.integers(4, 10)))))
    return texts, topics


@pytest.fixture(scope="module")
def topic_vectors():
    texts, topics = two_topic_corpus()
    words = topics[0] + topics[1] + ["never_seen"]
    return words, learn_word_vectors(texts, words, dim=4, window=3, seed=0)


def test_learned_vectors_cluster_by_topic(topic_vectors):
    words, vectors = topic_vectors
    similarity = vectors[:12] @ vectors[:12].T
    topic = np.repeat([0, 1], 6)
    same = topic[:, None] == topic[None, :]
    off_diagonal = ~np.eye(12, dtype=bool)
    # Every pair within a topic is nearer than every pair across topics.
    assert similarity[same & off_diagonal].min() > similarity[~same].max()


def test_learned_vectors_are_unit_rows_and_zero_for_unseen_words(topic_vectors):
    words, vectors = topic_vectors
    assert vectors.shape == (len(words), 4) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors[:12], axis=1), 1.0, atol=1e-5)
    assert np.all(vectors[words.index("never_seen")] == 0.0)


def test_learned_vectors_are_deterministic(topic_vectors):
    texts, topics = two_topic_corpus()
    words, vectors = topic_vectors
    again = learn_word_vectors(texts, words, dim=4, window=3, seed=0)
    np.testing.assert_array_equal(again, vectors)


@pytest.mark.parametrize("dim", [0, 3, 5])
def test_learn_word_vectors_rejects_bad_dim(dim):
    with pytest.raises(ValueError, match=f"dim={dim}"):
        learn_word_vectors([["a", "b", "c"]], ["a", "b", "c"], dim=dim)


# ---------------------------------------------------------------- read_word_vectors

GLOVE = "the 0.1 0.2 0.3\nfilm -1 2.5 0\nThe 9 9 9\nplot 1e-3 0 -0.5\n"


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_read_glove_format(tmp_path):
    words, vectors = read_word_vectors(write(tmp_path, "glove.txt", GLOVE))
    assert words == ["the", "film", "The", "plot"]
    assert vectors.dtype == np.float32 and vectors.shape == (4, 3)
    np.testing.assert_allclose(vectors[1], [-1, 2.5, 0])
    np.testing.assert_allclose(vectors[3], [1e-3, 0, -0.5])


def test_read_word2vec_header_and_windows_line_endings(tmp_path):
    path = tmp_path / "w2v.txt"
    path.write_bytes(("4 3\n" + GLOVE).replace("\n", "\r\n").encode())
    words, vectors = read_word_vectors(path)
    assert words == ["the", "film", "The", "plot"] and vectors.shape == (4, 3)


def test_read_gzip_by_content(tmp_path):
    path = tmp_path / "vectors.bin"  # gzip is recognised without a .gz suffix
    with gzip.open(path, "wt", encoding="utf-8") as stream:
        stream.write(GLOVE)
    words, vectors = read_word_vectors(path)
    plain_words, plain_vectors = read_word_vectors(write(tmp_path, "plain.txt", GLOVE))
    assert words == plain_words
    np.testing.assert_array_equal(vectors, plain_vectors)


def test_vocabulary_filter_and_lowercase(tmp_path):
    path = write(tmp_path, "glove.txt", GLOVE)
    words, vectors = read_word_vectors(path, vocabulary={"film", "the", "absent"})
    assert words == ["the", "film"]
    np.testing.assert_allclose(vectors[0], [0.1, 0.2, 0.3])
    # Lowercased, "The" collides with "the" and the first vector wins.
    words, vectors = read_word_vectors(path, lowercase=True)
    assert words == ["the", "film", "plot"]
    np.testing.assert_allclose(vectors[0], [0.1, 0.2, 0.3])
    words, vectors = read_word_vectors(path, vocabulary={"nothing"})
    assert words == [] and vectors.shape == (0, 3) and vectors.dtype == np.float32


def test_blank_lines_and_trailing_spaces_are_ignored(tmp_path):
    words, vectors = read_word_vectors(write(tmp_path, "v.txt", "\nx 1 2 \n\n  \ny 3 4\n"))
    assert words == ["x", "y"]
    np.testing.assert_array_equal(vectors, [[1, 2], [3, 4]])


@pytest.mark.parametrize(
    "text,line,reason",
    [
        ("a 1 2 3\nb 1 2\n", 2, "expected 3 values"),
        ("2 3\na 1 2 3\nb 1 2 3 4\n", 3, "expected 3 values"),
        ("a 1 2\nb 1 oops\n", 2, "non-numeric"),
        ("lonely\n", 1, "at least one value"),
    ],
)
def test_malformed_line_names_file_and_line(tmp_path, text, line, reason):
    path = write(tmp_path, "bad.txt", text)
    with pytest.raises(DataFormatError, match=reason) as info:
        read_word_vectors(path)
    assert info.value.line == line
    assert info.value.path == str(path)
    assert f"bad.txt:{line}" in str(info.value)


@pytest.mark.parametrize("text", ["", "\n\n", "3 100\n"], ids=["empty", "blank", "header_only"])
def test_file_without_vectors(tmp_path, text):
    path = write(tmp_path, "empty.txt", text)
    with pytest.raises(DataFormatError, match="no word vectors") as info:
        read_word_vectors(path)
    assert info.value.path == str(path)


def test_missing_file_names_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.txt"):
        read_word_vectors(tmp_path / "missing.txt")


# ---------------------------------------------------------------- embedding_matrix


def test_embedding_matrix_copies_known_vectors():
    vocabulary = Vocabulary(["good", "bad", "film"])
    words = ["film", "good", "other", "<pad>"]
    vectors = np.arange(16, dtype=np.float32).reshape(4, 4) + 1
    matrix, coverage = embedding_matrix(vocabulary, words, vectors)
    assert matrix.shape == (5, 4) and matrix.dtype == np.float32
    assert coverage == pytest.approx(2 / 3)
    np.testing.assert_array_equal(matrix[vocabulary.lookup("good")], vectors[1])
    np.testing.assert_array_equal(matrix[vocabulary.lookup("film")], vectors[0])
    # The padding row stays zero even when the file has a vector for "<pad>".
    assert np.all(matrix[vocabulary.pad_id] == 0.0)
    # Missing words get random vectors at the scale of the known ones.
    assert np.any(matrix[vocabulary.lookup("bad")] != 0.0)
    assert np.any(matrix[vocabulary.unk_id] != 0.0)


def test_embedding_matrix_specials_do_not_count_toward_coverage():
    vocabulary = Vocabulary(["x", "y"])
    vectors = np.eye(3, dtype=np.float32)
    matrix, coverage = embedding_matrix(vocabulary, ["<unk>", "x", "y"], vectors)
    assert coverage == 1.0
    np.testing.assert_array_equal(matrix[vocabulary.unk_id], [1, 0, 0])
    _, coverage = embedding_matrix(vocabulary, ["<unk>"], np.ones((1, 3), np.float32))
    assert coverage == 0.0


def test_embedding_matrix_scale_and_seed():
    vocabulary = Vocabulary([f"w{i}" for i in range(400)])
    vectors = np.random.default_rng(0).normal(0.0, 2.0, (10, 8)).astype(np.float32)
    matrix, coverage = embedding_matrix(vocabulary, [f"v{i}" for i in range(10)], vectors)
    assert coverage == 0.0
    assert matrix[2:].std() == pytest.approx(vectors.std(), rel=0.1)
    again, _ = embedding_matrix(vocabulary, [f"v{i}" for i in range(10)], vectors)
    np.testing.assert_array_equal(matrix, again)
    zeros, _ = embedding_matrix(vocabulary, [], np.zeros((0, 8), np.float32), scale=0.0)
    assert not zeros.any()
    small, _ = embedding_matrix(vocabulary, [], np.zeros((0, 8), np.float32))
    assert small[2:].std() == pytest.approx(0.1, rel=0.1)


def test_importing_does_not_import_tensorflow():
    code = "import sys, nlpkit.text.embeddings; print('tensorflow' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "False"


def test_standardize_dimensions_equalises_scales_for_int8():
    rng = np.random.default_rng(0)
    # SVD-like vectors: the first dimensions carry far more magnitude than the last.
    vectors = rng.normal(size=(500, 6)) * np.array([5.0, 2.0, 1.0, 0.1, 0.01, 0.0]) + 3.0
    standard = standardize_dimensions(vectors)
    assert standard.dtype == np.float32
    np.testing.assert_allclose(standard.mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(standard.std(axis=0)[:5], 1.0, atol=1e-5)
    assert np.all(standard[:, 5] == 0.0)  # a constant dimension carries nothing
    # One int8 scale for the whole table: every informative dimension keeps its detail.
    def int8_error(table):
        scale = np.abs(table).max() / 127
        error = np.abs(np.round(table / scale) * scale - table).mean(axis=0)
        return error[:5] / table.std(axis=0)[:5]
    assert int8_error(standard).max() < 0.02
    assert int8_error(vectors.astype(np.float32)).max() > 0.5


def test_learn_frequent_word_vectors_keeps_frequent_words_in_frequency_order():
    rng = np.random.default_rng(3)
    vocabulary = [f"w{i}" for i in range(40)]
    token_lists = [list(rng.choice(vocabulary, 12, p=np.linspace(2, 1, 40) / np.linspace(2, 1, 40).sum()))
                   for _ in range(300)] + [["rare"]]
    words, vectors = learn_frequent_word_vectors(token_lists, dim=5, min_frequency=2, max_words=30)
    counts = collections.Counter(token for tokens in token_lists for token in tokens)
    assert "rare" not in words and len(words) == 30
    assert [counts[w] for w in words] == sorted((counts[w] for w in words), reverse=True)
    np.testing.assert_allclose(vectors, learn_word_vectors(token_lists, words, dim=5), atol=1e-6)
