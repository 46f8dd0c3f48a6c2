"""Seed 004's RandomizedSearchCV example, line for line, with vt.PopulationSearchCV: every candidate
on every fold trains at once as one population.

    python scripts/seed004_search_cv.py
    python scripts/seed004_search_cv.py --quick

The book (Hands-On ML, chapter 10) wraps a Keras model for scikit-learn, searches 0-3 hidden
layers of 1-99 neurons and a reciprocal learning rate with SGD and early stopping (patience 10),
3-fold cross-validated, then reads best_params_, best_score_ and predicts with the best model. The
book's data is California housing; diabetes ships with scikit-learn, so it stands in here.
"""

import argparse

from scipy.stats import reciprocal
from sklearn.datasets import load_diabetes
from sklearn.model_selection import train_test_split

import vmaptune as vt


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    X, y = load_diabetes(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=42)

    # keras_reg = keras.wrappers.scikit_learn.KerasRegressor(build_model)
    keras_reg = vt.MLPRegressor(optimizer="sgd", momentum=0.0,  # (Keras' SGD; scikit-learn's default is 0.9)
                                epochs=5 if args.quick else 100, batch_size=32, early_stopping=True, patience=10)
    param_distribs = {
        "n_hidden": [0, 1, 2, 3],
        "n_units": list(range(1, 100)),               # np.arange(1, 100)
        "learning_rate": reciprocal(3e-4, 3e-2),
    }
    # rnd_search_cv = RandomizedSearchCV(keras_reg, param_distribs, n_iter=20, cv=3)
    rnd_search_cv = vt.PopulationSearchCV(keras_reg, param_distribs, n_iter=4 if args.quick else 20, cv=3,
                                          random_state=42)
    rnd_search_cv.fit(X_train, y_train)
    print("best_params_:", rnd_search_cv.best_params_)
    print(f"best_score_ (r2, 3-fold): {rnd_search_cv.best_score_:.4f}")
    model = rnd_search_cv.best_estimator_.model_     # the trained network (vt.TrainedModel)
    print("best_estimator_.model_:", model)
    print("predict(X_test[:3]):", rnd_search_cv.predict(X_test[:3]).round(1), "true:", y_test[:3])
    print(f"test r2: {rnd_search_cv.score(X_test, y_test):.4f}")
    return rnd_search_cv


if __name__ == "__main__":
    main()
