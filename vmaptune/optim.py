"""Per-member optimizers: one optax transformation whose kind and settings are hyperparameters.

Every member of a population may run a different optimizer (sgd, momentum, nesterov, adam, adamw,
rmsprop, adagrad) with its own learning rate, momentum, betas, eps and weight decay. All kinds
share one state layout: a step count, a first-moment slot `mu` and a second-moment slot `nu`
(allocated only when some kind in the space uses it), so a mixed population carries two buffers
per parameter, not one full state per branch. Under vmap each present kind's update is computed
and the member's own is selected: a few elementwise passes over the parameters.

The settings sit in `optax.inject_hyperparams` state, so they are arrays (a new value never
recompiles) and population-based training can change them in place.

Each kind matches its plain optax counterpart (tests/test_optim.py):
  sgd / momentum  optax.sgd(lr, momentum)        nesterov  optax.sgd(lr, momentum, nesterov=True)
  adam            optax.adam(lr, b1, b2, eps)    adamw     optax.adamw(lr, b1, b2, eps, weight_decay)
  rmsprop         optax.rmsprop(lr, decay=b2, eps)   adagrad   optax.adagrad(lr, eps=eps)
`weight_decay` is L2 added to the gradient for every kind but adamw, where it is decoupled;
`l1` adds l1 * sign(w) to the gradient.
"""

from __future__ import annotations

from typing import Mapping, NamedTuple

import jax
import jax.numpy as jnp
import optax

OPTIMIZERS = ("sgd", "momentum", "nesterov", "adam", "adamw", "rmsprop", "adagrad")
NUMERIC_HYPERPARAMETERS = ("learning_rate", "momentum", "b1", "b2", "eps", "weight_decay", "l1")
OPTIMIZER_HYPERPARAMETERS = NUMERIC_HYPERPARAMETERS + ("optimizer",)

# Values used when the space does not name a setting, per kind (as the optax aliases default).
KIND_DEFAULTS = {
    "learning_rate": dict.fromkeys(OPTIMIZERS, 1e-2),
    "momentum": {"sgd": 0.0, "momentum": 0.9, "nesterov": 0.9},
    "b1": dict.fromkeys(OPTIMIZERS, 0.9),
    "b2": {"adam": 0.999, "adamw": 0.999, "rmsprop": 0.9},
    "eps": {"adam": 1e-8, "adamw": 1e-8, "rmsprop": 1e-8, "adagrad": 1e-7},
    "weight_decay": dict.fromkeys(OPTIMIZERS, 0.0),
    "l1": dict.fromkeys(OPTIMIZERS, 0.0),
}
USES_MU = {"sgd", "momentum", "nesterov", "adam", "adamw"}
USES_NU = {"adam", "adamw", "rmsprop", "adagrad"}
ADAGRAD_INITIAL_ACCUMULATOR = 0.1


class PopulationOptState(NamedTuple):
    count: jax.Array  # int32 scalar: updates taken (bias correction)
    mu: optax.Params  # first moment / momentum buffer, or () when no kind uses it
    nu: optax.Params  # second moment / accumulator, or () when no kind uses it


def resolve_hyperparameters(kinds: tuple[str, ...], hp: Mapping[str, jax.Array]) -> dict[str, jax.Array]:
    """Per-member optimizer settings: the member's own value where the space names it, else the
    default of the member's optimizer kind. Works on one member or a population."""
    index = jnp.asarray(hp.get("optimizer", 0), jnp.int32)
    out = {"optimizer": index}
    for name in NUMERIC_HYPERPARAMETERS:
        if name in hp:
            out[name] = jnp.asarray(hp[name], jnp.float32)
        else:
            table = jnp.asarray([KIND_DEFAULTS[name].get(k, 0.0) for k in kinds], jnp.float32)
            out[name] = table[index]
    return out


