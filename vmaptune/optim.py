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

import collections.abc
import dataclasses
import difflib
import functools
import inspect
import itertools
import re
from typing import Any, Callable, Mapping, NamedTuple

import jax
import jax.extend.core
import jax.numpy as jnp
import numpy as np
import optax

from vmaptune.space import Conditions, Fixed, Space, categorical_options, check_range
from vmaptune.traced import USED_AS_PYTHON_VALUE

try:  # (JAX has no public way to mark an array weakly typed, as a Python number is: optim._as_plain_numbers)
    from jax._src.lax.lax import _convert_element_type
except ImportError:  # pragma: no cover
    _convert_element_type = None

OPTIMIZERS = ("sgd", "momentum", "nesterov", "adam", "adamw", "rmsprop", "adagrad")
SCHEDULES = ("constant", "step", "exponential", "cosine", "linear")
NUMERIC_HYPERPARAMETERS = ("learning_rate", "momentum", "b1", "b2", "eps", "weight_decay", "l1",
                           "warmup_steps", "decay_rate", "decay_steps")
#: What the space may name; `total_steps` is not one: the engine sets it from epochs and batch size.
OPTIMIZER_HYPERPARAMETERS = NUMERIC_HYPERPARAMETERS + ("optimizer", "schedule")
#: Names fixed when a member's optimizer is built: its kind and its schedule's shape.
STRUCTURAL_HYPERPARAMETERS = ("optimizer", "schedule")
DEFAULT_OPTIMIZER = "sgd"

# Allowed values of the numeric settings: name -> (low, high, low inclusive, high inclusive, fix).
RANGES = {
    "learning_rate": (0.0, np.inf, False, False, "use e.g. vt.LogUniform(1e-4, 1e-1)"),
    "momentum": (0.0, 1.0, True, False, "use e.g. vt.OneMinusLogUniform(0.9, 0.999)"),
    "b1": (0.0, 1.0, True, False, "use e.g. vt.OneMinusLogUniform(0.8, 0.99)"),
    "b2": (0.0, 1.0, True, False, "use e.g. vt.OneMinusLogUniform(0.99, 0.9999)"),
    "eps": (0.0, np.inf, False, False, "use e.g. vt.LogUniform(1e-10, 1e-6)"),
    "weight_decay": (0.0, np.inf, True, False, "use e.g. vt.LogUniform(1e-6, 1e-2)"),
    "l1": (0.0, np.inf, True, False, "use e.g. vt.LogUniform(1e-7, 1e-3)"),
    "warmup_steps": (0.0, np.inf, True, False, "use e.g. vt.IntUniform(0, 500)"),
    "decay_rate": (0.0, 1.0, False, True, "use e.g. vt.Uniform(0.05, 0.5)"),
    "decay_steps": (1.0, np.inf, True, False, "use e.g. vt.IntLogUniform(100, 5000)"),
}

# Values used when the space does not name a setting, per kind (as the optax aliases default).
KIND_DEFAULTS = {
    "learning_rate": dict.fromkeys(OPTIMIZERS, 1e-2),
    "momentum": {"sgd": 0.0, "momentum": 0.9, "nesterov": 0.9},
    "b1": dict.fromkeys(OPTIMIZERS, 0.9),
    "b2": {"adam": 0.999, "adamw": 0.999, "rmsprop": 0.9},
    "eps": {"adam": 1e-8, "adamw": 1e-8, "rmsprop": 1e-8, "adagrad": 1e-7},
    "weight_decay": dict.fromkeys(OPTIMIZERS, 0.0),
    "l1": dict.fromkeys(OPTIMIZERS, 0.0),
    "warmup_steps": dict.fromkeys(OPTIMIZERS, 0.0),
    "decay_rate": dict.fromkeys(OPTIMIZERS, 0.1),
}
USES_MU = {"sgd", "momentum", "nesterov", "adam", "adamw"}
USES_NU = {"adam", "adamw", "rmsprop", "adagrad"}
#: The settings only some kinds read (the others are read by every kind).
READ_BY = {"momentum": ("sgd", "momentum", "nesterov"), "b1": ("adam", "adamw"), "b2": ("adam", "adamw", "rmsprop"),
           "eps": ("adam", "adamw", "rmsprop", "adagrad")}
