"""Imbalanced classes: class weights (sample_weight) and label smoothing searched in your own loss.

    python scripts/class_weights_label_smoothing.py
    python scripts/class_weights_label_smoothing.py --quick

Digits with the 0s kept and 90 % of every other class dropped: the 0s are half of the rows. Two
searches of the same space, each setting scored on 5 folds' balanced accuracy (the mean of the
classes' recalls), the best refit and tested:

- unweighted: every row counts the same in the training loss, so the 0s dominate it;
- weighted: `sample_weight` gives each row its class's inverse frequency (scikit-learn's
  class_weight="balanced"), so every class weighs the same in the loss.

With a few test rows per rare class the two test scores move by several points from one split
to another: compare the cross-validated scores, and on your own data.

The loss is yours and reads a hyperparameter: `smoothed(outputs, targets, hp)` smooths the labels
by the member's `label_smoothing`, which the space searches like the learning rate (each member
its own value, in one compiled program).
"""

import argparse

import jax
import numpy as np
import optax
import sklearn.datasets
from sklearn.utils.class_weight import compute_sample_weight

import vmaptune as vt


def smoothed(outputs, targets, hp):
    """Cross-entropy against labels smoothed by the member's label_smoothing: one loss per row."""
    labels = optax.smooth_labels(jax.nn.one_hot(targets, outputs.shape[-1]), hp["label_smoothing"])
    return optax.softmax_cross_entropy(outputs, labels)


def imbalanced_digits(seed: int = 0):
    """Digits: every 0, and a tenth of each other class."""
    X, y = sklearn.datasets.load_digits(return_X_y=True)
    rng = np.random.default_rng(seed)
    keep = (y == 0) | (rng.random(len(y)) < 0.1)
    return X[keep], y[keep]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    X, y = imbalanced_digits()
    print(f"{len(y)} rows; class counts {np.bincount(y).tolist()}")
    space = vt.Space(learning_rate=vt.LogUniform(1e-3, 3e-2), label_smoothing=vt.Uniform(0.0, 0.2),
                     optimizer=vt.Fixed("adam"))
    population, epochs = (4, 2) if args.quick else (64, 60)
    model = vt.MLP(hidden=1, units=64, loss=smoothed)
    results = {}
    for name, weights in (("unweighted", None), ("weighted", compute_sample_weight("balanced", y))):
        data = vt.Dataset.from_arrays(X, y, "classification", sample_weight=weights, seed=0)
        results[name] = r = vt.tune(model, space, data, vt.RandomSearch(population=population), epochs=epochs,
                                    batch_size=32, metric="balanced_accuracy", cv=5, refit=1, progress=False)
        print(f"{name:>10}: best validation balanced accuracy {r.best_score:.3f}, test {r.test_score:.3f}, "
              f"best {r.best_params}")
    return results


if __name__ == "__main__":
    main()
