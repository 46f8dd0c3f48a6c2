"""Cheap synthetic objectives for strategy tests, and an ask/tell loop to run a strategy on them.

`mixed_space` looks like a real search space (a log-scale learning rate, a momentum, a width,
dropout, an activation); `bowl` scores it like a training run would: a shifted quadratic in each
parameter's own scale with a Rosenbrock valley coupling learning rate and momentum, and NaN
("diverged") for learning rates above 0.3. Higher is better; the optimum is 0.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

import vmaptune as vt
from vmaptune.strategies.base import finite_or_worst


def mixed_space() -> vt.Space:
    return vt.Space(
        learning_rate=vt.LogUniform(1e-6, 1.0),
        momentum=vt.OneMinusLogUniform(0.5, 0.9999),
        width=vt.IntLogUniform(4, 1024),
        dropout=vt.Uniform(0.0, 0.6),
        activation=vt.Choice(["sigmoid", "relu", "tanh", "gelu", "elu"]),
        epochs=vt.Fixed(3),
    )


# Per-option penalty of the activation: "gelu" is best, "sigmoid" worst.
_ACTIVATION_PENALTY = jnp.asarray([2.0, 0.3, 0.6, 0.0, 0.4])


@jax.jit  # one compilation instead of one per operation
def bowl(hp: dict) -> jax.Array:
    """hp (encoded population of mixed_space) -> scores (n,), NaN where the run 'diverged'."""
    a = jnp.log10(hp["learning_rate"] / 3e-3)  # decades off the best learning rate
    b = jnp.log10((1.0 - hp["momentum"]) / 1e-2)  # decades off momentum 0.99
    c = jnp.log2(hp["width"] / 96.0)  # octaves off width 96
    dr = (hp["dropout"] - 0.15) / 0.1
    # Rosenbrock valley: the best momentum depends on the learning rate.
    loss = a**2 + 4.0 * (b - 0.5 * a**2) ** 2 + 0.5 * c**2 + dr**2 + _ACTIVATION_PENALTY[hp["activation"]]
    return jnp.where(hp["learning_rate"] > 0.3, jnp.nan, -loss)


def run(strategy, space, objective, key) -> dict:
    """Runs a strategy to the end with ask/tell. Returns best score, evaluations, and every ask."""
    state = strategy.init(space, key)
    best, evaluations, asked = -np.inf, 0, []
    while not strategy.done(state):
        key, k_ask = jax.random.split(key)
        hp, state = strategy.ask(state, k_ask)
        scores = objective(hp)
        state = strategy.tell(state, hp, scores)
        best = max(best, float(np.max(np.asarray(finite_or_worst(scores)))))
        evaluations += int(scores.shape[0])
        asked.append(hp)
    return {"best": best, "evaluations": evaluations, "asked": asked, "state": state}


def median_best(strategy, space, objective, seeds) -> tuple[float, list[float]]:
    """Median over seeds of the best score a strategy finds, and the per-seed bests."""
    bests = []
    for seed in seeds:
        out = run(strategy, space, objective, jax.random.key(seed))
        assert out["evaluations"] == strategy.total_evaluations()
        bests.append(out["best"])
    return float(np.median(bests)), bests
