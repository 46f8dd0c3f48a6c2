"""Batch normalisation against none, as one structural choice in one search. Seed 002 says that
with it, training depends less on the initial weights' scale and on the learning rate; this
script puts that to the test and prints what it finds.

    python scripts/batchnorm_vs_not.py            # 64 MLPs on digits, 10 epochs
    python scripts/batchnorm_vs_not.py --quick

`batch_norm` is a bool field, so the two kinds compile as two programs; init_scale and the
learning rate are searched over wide ranges for both, and the table compares them across those
ranges. init_scale is the module's own field: it multiplies the hidden layers' initial kernels,
the ones a BatchNorm follows (vmaptune's own init_scale, for a module without the field,
multiplies every kernel, the output layer's too, which no normalisation undoes).

What it found (the full run, seed 0; medians of 3 to 18 members a cell): BatchNorm scored higher
at small and ordinary scales and at middle and high learning rates, lower at large scales and low
learning rates. A BatchNorm undoes its kernel's scale, so a kernel 10x larger takes steps 100x
smaller against its size (its effective learning rate is lr / |w|^2): large scales and low
learning rates both train slowly, and 10 epochs do not make up for it. So the claim does not
hold here as stated: BatchNorm raised the best and the median score, and its networks still
depended on the initial scale and on the learning rate, through that effective learning rate.
"""

import argparse

import flax.linen as nn
import numpy as np

import vmaptune as vt


class Net(nn.Module):
    batch_norm: bool = False
    width: int = 64
    init_scale: float = 1.0  # (traced: each member's own scale, one program per batch_norm value)

    @nn.compact
    def __call__(self, x, train: bool = False):
        def scaled(key, shape, dtype=np.float32):
            return self.init_scale * nn.initializers.lecun_normal()(key, shape, dtype)

        for _ in range(2):
            x = nn.Dense(self.width, kernel_init=scaled)(x)
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
    counts = df.pivot_table(index="init", columns="batch_norm", values="score", aggfunc="size")
    print("median validation accuracy by initial weight scale, without / with batch normalisation:")
    print(table.to_string(float_format="{:.3f}".format))
    print("members in each cell:")
    print(counts.to_string())
    df["lr"] = np.where(df["learning_rate"] < 0.01, "low (<0.01)", np.where(df["learning_rate"] > 0.05, "high (>0.05)",
                                                                           "middle"))
    print("median validation accuracy by learning rate, without / with batch normalisation:")
    print(df.pivot_table(index="lr", columns="batch_norm", values="score", aggfunc="median").to_string(
        float_format="{:.3f}".format))
    for bn, group in df.groupby("batch_norm"):
        ok = group["score"].fillna(0)
        print(f"batch_norm={bn}: best {ok.max():.3f}, median {ok.median():.3f}, "
              f"share above 0.9: {(ok > 0.9).mean():.2f}, diverged: {(group['status'] == 'diverged').sum()}")
    return result


if __name__ == "__main__":
    main()
