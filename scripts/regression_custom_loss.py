"""Regression with two targets and your own loss: Huber against squared error, on diabetes.

    python scripts/regression_custom_loss.py
    python scripts/regression_custom_loss.py --quick

The targets are disease progression and body-mass index (from the data's own column, scaled),
so y has shape (n, 2) and the network ends with nn.Dense(2). `loss=` takes a name ("huber",
"mse", "mae", "log_cosh") or fn(outputs, targets) -> one loss per example; the metric (r2 over both
targets, scikit-learn's uniform average) is what selection uses. The refit best model's
predictions come back in the targets' own units (it undoes the targets' standardisation).
"""

import argparse

import flax.linen as nn
import jax.numpy as jnp
import numpy as np
import sklearn.datasets

import vmaptune as vt


class Regressor(nn.Module):
    hidden: int = 32
    dropout: float = 0.0

    @nn.compact
    def __call__(self, x, train: bool = False):
        x = nn.relu(nn.Dense(self.hidden)(x))
        x = vt.nn.Dropout(self.dropout)(x, deterministic=not train)
        return nn.Dense(2)(x)


def pseudo_huber(out, y, delta=0.5):
    """Your own loss: one value per example (averaged over the two targets)."""
    r = (out - y) / delta
    return jnp.mean(delta**2 * (jnp.sqrt(1 + r**2) - 1), axis=-1)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    X, y = sklearn.datasets.load_diabetes(return_X_y=True)
    targets = np.stack([y, 100 * X[:, 2]], axis=1)  # two targets: progression and scaled BMI
    data = vt.Dataset.from_arrays(np.delete(X, 2, axis=1), targets, task="regression")
    space = vt.Space(learning_rate=vt.LogUniform(1e-3, 3e-2), dropout=vt.Uniform(0.0, 0.3),
                     hidden=vt.Fixed(16) if args.quick else vt.Choice([16, 64]), optimizer=vt.Fixed("adam"))
    population, epochs = (2, 2) if args.quick else (48, 40)
    losses = (("pseudo_huber", pseudo_huber),) if args.quick else \
        (("mse", "mse"), ("huber", "huber"), ("pseudo_huber", pseudo_huber))
    results = {}
    for name, loss in losses:
        results[name] = vt.tune(vt.Linen(Regressor, loss=loss), space, data, vt.RandomSearch(population=population),
                                epochs=epochs, batch_size=32, metric="r2", refit=1, progress=False)
        r = results[name]
        print(f"loss {name:>12}: best validation r2 {r.best_score:.3f}, test r2 of the refit best {r.test_score:.3f}, "
              f"best {r.best_params}")
    X_test, y_test = data.raw("test")  # (raw rows, as new data comes: the model scales them itself)
    predicted = r.best_model().predict(X_test[:3])  # (3, 2): progression and BMI, in their units
    print("the last search's refit best on three test rows (progression, BMI x 100):")
    for row, truth in zip(np.asarray(predicted), y_test[:3]):
        print(f"  predicted {row[0]:7.1f} {row[1]:6.1f}   true {truth[0]:7.1f} {truth[1]:6.1f}")
    return results


if __name__ == "__main__":
    main()