#: Schedule settings -> the schedules that read them (schedule_factor; warm-up is every schedule's).
SCHEDULE_READ_BY = {"decay_rate": ("step", "exponential"), "decay_steps": ("step", "exponential")}
ADAGRAD_INITIAL_ACCUMULATOR = 0.1


class PopulationOptState(NamedTuple):
    count: jax.Array  # int32 scalar: updates taken (bias correction)
    mu: optax.Params  # first moment / momentum buffer, or () when no kind uses it
    nu: optax.Params  # second moment / accumulator, or () when no kind uses it


def resolve_hyperparameters(kinds: tuple[str, ...], hp: Mapping[str, jax.Array], total_steps=1
                            ) -> dict[str, jax.Array]:
    """Per-member optimizer settings: the member's own value where the space names it, else the
    default of the member's optimizer kind. Works on one member or a population.

    `total_steps` (the member's whole training, set by the engine) sizes the schedules.
    `decay_steps` defaults to a third of it.
    """
    index = jnp.asarray(hp.get("optimizer", 0), jnp.int32)
    total = jnp.maximum(jnp.asarray(total_steps, jnp.float32), 1.0)
    out = {"optimizer": index, "schedule": jnp.asarray(hp.get("schedule", 0), jnp.int32), "total_steps": total}
    for name in NUMERIC_HYPERPARAMETERS:
        if name in hp:
            out[name] = jnp.asarray(hp[name], jnp.float32)
        elif name == "decay_steps":
            out[name] = jnp.maximum(jnp.floor(total / 3), 1.0)
        else:
            table = jnp.asarray([KIND_DEFAULTS[name].get(k, 0.0) for k in kinds], jnp.float32)
            out[name] = table[index]
    return out


def schedule_factor(schedules: tuple[str, ...], schedule, count, warmup_steps, decay_rate, decay_steps, total_steps):
    """Multiplier of the learning rate at update number `count` (0-based), as optax's schedules:
    linear warm-up from 0 over `warmup_steps`, then `schedules[schedule]` over the remaining steps.
    step: decay_rate ** floor(t / decay_steps); exponential: decay_rate ** (t / decay_steps);
    cosine: half a cosine to 0 at total_steps; linear: straight to 0 at total_steps."""
    t = count.astype(jnp.float32)
    warm = jnp.where(warmup_steps > 0, jnp.minimum(t / jnp.maximum(warmup_steps, 1.0), 1.0), 1.0)
    after = jnp.maximum(t - warmup_steps, 0.0)
    span = jnp.maximum(total_steps - warmup_steps, 1.0)
    progress = jnp.minimum(after / span, 1.0)
    factors = {
        "constant": jnp.ones_like(t),
        "step": decay_rate ** jnp.floor(after / decay_steps),
        "exponential": decay_rate ** (after / decay_steps),
        "cosine": 0.5 * (1.0 + jnp.cos(jnp.pi * progress)),
        "linear": 1.0 - progress,
    }
    factor = factors[schedules[0]]
    for i, name in enumerate(schedules[1:], start=1):
        factor = jnp.where(schedule == i, factors[name], factor)
    return jnp.where(t < warmup_steps, warm, factor)


