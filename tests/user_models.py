"""Small user models shared by the tests of vt.Linen / vt.Nnx (one definition, so compiled programs
are shared within a test process)."""

import flax.linen as nn
import jax
import numpy as np
import sklearn.datasets
from flax import nnx

import vmaptune as vt


class CNN(nn.Module):
    """The issue's contract model: conv, BatchNorm, traced dropout."""

    features: int = 4
    dropout: float = 0.0

    @nn.compact
    def __call__(self, x, train: bool = False):
        x = nn.relu(nn.Conv(self.features, (3, 3))(x))
        x = nn.BatchNorm(use_running_average=not train)(x)
        x = x.reshape((x.shape[0], -1))
        x = vt.nn.Dropout(self.dropout)(x, deterministic=not train)
        return nn.Dense(10)(x)


class NnxNet(nnx.Module):
    """An nnx MLP with BatchNorm and traced dropout on flat digits."""

    def __init__(self, width: int, dropout: float, *, rngs: nnx.Rngs):
        self.hidden = nnx.Linear(64, width, rngs=rngs)
        self.norm = nnx.BatchNorm(width, momentum=0.9, rngs=rngs)
        self.drop = vt.nn.NnxDropout(dropout, rngs=rngs)
        self.out = nnx.Linear(width, 10, rngs=rngs)

    def __call__(self, x):
        return self.out(self.drop(self.norm(jax.nn.relu(self.hidden(x)))))


class TwoTargets(nn.Module):
    hidden: int = 16

    @nn.compact
    def __call__(self, x):
        return nn.Dense(2)(nn.relu(nn.Dense(self.hidden)(x)))


def digit_images():
    X, y = sklearn.datasets.load_digits(return_X_y=True)
    return vt.Dataset.from_arrays(X.reshape(-1, 8, 8, 1), y, task="classification")


def diabetes_two_targets():
    X, y = sklearn.datasets.load_diabetes(return_X_y=True)
    return vt.Dataset.from_arrays(X, np.stack([y, 100 * X[:, 2]], axis=1), task="regression")


class MaxPooledAttention(nn.Module):
    """Token sequences (N, length) of ints: embedding, self-attention with dropout, LayerNorm, and
    max pooling over the sequence (whose gradient compares each value with the maximum)."""

    @nn.compact
    def __call__(self, x, train: bool = False):
        h = nn.Embed(12, 16)(x)
        h = nn.LayerNorm()(h + nn.MultiHeadDotProductAttention(num_heads=2, dropout_rate=0.1, deterministic=not train)(h))
        return nn.Dense(2)(h.max(axis=1))


def token_sequences(rows: int = 600, length: int = 24):
    rng = np.random.default_rng(0)
    X = rng.integers(0, 12, size=(rows, length))
    return vt.Dataset.from_arrays(X, (X[:, 0] > X[:, -1]).astype(int), task="classification")
