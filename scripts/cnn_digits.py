"""A small CNN with BatchNorm, tuned as one population: your own flax.linen module in vt.tune.

    python scripts/cnn_digits.py            # 32 CNNs, 5 epochs
    python scripts/cnn_digits.py --quick    # 4 CNNs, 1 epoch (a smoke test)

`features` is an int field, so it is structural: members are grouped by it and each group
compiles once. `dropout` is a float field: a traced per-member value (vt.nn.Dropout takes it).
BatchNorm's statistics are each member's own state.
"""

import argparse

import flax.linen as nn
import sklearn.datasets

import vmaptune as vt


class CNN(nn.Module):
    features: int = 8  # structural: one compiled program per value
    dropout: float = 0.0  # traced: a new value never recompiles

    @nn.compact
    def __call__(self, x, train: bool = False):
        x = nn.relu(nn.Conv(self.features, (3, 3))(x))
        x = nn.BatchNorm(use_running_average=not train)(x)
        x = x.reshape((x.shape[0], -1))
        x = vt.nn.Dropout(self.dropout)(x, deterministic=not train)  # like nn.Dropout, rate may be traced
        return nn.Dense(10)(x)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    X, y = sklearn.datasets.load_digits(return_X_y=True)
    data = vt.Dataset.from_arrays(X.reshape(-1, 8, 8, 1), y, task="classification")  # any trailing shape
    space = vt.Space(learning_rate=vt.LogUniform(1e-3, 1e-1), dropout=vt.Uniform(0.0, 0.5),
                     features=vt.Choice([4, 8] if args.quick else [4, 8, 16]),
                     optimizer=vt.Choice(["sgd", "adam"]))
    population, epochs = (4, 1) if args.quick else (32, 5)
    result = vt.tune(vt.Linen(CNN), space, data, strategy=vt.RandomSearch(population=population), epochs=epochs,
                     refit=0 if args.quick else 1)
    print(result.summary(5))
    print(result.members.groupby("features")["score"].agg(["count", "max", "median"]).to_string())
    return result


if __name__ == "__main__":
    main()