def population_optimizer(learning_rate, momentum, b1, b2, eps, weight_decay, l1, warmup_steps, decay_rate,
                         decay_steps, optimizer, schedule, total_steps,
                         *, kinds: tuple[str, ...], schedules: tuple[str, ...] = ("constant",)
                         ) -> optax.GradientTransformation:
    """The update rule of `kinds[optimizer]` with the given settings (scalars for one member),
    its learning rate following `schedules[schedule]`."""
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
        # scalar arithmetic per member: cheap enough to run even for constant schedules
        base_lr = learning_rate * schedule_factor(schedules, schedule, state.count, warmup_steps,
                                                  decay_rate, decay_steps, total_steps)
        count = optax.safe_increment(state.count)
        coupled_decay = jnp.where(is_kind.get("adamw", False), 0.0, weight_decay)
        grads = jax.tree.map(lambda g, p: g + coupled_decay * p + l1 * jnp.sign(p), grads, params)

        def per_leaf(g, p, mu, nu):
            """-> (update, new mu, new nu) for one leaf."""
            candidates = []  # (kind, update, mu, nu)
            if {"sgd", "momentum", "nesterov"} & set(kinds):
                trace = g + momentum * mu
                heavy = -base_lr * trace
                candidates += [(k, heavy, trace, nu) for k in ("sgd", "momentum") if k in kinds]
                if "nesterov" in kinds:
                    candidates.append(("nesterov", -base_lr * (g + momentum * trace), trace, nu))
            if {"adam", "adamw"} & set(kinds):
                m = b1 * mu + (1 - b1) * g
                v = b2 * nu + (1 - b2) * jnp.square(g)
                m_hat = m / (1 - b1 ** count.astype(g.dtype))
                v_hat = v / (1 - b2 ** count.astype(g.dtype))
                direction = m_hat / (jnp.sqrt(v_hat) + eps)
                if "adam" in kinds:
                    candidates.append(("adam", -base_lr * direction, m, v))
                if "adamw" in kinds:
                    candidates.append(("adamw", -base_lr * (direction + weight_decay * p), m, v))
            if "rmsprop" in kinds:
                v = b2 * nu + (1 - b2) * jnp.square(g)
                candidates.append(("rmsprop", -base_lr * g * jax.lax.rsqrt(v + eps), mu, v))
            if "adagrad" in kinds:
                v = nu + jnp.square(g)
                scale = jnp.where(v > 0, jax.lax.rsqrt(v + eps), 0.0)
                candidates.append(("adagrad", -base_lr * g * scale, mu, v))
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


def make_optimizer(kinds: tuple[str, ...], settings: Mapping[str, jax.Array],
                   schedules: tuple[str, ...] = ("constant",)) -> optax.GradientTransformation:
    """The injected transformation for one member; `settings` from `resolve_hyperparameters`.

    The settings live in the optimizer state (`state.hyperparams`): `update` reads them from
    there, so the values passed here only matter for `init`.
    """
    unknown = [k for k in kinds if k not in OPTIMIZERS]
    if unknown:
        raise ValueError(f"unknown optimizer {unknown}; choose from {list(OPTIMIZERS)}.")
    unknown = [k for k in schedules if k not in SCHEDULES]
    if unknown:
        raise ValueError(f"unknown schedule {unknown}; choose from {list(SCHEDULES)}.")
    factory = optax.inject_hyperparams(population_optimizer, static_args=("kinds", "schedules"))
    names = OPTIMIZER_HYPERPARAMETERS + ("total_steps",)
    return factory(**{name: settings[name] for name in names}, kinds=tuple(kinds), schedules=tuple(schedules))


class InjectedOptimizer:
    """What the engine needs from an optimizer whose settings live in an `inject_hyperparams`
    state. Every method sees ONE member (the engine vmaps it): hp is that member's numeric
    hyperparameters, total_steps its whole training in steps. `with_settings` rewrites settings
    in place (population-based training), so a new value never recompiles."""

    def hyperparameters(self) -> frozenset[str]:
        """Names the optimizer reads from a space."""
        raise NotImplementedError

    def structural_names(self) -> frozenset[str]:
        """Names fixed when a member's optimizer is built (never changed during training)."""
        return frozenset()

    def settings(self, hp: Mapping[str, jax.Array], total_steps) -> dict[str, jax.Array]:
        raise NotImplementedError

    def _transformation(self, hp, total_steps) -> optax.GradientTransformation:
        raise NotImplementedError

    def init(self, params: Any, hp: Mapping[str, jax.Array], total_steps) -> Any:
        return self._transformation(hp, total_steps).init(params)

    def update(self, grads: Any, opt_state: Any, params: Any, hp: Mapping[str, jax.Array], total_steps):
        """-> (updates, new opt_state); the settings come from opt_state."""
        return self._transformation(hp, total_steps).update(grads, opt_state, params)

    def with_settings(self, opt_state: Any, hp: Mapping[str, jax.Array], total_steps, where=True) -> Any:
        """opt_state with the settings of `hp` written into it where `where` is True (else kept).
        Works on one member or on a population (hp, total_steps and where with the member axis)."""
        new = self.settings(hp, total_steps)
        hyper = dict(opt_state.hyperparams)
        for name, value in new.items():
            old = hyper[name]
            mask = jnp.reshape(jnp.asarray(where), jnp.shape(where) + (1,) * (old.ndim - jnp.ndim(where)))
            hyper[name] = jnp.where(mask, jnp.asarray(value, old.dtype), old)
        return opt_state._replace(hyperparams=hyper)

    def with_learning_rate(self, opt_state: Any, learning_rate) -> Any:
        """One member's opt_state with its learning rate replaced (the range test's ramp)."""
        hyper = dict(opt_state.hyperparams)
        if "learning_rate" not in hyper:
            raise ValueError("the optimizer does not read hp['learning_rate'], so the range test cannot ramp it.")
        hyper["learning_rate"] = jnp.asarray(learning_rate, hyper["learning_rate"].dtype)
        return opt_state._replace(hyperparams=hyper)


