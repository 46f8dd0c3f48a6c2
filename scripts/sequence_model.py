"""A sequence model on integer tokens: embedding, 1-D convolution, max over time.

    python scripts/sequence_model.py
    python scripts/sequence_model.py --quick

The task (synthetic, made here): sequences of 24 tokens from a vocabulary of 12; the label says
whether the bigram (3, 7) occurs anywhere. Token ids are integer inputs, which vt.Dataset keeps as
they are (no standardisation). `embed` and `kernel` are structural (one program per pair),
the learning rate and dropout traced.
"""

import argparse

import flax.linen as nn
import numpy as np

import vmaptune as vt

VOCAB, LENGTH = 12, 24


def bigram_task(n: int, seed: int = 0):
    """(n, LENGTH) int tokens and (n,) labels: does token 3 come right before token 7? Balanced.
    Every row holds one 3 and one 7, next to each other: positives as (3, 7), negatives as (7, 3).
    No token, and no count of tokens, gives the label away: only their order does."""
    rng = np.random.default_rng(seed)
    others = np.setdiff1d(np.arange(VOCAB), [3, 7])
    X = rng.choice(others, size=(n, LENGTH))
    y = rng.integers(0, 2, size=n)
    at = rng.integers(0, LENGTH - 1, size=n)
    rows = np.arange(n)
    X[rows, at] = np.where(y == 1, 3, 7)
    X[rows, at + 1] = np.where(y == 1, 7, 3)
    return X, y


class BigramNet(nn.Module):
    embed: int = 8
    kernel: int = 2
    dropout: float = 0.0

    @nn.compact
    def __call__(self, tokens, train: bool = False):
        x = nn.Embed(VOCAB, self.embed)(tokens)  # (batch, time, embed)
        x = nn.relu(nn.Conv(16, (self.kernel,))(x))
        x = vt.nn.Dropout(self.dropout)(x.max(axis=1), deterministic=not train)
        return nn.Dense(2)(x)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    X, y = bigram_task(2000)
    data = vt.Dataset.from_arrays(X, y, task="classification", name="bigrams")
    space = vt.Space(embed=vt.Fixed(8) if args.quick else vt.Choice([4, 16]), kernel=vt.Fixed(2) if args.quick
                     else vt.Choice([1, 2]),
                     dropout=vt.Uniform(0.0, 0.3), learning_rate=vt.LogUniform(1e-3, 3e-2), optimizer=vt.Fixed("adam"))
    population, epochs = (4, 2) if args.quick else (32, 15)
    result = vt.tune(vt.Linen(BigramNet), space, data, strategy=vt.RandomSearch(population=population),
                     epochs=epochs, batch_size=64, refit=0 if args.quick else 1)
    print(result.summary(5))
    # a kernel of 1 sees one token at a time and cannot tell a bigram from its two tokens apart
    print(result.members.groupby("kernel")["score"].max().to_string())
    return result


if __name__ == "__main__":
    main()
