"""A flax.nnx module tuned as one population: constructor arguments are hyperparameters.

    python scripts/nnx_mlp.py
    python scripts/nnx_mlp.py --quick

`width` (int) is structural: one compiled program per value. `dropout` (float) is traced into
vt.nn.NnxDropout (nnx.Dropout reads its rate in Python, so it cannot take a traced one).
BatchNorm's batch statistics are each member's own state, frozen, copied and restored with it.
"""

import argparse

import jax
from flax import nnx

import vmaptune as vt


class MLP(nnx.Module):
    def __init__(self, width: int, dropout: float, *, rngs: nnx.Rngs):
        self.hidden = nnx.Linear(64, width, rngs=rngs)
        self.norm = nnx.BatchNorm(width, momentum=0.9, rngs=rngs)
        self.drop = vt.nn.NnxDropout(dropout, rngs=rngs)
        self.out = nnx.Linear(width, 10, rngs=rngs)

    def __call__(self, x):
        return self.out(self.drop(self.norm(jax.nn.relu(self.hidden(x)))))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    data = vt.load_dataset("digits")
    space = vt.Space(width=vt.Fixed(32) if args.quick else vt.Choice([32, 128]), dropout=vt.Uniform(0.0, 0.5), learning_rate=vt.LogUniform(1e-3, 3e-1),
                     momentum=vt.OneMinusLogUniform(0.5, 0.99), optimizer=vt.Fixed("momentum"))
    population, epochs = (4, 2) if args.quick else (64, 15)
    result = vt.tune(vt.Nnx(MLP), space, data, strategy=vt.RandomSearch(population=population), epochs=epochs,
                     early_stopping=vt.EarlyStopping(patience=3), refit=0 if args.quick else 1)
    print(result.summary(5))
    return result


if __name__ == "__main__":
    main()