@dataclasses.dataclass(frozen=True)
class PopulationOptimizer(InjectedOptimizer):
    """The built-in optimizer of a population: the kinds and schedules its members may use (static,
    part of the compiled program); kind and settings are per-member hyperparameters."""

    kinds: tuple[str, ...] = (DEFAULT_OPTIMIZER,)
    schedules: tuple[str, ...] = ("constant",)
    # setting names a field of the model takes (not read here); they follow from the model and the
    # space, so the repr (a run directory's spec) leaves them out: runs saved before still resume
    model_takes: frozenset[str] = dataclasses.field(default=frozenset(), repr=False)
    # the space's only_when: a member whose setting a name is not trains with its kind's default
    conditions: Conditions = dataclasses.field(default=Conditions(), repr=False)

    @classmethod
    def from_space(cls, space: Space, model_takes: frozenset[str] = frozenset()) -> "PopulationOptimizer":
        """The kinds and schedules the space allows, after checking every optimizer setting it
        names against its allowed range. model_takes: names of settings that fields of your
        module take (a BatchNorm's `momentum`): they fill the field, and the optimizer keeps its
        default."""
        for name, (low, high, low_ok, high_ok, fix) in RANGES.items():
            if name not in model_takes:
                check_range(space, name, low, high, low_ok, high_ok, fix)
        return cls(kinds=categorical_options(space, "optimizer", DEFAULT_OPTIMIZER, OPTIMIZERS),
                   schedules=categorical_options(space, "schedule", "constant", SCHEDULES),
                   model_takes=frozenset(model_takes), conditions=space.traced_conditions())

    def hyperparameters(self) -> frozenset[str]:
        return frozenset(OPTIMIZER_HYPERPARAMETERS) - self.model_takes

    def unread(self, space: Space) -> dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]]:
        """Searched settings (not vt.Fixed) that none of the space's optimizer kinds or schedules
        reads -> (what reads them: "optimizer" / "schedule", the space's own, those that would):
        searching them only spends the search's budget on a dimension without effect."""
        return {name: (what, mine, readers) for what, mine, read_by in (("optimizer", self.kinds, READ_BY),
                                                                      ("schedule", self.schedules, SCHEDULE_READ_BY))
                for name, readers in read_by.items()
                if name in space.names and name not in self.model_takes and not isinstance(space[name], Fixed)
                and not set(readers) & set(mine)}

    def structural_names(self) -> frozenset[str]:
        return frozenset(STRUCTURAL_HYPERPARAMETERS)

    def settings(self, hp: Mapping[str, jax.Array], total_steps) -> dict[str, jax.Array]:
        given = hp
        if self.model_takes:
            hp = {name: value for name, value in hp.items() if name not in self.model_takes}
        conditional = [name for name in self.conditions.names if name in hp and name in OPTIMIZER_HYPERPARAMETERS]
        if not conditional:
            return resolve_hyperparameters(self.kinds, hp, total_steps)
        # where a name is not the member's setting, the value a space without it gives: sgd and a
        # constant schedule (where the space allows them), the kind's default for its settings
        active = {name: self.conditions.active(name, given) for name in conditional}
        hp = dict(hp)
        otherwise = dict(self.conditions.otherwise)  # (values given in place of these defaults)
        for name, options, default in (("optimizer", self.kinds, DEFAULT_OPTIMIZER), ("schedule", self.schedules,
                                                                                       "constant")):
            if name in active:
                index = otherwise.get(name, options.index(default) if default in options else 0)
                hp[name] = jnp.where(active[name], hp[name], jnp.asarray(index, jnp.asarray(hp[name]).dtype))
        resolved = resolve_hyperparameters(self.kinds, hp, total_steps)
        numeric = [name for name in conditional if name in NUMERIC_HYPERPARAMETERS]
        absent = resolve_hyperparameters(self.kinds, {k: v for k, v in hp.items() if k not in numeric}, total_steps)
        absent = {name: jnp.asarray(otherwise[name], jnp.float32) if name in otherwise else absent[name]
                  for name in numeric}
        return {**resolved, **{name: jnp.where(active[name], resolved[name], absent[name]) for name in numeric}}

    def _transformation(self, hp, total_steps) -> optax.GradientTransformation:
        return make_optimizer(self.kinds, self.settings(hp, total_steps), self.schedules)

    def map_moments(self, opt_state: Any, fn: Callable[[Any], Any]) -> Any:
        """opt_state with `fn` applied to each weight-shaped moment (mu, nu where kept): how the
        engine flattens them with the weights for an epoch's steps (vmaptune/flat.py)."""
        inner = opt_state.inner_state
        mu = fn(inner.mu) if USES_MU & set(self.kinds) else inner.mu
        nu = fn(inner.nu) if USES_NU & set(self.kinds) else inner.nu
        return opt_state._replace(inner_state=inner._replace(mu=mu, nu=nu))


