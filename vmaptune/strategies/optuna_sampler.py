"""Optuna bridge: any Optuna sampler (TPE, CMA-ES, GP, QMC, ...) as a population strategy.

Each `ask` asks the Optuna study for `population` trials (Optuna's ask-and-tell interface), each
`tell` reports their scores. A member with no score (diverged, or its metric undefined at every
evaluation: the scores do not say which) is told the worst score the study
has seen, as vmaptune's own strategies rank it last: a FAIL trial, which TPE and most samplers
skip, taught the sampler nothing and it kept proposing settings that diverge. Its trial carries
the user attribute no_score=True. Optuna is an optional dependency:
`pip install vmaptune[optuna]`.

How the space maps to Optuna distributions:

    Uniform(a, b)            -> FloatDistribution(a, b)
    LogUniform(a, b)         -> FloatDistribution(a, b, log=True)
    OneMinusLogUniform(a, b) -> FloatDistribution(1 - b, 1 - a, log=True) over "one_minus_<name>"
    IntUniform(a, b)         -> IntDistribution(a, b)
    IntLogUniform(a, b)      -> IntDistribution(a, b, log=True)
    Choice(options)          -> CategoricalDistribution(options)
    Fixed(v)                 -> not given to Optuna

Randomness comes from the Optuna sampler, not from the keys: pass `sampler=lambda seed:
TPESampler(seed=seed)` to seed a fresh sampler from the `init` key, or a sampler built with its own
seed. The state holds a live `optuna.Study` that `ask` and `tell` update in place.

enqueue: settings to train first, in the space's own names and values (as results.best_params
gives them), each an Optuna trial enqueued at `init` (Optuna's study.enqueue_trial, in Optuna's
names: momentum=0.95 as one_minus_momentum=0.05); a name a setting leaves out is the sampler's.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib.util
import inspect
import numbers
from typing import Any, ClassVar, Mapping

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from vmaptune.arguments import checked_arguments
from vmaptune.space import (
    Choice,
    Fixed,
    IntLogUniform,
    IntUniform,
    LogUniform,
    OneMinusLogUniform,
    Space,
    Uniform,
)
from vmaptune.strategies.base import Strategy, check_positive_int, check_scores, check_space
from vmaptune.warn import warn


def _import_optuna():
    try:
        import optuna
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError(
            "vt.OptunaSampler needs optuna, which is not installed. "
            "Install it with: pip install vmaptune[optuna]"
        ) from e
    return optuna


def optuna_param(name: str, dist) -> tuple[str, Any] | None:
    """(optuna parameter name, optuna distribution) for one of ours; None for Fixed."""
    D = _import_optuna().distributions
    if isinstance(dist, Fixed):
        return None
    if isinstance(dist, Uniform):
        return name, D.FloatDistribution(dist.low, dist.high)
    if isinstance(dist, LogUniform):
        return name, D.FloatDistribution(dist.low, dist.high, log=True)
    if isinstance(dist, OneMinusLogUniform):
        return f"one_minus_{name}", D.FloatDistribution(1.0 - dist.high, 1.0 - dist.low, log=True)
    if isinstance(dist, IntUniform):
        return name, D.IntDistribution(dist.low, dist.high)
    if isinstance(dist, IntLogUniform):
        return name, D.IntDistribution(dist.low, dist.high, log=True)
    if isinstance(dist, Choice):
        # (numpy options, vt.Choice(list(np.arange(8, 33, 8))), as Python's: Optuna's storages keep choices as JSON)
        return name, D.CategoricalDistribution([_python(o) for o in dist.options])
    raise TypeError(f"OptunaSampler: no Optuna distribution for {name}={dist!r}.")


def _python(value):
    """A numpy scalar as the Python number it is (other values as they are)."""
    return value.item() if isinstance(value, np.generic) else value


# Optuna samplers that import a package of their own only at their first proposal from a model
# (after a round of random ones has trained): class name -> (module, what to install).
_SAMPLER_NEEDS = {
    "GPSampler": ("torch", "torch"),
    "CmaEsSampler": ("cmaes", "cmaes"),
    "BoTorchSampler": ("botorch", "optuna-integration[botorch]"),
}


def _check_installed(sampler, space: Space) -> None:
    """Raises, before anything trains, where the sampler (or one it wraps: PartialFixedSampler's
    base, CMA-ES's independent sampler) needs a package that is not installed (Optuna would raise at
    round 2's ask, after round 1 trained)."""
    optuna = _import_optuna()
    numeric = any(not isinstance(d, (Choice, Fixed)) for _, d in space.items())  # (CMA-ES leaves options to TPE)
    seen, todo = set(), [sampler]
    while todo:
        one = todo.pop()
        if id(one) in seen:
            continue
        seen.add(id(one))
        todo += [v for v in getattr(one, "__dict__", {}).values() if isinstance(v, optuna.samplers.BaseSampler)]
        for cls in type(one).__mro__:
            module, package = _SAMPLER_NEEDS.get(cls.__name__, (None, None))
            if module is None or cls.__module__.split(".")[0] not in ("optuna", "optuna_integration") \
                    or (cls.__name__ == "CmaEsSampler" and not numeric):
                continue
            if importlib.util.find_spec(module) is None:
                raise ImportError(
                    f"OptunaSampler: Optuna's {cls.__name__} needs {module}, which is not installed (Optuna would "
                    f"fail at its first proposal from a model, after a round has trained). Install it with: "
                    f"pip install {package}; or use optuna.samplers.TPESampler, which needs nothing more."
                )


def _options(sampler) -> dict[str, Any]:
    """A sampler's plain settings: the arguments of its class's __init__ it keeps as `_<name>`
    (numbers, text, flags). Not its seed (a sampler built without one draws its own), nor what it
    caches as it samples."""
    given = set(inspect.signature(type(sampler).__init__).parameters) - {"self", "seed"}
    return {k: v for k, v in vars(sampler).items()
            if k.lstrip("_") in given and isinstance(v, (bool, int, float, str, type(None)))}


def _to_value(dist, optuna_value):
    """Optuna's value -> our encoded value (float, int or option index)."""
    if isinstance(dist, OneMinusLogUniform):
        return 1.0 - optuna_value
    if isinstance(dist, Choice):
        return dist.options.index(optuna_value)
    return optuna_value


def to_optuna_value(dist, optuna_dist, value):
    """Our encoded value -> Optuna's (the inverse of _to_value), inside Optuna's bounds (a float32
    value can round just past them)."""
    if isinstance(dist, Choice):
        return _python(dist.options[int(value)])
    if dist.kind == "int":
        return int(value)
    v = 1.0 - float(value) if isinstance(dist, OneMinusLogUniform) else float(value)
    return min(max(v, optuna_dist.low), optuna_dist.high)


@struct.dataclass
class OptunaSamplerState:
    space: Space = struct.field(pytree_node=False)
    study: Any = struct.field(pytree_node=False)  # optuna.Study, updated in place
    distributions: dict = struct.field(pytree_node=False)  # our name -> (optuna name, distribution)
    pending: tuple = struct.field(pytree_node=False, default=())  # trials of the last ask
    pending_hp: Any = struct.field(pytree_node=False, default=None)
    round: int = struct.field(pytree_node=False, default=0)


_EXAMPLE = "vt.OptunaSampler(optuna.samplers.TPESampler(seed=0), population=64)"


@checked_arguments(_EXAMPLE)
@dataclasses.dataclass(frozen=True, init=False)
class OptunaSampler(Strategy):
    """`rounds` populations of `population` members, each proposed by an Optuna sampler.

    sampler: an `optuna.samplers.BaseSampler`, e.g. `TPESampler(seed=0)`, or a function
    seed -> sampler (called at `init` with a seed drawn from the key, so runs repeat).

    A @dataclass subclass takes the same arguments, sampler first, then its own fields
    (Strategy.leading_arguments).

    Its state holds the Optuna study, which ask and tell change in place (Optuna's own ask /
    tell): unlike other strategies, asking twice from one state does not repeat a population.

    enqueue: settings (dicts in the space's own names and values) the first members train, before
    the sampler proposes: a warm start from settings known to be good (Optuna's enqueue_trial).
    """

    sampler: Any = None
    population: int = 64
    rounds: int = 1
    # (not in the repr, which a run_dir records and a resume compares: runs started before it resume)
    enqueue: tuple = dataclasses.field(default=(), kw_only=True, hash=False, repr=False)
    rounds_field: ClassVar[str | None] = "rounds"  # a resume may change it (Strategy.rounds_field)

    leading_arguments = ("sampler",)
    argument_example = _EXAMPLE

    def __init__(self, sampler: Any, population: int = 64, rounds: int = 1, *, enqueue: Any = ()):
        object.__setattr__(self, "sampler", sampler)
        object.__setattr__(self, "population", population)
        object.__setattr__(self, "rounds", rounds)
        object.__setattr__(self, "enqueue", enqueue)
        self.__post_init__()

    def __post_init__(self):
        super().__post_init__()
        check_positive_int("OptunaSampler", "rounds", self.rounds)
        settings = [self.enqueue] if isinstance(self.enqueue, Mapping) else self.enqueue
        if isinstance(settings, (str, bytes)) or not isinstance(settings, (list, tuple)) or \
                not all(isinstance(setting, Mapping) for setting in settings):
            raise TypeError(f"OptunaSampler: enqueue must be a list of settings, each a dict of the space's names "
                            f"and values, got {self.enqueue!r}; e.g. enqueue=[{{'learning_rate': 0.01, "
                            f"'momentum': 0.9}}].")
        object.__setattr__(self, "enqueue", tuple(dict(setting) for setting in settings))
        optuna = _import_optuna()
        if isinstance(self.sampler, type):  # a class is callable, and would take our seed as its first option
            raise TypeError(
                f"OptunaSampler: sampler is the class {self.sampler.__name__}, not a sampler. Pass an instance, "
                f"e.g. vt.OptunaSampler(optuna.samplers.{self.sampler.__name__}(seed=0)), or a function seed -> "
                f"sampler: lambda seed: optuna.samplers.{self.sampler.__name__}(seed=seed)."
            )
        if callable(self.sampler) and not isinstance(self.sampler, optuna.samplers.BaseSampler):
            try:
                inspect.signature(self.sampler).bind(0)
            except TypeError:
                raise TypeError(f"OptunaSampler: the sampler function {self.sampler!r} must take one argument, the "
                                f"seed: e.g. lambda seed: optuna.samplers.TPESampler(seed=seed).") from None
            except ValueError:  # no signature to read (a builtin): it is called as it is
                pass
        if not (isinstance(self.sampler, optuna.samplers.BaseSampler) or callable(self.sampler)):
            raise TypeError(
                f"OptunaSampler: sampler must be an Optuna sampler or a function seed -> sampler, got "
                f"{self.sampler!r}. Use e.g. vt.OptunaSampler(optuna.samplers.TPESampler(seed=0))."
            )

    @property
    def name(self) -> str:
        if isinstance(self.sampler, _import_optuna().samplers.BaseSampler):
            return f"Optuna({type(self.sampler).__name__})"
        return "Optuna"

    def init(self, space: Space, key: jax.Array) -> OptunaSamplerState:
        optuna = _import_optuna()
        space = check_space("OptunaSampler", space)
        sampler = self.sampler
        if not isinstance(sampler, optuna.samplers.BaseSampler):
            sampler = sampler(int(jax.random.randint(key, (), 0, 2**31 - 1, jnp.int32)))  # (int32 under x64 too)
            if not isinstance(sampler, optuna.samplers.BaseSampler):
                raise TypeError(
                    f"OptunaSampler: the sampler function returned {sampler!r}, not an Optuna sampler."
                )
        _check_installed(sampler, space)
        dists = {}
        for name, dist in space.items():
            p = optuna_param(name, dist)
            if p is not None:
                dists[name] = p
        study = optuna.create_study(direction="maximize", sampler=sampler)
        for i, setting in enumerate(self.enqueue):  # (checked against the space before any trains)
            study.enqueue_trial(_enqueued(space, dists, setting, f"OptunaSampler: enqueue[{i}]"))
        return OptunaSamplerState(space=space, study=study, distributions=dists)

    def resumed(self, state: OptunaSamplerState) -> OptunaSamplerState:
        """A resumed run goes on with the sampler its study saved (its random state included); a
        sampler given now with other options is not used, and is named."""
        given, kept = self.sampler, state.study.sampler
        if isinstance(given, _import_optuna().samplers.BaseSampler) and given is not kept:
            now, then = _options(given), _options(kept)
            changed = {k: (then.get(k), v) for k, v in now.items() if then.get(k) != v}
            if changed:
                shown = ", ".join(f"{k.lstrip('_')}: saved {a!r}, given {b!r}" for k, (a, b) in sorted(changed.items()))
                warn(f"OptunaSampler: the resumed run goes on with the {type(kept).__name__} its study saved; the "
                     f"sampler given has other options ({shown}) and is not used. To search with it, choose "
                     f"another run_dir.")
        return state

    def ask(self, state: OptunaSamplerState, key: jax.Array):
        space = state.space
        _warn_unknown_enqueued(state)
        if space.conditions:  # define-by-run: a name is suggested only where its condition holds
            trials = tuple(state.study.ask() for _ in range(self.population))
            rows = [_suggest_used(space, state.distributions, trial) for trial in trials]
        else:
            fixed = dict(state.distributions.values())
            trials = tuple(state.study.ask(fixed) for _ in range(self.population))
            rows = [{name: _to_value(space[name], t.params[oname]) for name, (oname, _) in state.distributions.items()}
                    for t in trials]
        hp = {}
        for name, dist in space.items():
            if name in state.distributions:
                col = [row[name] for row in rows]
            else:
                col = [dist.encode(dist.value)] * self.population
            hp[name] = jnp.asarray(col, dist.dtype)
        return hp, state.replace(pending=trials, pending_hp={k: np.asarray(v) for k, v in hp.items()})

    def tell(self, state: OptunaSamplerState, hp: Mapping[str, jax.Array], scores) -> OptunaSamplerState:
        optuna = _import_optuna()
        n = state.space.check_told(hp, "OptunaSampler.tell")
        check_scores("OptunaSampler", scores, n)
        scores = np.asarray(scores, np.float64)  # (as given, not through float32: the study stores them)
        hp_np = {k: np.asarray(v) for k, v in hp.items()}
        asked = state.pending_hp is not None and len(state.pending) == n and all(
            np.array_equal(hp_np[k], state.pending_hp[k]) for k in state.space.names
        )
        worst = _worst_score(state.study, scores)
        if asked:
            for trial, s in zip(state.pending, scores):
                if np.isfinite(s):
                    _tell(state.study, trial, float(s))
                elif worst is not None:
                    trial.set_user_attr("no_score", True)  # (diverged, or an undefined metric)
                    _tell(state.study, trial, worst)
                else:
                    _tell(state.study, trial, state=optuna.trial.TrialState.FAIL)
            state = state.replace(pending=(), pending_hp=None)
        else:
            # Points Optuna did not propose (e.g. results from elsewhere): add them as finished trials.
            dists = dict(state.distributions.values())
            active = state.space.active(hp_np)
            for i, s in enumerate(scores):
                params = {
                    oname: to_optuna_value(state.space[name], odist, hp_np[name][i])
                    for name, (oname, odist) in state.distributions.items() if name not in active or active[name][i]
                }
                finished = np.isfinite(s) or worst is not None
                state.study.add_trial(
                    optuna.trial.create_trial(
                        params=params,
                        distributions={k: dists[k] for k in params},
                        value=(float(s) if np.isfinite(s) else worst) if finished else None,
                        state=optuna.trial.TrialState.COMPLETE if finished else optuna.trial.TrialState.FAIL,
                        user_attrs={} if np.isfinite(s) else {"no_score": True},
                    )
                )
        return state.replace(round=state.round + 1)

    def done(self, state: OptunaSamplerState) -> bool:
        return state.round >= self.rounds

    def total_evaluations(self, space: Space | None = None) -> int:
        return self.population * self.rounds


def _enqueued(space: Space, distributions: Mapping, setting: Mapping, where: str) -> dict[str, Any]:
    """One setting in the space's names and values -> the params Optuna's enqueue_trial takes
    (its names and values), refused where the space cannot hold it: Optuna drops a name it does
    not know, and a value outside a distribution, without a word."""
    unknown = [name for name in setting if name not in space]
    if unknown:
        ours = {oname: name for name, (oname, _) in distributions.items() if oname != name}
        if unknown[0] in ours:
            hint = (f" {unknown[0]!r} is Optuna's name of {ours[unknown[0]]!r}: give {ours[unknown[0]]!r} and its own "
                    f"value (momentum=0.95, not one_minus_momentum=0.05).")
        else:
            close = difflib.get_close_matches(str(unknown[0]), list(space.names), 1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"{where} names {unknown}, not in the space {list(space.names)}.{hint}")
    params = {}
    for name, value in setting.items():
        dist = space[name]
        label = f"{where}[{name!r}] = {value!r}"
        if name not in distributions:  # (Fixed: not Optuna's to suggest)
            if value != dist.value:
                raise ValueError(f"{label}, but the space fixes {name} at {dist.value!r}; leave it out.")
            continue
        if isinstance(dist, Choice):
            try:
                encoded = dist.encode(value)
            except ValueError as err:
                raise ValueError(f"{label}: {err}") from None
        else:
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(float(value)):
                raise ValueError(f"{label}: {dist!r} takes a finite number.")
            if dist.kind == "int" and float(value) != round(float(value)):
                raise ValueError(f"{label}: {dist!r} takes whole numbers.")
            if not dist.low <= value <= dist.high:
                raise ValueError(f"{label} is outside the space's {dist!r}; give a value inside it.")
            encoded = value
        oname, odist = distributions[name]
        params[oname] = to_optuna_value(dist, odist, encoded)
    return params


def _warn_unknown_enqueued(state: OptunaSamplerState) -> None:
    """A trial enqueued on the study itself (state.study.enqueue_trial) under a name Optuna is not
    given, the space's momentum for Optuna's one_minus_momentum: Optuna ignores it without a word."""
    known = {oname for oname, _ in state.distributions.values()}
    waiting = state.study.get_trials(deepcopy=False, states=(_import_optuna().trial.TrialState.WAITING,))
    unknown = sorted({name for trial in waiting for name in trial.system_attrs.get("fixed_params", {})} - known)
    if unknown:
        warn(f"OptunaSampler: a trial enqueued on the study names {unknown}, which Optuna is not given (its names: "
             f"{sorted(known)}), so it draws them instead. Pass the settings as vt.OptunaSampler(..., enqueue=[...]) "
             f"in the space's own names and values.", UserWarning)


def _tell(study, trial, *args, **kwargs) -> None:
    """study.tell, where a sampler that is done may call study.stop(): GridSampler and
    BruteForceSampler do once their grid is covered, and Optuna refuses stop() outside
    study.optimize (a RuntimeError). The trial is stored by then (Optuna stores it in a `finally`
    after the sampler's after_trial); a population past the grid gets the grid's points again."""
    try:
        study.tell(trial, *args, **kwargs)
    except RuntimeError as err:
        if "Study.stop" not in str(err):
            raise


def _suggest_used(space: Space, distributions: Mapping, trial) -> dict[str, Any]:
    """One member's encoded values, suggested by `trial` for the names its setting uses (parents
    first); a name it does not use (Space.only_when) takes its distribution's middle, unseen by Optuna."""
    plain, encoded = {}, {}
    for name in space.parents_first():
        dist = space[name]
        if isinstance(dist, Fixed):
            plain[name] = dist.value
            continue
        if not space.is_used(name, plain):
            encoded[name] = np.asarray(dist.from_unit_exact(np.array([0.5])))[0].item()
            continue
        oname, odist = distributions[name]
        if isinstance(odist, _import_optuna().distributions.CategoricalDistribution):
            value = trial.suggest_categorical(oname, odist.choices)
        elif isinstance(odist, _import_optuna().distributions.IntDistribution):
            value = trial.suggest_int(oname, odist.low, odist.high, log=odist.log)
        else:
            value = trial.suggest_float(oname, odist.low, odist.high, log=odist.log)
        encoded[name] = _to_value(dist, value)
        plain[name] = dist.decode(encoded[name]) if not isinstance(dist, Choice) else value
    return encoded


def _worst_score(study, scores: np.ndarray) -> float | None:
    """The lowest finite score of this round and of the study's finished trials (scores are
    maximised), or None when there is none yet (then a member without a score is a FAIL trial)."""
    seen = [float(v) for v in scores if np.isfinite(v)]
    seen += [t.value for t in study.get_trials(deepcopy=False, states=(_import_optuna().trial.TrialState.COMPLETE,))
             if t.value is not None and np.isfinite(t.value)]
    return min(seen) if seen else None
