"""scikit-learn's estimator interface: one network as an estimator, and a search whose candidates x
folds train as one population.

    est = vt.MLPClassifier(n_hidden=2, n_units=64, epochs=50)       # fit / predict / score, in Pipelines
    search = vt.PopulationSearchCV(est, {"learning_rate": loguniform(1e-4, 1e-1),
                                         "n_units": list(range(1, 100))}, n_iter=64, cv=3).fit(X, y)
    search.best_params_, search.best_score_, search.best_estimator_.predict(X_new)
    pd.DataFrame(search.cv_results_)

An estimator's parameters are vmaptune's hyperparameter names (n_hidden, n_units, learning_rate,
momentum, ...), so a search space names them directly. `fit` trains one member with the engine
the searches use (standardising X with its own statistics, as vt.Dataset does); a search trains
every candidate on every fold at once (`vt.tune(cv=...)`), then refits the best on all of X: for
all its epochs, or with early stopping for the epochs the search chose.

estimators.py holds the estimators, search_cv.py the search, inputs.py what both check and convert.
"""

from vmaptune.sklearn.estimators import MLPClassifier, MLPRegressor, NetworkClassifier, NetworkRegressor
from vmaptune.sklearn.search_cv import PopulationSearchCV, _MetricScorer, to_space  # noqa: F401
# (_MetricScorer: a search scored with a vt.Metric keeps one as scorer_, and a search pickled
# before this package was one module names it vmaptune.sklearn._MetricScorer)

__all__ = ["MLPClassifier", "MLPRegressor", "NetworkClassifier", "NetworkRegressor", "PopulationSearchCV",
           "to_space"]