INJECTED_STATES = (optax.InjectHyperparamsState, optax.InjectStatefulHyperparamsState)


def _injected_states(state: Any) -> list:
    """The optax.inject_hyperparams states in `state` (outermost ones)."""
    return [s for s in jax.tree.leaves(state, is_leaf=lambda s: isinstance(s, INJECTED_STATES))
            if isinstance(s, INJECTED_STATES)]


def _with_hyperparams_of(state: Any, fresh: Any) -> Any:
    """`state` with the hyperparams of each optax.inject_hyperparams state in it (nested ones too)
    taken from `fresh`, a state of the same structure."""
    def one(old, new):
        if not isinstance(old, INJECTED_STATES):
            return old
        return old._replace(hyperparams=dict(new.hyperparams),
                            inner_state=_with_hyperparams_of(old.inner_state, new.inner_state))

    return jax.tree.map(one, state, fresh, is_leaf=lambda s: isinstance(s, INJECTED_STATES))


def _depended_on(closed: Any, n: int) -> list[bool]:
    """For each of the last `n` inputs of a traced program: whether its outputs depend on it (an
    equation holding a sub-program reads all its inputs; one with effects, jax.debug.print, counts)."""
    jaxpr = closed.jaxpr
    needed = {v for v in jaxpr.outvars if not isinstance(v, jax.extend.core.Literal)}
    for eqn in reversed(jaxpr.eqns):
        if eqn.effects or any(v in needed for v in eqn.outvars):
            needed.update(v for v in eqn.invars if not isinstance(v, jax.extend.core.Literal))
    return [v in needed for v in jaxpr.invars[len(jaxpr.invars) - n:]]


def _as_plain_numbers(values: Mapping[str, Any]) -> dict[str, Any]:
    """An optimizer factory's values as optax takes plain Python numbers: float32, weakly typed, so
    that on bfloat16 weights `lr * update` stays bfloat16 (float32 values made the updates float32:
    1 bfloat16 ulp off the same optimizer run by hand, and optax.apply_if_finite's lax.cond between a
    step and none was refused), while `1 - b2 ** t` is computed in float32 (a value cast to bfloat16
    instead made b2=0.999 exactly 1, and adam's bias correction 0 / 0). float32 weights: unchanged."""
    if _convert_element_type is None:  # (a JAX without it: strong float32)
        return dict(values)
    return {n: _convert_element_type(v, jnp.dtype("float32"), weak_type=True)
            if jnp.issubdtype(jnp.result_type(v), jnp.floating) else v for n, v in values.items()}


