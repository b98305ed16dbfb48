"""The same-data baseline every report is read against: TF-IDF (word + char n-grams) + LR."""

from __future__ import annotations

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline, make_union


def tfidf_lr_probs(train_texts: list[str], train_y: np.ndarray, test_texts: list[str]) -> np.ndarray:
    """Fit on the training split, return test probabilities (N, C)."""
    features = make_union(
        TfidfVectorizer(ngram_range=(1, 2), min_df=1, sublinear_tf=True),
        TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), min_df=2, sublinear_tf=True),
    )
    clf = make_pipeline(features, LogisticRegression(C=4.0, max_iter=2000))
    clf.fit(train_texts, train_y)
    return np.asarray(clf.predict_proba(test_texts), dtype=np.float32)