def population_optimizer(learning_rate, momentum, b1, b2, eps, weight_decay, l1, optimizer,
                         *, kinds: tuple[str, ...]) -> optax.GradientTransformation:
    """The update rule of `kinds[optimizer]` with the given settings (scalars for one member)."""
    uses_mu = bool(USES_MU & set(kinds))
    uses_nu = bool(USES_NU & set(kinds))
    is_kind = {k: optimizer == i for i, k in enumerate(kinds)}

    def init_fn(params):
        mu = jax.tree.map(jnp.zeros_like, params) if uses_mu else ()
        nu = ()
        if uses_nu:
            start = jnp.where(is_kind.get("adagrad", False), ADAGRAD_INITIAL_ACCUMULATOR, 0.0)
            nu = jax.tree.map(lambda p: jnp.full_like(p, start), params)
        return PopulationOptState(count=jnp.zeros([], jnp.int32), mu=mu, nu=nu)

    def update_fn(grads, state, params=None):
        if params is None:
            raise ValueError("population_optimizer needs params (for weight decay).")
        count = optax.safe_increment(state.count)
        coupled_decay = jnp.where(is_kind.get("adamw", False), 0.0, weight_decay)
        grads = jax.tree.map(lambda g, p: g + coupled_decay * p + l1 * jnp.sign(p), grads, params)

        def per_leaf(g, p, mu, nu):
            """-> (update, new mu, new nu) for one leaf."""
            candidates = []  # (kind, update, mu, nu)
            if {"sgd", "momentum", "nesterov"} & set(kinds):
                trace = g + momentum * mu
                heavy = -learning_rate * trace
                candidates += [(k, heavy, trace, nu) for k in ("sgd", "momentum") if k in kinds]
                if "nesterov" in kinds:
                    candidates.append(("nesterov", -learning_rate * (g + momentum * trace), trace, nu))
            if {"adam", "adamw"} & set(kinds):
                m = b1 * mu + (1 - b1) * g
                v = b2 * nu + (1 - b2) * jnp.square(g)
                m_hat = m / (1 - b1 ** count.astype(g.dtype))
                v_hat = v / (1 - b2 ** count.astype(g.dtype))
                direction = m_hat / (jnp.sqrt(v_hat) + eps)
                if "adam" in kinds:
                    candidates.append(("adam", -learning_rate * direction, m, v))
                if "adamw" in kinds:
                    candidates.append(("adamw", -learning_rate * (direction + weight_decay * p), m, v))
            if "rmsprop" in kinds:
                v = b2 * nu + (1 - b2) * jnp.square(g)
                candidates.append(("rmsprop", -learning_rate * g * jax.lax.rsqrt(v + eps), mu, v))
            if "adagrad" in kinds:
                v = nu + jnp.square(g)
                scale = jnp.where(v > 0, jax.lax.rsqrt(v + eps), 0.0)
                candidates.append(("adagrad", -learning_rate * g * scale, mu, v))
            update, new_mu, new_nu = candidates[0][1:]
            for kind, u, m, v in candidates[1:]:
                chosen = is_kind[kind]
                update = jnp.where(chosen, u, update)
                new_mu = jnp.where(chosen, m, new_mu) if uses_mu else new_mu
                new_nu = jnp.where(chosen, v, new_nu) if uses_nu else new_nu
            return update, new_mu, new_nu

        leaves, treedef = jax.tree.flatten(grads)
        p_leaves = treedef.flatten_up_to(params)
        mu_leaves = treedef.flatten_up_to(state.mu) if uses_mu else [jnp.zeros(())] * len(leaves)
        nu_leaves = treedef.flatten_up_to(state.nu) if uses_nu else [jnp.zeros(())] * len(leaves)
        results = [per_leaf(g, p, m, v) for g, p, m, v in zip(leaves, p_leaves, mu_leaves, nu_leaves)]
        updates = treedef.unflatten([r[0] for r in results])
        mu = treedef.unflatten([r[1] for r in results]) if uses_mu else ()
        nu = treedef.unflatten([r[2] for r in results]) if uses_nu else ()
        return updates, PopulationOptState(count=count, mu=mu, nu=nu)

    return optax.GradientTransformation(init_fn, update_fn)


def make_optimizer(kinds: tuple[str, ...], settings: Mapping[str, jax.Array]) -> optax.GradientTransformation:
    """The injected transformation for one member; `settings` from `resolve_hyperparameters`.

    The settings live in the optimizer state (`state.hyperparams`): `update` reads them from
    there, so the values passed here only matter for `init`.
    """
    unknown = [k for k in kinds if k not in OPTIMIZERS]
    if unknown:
        raise ValueError(f"unknown optimizer {unknown}; choose from {list(OPTIMIZERS)}.")
    factory = optax.inject_hyperparams(population_optimizer, static_args=("kinds",))
    return factory(**{name: settings[name] for name in OPTIMIZER_HYPERPARAMETERS}, kinds=tuple(kinds))
