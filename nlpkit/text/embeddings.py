"""Word vectors: read GloVe/word2vec text files, or learn them from raw text (PPMI + SVD).

Learning is written here, not taken from a library: gensim (word2vec) is not a dependency
and would be the only reason to add one, while positive PMI of a distance-weighted
co-occurrence matrix factorised by truncated SVD (Levy, Goldberg & Dagan, 2015, TACL
"Improving distributional similarity with lessons learned from word embeddings") gives
vectors of comparable quality in well under a minute on a few million tokens with
numpy/scipy alone. Pure Python + numpy + scipy: no TensorFlow.
"""

import collections

import numpy as np
import scipy.sparse
import scipy.sparse.linalg

from nlpkit.errors import DataFormatError
from nlpkit.data.readers import iter_lines


def cooccurrence_matrix(token_lists, word_index, window=5):
    """Symmetric co-occurrence counts weighted by 1/distance, as a CSR matrix.

    Args:
        token_lists: iterable of token lists (one per sentence/document; windows never
            cross from one list into the next).
        word_index: dict token -> row; other tokens are skipped (but still count as distance).
        window: int, default 5. Maximum distance between co-occurring tokens.

    Example:
        >>> m = cooccurrence_matrix([["a", "b", "a"]], {"a": 0, "b": 1}, window=1)
        >>> m.toarray().tolist()
        [[0.0, 2.0], [2.0, 0.0]]
    """
    if window < 1:
        raise ValueError(f"`window` must be >= 1. Received: window={window}")
    size = len(word_index)
    pieces = []
    for tokens in token_lists:
        pieces.append(np.fromiter((word_index.get(token, -1) for token in tokens), np.int64, len(tokens)))
        pieces.append(np.full(window, -1, np.int64))  # separator: no window spans two texts
    sequence = np.concatenate(pieces) if pieces else np.zeros(0, np.int64)
    counts = scipy.sparse.csr_matrix((size, size), dtype=np.float64)
    for distance in range(1, window + 1):
        left, right = sequence[:-distance], sequence[distance:]
        valid = (left >= 0) & (right >= 0)
        weights = np.full(int(valid.sum()), 1.0 / distance)
        pairs = scipy.sparse.coo_matrix((weights, (left[valid], right[valid])), shape=(size, size)).tocsr()
        counts = counts + pairs + pairs.T
    return counts


def ppmi_matrix(counts, context_smoothing=0.75):
    """Positive pointwise mutual information of a co-occurrence matrix (sparse in, sparse out).

    Context counts are raised to ``context_smoothing`` (0.75, as in word2vec's negative
    sampling), which stops rare contexts from getting inflated PMI values.
    """
    counts = counts.tocoo()
    total = counts.sum()
    if total == 0:
        return scipy.sparse.csr_matrix(counts.shape, dtype=np.float32)
    word_totals = np.asarray(counts.sum(axis=1)).ravel()
    context = np.asarray(counts.sum(axis=0)).ravel() ** context_smoothing
    context = context / context.sum()
    pmi = (
        np.log(counts.data)
        - np.log(total)
        - np.log(word_totals[counts.row] / total)
        - np.log(context[counts.col])
    )
    keep = pmi > 0
    return scipy.sparse.csr_matrix(
        (pmi[keep].astype(np.float32), (counts.row[keep], counts.col[keep])), shape=counts.shape
    )


def learn_word_vectors(token_lists, words, dim=300, window=5, seed=0):
    """Learns unit-length word vectors for ``words`` from ``token_lists`` with PPMI + SVD.

    Args:
        token_lists: iterable of token lists (unlabelled text, already tokenized).
        words: list of str, the words to learn vectors for (e.g. those seen >= 3 times).
        dim: int, default 300. Vector size; must be < len(words).
        window: int, default 5. Co-occurrence window.
        seed: int, default 0. Seed of the SVD's starting vector (results are deterministic).

    Returns:
        float32 array ``(len(words), dim)``; rows are L2-normalised (zero for words that
        never co-occur with another listed word).

    Example:
        >>> vectors = learn_word_vectors(token_lists, ["good", "bad", ...], dim=100)
    """
    words = list(words)
    if not 0 < dim < len(words):
        raise ValueError(f"`dim` must be in (0, {len(words)}) for {len(words)} words. Received: dim={dim}")
    index = {word: row for row, word in enumerate(words)}
    ppmi = ppmi_matrix(cooccurrence_matrix(token_lists, index, window=window))
    start = np.random.default_rng(seed).uniform(-1, 1, len(words))
    left, singular, _ = scipy.sparse.linalg.svds(ppmi, k=dim, v0=start)
    # Eigenvalue weighting p=0.5 (U * sqrt(S)) worked better than U*S in Levy et al.
    vectors = (left * np.sqrt(singular)).astype(np.float32)[:, ::-1]
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.divide(vectors, norms, out=np.zeros_like(vectors), where=norms > 0)


