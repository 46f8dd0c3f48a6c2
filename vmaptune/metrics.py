"""Training losses and validation metrics. Every metric is "higher is better" (scikit-learn's
convention: losses are negated, as in neg_log_loss and neg_mse)."""

from __future__ import annotations

import dataclasses
from typing import Callable

import jax
import jax.numpy as jnp
import optax


@dataclasses.dataclass(frozen=True)
class Metric:
    """A validation metric. fn(outputs (n, k), targets (n,)) -> scalar, traced inside the program
    (use jnp). greater_is_better=False negates it, so the score stays "higher is better"."""

    name: str
    task: str
    fn: Callable[[jax.Array, jax.Array], jax.Array]
    greater_is_better: bool = True

    def __post_init__(self):
        if self.task not in ("classification", "regression"):
            raise ValueError(f"Metric(task={self.task!r}): task must be 'classification' or 'regression'.")
        if not callable(self.fn):
            raise TypeError(f"Metric(fn={self.fn!r}): fn must be a function (outputs, targets) -> scalar.")

    def score(self, out, y):
        value = self.fn(out, y)
        return value if self.greater_is_better else -value


def _accuracy(out, y):
    return jnp.mean(jnp.argmax(out, axis=-1) == y)


def _neg_log_loss(out, y):
    return -jnp.mean(optax.softmax_cross_entropy_with_integer_labels(out, y))


def _neg_mse(out, y):
    return -jnp.mean(jnp.square(out[..., 0] - y))


def _neg_mae(out, y):
    return -jnp.mean(jnp.abs(out[..., 0] - y))


def _r2(out, y):
    residual = jnp.sum(jnp.square(out[..., 0] - y))
    total = jnp.sum(jnp.square(y - jnp.mean(y)))
    return 1.0 - residual / jnp.maximum(total, 1e-12)


METRICS = {
    m.name: m
    for m in (
        Metric("accuracy", "classification", _accuracy),
        Metric("neg_log_loss", "classification", _neg_log_loss),
        Metric("neg_mse", "regression", _neg_mse),
        Metric("neg_mae", "regression", _neg_mae),
        Metric("r2", "regression", _r2),
        Metric("mse", "regression", lambda out, y: -_neg_mse(out, y), greater_is_better=False),
        Metric("mae", "regression", lambda out, y: -_neg_mae(out, y), greater_is_better=False),
        Metric("log_loss", "classification", lambda out, y: -_neg_log_loss(out, y), greater_is_better=False),
    )
}
DEFAULT_METRIC = {"classification": "accuracy", "regression": "neg_mse"}


def get_metric(name: "str | Metric | None", task: str) -> Metric:
    """The metric called `name` (default: accuracy / neg_mse), or a user's Metric, checked against the task."""
    if isinstance(name, Metric):
        if name.task != task:
            raise ValueError(f"metric {name.name!r} is for {name.task}, but the data is {task}.")
        return name
    name = DEFAULT_METRIC[task] if name is None else name
    if not isinstance(name, str):
        raise TypeError(f"metric must be a name such as 'accuracy' or a vt.Metric(...), got {name!r}.")
    if name not in METRICS:
        raise ValueError(f"metric={name!r} is unknown; choose from {sorted(METRICS)}.")
    metric = METRICS[name]
    if metric.task != task:
        options = sorted(n for n, m in METRICS.items() if m.task == task)
        raise ValueError(f"metric={name!r} is for {metric.task}, but the data is {task}; use one of {options}.")
    return metric


def training_loss(task: str, out: jax.Array, y: jax.Array, weights: jax.Array | None = None) -> jax.Array:
    """Mean cross-entropy (classification, out = logits) or mean squared error (regression).
    weights: optional (n,) row weights; the mean is taken over the weighted rows only."""
    if task == "classification":
        per_row = optax.softmax_cross_entropy_with_integer_labels(out, y)
    else:
        per_row = jnp.square(out[..., 0] - y)
    if weights is None:
        return jnp.mean(per_row)
    return jnp.sum(per_row * weights) / jnp.maximum(jnp.sum(weights), 1.0)