class TracedHyperparameterError(TypeError):
    """An optimizer factory turned a traced hyperparameter into a Python value (float(), if)."""


class _Reading(collections.abc.Mapping):
    """The hp a custom optimizer factory is called with once, to learn which names it reads: a
    mapping over the space's names (optax.adam(**hp) reads them all). A name not in the space read
    with [] is recorded (and refused); with get(name, default) or `in` it is not (the values the
    factory is called with in training lack it too, so it gets the default there)."""

    def __init__(self, sample: Mapping[str, Any]):
        self.sample, self.read = sample, []

    def __getitem__(self, name):
        self.read.append(name)
        return self.sample.get(name, 0.5)

    def get(self, name, default=None):
        return self[name] if name in self.sample else default

    def __contains__(self, name):
        return name in self.sample

    def __iter__(self):
        return iter(self.sample)

    def __len__(self):
        return len(self.sample)


def _as_transformation(made: Any) -> Any:
    """What an optimizer factory returned, an optax.MultiSteps (gradient accumulation, as optax
    documents it: an object with gradient_transformation()) as its GradientTransformation."""
    if not isinstance(made, optax.GradientTransformation) and callable(getattr(made, "gradient_transformation", None)):
        return made.gradient_transformation()
    return made


#: Weights an optimizer of yours takes its first step on when it is built without the model's (shapes only).
TRIAL_PARAMS = {"bias": jax.ShapeDtypeStruct((2,), jnp.float32), "kernel": jax.ShapeDtypeStruct((3, 2), jnp.float32)}


def _first_step(transformation: optax.GradientTransformation, params: Any) -> Any:
    """transformation's init and first update on `params` (taken as their own gradients)."""
    return transformation.update(params, transformation.init(params), params)


def _not_stepped_as_vmaptune_steps(err: Exception, name: str) -> str | None:
    """The message for an optimizer whose first step failed because it needs more than vmaptune
    gives it: update-time arguments (the loss value for reduce_on_plateau, polyak_sgd, the line
    searches of lbfgs), or lookahead's pair of weights; None for other failures."""
    missing = re.fullmatch(r"(?P<fn>[\w.<>]+)\(\) missing \d+ required keyword-only arguments?: (?P<args>.+)",
                           str(err)) if isinstance(err, TypeError) else None
    if missing is not None:
        where, args = missing["fn"].split(".<locals>")[0], re.findall(r"'(\w+)'", missing["args"])
        return (f"optimizer= ({name}) returns an optimizer whose update needs the arguments {args} ({where}); vmaptune "
                f"calls update(grads, state, params) only, each step, so such optimizers (optax.contrib."
                f"reduce_on_plateau, optax.polyak_sgd, the line searches and optax.lbfgs, which take the loss's value "
                f"or function) cannot train here. Leave it out (for reduce_on_plateau's lowered learning rate: a "
                f"schedule of yours, or the built-in schedule names: README, Optimizers).")
    frames = []
    tb = err.__traceback__
    while tb is not None:
        frames.append(tb.tb_frame.f_globals.get("__name__", ""))
        tb = tb.tb_next
    if isinstance(err, AttributeError) and any(m.startswith("optax") and m.endswith("lookahead") for m in frames):
        return (f"optimizer= ({name}) returns optax.lookahead, whose update takes optax.LookaheadParams (its fast and "
                f"slow weights) and whose caller applies each update to both; vmaptune gives it the model's weights "
                f"and applies updates to them only, so it cannot train here ({type(err).__name__}: {err}). Give "
                f"its fast optimizer alone.")
    return None


