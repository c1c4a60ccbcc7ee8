"""A fitted scikit-learn ``TfidfVectorizer``'s ``transform`` for word uni- and bigrams, counted with array operations.

Evidence: the same tokens, n-grams, counts and TF-IDF weighting as scikit-learn's own ``transform`` (its tokenizer,
preprocessor and fitted ``TfidfTransformer`` are reused; tests/test_tfidf.py checks the matrices are equal); only
the per-token Python loop of ``CountVectorizer._count_vocab`` is replaced, which was the calibrated models' main cost.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd


def _fast_path(vec: Any) -> bool:
    """Only the configuration this module reproduces exactly; anything else goes through scikit-learn."""
    return (getattr(vec, "analyzer", None) == "word" and getattr(vec, "input", None) == "content"
            and vec.stop_words is None and tuple(vec.ngram_range) in ((1, 1), (1, 2)) and not vec.binary
            and hasattr(vec, "vocabulary_") and hasattr(vec, "_tfidf") and vec.tokenizer is None
            and vec.preprocessor is None)


def tfidf_transform(vec: Any, docs: Sequence[str]) -> Any:
    """``vec.transform(docs)`` for a fitted ``TfidfVectorizer``: the same sparse matrix, computed faster."""
    docs = list(docs)
    if not _fast_path(vec) or not all(isinstance(d, str) for d in docs):
        return vec.transform(docs)
    import scipy.sparse as sp

    preprocess, tokenize = vec.build_preprocessor(), vec.build_tokenizer()
    tokens = [tokenize(preprocess(d)) for d in docs]
    lengths = np.fromiter(map(len, tokens), dtype=np.int64, count=len(tokens))
    doc_of = np.repeat(np.arange(len(docs), dtype=np.int64), lengths)
    ids, uniq = pd.factorize(pd.Index(list(itertools.chain.from_iterable(tokens)), dtype=object))
    ids = ids.astype(np.int64)
    vocab: dict[str, int] = vec.vocabulary_
    n_tok = max(len(uniq), 1)
    # unigrams: each distinct token's column (-1 outside the vocabulary)
    uni = np.fromiter((vocab.get(u, -1) for u in uniq), dtype=np.int64, count=len(uniq))
    rows, cols = [doc_of], [uni[ids] if len(ids) else np.empty(0, dtype=np.int64)]
    if tuple(vec.ngram_range) == (1, 2) and len(ids) > 1:
        # bigrams: consecutive tokens of one document, as (first id, second id) keys looked up in the vocabulary's
        # bigrams (split back into their two tokens; a bigram with a token these documents lack cannot occur)
        position = {u: k for k, u in enumerate(uniq)}
        keys, columns = [], []
        for feature, column in vocab.items():
            first, sep, second = feature.partition(" ")
            if sep and first in position and second in position:
                keys.append(position[first] * n_tok + position[second])
                columns.append(column)
        table = np.asarray(keys, dtype=np.int64)
        # only pairs whose two tokens both occur in some vocabulary bigram in that place are looked up
        starts, ends = np.zeros(n_tok, dtype=bool), np.zeros(n_tok, dtype=bool)
        starts[table // n_tok], ends[table % n_tok] = True, True
        same_doc = (doc_of[:-1] == doc_of[1:]) & starts[ids[:-1]] & ends[ids[1:]]
        pair = ids[:-1][same_doc] * n_tok + ids[1:][same_doc]
        order = np.argsort(table)
        table, columns_arr = table[order], np.asarray(columns, dtype=np.int64)[order]
        at = np.searchsorted(table, pair)
        found = at < len(table)
        found[found] = table[at[found]] == pair[found]
        rows.append(doc_of[:-1][same_doc])
        cols.append(np.where(found, columns_arr[np.minimum(at, max(len(table) - 1, 0))] if len(table) else -1, -1))
    r, c = np.concatenate(rows), np.concatenate(cols)
    keep = c >= 0
    X = sp.csr_array((np.ones(int(keep.sum()), dtype=vec.dtype), (r[keep], c[keep])),
                     shape=(len(docs), len(vocab)), dtype=vec.dtype)
    X.sum_duplicates()
    X.sort_indices()
    X.indices = X.indices.astype(np.int32)
    X.indptr = X.indptr.astype(np.int32)
    try:
        from sklearn.utils._sparse import _align_api_if_sparse

        X = _align_api_if_sparse(X)
    except ImportError:  # older scikit-learn: spmatrix throughout
        X = sp.csr_matrix(X)
    return vec._tfidf.transform(X, copy=False)
