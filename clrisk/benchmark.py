"""A flexible model as an accuracy benchmark for the risk model (methodology §3).

The CLRISK logit is additive on the log-odds scale: each feature moves the odds
by the same factor for every child. A flexible model — gradient-boosted trees by
default — learns interactions and non-linear effects from the same features. Fitted
and scored on the same cross-validation folds, it shows what the logit leaves on
the table: when the benchmark's out-of-fold AUC is clearly higher, the logit's
feature set misses structure (an interaction such as rural × not at school, a
non-linear age effect) worth adding; when the two are close, the simple and
explainable model loses nothing that matters.

The benchmark reads the features exactly as the risk model does: the level index
of each categorical feature (as a native categorical split when it has at most
255 levels, or the model's ``max_bins``; as an ordered code above) and the
numeric features in the specification's units, after the same row validation,
with the same survey weights.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.base import clone
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.utils.validation import has_fit_parameter

from clrisk.exceptions import InvalidParameterError
from clrisk.features import CodedFrame

__all__ = ["benchmark_estimator", "benchmark_matrix", "fit_predict_benchmark"]

#: Categorical features with more levels than this are split as ordered codes
#: (the most a histogram gradient-boosting model takes as categories).
_MAX_CATEGORIES = 255


def benchmark_estimator(benchmark: Any, random_state: int | None) -> Any:
    """The (unfitted) benchmark model that `benchmark` asks for.

    Parameters
    ----------
    benchmark : True or scikit-learn classifier
        True for the default: scikit-learn's ``HistGradientBoostingClassifier``
        with its default settings, except that every training row is used for
        the trees (no early stopping, which would hold out a random tenth of
        the rows, split by row rather than by PSU). A classifier instance with
        ``fit(X, y, sample_weight=...)`` and ``predict_proba`` is used as given
        (cloned per fold).
    random_state : int or None
        Seed of the default model (the cross-validation's own seed).

    Returns
    -------
    estimator

    Raises
    ------
    InvalidParameterError
        When `benchmark` is neither True nor such a classifier instance.
    """
    if isinstance(benchmark, bool | np.bool_) and benchmark:
        return HistGradientBoostingClassifier(
            early_stopping=False, random_state=random_state
        )
    if isinstance(benchmark, type):
        raise InvalidParameterError(
            "The 'benchmark' parameter of cross_validate takes a classifier "
            f"instance, not the class {benchmark.__name__}: write "
            f"{benchmark.__name__}()."
        )
    if not (
        callable(getattr(benchmark, "fit", None))
        and callable(getattr(benchmark, "predict_proba", None))
    ):
        raise InvalidParameterError(
            "The 'benchmark' parameter of cross_validate must be True (gradient "
            "boosting) or a scikit-learn classifier with fit and predict_proba; "
            f"got {type(benchmark).__name__}."
        )
    if not has_fit_parameter(benchmark, "sample_weight"):
        raise InvalidParameterError(
            f"The benchmark {type(benchmark).__name__} does not take sample_weight "
            "in fit; the survey weights must reach it. Use a classifier that does "
            "(e.g. HistGradientBoostingClassifier, RandomForestClassifier)."
        )
    return benchmark


def benchmark_matrix(
    coded: CodedFrame, max_categories: int = _MAX_CATEGORIES
) -> tuple[np.ndarray, np.ndarray]:
    """The features of a coded table as the benchmark reads them.

    Parameters
    ----------
    coded : CodedFrame
    max_categories : int, default 255
        Categorical features with more levels are marked as ordered codes.

    Returns
    -------
    X : ndarray of shape (n_rows, n_categorical + n_numeric), float64
        Level index of each categorical feature, then the numeric features.
    categorical : ndarray of shape (n_categorical + n_numeric,), bool
        Which columns are categories (at most `max_categories` levels).
    """
    X = np.column_stack([coded.codes.astype(np.float64), coded.numerics])
    levels = [len(f.levels) for f in coded.spec.categorical]
    categorical = np.zeros(X.shape[1], dtype=bool)
    categorical[: len(levels)] = np.asarray(levels) <= max_categories
    return X, categorical


def fit_predict_benchmark(
    estimator: Any,
    train: CodedFrame,
    y: np.ndarray,
    w: np.ndarray,
    test: CodedFrame,
) -> np.ndarray:
    """Fit a clone of `estimator` on `train` and predict `test`.

    Parameters
    ----------
    estimator : scikit-learn classifier
        From :func:`benchmark_estimator`. A ``HistGradientBoostingClassifier``
        whose ``categorical_features`` is left at its default is told which
        columns are categories (those with at most ``max_bins`` levels).
    train : CodedFrame
        The training rows, coded.
    y : ndarray of shape (n_train,)
        Outcome of the training rows, 0/1.
    w : ndarray of shape (n_train,)
        Survey weights of the training rows.
    test : CodedFrame
        The rows to predict, coded with the same specification.

    Returns
    -------
    ndarray of shape (n_test,)
        Probability of the outcome for each test row.
    """
    model = clone(estimator)
    hgb = isinstance(model, HistGradientBoostingClassifier)
    limit = min(_MAX_CATEGORIES, model.max_bins) if hgb else _MAX_CATEGORIES
    X, categorical = benchmark_matrix(train, limit)
    if hgb and _default_categories(model):
        model.set_params(categorical_features=categorical)
    model.fit(X, y.astype(int), sample_weight=w)
    X_test, _ = benchmark_matrix(test, limit)
    p: np.ndarray = model.predict_proba(X_test)[:, list(model.classes_).index(1)]
    return p


def _default_categories(model: HistGradientBoostingClassifier) -> bool:
    default = HistGradientBoostingClassifier().get_params()["categorical_features"]
    given = model.get_params()["categorical_features"]
    # a user's mask may be an array: compare only a value of the default's kind
    return isinstance(given, str | None) and given == default