def _optax_function_given(factory: Any) -> str | None:
    """The message for optax's own function given as optimizer= (optax.adam, or a functools.partial
    of it), which takes optax's arguments, not hp; None for anything else."""
    inner, given = factory, False
    while isinstance(inner, functools.partial):
        inner, given = inner.func, given or bool(inner.args or inner.keywords)
    module = getattr(inner, "__module__", None)  # (None for a function made by exec or eval)
    if not (isinstance(module, str) and module.split(".")[0] == "optax"):
        return None
    # its public name: optax._src.alias.adam is optax.adam, optax.contrib._prodigy.prodigy optax.contrib.prodigy
    short = getattr(inner, "__name__", "?")
    public = list(itertools.takewhile(lambda part: not part.startswith("_"), module.split(".")))
    name = f"optax.{short}" if getattr(optax, short, None) is inner else ".".join([*public, short])
    shown = f"functools.partial({name}, ...)" if inner is not factory else name
    try:
        rate_first = next(iter(inspect.signature(inner).parameters), None) == "learning_rate"
    except (TypeError, ValueError):
        rate_first = False
    # (a partial's other arguments are said as "...", not rebuilt from their reprs)
    example = ("optax.adam(hp['learning_rate'])" if not rate_first else
               f"{name}(hp['learning_rate'], ...) (... : your other arguments)" if given else
               f"{name}(hp['learning_rate'])")
    return (f"optimizer={shown} is optax's own function, which takes optax's arguments, not hp: give a function of "
            f"hp, e.g. optimizer=lambda hp: {example}, or a built-in kind by name (optimizer='adam').")


