"""Seed 004's search (Hands-On ML, chapter 10) with the built-in MLP: 0-3 hidden layers of 1-99
units, a reciprocal (log-uniform) learning rate from 3e-4 to 3e-2, SGD, mean squared error,
early stopping with patience 10, 3-fold cross-validation; here on diabetes, 20 settings trained at
once as 20 x 3 folds of one population.

    python scripts/seed004_keras_regressor.py
    python scripts/seed004_keras_regressor.py --quick

The book's RandomizedSearchCV(keras_reg, param_distribs, n_iter=20, cv=3) then reads
best_params_, best_score_ and predicts with the best model; vt.PopulationSearchCV gives that same
scikit-learn interface.
"""

import argparse

import vmaptune as vt


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    data = vt.load_dataset("diabetes")
    space = vt.Space(
        n_hidden=vt.IntUniform(0, 3),                 # "n_hidden": [0, 1, 2, 3]
        n_units=vt.IntUniform(1, 99),                 # "n_neurons": np.arange(1, 100)
        learning_rate=vt.LogUniform(3e-4, 3e-2),      # reciprocal(3e-4, 3e-2)
        optimizer=vt.Fixed("sgd"),                    # keras.optimizers.SGD
    )
    population, epochs = (4, 3) if args.quick else (20, 100)
    result = vt.tune(vt.MLP(), space, data, strategy=vt.RandomSearch(population=population), epochs=epochs,
                     batch_size=32, metric="neg_mse", cv=3, refit=0 if args.quick else 1,
                     early_stopping=vt.EarlyStopping(patience=10, monitor="loss"))
    print(result.summary(5))
    print(f"\nbest_params_: {result.best_params}")
    print(f"best_score_ (mean over 3 folds, negated MSE in standardised units): {result.best_score:.4f}")
    return result


if __name__ == "__main__":
    main()