def learn_frequent_word_vectors(token_lists, dim=300, window=5, min_frequency=3, max_words=None):
    """`learn_word_vectors` for the words seen at least ``min_frequency`` times.

    Words are ranked by frequency (ties alphabetically) and cut to ``max_words``.

    Returns:
        ``(words, vectors)``: list of str and float32 ``(len(words), dim)``.

    Example:
        >>> words, vectors = learn_frequent_word_vectors(token_lists, dim=100, max_words=40000)
    """
    token_lists = list(token_lists)
    counts = collections.Counter(token for tokens in token_lists for token in tokens)
    words = sorted(
        (word for word, count in counts.items() if count >= min_frequency),
        key=lambda word: (-counts[word], word),
    )[:max_words]
    return words, learn_word_vectors(token_lists, words, dim=dim, window=window)


def standardize_dimensions(vectors):
    """Centres every dimension of ``vectors`` and scales it to unit variance.

    SVD vectors put most of their magnitude into the first few dimensions. Int8
    quantization with one scale per tensor (what TFLite's dynamic-range quantization uses
    for embedding tables and activations) then leaves the small dimensions a handful of
    levels; with every dimension on the same scale, each keeps the same precision.
    Dimensions that are constant become zero.

    Example:
        >>> standardize_dimensions(np.array([[1.0, 10.0], [3.0, 30.0]])).tolist()
        [[-1.0, -1.0], [1.0, 1.0]]
    """
    vectors = np.asarray(vectors, dtype=np.float64)  # float32 loses small spreads around big means
    centred = vectors - vectors.mean(axis=0, keepdims=True)
    spread = centred.std(axis=0, keepdims=True)
    standard = np.divide(centred, spread, out=np.zeros_like(centred), where=spread > 1e-12 * (1 + np.abs(vectors).max()))
    return standard.astype(np.float32)


def read_word_vectors(path, vocabulary=None, lowercase=False):
    """Reads a GloVe or word2vec text file (``word v1 v2 ...`` per line).

    A word2vec header line (``count dim``) is recognised and skipped. Malformed lines raise
    `DataFormatError` with the file and line.

    Args:
        path: the vectors file (gzip is read transparently).
        vocabulary: optional set/dict of words to keep (saves memory on big files).
        lowercase: lowercase words before matching; the first vector of a word wins.

    Returns:
        ``(words, vectors)``: list of str and a float32 array ``(len(words), dim)``.

    Example:
        >>> words, vectors = read_word_vectors("glove.6B.100d.txt", vocabulary=vocab_words)
    """
    words, rows, dim, seen = [], [], None, set()
    for number, line in iter_lines(path):
        parts = line.rstrip().split(" ")
        if not line.strip():
            continue
        if number == 1 and len(parts) == 2 and all(part.isdigit() for part in parts):
            continue
        word, values = parts[0], parts[1:]
        if dim is None:
            dim = len(values)
            if dim == 0:
                raise DataFormatError("a vector line needs a word and at least one value", path, number)
        if len(values) != dim:
            raise DataFormatError(f"expected {dim} values after the word, found {len(values)}", path, number)
        if lowercase:
            word = word.lower()
        if word in seen or (vocabulary is not None and word not in vocabulary):
            continue
        try:
            rows.append(np.asarray(values, dtype=np.float32))
        except ValueError:
            raise DataFormatError(f"non-numeric value in the vector of {word!r}", path, number) from None
        words.append(word)
        seen.add(word)
    if dim is None:
        raise DataFormatError("no word vectors found", path)
    return words, np.stack(rows) if rows else np.zeros((0, dim), np.float32)


def embedding_matrix(vocabulary, words, vectors, scale=None, seed=0):
    """Builds an embedding table for ``vocabulary`` from ``(words, vectors)``.

    Tokens with a vector get it; other tokens get small random vectors with the same
    per-dimension scale as the known ones; the padding row is zero.

    Returns:
        ``(matrix, coverage)``: float32 ``(len(vocabulary), dim)`` and the fraction of
        non-special tokens that had a vector.
    """
    dim = vectors.shape[1]
    lookup = {word: row for row, word in enumerate(words)}
    if scale is None:
        scale = float(vectors.std()) if len(vectors) else 0.1
    rng = np.random.default_rng(seed)
    matrix = rng.normal(0.0, scale, (len(vocabulary), dim)).astype(np.float32)
    found = 0
    tokens = vocabulary.tokens
    specials = len(vocabulary.special_tokens)
    for token_id, token in enumerate(tokens):
        row = lookup.get(token)
        if row is not None:
            matrix[token_id] = vectors[row]
            found += token_id >= specials
    matrix[vocabulary.pad_id] = 0.0
    regular = max(len(tokens) - specials, 1)
    return matrix, found / regular