@dataclasses.dataclass(frozen=True)
class CustomOptimizer(InjectedOptimizer):
    """Your own optax optimizer: factory(hp) -> optax.GradientTransformation, e.g.

        optimizer=lambda hp: optax.adamw(hp["learning_rate"], weight_decay=hp["weight_decay"])

    built through `optax.inject_hyperparams` with the names it reads, so each member's values are
    arrays in its state (a new value never recompiles; PBT can change them in place)."""

    factory: Callable[[Mapping[str, Any]], optax.GradientTransformation]
    names: tuple[str, ...]
    # names it asks for whose values reach nothing it computes: given a placeholder, not carried in its state
    unused: tuple[str, ...] = ()

    @classmethod
    def from_factory(cls, factory: Any, space: Space, params: Any = None) -> "CustomOptimizer":
        """params: one member's weights (ShapeDtypeStructs), which its first step is taken on to see
        the names it reads as it steps; TRIAL_PARAMS where not given (multi_transform's labels or a
        mask shaped like the model's weights fail on them)."""
        if not callable(factory):
            raise TypeError(f"optimizer={factory!r} must be a function hp -> optax.GradientTransformation, e.g. "
                            f"lambda hp: optax.adam(hp['learning_rate']).")
        own = _optax_function_given(factory)
        if own is not None:
            raise TypeError(own)
        taken = [n for n in ("optimizer", "schedule") if n in space]
        if taken:
            raise ValueError(f"space names {taken}, the built-in optimizer's kind / schedule, but optimizer= gives "
                             f"your own; drop {taken} from the space (choose inside your function instead).")
        one = space.numeric(space.sample(jax.random.key(0), 1))
        reading = _Reading({n: np.asarray(v)[0].item() for n, v in one.items()})
        transformation = _as_transformation(factory(reading))
        if not isinstance(transformation, optax.GradientTransformation):
            raise TypeError(f"optimizer(hp) returned {type(transformation).__name__}; it must return an "
                            f"optax.GradientTransformation (or an optax.MultiSteps), e.g. "
                            f"optax.adam(hp['learning_rate']).")
        try:  # its first step, for the names a schedule reads when optax calls it (lambda step: hp[...] * ...)
            jax.eval_shape(functools.partial(_first_step, transformation), TRIAL_PARAMS if params is None else params)
        except Exception as err:  # (the program reports other failures, with the real weights)
            untrainable = _not_stepped_as_vmaptune_steps(err, getattr(factory, "__name__", "factory"))
            if untrainable is not None:
                raise TypeError(untrainable) from err
            if isinstance(err, KeyError) and err.args and isinstance(err.args[0], str) and err.args[0] not in space:
                reading.read.append(err.args[0])  # (a copy of hp indexed with a name it lacks: dict(hp)["..."])
        names = tuple(dict.fromkeys(reading.read))
        missing = [n for n in names if n not in space]
        if missing:
            close = difflib.get_close_matches(missing[0], list(space.names), n=1)
            hint = f" Did you mean {close[0]!r} (a typo in your function)?" if close else ""
            raise ValueError(f"optimizer= reads {missing}, which the space does not name.{hint} Otherwise add them, "
                             f"e.g. {missing[0]}=vt.Fixed(...) or a distribution to search.")
        made = cls(factory=factory, names=names)
        # its first step again, as the compiled program takes it (traced values, before anything compiles): a
        # name whose value the step's results do not depend on is not read (hp.items() walks every name of the
        # space, the model's too; every value of a name read and left unused trains alike)
        weights = TRIAL_PARAMS if params is None else params

        def first_step(weights, values):
            return _first_step(made._call_factory(_as_plain_numbers(values)), weights)

        try:
            closed = jax.make_jaxpr(first_step)(weights, {n: jax.ShapeDtypeStruct((), jnp.float32) for n in names})
        except TracedHyperparameterError:
            raise
        except Exception:  # (every name it asked for counts; other failures are the program's to report)
            return made
        used = dict(zip(sorted(names), _depended_on(closed, len(names))))
        return cls(factory=factory, names=tuple(n for n in names if used[n]),
                   unused=tuple(n for n in names if not used[n]))

    def _call_factory(self, values: Mapping[str, Any]) -> optax.GradientTransformation:
        """The factory on one member's traced values; a value turned into a Python number is
        named with the fix."""
        if self.unused:  # (any value will do)
            values = {**dict.fromkeys(self.unused, jnp.float32(0.5)), **values}
        try:
            return _as_transformation(self.factory(values))
        except USED_AS_PYTHON_VALUE as err:
            name = getattr(self.factory, "__name__", "factory")
            raise TracedHyperparameterError(
                f"optimizer= ({name}) uses a hyperparameter as a Python value ({type(err).__name__}: "
                f"{str(err).splitlines()[0]}). Inside vmaptune its hp values ({list(self.names)}) are traced arrays, "
                f"one per member inside the compiled program, not numbers: pass them to optax as they are (optax "
                f"accepts arrays, e.g. optax.sgd(hp['learning_rate'])); do not call float() / int() / bool() / np.asarray() on them "
                f"or branch on them in Python (`if hp[...] > ...`; use jnp.where). A library function may do it for "
                f"you: optax's schedules check some arguments in Python (exponential_decay's decay_rate, "
                f"transition_steps...): give those a plain number, or search the built-in schedule names instead "
                f"(schedule=vt.Choice(['cosine', 'exponential', ...]), decay_rate, warmup_steps: README, "
                f"Optimizers).") from err

    def __repr__(self):
        return f"CustomOptimizer({getattr(self.factory, '__name__', 'factory')}, reads {list(self.names)})"

    def hyperparameters(self) -> frozenset[str]:
        return frozenset(self.names)

    def settings(self, hp: Mapping[str, jax.Array], total_steps) -> dict[str, jax.Array]:
        return {n: jnp.asarray(hp[n], jnp.float32) for n in self.names}

    def update(self, grads: Any, opt_state: Any, params: Any, hp: Mapping[str, jax.Array], total_steps):
        """-> (updates, new opt_state). An optax.inject_hyperparams of yours inside the factory keeps
        the values it was initialised with in its own state: they are rewritten from the settings in
        opt_state first, so PBT's and a Decision's new values reach it too."""
        transformation = self._transformation(hp, total_steps)
        if _injected_states(opt_state.inner_state):
            # (what its init stores for the current settings: the rest of that init is computed for
            # nothing, and the compiler drops it)
            values = _as_plain_numbers({n: opt_state.hyperparams[n] for n in self.names})
            fresh = self._call_factory(values).init(params)
            opt_state = opt_state._replace(inner_state=_with_hyperparams_of(opt_state.inner_state, fresh))
        return transformation.update(grads, opt_state, params)

    def _transformation(self, hp, total_steps) -> optax.GradientTransformation:
        """The factory under optax.inject_hyperparams: its state keeps the settings float32 (PBT's and
        a Decision's values exact), and the factory gets them as plain numbers (_as_plain_numbers)."""
        def inner(**values):
            return self._call_factory(_as_plain_numbers(values))

        inner.__signature__ = inspect.Signature(
            [inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY) for n in self.names])
        return optax.inject_hyperparams(inner)(**self.settings(hp, total_steps))
