"""The strategy protocol shared by every search method, and helpers for population scores.

A strategy proposes whole populations and learns from their scores, with its state passed
explicitly (the evosax ask/tell style), so it works inside `vt.tune` and on any black-box
objective::

    state = strategy.init(space, key)
    while not strategy.done(state):
        hp, state = strategy.ask(state, key)        # dict name -> array[P]
        state = strategy.tell(state, hp, scores)    # scores: array[P], higher is better, NaN = failed

Scores are "higher is better"; NaN or inf marks a failed member, which ranks last.

Inside `vt.tune` a strategy may also act while its population trains (PBT, successive halving):
it sets `acts_during_training` and the driver calls `begin_training`, `decide` (after the epochs
`decision_epochs` names) and `end_training`. Each sees a read-only `Snapshot` of the population
and returns a `Decision` (vmaptune/decisions.py): the strategy decides, the engine applies.
Every hook is declared here with its default; the driver never probes for methods.
"""

from __future__ import annotations

import dataclasses
import inspect
import numbers
from typing import Any, ClassVar, Collection, Mapping

import jax
import jax.numpy as jnp
import numpy as np

from vmaptune.arguments import argument_error
from vmaptune.decisions import Decision, Snapshot, TrainingContext
from vmaptune.space import Space


def check_positive_int(owner: str, name: str, value: Any, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{owner}: {name} must be an integer >= {minimum}, got {value!r}.")
    return int(value)


def finite_or_worst(scores) -> jax.Array:
    """NaN / inf scores -> -inf, so they rank last. Never argmax over raw scores."""
    scores = jnp.asarray(scores, jnp.float32)
    return jnp.where(jnp.isfinite(scores), scores, -jnp.inf)


def rank_descending(scores) -> jax.Array:
    """Indices from best to worst; failed members last, ties broken by position (stable)."""
    return jnp.argsort(-finite_or_worst(scores), stable=True)


def check_scores(owner: str, scores: Any, population: int) -> jax.Array:
    scores = jnp.asarray(scores, jnp.float32)
    if scores.shape != (population,):
        raise ValueError(
            f"{owner}.tell: scores must have shape ({population},) to match hp, got {scores.shape}."
        )
    return scores


@dataclasses.dataclass(frozen=True)
class Strategy:
    """Base class: a frozen dataclass of settings. State lives in the objects init/ask/tell pass."""

    population: int = 64

    #: Fields this strategy's __init__ takes first, ahead of `population` (vt.OptunaSampler's
    #: sampler, vt.PBTReplay's schedule), and the example its argument errors show. Dataclass fields
    #: keep the order they were declared in, base classes' first, so `population` always leads:
    #: a @dataclass subclass's generated __init__ would take population first. Such strategies'
    #: subclasses get an __init__ of their own instead (see __init_subclass__).
    leading_arguments: ClassVar[tuple[str, ...]] = ()
    argument_example: ClassVar[str] = ""
    #: The field that counts this strategy's rounds (asks), when nothing else depends on it:
    #: `vt.tune(..., resume=True)` then takes another value (a finished sweep searches on; an
    #: unfinished one may end sooner) and the run goes on as if started with it. None: a resume
    #: must give the same strategy (Hyperband's or PBT's schedule follows from its settings).
    rounds_field: ClassVar[str | None] = None

    def __init_subclass__(cls, **kwargs):
        """A subclass of a strategy with leading_arguments that writes no __init__ gets
        `init_leading_first` as its __init__, here, before any @dataclass decorator runs (which
        never replaces an __init__ of the class's own): the subclass then takes the same arguments
        as its parent, in the same order, followed by its own fields."""
        super().__init_subclass__(**kwargs)
        if cls.leading_arguments and "__init__" not in cls.__dict__:
            cls.__init__ = init_leading_first

    def __post_init__(self):
        self._check_settings_are_fields()
        self._check_hooks_are_called()
        check_positive_int(type(self).__name__, "population", self.population)

    def _check_hooks_are_called(self) -> None:
        """A class that overrides a hook of a strategy acting during training but leaves
        acts_during_training False: vt.tune calls none of them (every member trained to the end,
        as if the rule never fired), so it is refused as the strategy is made."""
        hooks = [hook for hook in _TRAINING_HOOKS if getattr(type(self), hook) is not getattr(Strategy, hook)]
        if hooks and not self.acts_during_training:
            said = " and ".join(hooks) if len(hooks) < 3 else ", ".join(hooks[:-1]) + f" and {hooks[-1]}"
            raise TypeError(
                f"{type(self).__name__} defines {said}, but its acts_during_training is False, so vt.tune would "
                f"never call {'it' if len(hooks) == 1 else 'them'} (every member would train to the end). Set the "
                f"class flag in {type(self).__name__}'s body: `acts_during_training = True` (no annotation).")

    def _check_settings_are_fields(self) -> None:
        """A class that sets a field's value without being a dataclass (`population = 4` in a
        subclass, or a mixin, without @dataclasses.dataclass(frozen=True)): the dataclass __init__
        sets every field on the instance, so that value was ignored (64 members trained), and its
        repr, which a resume compares, did not show it. Annotated names in a Strategy subclass
        that is no dataclass were meant as fields too. Constants, methods and descriptors pass."""
        fields = {field.name for field in dataclasses.fields(self)}
        for cls in type(self).__mro__:
            if cls in (Strategy, object):
                continue
            decorated, own = "__dataclass_fields__" in vars(cls), vars(cls).get("__annotations__", {})
            flags = [name for name, annotation in own.items()
                     if name in _CLASS_FLAGS and "ClassVar" not in str(annotation)]
            if flags:  # (a field of that name: an argument of __init__, shown in the repr a resume compares)
                name, annotation = flags[0], own[flags[0]]
                value = repr(vars(cls)[name]) if name in vars(cls) else "..."
                raise TypeError(
                    f"{cls.__name__} declares `{name}: {getattr(annotation, '__name__', annotation)} = {value}` with a "
                    f"type annotation: {name} is a class flag of vt.Strategy, not a setting, and annotated it becomes "
                    f"a dataclass field (an argument of {cls.__name__}(...), part of the repr a resume compares). "
                    f"Write it without the annotation: `{name} = {value}`.")
            # (a dataclass's own fields are annotated; an inherited field's name set without one is ignored)
            annotations = own if issubclass(cls, Strategy) and not decorated else {}
            named = [name for name, value in vars(cls).items() if name in fields and not hasattr(value, "__get__")
                     and not (decorated and name in own)]
            named += [name for name, annotation in annotations.items()
                      if name not in named and "ClassVar" not in str(annotation)]
            if named:
                settings = ", ".join(f"{name} = {vars(cls)[name]!r}" if name in vars(cls) else
                                     f"{name}: {annotations[name]}" for name in named)
                ignored = (f" (population={self.population} trains, not {vars(cls)['population']!r})"
                           if "population" in named and "population" in vars(cls) else "")
                if decorated:
                    raise TypeError(
                        f"{cls.__name__} sets {settings} without a type annotation: a dataclass takes a name as a "
                        f"field only where it is annotated, so the inherited field's default stays{ignored} and the "
                        f"class attribute is ignored. Declare each setting with its type "
                        f"({named[0]}: {type(vars(cls)[named[0]]).__name__} = {vars(cls)[named[0]]!r}).")
                raise TypeError(
                    f"{cls.__name__} sets {settings} without @dataclasses.dataclass(frozen=True): a strategy's "
                    f"settings are dataclass fields, which vt.Strategy's __init__ sets on each instance, so a class "
                    f"attribute of that name is ignored{ignored}, and a resume compares the repr, which shows "
                    f"fields only. Decorate {cls.__name__} with @dataclasses.dataclass(frozen=True) and declare "
                    f"each setting with its type (population: int = 4).")

    @property
    def name(self) -> str:
        return type(self).__name__

    def init(self, space: Space, key: jax.Array):
        """The strategy's first state."""
        raise NotImplementedError(self._unwritten("init(self, space, key) -> state"))

    def ask(self, state, key: jax.Array) -> tuple[dict[str, jax.Array], Any]:
        """(hp, state): the next population, dict name -> (population,) encoded values."""
        raise NotImplementedError(self._unwritten("ask(self, state, key) -> (hp, state)"))

    def tell(self, state, hp: Mapping[str, jax.Array], scores) -> Any:
        """The state after the population `hp` scored `scores` (population,)."""
        raise NotImplementedError(self._unwritten("tell(self, state, hp, scores) -> state"))

    def done(self, state) -> bool:
        """True when the strategy has nothing more to ask."""
        raise NotImplementedError(self._unwritten("done(self, state) -> bool (True once nothing is left to ask)"))

    def _unwritten(self, method: str) -> str:
        return (f"{self.name} does not define {method}: a strategy defines init, ask, tell and done "
                f"(README: Strategies: ask / tell over population arrays).")

    def asked(self, out: Any) -> tuple[Any, Any]:
        """ask's result checked as a pair (hp, state) (the values: Space.check_asked)."""
        if not (isinstance(out, tuple) and len(out) == 2 and isinstance(out[0], Mapping)):
            if isinstance(out, tuple) and len(out) == 2:  # a pair whose hp is not a dict
                got = f"a pair whose hp is a {type(out[0]).__name__}"
            else:
                got = f"a tuple of {len(out)}" if isinstance(out, tuple) else f"a {type(out).__name__}"
            raise TypeError(f"{self.name}.ask must return (hp, state): hp a dict name -> (population,) array, and the "
                            f"strategy's new state; got {got}.")
        return out

    def initialised(self, state: Any) -> Any:
        """init's result: the first state (None is a forgotten return)."""
        if state is None:
            raise TypeError(f"{self.name}.init returned None: return the strategy's first state (strategies pass "
                            f"their state explicitly).")
        return state

    def told(self, state: Any) -> Any:
        """tell's result: the new state (None is a forgotten return)."""
        if state is None:
            raise TypeError(f"{self.name}.tell returned None: return the strategy's new state (strategies pass "
                            f"their state explicitly).")
        return state

    def resumed(self, state: Any) -> Any:
        """The state a resumed run restored from its checkpoint, before it goes on (vt.tune): a
        strategy whose state holds settings of its own says here when this call's differ."""
        return state

    def total_evaluations(self, space: Space | None = None) -> int | None:
        """How many scores the whole search is told (ask / tell), when known up front (some need the
        space): the members it trains, or more where one member is scored at several rungs or
        generations (Hyperband, SuccessiveHalving, BOHB, PBT)."""
        return None

    # -- inside vt.tune -------------------------------------------------------------------------------
    #: True for strategies that decide while their population trains (vt.tune then calls
    #: begin_training / decide / end_training around the round's chunks).
    acts_during_training: ClassVar[bool] = False
    #: True when decisions copy one member's training state into another (PBT): the driver then
    #: keeps every member in the population (no early-stop packing), so every source stays there.
    copies_members: ClassVar[bool] = False

    def for_epochs(self, epochs: int) -> "Strategy":
        """This strategy for a vt.tune run of `epochs` epochs (a budget left open takes them)."""
        return self

    def check_epochs(self, epochs: int) -> None:
        """Raises when a vt.tune run of `epochs` epochs cannot work with these settings (before
        anything compiles)."""

    def tune_rounds(self, space: Space | None = None) -> int | None:
        """Rounds (populations) vt.tune trains, when known: by default the evaluations over the
        population, rounded up."""
        total = self.total_evaluations(space)
        return -(-total // self.population) if total else None

    def work_share(self, state, epochs: int) -> float:
        """The share of the round's members x epochs this strategy expects to train (successive
        halving prunes most members early); the plan's price (bucketing="auto") scales by it."""
        return 1.0

    def begin_training(self, state, context: TrainingContext) -> tuple[Any, Decision | None]:
        """Before the round's population trains (before anything of it compiles): check the run,
        -> (state, a decision or None)."""
        return state, None

    def decision_epochs(self, state, epochs: int) -> Collection[int]:
        """Epochs (1 .. epochs - 1) after which `decide` sees the population."""
        return ()

    def decide(self, state, snapshot: Snapshot, key: jax.Array) -> tuple[Any, Decision | None]:
        """Between chunks, at one of decision_epochs: -> (state, a decision or None)."""
        return state, None

    def end_training(self, state, snapshot: Snapshot) -> Any:
        """After the round's last epoch, before tell: -> state (only: no decision is left to apply)."""
        return state

    def member_columns(self, state) -> dict[str, np.ndarray]:
        """Extra results-table columns for the round's members (name -> (n,)), e.g. PBT's lineage."""
        return {}

    def final_hp(self, state, asked: Mapping[str, Any] | None = None) -> Mapping[str, Any]:
        """The encoded hyperparameters the round's members ended with: the table, best_params and
        the refit use them. `asked`: the values asked, as the members ended training with them
        (inside vt.tune, after every Decision's copies and new values); the default returns them."""
        return asked


#: Strategy's class flags (ClassVars): a subclass sets them without an annotation.
_CLASS_FLAGS = frozenset(name for name, annotation in vars(Strategy)["__annotations__"].items()
                         if "ClassVar" in str(annotation))
#: The hooks vt.tune calls only for a strategy whose acts_during_training is True.
_TRAINING_HOOKS = ("begin_training", "decision_epochs", "decide", "end_training")


def checked_done(strategy: Strategy, done: Any) -> bool:
    """strategy.done's result as a bool (None is a forgotten return: the search would never end).
    Functions, not methods: a strategy of yours may have a method or a field of any name."""
    if done is None:
        raise TypeError(f"{strategy.name}.done returned None: return True once nothing is left to ask, else False.")
    return bool(done)


def checked_population_size(strategy: Strategy, n: int) -> int:
    """The size of a population strategy.ask returned, checked against its `population` (every
    round compiles for that many members)."""
    if n > strategy.population:
        raise ValueError(f"{strategy.name}.ask returned {n} members, more than its population={strategy.population}: "
                         f"ask for at most population members (fewer are fine), or raise population.")
    return n


_FROM_FACTORY = object()  # a field's default comes from its default_factory


def _leading_first_signature(cls) -> inspect.Signature:
    """cls's arguments: its leading_arguments (required), then every other field of its __init__
    in declaration order (the parent's, then the subclass's own), with their defaults; keyword-only
    fields last."""
    p = inspect.Parameter
    fields = [f for f in dataclasses.fields(cls) if f.init]
    lead = [p(name, p.POSITIONAL_OR_KEYWORD) for name in cls.leading_arguments]
    rest = []
    for f in fields:
        if f.name in cls.leading_arguments:
            continue
        default = f.default if f.default is not dataclasses.MISSING else (
            _FROM_FACTORY if f.default_factory is not dataclasses.MISSING else p.empty)
        rest.append(p(f.name, p.KEYWORD_ONLY if f.kw_only else p.POSITIONAL_OR_KEYWORD, default=default))
    rest.sort(key=lambda q: q.kind is p.KEYWORD_ONLY)  # (stable: declaration order otherwise)
    return inspect.Signature([p("self", p.POSITIONAL_OR_KEYWORD), *lead, *rest])


def init_leading_first(self, *args, **kwargs):
    """The __init__ of a subclass of a strategy with leading_arguments (Strategy.__init_subclass__):
    e.g. for `@dataclass(frozen=True) class TPEMedian(vt.OptunaSampler): patience: int = 3`, the
    arguments are (sampler, population=64, rounds=1, patience=3), by position or by name. Sets the
    fields and runs __post_init__, as a dataclass's __init__ does; a call that does not fit gets
    the parent's message (checked_arguments), naming what the subclass takes."""
    cls = type(self)
    signature = _leading_first_signature(cls)
    try:
        bound = signature.bind(self, *args, **kwargs)
    except TypeError:
        params = list(signature.parameters.values())[1:]
        positional = [q.name for q in params if q.kind is q.POSITIONAL_OR_KEYWORD]
        names = positional + [q.name for q in params if q.kind is q.KEYWORD_ONLY]
        required = [q.name for q in params if q.default is q.empty]
        raise TypeError(argument_error(cls.__name__, positional, names, required, args, kwargs,
                                       cls.argument_example, {})) from None
    bound.apply_defaults()
    for f in dataclasses.fields(cls):
        if f.init:
            value = bound.arguments[f.name]
        elif f.default is not dataclasses.MISSING:
            value = f.default
        elif f.default_factory is not dataclasses.MISSING:
            value = _FROM_FACTORY
        else:
            continue
        object.__setattr__(self, f.name, f.default_factory() if value is _FROM_FACTORY else value)
    self.__post_init__()


def check_space(owner: str, space: Any) -> Space:
    if not isinstance(space, Space):
        raise TypeError(f"{owner}.init: space must be a vt.Space, got {type(space).__name__}.")
    return space


def as_numpy_population(hp: Mapping[str, Any]) -> dict[str, np.ndarray]:
    return {k: np.asarray(v) for k, v in hp.items()}


def check_strategy(strategy: Any, argument: str = "strategy") -> "Strategy":
    """`strategy` if it is a strategy (an instance), else a TypeError naming the fix."""
    if isinstance(strategy, Strategy):
        strategy._check_hooks_are_called()  # (again: a __post_init__ of yours may not call Strategy's)
        return strategy
    if isinstance(strategy, type) and issubclass(strategy, Strategy):
        raise TypeError(f"{argument}={strategy.__name__} is the class; give a strategy made from it, e.g. "
                        f"{argument}=vt.{strategy.__name__}(...) with its settings.")
    raise TypeError(f"{argument} must be a vt strategy such as vt.RandomSearch(population=64), got {strategy!r}.")
