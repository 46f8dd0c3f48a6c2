"""Batch normalisation against none, as one structural choice in one search (seed 002): with it,
training should depend less on the initial weights' scale and on the learning rate.

    python scripts/batchnorm_vs_not.py            # 64 MLPs on digits, 10 epochs
    python scripts/batchnorm_vs_not.py --quick

`batch_norm` is a bool field, so the two kinds compile as two programs; init_scale (which
multiplies every kernel at initialisation) and the learning rate are searched over wide ranges
for both, and the table compares them across those ranges.
"""

import argparse

import flax.linen as nn
import numpy as np

import vmaptune as vt


class Net(nn.Module):
    batch_norm: bool = False
    width: int = 64

    @nn.compact
    def __call__(self, x, train: bool = False):
        for _ in range(2):
            x = nn.Dense(self.width)(x)
            if self.batch_norm:
                x = nn.BatchNorm(use_running_average=not train, momentum=0.9)(x)
            x = nn.relu(x)
        return nn.Dense(10)(x)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    data = vt.load_dataset("digits")
    space = vt.Space(batch_norm=vt.Choice([False, True]), init_scale=vt.LogUniform(0.05, 20.0),
                     learning_rate=vt.LogUniform(1e-3, 0.3), momentum=vt.Fixed(0.9), optimizer=vt.Fixed("momentum"))
    population, epochs = (4, 1) if args.quick else (64, 10)
    result = vt.tune(vt.Linen(Net), space, data, strategy=vt.RandomSearch(population=population), epochs=epochs)
    df = result.to_dataframe()
    df["init"] = np.where(df["init_scale"] < 0.5, "small (<0.5)", np.where(df["init_scale"] > 2, "large (>2)", "near 1"))
    table = df.pivot_table(index="init", columns="batch_norm", values="score", aggfunc="median")
    print("median validation accuracy by initial weight scale, without / with batch normalisation:")
    print(table.to_string(float_format="{:.3f}".format))
    for bn, group in df.groupby("batch_norm"):
        ok = group["score"].fillna(0)
        print(f"batch_norm={bn}: best {ok.max():.3f}, median {ok.median():.3f}, "
              f"share above 0.9: {(ok > 0.9).mean():.2f}, diverged: {(group['status'] == 'diverged').sum()}")
    return result


if __name__ == "__main__":
    main()
