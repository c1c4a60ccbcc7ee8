"""alliance.tfidf: the array-counted TF-IDF transform gives scikit-learn's own matrix, entry for entry."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.feature_extraction.text import TfidfVectorizer

from alliance.tfidf import tfidf_transform

TRAIN = ["I feel heard and I feel better", "you said you feel stuck, stuck again", "Ça va? Très bien, merci!",
         "we we tried the plan", "nothing helps", "the plan helps a bit", "I don't know what to say"] * 3
DOCS = ["I feel stuck and the plan helps", "", "   ", "stuck stuck stuck feel feel", "Très bien — we tried",
        "unknown words only here", "plan", "I don't know, I feel heard"]


@pytest.mark.parametrize("kwargs", [
    {"ngram_range": (1, 2), "sublinear_tf": True, "dtype": np.float32, "max_features": 30},
    {"ngram_range": (1, 2), "sublinear_tf": True, "min_df": 2},
    {"ngram_range": (1, 1)},
    {"ngram_range": (1, 2), "token_pattern": r"(?u)\b\w+\b", "lowercase": False},
])
def test_equals_sklearn_transform(kwargs):
    vec = TfidfVectorizer(**kwargs).fit(TRAIN)
    want, got = vec.transform(DOCS), tfidf_transform(vec, DOCS)
    assert type(got) is type(want) and got.dtype == want.dtype and got.shape == want.shape
    assert np.array_equal(got.indptr, want.indptr) and np.array_equal(got.indices, want.indices)
    assert np.array_equal(got.data, want.data)


def test_other_configurations_fall_back_to_sklearn():
    vec = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 3)).fit(TRAIN)
    assert np.array_equal(tfidf_transform(vec, DOCS).toarray(), vec.transform(DOCS).toarray())
    vec = TfidfVectorizer(ngram_range=(1, 3)).fit(TRAIN)
    assert np.array_equal(tfidf_transform(vec, DOCS).toarray(), vec.transform(DOCS).toarray())
