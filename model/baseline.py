"""The same-data baseline every report is read against: TF-IDF (word + char n-grams) + LR."""

from __future__ import annotations

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline, make_union


def tfidf_lr_probs(train_texts: list[str], train_y: np.ndarray, test_texts: list[str], num_classes: int) -> np.ndarray:
    """Fit on the training split, return test probabilities (N, num_classes).

    Column k is label k even when some label is absent from train_y (LogisticRegression's
    columns follow the classes it saw, which would otherwise shift the later ones); an absent
    label gets probability 0.
    """
    features = make_union(
        TfidfVectorizer(ngram_range=(1, 2), min_df=1, sublinear_tf=True),
        TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), min_df=2, sublinear_tf=True),
    )
    clf = make_pipeline(features, LogisticRegression(C=4.0, max_iter=2000))
    clf.fit(train_texts, train_y)
    out = np.zeros((len(test_texts), num_classes), dtype=np.float32)
    out[:, np.asarray(clf.classes_, dtype=np.int64)] = clf.predict_proba(test_texts)
    return out
