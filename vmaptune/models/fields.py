"""How a user's module fields become hyperparameters: what `vt.Linen` and `vt.Nnx` share.

A space name that matches a field of the module (a linen dataclass field, an nnx constructor
argument, or a factory's argument) fills it. Fields annotated int, bool or str, or named in
`static=`, are structural: members are grouped by their values and each group compiles its own
program. Float fields are traced: every member passes its own value into the module inside the
vmapped step, so a new value never recompiles. `init_scale`, when the module has no such field,
multiplies every kernel and embedding at initialisation (as the MLP's does).
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import functools
import inspect
import math
import numbers
import os
import re
import types
import typing
from typing import Any, Callable, Mapping

import flax.errors
import flax.linen
import flax.nnx
import jax
import jax.numpy as jnp
import numpy as np

from vmaptune.data import DataSpec
from vmaptune.metrics import Loss, Metric, or_a_distribution
from vmaptune.models.base import BuiltModel, Group, Model
from vmaptune.space import (Choice, Conditions, Distribution, Fixed, IntLogUniform, IntUniform, LogUniform,
                            OneMinusLogUniform, Space, Uniform)
from vmaptune.traced import USED_AS_PYTHON_VALUE

STRUCTURAL_TYPES = (int, bool, str)
INIT_SCALE = "init_scale"
#: Weight leaves init_scale multiplies (flax's names for dense / conv kernels and embeddings).
SCALED_LEAVES = ("kernel", "embedding")
#: Keywords a module's __call__ may take to switch training mode: name -> whether it is the
#: inverse (True to evaluate, False to train).
MODE_KEYWORDS = {"train": False, "training": False, "is_training": False, "deterministic": True}
#: train_switch's default: the __call__ keyword found among MODE_KEYWORDS.
AUTO = "auto"


#: The words of a true/false __call__ keyword that switches training mode: one switch word and
#: only words around it (is_train, train_mode, phase_train, isTraining, eval_only, during_training,
#: is_deterministic). One vmaptune does not pass is refused (mode_keyword); pretrained, constrained,
#: use_retrieval, return_eval_stats or test_time_augment are a module's own options.
SWITCH_WORDS = frozenset({"train", "training", "eval", "evaluate", "evaluation", "evaluating", "inference", "test",
                          "testing", "validation", "validating", "deterministic"})
AROUND_SWITCH = frozenset({"is", "in", "use", "do", "during", "phase", "mode", "flag", "only", "time", "run", "set",
                           "on", "for", "at"})


#: Field.default of a dataclass field whose default comes from a default_factory (not required).
DEFAULT_FACTORY = object()


@dataclasses.dataclass(frozen=True)
class Field:
    name: str
    annotation: Any  # a type, or None when unknown
    default: Any  # dataclasses.MISSING / inspect.Parameter.empty when required; DEFAULT_FACTORY: made by one


def _check_option_types(name: str, annotation: Any, dist: Any, module: str) -> None:
    """A Choice / Fixed for a field annotated int, bool, float or str holds values of that type: "8"
    would reach flax as a string shape, "no" would count as True, a name would reach a float field as
    its option's index, and a number would never equal the names a str field is compared with."""
    if isinstance(annotation, str):
        annotation = {"int": int, "bool": bool, "float": float, "str": str}.get(annotation.strip(), None)
    if annotation is str and getattr(dist, "options", None) is None:  # (an IntUniform, a LogUniform: numbers)
        raise ValueError(f"{name}={dist!r}: {name} is annotated str in {module}, and this gives numbers; give "
                         f"text, e.g. vt.Choice(['relu', 'tanh']).")
    if annotation not in (int, bool, float, str) or getattr(dist, "options", None) is None:
        return
    if annotation is str:
        bad = [o for o in dist.options if not isinstance(o, (str, np.str_))]
        fix = "text, e.g. vt.Choice(['relu', 'tanh'])"
    elif annotation is float:
        bad = [o for o in dist.options if isinstance(o, (str, np.str_))]
        fix = "numbers, e.g. vt.Choice([0.1, 0.5])"
    elif annotation is int:
        bad = [o for o in dist.options if isinstance(o, (bool, np.bool_)) or not isinstance(o, (int, np.integer))]
        fix = "integers, e.g. vt.Choice([4, 8])"
    else:
        bad = [o for o in dist.options if not isinstance(o, (bool, np.bool_))]
        fix = "True / False, e.g. vt.Choice([True, False])"
    if bad:
        raise ValueError(f"{name}={dist!r}: {name} is annotated {annotation.__name__} in {module}, and {bad!r} "
                         f"{'is' if len(bad) == 1 else 'are'} not; give {fix}.")


def _kind_of_annotation(annotation: Any) -> str | None:
    """"structural", "traced" or None (unknown) for a field's annotation."""
    if isinstance(annotation, str):  # unresolved string annotation
        annotation = {"int": int, "bool": bool, "str": str, "float": float}.get(annotation.strip(), None)
    if annotation in STRUCTURAL_TYPES:
        return "structural"
    if annotation is float:
        return "traced"
    args = [a for a in typing.get_args(annotation) if a is not type(None)]  # Optional[int], float | jax.Array
    if args and all(a in STRUCTURAL_TYPES for a in args):
        return "structural"
    if float in args:
        return "traced"
    return None


def _is_float_distribution(dist: Distribution) -> bool:
    if isinstance(dist, (IntUniform, IntLogUniform)):
        return False
    if isinstance(dist, (Choice, Fixed)):
        return dist.is_numeric and any(isinstance(o, float) for o in dist.options)
    return True


def _python_value(dist: Distribution, numeric) -> Any:
    """A structural value as plain Python (the option for categorical, int / bool for numbers)."""
    if isinstance(dist, Choice) and dist.is_flag:  # (space.numeric gives True / False as 1 / 0)
        return bool(np.asarray(numeric).item())
    if isinstance(dist, Choice) and not dist.is_numeric:  # space.numeric keeps names as indices
        return dist.options[int(numeric)]
    if isinstance(dist, Fixed):
        return dist.value  # as given (a float stays a float, unrounded)
    value = np.asarray(numeric).item()
    options = getattr(dist, "options", None)
    if options and all(isinstance(o, bool) for o in options):
        return bool(value)
    return int(value) if float(value).is_integer() else value


def _few_values(dist: Distribution, annotation: Any) -> str:
    """A search of three values across a continuous range (its ends and middle, on its own scale), for
    advice: vt.Choice([0.5, 1.25, 2.0]); integers for a field annotated int (vt.Fixed where one is
    left), True and False for one annotated bool."""
    if annotation in (bool, "bool"):
        return "vt.Choice([False, True])"
    # (in float64, from the bounds as given: float32's would show 1000.00006 for 1000.0001)
    exact = [float(v) for v in np.clip(dist._value(np.asarray([0.0, 0.5, 1.0]), np), dist.low, dist.high)]
    for digits in range(3, 18):  # (more digits where a narrow range needs them: 100.1 .. 100.4 is not 100.0 thrice)
        values = [float(f"{x:.{digits}g}") for x in exact]
        if len(set(values)) == len(set(exact)) and all(dist.low <= v <= dist.high for v in values):
            break  # (0.9999 at 3 digits is 1.0, past the range)
    if annotation in (int, "int"):
        values = [int(round(v)) for v in values]
    values = sorted(set(values), key=values.index)
    return f"vt.Choice({values!r})" if len(values) > 1 else f"vt.Fixed({values[0]!r})"


def _first_value(dist: Distribution) -> Any:
    """The value a template network is built with: the first option, or the low bound."""
    if isinstance(dist, (Choice, Fixed)):
        return dist.options[0]
    return int(dist.low) if isinstance(dist, (IntUniform, IntLogUniform)) else dist.low


@dataclasses.dataclass(frozen=True, eq=False)
class FlaxModel(Model):
    """What vt.Linen and vt.Nnx share: fields, structural groups, checks (see the module docstring).

    module: the module class, or a factory taking the fields as keyword arguments.
    static: names to treat as structural whatever their type. loss: a name or fn(outputs, targets)
    -> per-example loss. metric: the validation metric (a name or vt.Metric). example_input: one
    batch (or example) of inputs; by default the data's shape and dtype. train_switch: the
    __call__ argument that tells the module it trains: "auto" (train, training, is_training, or
    deterministic as its inverse), "NAME" (True to train), "not NAME" (True to evaluate), None."""

    module: Callable
    static: tuple[str, ...] | None = None
    loss: str | Callable | Loss | None = None
    metric: str | Metric | None = None
    example_input: Any = None
    train_switch: str | None = AUTO

    def __post_init__(self):
        if not callable(self.module):
            raise TypeError(f"{type(self).__name__}(module={self.module!r}): give the module class (or a factory "
                            f"function that builds it from keyword arguments).")
        if isinstance(self.module, (flax.linen.Module, flax.nnx.Module)):  # callable too, but one network
            cls = type(self.module).__name__
            raise TypeError(f"{type(self).__name__}(module={cls}(...)): give the module class, "
                            f"vt.{type(self).__name__}({cls}), not a built module: each member builds its own from "
                            f"the space's values (fix a field with vt.Fixed, or leave it at the class's default).")
        try:  # (the built model is a static argument of jax.jit: it must hash)
            hash(self.module)
        except TypeError:
            cls = type(self.module).__name__
            raise TypeError(f"{type(self).__name__}(module={cls}(...)): a factory object must be hashable (it is part "
                            f"of the compiled program's key), and {cls} is not: make it a frozen dataclass "
                            f"(@dataclasses.dataclass(frozen=True)), or give a function.") from None
        self._check_module_kind()
        owner = f"vt.{type(self).__name__}"
        object.__setattr__(self, "train_switch", normal_train_switch(self.train_switch, owner))
        cls = module_class(self.module)
        if cls is not None:  # (a factory's module: checked once it has built one)
            check_train_switch(self.train_switch, cls.__call__, owner)
            if self.train_switch not in (None, AUTO) and self._finds(cls, self.train_switch):
                object.__setattr__(self, "train_switch", AUTO)  # (the same model, resumed either way)
        if self.static is not None:
            if isinstance(self.static, str) or not all(isinstance(n, str) for n in self.static):
                raise TypeError(f"{type(self).__name__}(static={self.static!r}): give a list of field names.")
            object.__setattr__(self, "static", tuple(self.static))
        unknown = [n for n in self.static or () if n not in self.fields()]
        if unknown:
            raise ValueError(f"{type(self).__name__}(static={list(self.static)}): {unknown} are not fields of "
                             f"{self._module_name()}; its fields are {sorted(self.fields())}.")

    # -- what subclasses say ----------------------------------------------------------------------
    def fields(self) -> dict[str, Field]:
        """The module's fields, by name."""
        raise NotImplementedError

    def _built(self, **kwargs) -> BuiltModel:
        raise NotImplementedError

    def _check_module_kind(self) -> None:
        """Raises TypeError for a class of the wrong kind (a flax.nnx class given to vt.Linen, ...)."""

    def _check_class(self, kind: str, other_kind: str, other_adapter: str) -> None:
        """A TypeError when the module is a class but not a `kind` ("flax.linen" / "flax.nnx")
        Module: a class of the other kind is told `other_adapter`, any other class what it needs."""
        bases = {"flax.linen": flax.linen.Module, "flax.nnx": flax.nnx.Module}
        if not isinstance(self.module, type) or issubclass(self.module, bases[kind]):
            return  # a module class, or a factory (checked once it has built one)
        adapter, name = type(self).__name__, self._module_name()
        if issubclass(self.module, bases[other_kind]):
            raise TypeError(f"vt.{adapter}({name}): {name} is a {other_kind} Module, not a {kind} one; use "
                            f"vt.{other_adapter}({name}).")
        raise TypeError(f"vt.{adapter}({name}): {name} is a class, but not a {kind}.Module; vt.{adapter} needs a "
                        f"{kind}.Module class (or a factory function that builds one from keyword arguments).")

    # -- fields and the space -------------------------------------------------------------------
    def _module_name(self) -> str:
        return getattr(self.module, "__name__", repr(self.module))

    @staticmethod
    def _finds(cls: type, switch: str) -> bool:
        """Whether "auto" finds `switch` in cls (train_switch="train" where __call__ takes train)."""
        try:
            return mode_keyword(cls.__call__) == mode_keyword(cls.__call__, switch)
        except TypeError:  # (a switch auto refuses)
            return False

    def __repr__(self):
        switch = "" if self.train_switch == AUTO else f", train_switch={self.train_switch!r}"
        return f"{type(self).__name__}({self._module_name()}{switch})"

    def takes_any_keyword(self) -> bool:
        """Whether the module (a factory) takes **kwargs: names the space sets there cannot be seen."""
        fn = constructor(self.module)
        try:
            return any(p.kind is p.VAR_KEYWORD for p in inspect.signature(fn).parameters.values())
        except (TypeError, ValueError):
            return False

    def _signature_fields(self, fn: Callable, skip: tuple[str, ...]) -> dict[str, Field]:
        try:
            hints = typing.get_type_hints(fn)
        except Exception:  # unresolvable annotations: read them as written
            hints = {}
        out = {}
        for name, p in inspect.signature(fn).parameters.items():
            if name in skip or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
                continue
            out[name] = Field(name, hints.get(name, None if p.annotation is p.empty else p.annotation), p.default)
        return out

    def kinds(self, space: Space) -> dict[str, str]:
        """name -> "structural" or "traced", for the fields the space names."""
        out = {}
        for name, field in self.fields().items():
            if name not in space:
                continue
            dist = space[name]
            kind = "structural" if name in (self.static or ()) else _kind_of_annotation(field.annotation)
            if kind is None:  # no usable annotation: the default's type, else the distribution's
                if isinstance(field.default, STRUCTURAL_TYPES):
                    kind = "structural"
                elif isinstance(field.default, float):
                    kind = "traced"
                else:
                    kind = "traced" if _is_float_distribution(dist) else "structural"
            if kind == "traced" and dist.kind == "categorical" and not dist.is_numeric:
                kind = "structural"  # names of options cannot be traced
            if isinstance(dist, Fixed):
                kind = "structural"  # one value for every member: the module gets it as Python (nnx.Dropout's rate)
            _check_option_types(name, field.annotation, dist, self._module_name())
            static = name in (self.static or ())  # (a float field there takes floats: vt.tune's check_static_ranges)
            if kind == "structural" and _is_float_distribution(dist) and not isinstance(dist, Fixed) \
                    and (not static or _kind_of_annotation(field.annotation) == "structural"):
                example = f", e.g. {name}={_few_values(dist, field.annotation)}" if static else ""
                raise ValueError(f"{name}={dist!r}: {name} is a structural field of {self._module_name()} (int, "
                                 f"bool or str: one compiled program per value); search it with vt.IntUniform, "
                                 f"vt.Choice or vt.Fixed{example}, or annotate it float "
                                 f"{'and leave it out of static ' if static else ''}to trace it.")
            out[name] = kind
        return out

    def check_static_ranges(self, space: Space, strategy: Any) -> None:
        """A float field named in static= and searched with a continuous range (vt.Uniform) is refused
        where `strategy` draws each member's values from it: every member a value of its own, so a
        group of one, compiled alone, every round (vt.tune asks this of every strategy but
        vt.GridSearch, whose few values across the range the members share; an int field there is
        refused by `kinds`, whatever the strategy)."""
        named = getattr(strategy, "name", type(strategy).__name__)
        traced = ("leave it out of static to trace it (a dropout rate: vt.nn.Dropout, vt.nn.NnxDropout in nnx, take "
                  "a traced rate; flax's own Dropout reads it in Python)")
        for name, field in self.fields().items():
            dist = space[name] if name in space else None
            if name not in (self.static or ()) or not isinstance(dist, (Uniform, LogUniform, OneMinusLogUniform)):
                continue
            model = f"vt.{type(self).__name__}({self._module_name()}, static={self.static!r})"
            head = f"{name}={dist!r}: {name} is named in {model}, so each value compiles its own program"
            if getattr(strategy, "copies_members", False):  # (PBT: one program; its structural names are one value)
                raise ValueError(f"{head}, and {named} keeps every member in one program, copying one into "
                                 f"another: a static field cannot differ across its members. {traced[0].upper()}"
                                 f"{traced[1:]}, or give it one value, {name}=vt.Fixed(...).")
            example = _few_values(dist, field.annotation)
            fix = f"with a vt.Choice of a few values, e.g. {name}={example}" if example.startswith("vt.Choice") else \
                f"at one value, {name}={example}"
            raise ValueError(f"{head}, and {named} draws every member a value of its own from a continuous range (one "
                             f"compile per member, every round). Search it {fix}, or with vt.GridSearch, which trains "
                             f"a few values across the range (points_per_axis), or {traced}.")

    def _check_required(self, space: Space) -> None:
        """Every field without a default is in the space: the members cannot be built otherwise."""
        missing = [n for n, f in self.fields().items()
                   if f.default in (dataclasses.MISSING, inspect.Parameter.empty) and n not in space]
        if missing:
            example = ", ".join(f"{n}=vt.Fixed(...)" for n in missing)
            if not isinstance(self.module, type):  # a function: vt.Linen / vt.Nnx read it as a factory
                adapter = type(self).__name__
                kind = "flax.linen" if adapter == "Linen" else "flax.nnx"
                raise ValueError(f"vt.{adapter}({self._module_name()}): vt.{adapter} needs a {kind}.Module class; "
                                 f"got a {type(self.module).__name__}, which it takes as a factory that builds the "
                                 f"module from keyword arguments, and {self._module_name()} has field(s) {missing} "
                                 f"without a default, which the space does not name. Pass the module class "
                                 f"(vt.{adapter}(MyModule)); for a factory, add them to the space ({example}"
                                 f"{or_a_distribution(', or')}) or give them a default.")
            typos = [f"{n!r} (did you mean {close[0]!r}?)" for n in space.names
                     for close in [difflib.get_close_matches(n, missing, n=1)] if close and n not in self.fields()]
            typo = f" The space's {', '.join(typos)} is not a field." if typos else ""
            raise ValueError(f"{self._module_name()} has field(s) {missing} without a default, and the space does "
                             f"not name them; add them to the space ({example}{or_a_distribution(', or')}), or "
                             f"give them a default in the module.{typo}")

    def groups(self, space: Space, data: DataSpec, numeric_hp: Mapping[str, Any], *, bucketing: bool = False):
        """One group per combination of structural values: [(((name, value), ...), member indices)]."""
        structural = [n for n, k in self.kinds(space).items() if k == "structural"]
        size = len(next(iter(numeric_hp.values())))
        if not structural:
            return [((), np.arange(size))]
        columns = [[_python_value(space[n], v) for v in np.asarray(numeric_hp[n])] for n in structural]
        # a value a member's setting does not use (Space.only_when) does not split its group: the
        # network is built with the field's default there (_unused_value)
        used = space.active(space.from_numeric(numeric_hp)) if space.conditions else {}
        columns = [[v if n not in used or used[n][i] else self._unused_value(space, n) for i, v in enumerate(column)]
                   for n, column in zip(structural, columns)]
        keys = [tuple(zip(structural, values)) for values in zip(*columns)]
        order = list(dict.fromkeys(keys))  # first appearance
        return [(key, np.asarray([i for i, k in enumerate(keys) if k == key])) for key in order]

    def _unused_value(self, space: Space, name: str) -> Any:
        """The value of a field where it is not a member's setting (Space.only_when): a value given
        for it (a scikit-learn search's estimator's), else the field's default, as a space without
        it gives, else the distribution's first value (a field without a default; a traced field,
        which takes numbers, whose default is not one)."""
        if name in space._otherwise:
            return space._otherwise[name]
        field = self.fields().get(name)
        default = None if field is None else field.default
        traced = space[name].kind != "categorical"
        if any(default is m for m in (None, dataclasses.MISSING, inspect.Parameter.empty, DEFAULT_FACTORY)) or (
                traced and (isinstance(default, (bool, np.bool_)) or not isinstance(default, numbers.Number))):
            return _first_value(space[name])
        return default

    def build(self, space: Space, data: DataSpec, group: Group = None) -> BuiltModel:
        """The network of one group of members (group: ((name, value), ...) from `groups`; None:
        a template with each structural name's first value, for checks)."""
        self._check_required(space)
        kinds = self.kinds(space)
        structural = tuple(n for n, k in kinds.items() if k == "structural")
        if group is None:
            group = tuple((n, _first_value(space[n])) for n in structural)
        traced = tuple(n for n, k in kinds.items() if k == "traced")
        conditions = space.traced_conditions()
        fields = self.fields()
        field_structural = {n for n, f in fields.items() if _kind_of_annotation(f.annotation) == "structural"}
        shape, dtype = data.input_shape, data.input_dtype
        if self.example_input is not None:
            example = np.asarray(self.example_input)
            shape, dtype = (example.shape[1:] if example.ndim > len(shape) else example.shape), str(example.dtype)
        return self._built(
            module=self.module, static_values=tuple(group), traced=traced,
            scale_init=INIT_SCALE in space and INIT_SCALE not in fields,
            input_shape=tuple(int(d) for d in shape), input_dtype=dtype,
            field_names=tuple(sorted(fields)),
            structural=tuple(sorted(set(structural) | field_structural | set(self.static or ()))),
            conditions=conditions, traced_defaults=tuple((n, self._unused_value(space, n)) for n in traced
                                                         if n in conditions.names),
        )


@dataclasses.dataclass(frozen=True)
class BuiltFlaxModel(BuiltModel):
    """What the built linen and nnx models share (static, hashable)."""

    module: Callable
    static_values: tuple[tuple[str, Any], ...]
    traced: tuple[str, ...]
    scale_init: bool
    input_shape: tuple[int, ...]
    input_dtype: str
    field_names: tuple[str, ...]
    structural: tuple[str, ...]
    # the space's only_when, and the value each traced field takes where it is not a member's setting
    conditions: Conditions = Conditions()
    traced_defaults: tuple[tuple[str, Any], ...] = ()

    adapter: typing.ClassVar[str] = "Flax"  # "Linen" / "Nnx": how the user named the model (vt.Linen(...))

    def name(self) -> str:
        return f"vt.{self.adapter}({getattr(self.module, '__name__', repr(self.module))})"

    @contextlib.contextmanager
    def calling_module(self, x: Any, what: str = "called on"):
        """Runs the user's module on the input `x` (None: builds it): an error of the module's own (a
        convolution given flat rows, ...) comes out naming the model, the structural values it was
        built with, the input's shape and dtype and the likely fix, the original chained. Errors the
        checks explain (a traced value read in Python, a variable updated in evaluation) and
        vmaptune's own pass through as they are."""
        try:
            yield
        except PASSED_THROUGH:
            raise
        except Exception as err:
            # (an nnx module's __call__ missing an argument fails at vmaptune's call itself)
            if raised_by_vmaptune(err) and self._missing_inputs(err) is None:
                raise
            if x is None:  # (building it: an nnx module's __init__)
                fix = self._fix_for(err, "", ()) if _random_stream_error(err) else \
                    self._values_fix() or "Its error is above, raised in its own __init__."
                message = f"{self.name()}{self._built_with()} fails when {what}: {type(err).__name__}: {err}\n{fix}"
                raise (TypeError if isinstance(err, TypeError) else ValueError)(message) from err
            shape, dtype = tuple(int(d) for d in x.shape), str(x.dtype)
            message = (f"{self.name()}{self._built_with()} fails when {what} an input batch of shape {shape}, dtype "
                       f"{dtype} (examples of shape {shape[1:]}, as the data's X without its rows axis): "
                       f"{type(err).__name__}: {err}\n{self._fix_for(err, dtype, shape)}")
            raise (TypeError if isinstance(err, TypeError) else ValueError)(message) from err

    def _built_with(self) -> str:
        """', built with depth=4, width=8': the structural values this module was built with (a
        module that fails for some of the space's values fails for these), or ''."""
        shown = ", ".join(f"{name}={value!r}" for name, value in self.static_values)
        return f", built with {shown}," if shown else ""

    def _values_fix(self) -> str:
        """The fix when the module may fail for some structural values only (a depth whose
        convolutions leave no pixels), or ''."""
        if not self.static_values:
            return ""
        names = ", ".join(repr(name) for name, _ in self.static_values)
        return (f"If it fails only for some of the space's values of {names}, narrow their range in the space (a "
                f"Choice of the values that work, or a lower IntUniform high) or make the module work for them.")

    def _missing_inputs(self, err: BaseException) -> tuple[str, list[str]] | None:
        """(class name, [names]) where `err` says the module's own __call__ lacks required
        arguments (a second input, `mask`), which vmaptune never passes; else None."""
        missing = re.search(r"(\w+)\.__call__\(\) missing \d+ required (?:positional|keyword-only) arguments?: (.+)$",
                            str(err))
        cls = module_class(self.module)  # (a factory's: known once built, so the call that failed tells)
        if not isinstance(err, TypeError) or not missing or (
                missing[1] != cls.__name__ if cls is not None else not _called_by_vmaptune(err)):
            return None
        return missing[1], re.findall(r"'(\w+)'", missing[2])  # ('mask', or 'mask' and 'lengths')

    def _fix_for(self, err: BaseException, dtype: str, shape: tuple[int, ...]) -> str:
        """The likely fix for a module's error on its first call: random streams, integer inputs,
        a string where a function goes, a second input, a layer made for another number of
        features, else the input's shape."""
        text = str(err)
        if _random_stream_error(err):
            train = ("" if self.adapter != "Linen" or getattr(self, "mode", None) else
                     " It also needs a `train: bool = False` argument in __call__ (pass deterministic=not train to "
                     "nn.Dropout): vmaptune passes train=True in the training step and train=False to evaluate, "
                     "when there is no random stream.")
            return (f"vmaptune gives the module one random stream, 'dropout', and only in training: draw every "
                    f"random number from it (self.make_rng('dropout') in linen, rngs.dropout() in nnx: each member "
                    f"and step gets its own).{train}")
        if "integer" in text.lower() and dtype.startswith("float") and not isinstance(err, ArithmeticError):
            return ("The module wants integers (token ids for nn.Embed): give X.astype('int32') (to "
                    "vt.Dataset.from_arrays or an estimator's fit; a pandas DataFrame: X.to_numpy().astype('int32'), "
                    "since its columns become float features); vmaptune keeps integer arrays as they are.")
        if isinstance(err, flax.errors.ScopeCollectionNotFound):
            return ("The module reads a variable its initialisation did not make (one created only when "
                    "training, under `if train:`): vmaptune initialises with train=False. Create every "
                    "variable in both modes (nn.BatchNorm(use_running_average=not train) in every call).")
        if "'str' object is not callable" in text:
            return ("A field the module calls got a string from the space (vt.Choice(['relu', 'tanh'])): keep "
                    "the field a str and look the function up inside, e.g. getattr(nn, self.activation)(x).")
        missing = self._missing_inputs(err)
        if missing:
            owner, names = missing
            shown = " and ".join(repr(n) for n in names)
            return (f"{owner}.__call__ takes {shown} besides its input, and vmaptune calls the module on one "
                    f"array, a batch of X (and the mode keyword, train=..., where __call__ takes one). A model with "
                    f"several inputs takes them concatenated into X (np.concatenate([x.reshape(len(x), -1), "
                    f"{names[0]}.reshape(len({names[0]}), -1)], axis=1) when you make the vt.Dataset) and splits "
                    f"them in __call__ (x, {names[0]} = x[:, :k], x[:, k:]); or give {shown} a default.")
        contracting = re.search(r"contracting dimensions to have the same shape, got \((\d+),\) and \((\d+),\)",
                                text)
        features = shape[-1] if len(shape) == 2 else None  # (flat rows: examples of one axis)
        if contracting and features in (sizes := {int(contracting[1]), int(contracting[2])}) and len(sizes) == 2:
            declared = (sizes - {features}).pop()
            layer = f"nnx.Linear({features}, ...)" if self.adapter == "Nnx" else \
                f"a kernel of shape ({features}, ...) (nn.Dense reads the input size itself)"
            rows = f" Or, where the module takes examples of {features // declared} rows of {declared} (an image's " \
                   f"rows), reshape X to it when you make the vt.Dataset: X.reshape(-1, {features // declared}, " \
                   f"{declared})." if features % declared == 0 and features > declared else ""
            return (f"A layer of the module expects {declared} input features, and the data has {features} "
                    f"(examples of shape ({features},)): make the layer with the data's feature count, {layer}, "
                    f"e.g. from data.X_train.shape[1] passed to the module.{rows}")
        values = self._values_fix()
        if values and isinstance(err, ArithmeticError):  # (a division by a size the values made zero: not X's shape)
            return values
        return (f"If the module expects inputs of another shape, reshape X to it when you make the vt.Dataset: "
                f"{_shape_hint(shape[1:])}." + (f" {values}" if values else ""))

    def hyperparameters(self) -> frozenset[str]:
        return frozenset(self.field_names) | {INIT_SCALE}

    def structural_names(self) -> frozenset[str]:
        return frozenset(self.structural) | {INIT_SCALE}

    def module_kwargs(self, hp: Mapping[str, jax.Array]) -> dict[str, Any]:
        """The module's arguments for one member: the group's structural values, its traced ones
        (a value that is not the member's setting, Space.only_when, at the field's default)."""
        hp = self.conditions.settle(hp, dict(self.traced_defaults)) if self.conditions.rules else hp
        return {**dict(self.static_values), **{n: hp[n] for n in self.traced if n in hp}}

    def concrete_kwargs(self, hp: Mapping[str, Any]) -> dict[str, Any]:
        """module_kwargs with Python numbers for the traced fields (a trained model's hp, on the host)."""
        if self.conditions.rules:
            hp = self.conditions.settle({k: np.asarray(v) for k, v in hp.items()}, dict(self.traced_defaults), np)
        return {**dict(self.static_values), **{n: np.asarray(hp[n]).item() for n in self.traced if n in hp}}

    def example(self) -> jax.Array:
        return jnp.zeros((1,) + self.input_shape, self.input_dtype)

    def padded_row_flops(self) -> float:
        """Forward FLOPs per input row of this group's network, which its program computes for
        every member (forward_flops: XLA's count, once per built model)."""
        return forward_flops(self)

    def scaled(self, params: Any, hp: Mapping[str, jax.Array]) -> Any:
        """params with every kernel and embedding multiplied by hp["init_scale"] (if the space names it)."""
        if not self.scale_init or INIT_SCALE not in hp:
            return params
        scale = jnp.asarray(hp[INIT_SCALE], jnp.float32)

        def leaf(path, x):
            # The leaf's own name: a linen tree ends in it (DictKey); an nnx State goes on into the
            # Variable's attribute (GetAttrKey "value"), which is not the parameter's name.
            names = [key.key for key in path if isinstance(key, jax.tree_util.DictKey)]
            return x * scale.astype(x.dtype) if names and names[-1] in SCALED_LEAVES else x

        return jax.tree_util.tree_map_with_path(leaf, params)


#: Errors of a user's module that vmaptune's checks (vmaptune/program.py: check_outputs) explain
#: themselves, or that must stay what they are.
PASSED_THROUGH = (*USED_AS_PYTHON_VALUE, jax.errors.UnexpectedTracerError,
                  flax.errors.ModifyScopeVariableError)

_PACKAGE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # .../vmaptune


#: Rows of the input batch whose forward pass forward_flops has XLA count (work done once per
#: call, not per row, is spread over them).
FLOP_ROWS = 8


@functools.lru_cache(maxsize=256)
def forward_flops(model: BuiltFlaxModel) -> float:
    """Forward FLOPs per input row of one member of `model` (the planner's and the waste figure's
    price of a row: costs.row_epoch_flops): XLA's cost analysis of its forward pass on FLOP_ROWS
    rows, lowered only (traced from shapes: nothing compiles or runs), and at least 2 per weight
    or state value, as a dense layer's multiply-adds (memory.py bounds a member's state by it:
    an embedding's lookups count no FLOPs). 1.0 where the module cannot be traced here or XLA
    gives no count (the training step's own checks say why a module fails)."""
    names = set(model.traced) | {INIT_SCALE} | set(model.conditions.names)
    names |= {parent for _, parents in model.conditions.rules for parent, _ in parents}
    hp = {name: jax.ShapeDtypeStruct((), jnp.float32) for name in names}  # (one member's scalars, abstract)
    x = jax.ShapeDtypeStruct((FLOP_ROWS,) + model.input_shape, model.input_dtype)
    try:
        params, state = jax.eval_shape(lambda hp: model.init(jax.random.key(0), hp), hp)
        forward = jax.jit(lambda params, state, hp, x: model.apply(params, state, x, hp, train=False)[0])
        cost = forward.lower(params, state, hp, x).cost_analysis()
    except Exception:  # (a module this trace fails on trains, or is refused, as before: priced at 1.0)
        return 1.0
    cost = cost[0] if isinstance(cost, (list, tuple)) and cost else cost  # (older jax: one dict per program)
    flops = float(cost.get("flops", 0.0)) if isinstance(cost, Mapping) else 0.0
    if not math.isfinite(flops) or flops <= 0:
        return 1.0
    values = sum(math.prod(leaf.shape) for leaf in jax.tree.leaves((params, state)))
    return max(flops / FLOP_ROWS, 2.0 * values, 1.0)


def raised_by_vmaptune(err: BaseException) -> bool:
    """True when `err` was raised by vmaptune's own code (a clear message already, e.g. from
    vt.nn's layers inside the user's module), not by flax, jax or the user's code."""
    tb = err.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return tb is not None and os.path.abspath(tb.tb_frame.f_code.co_filename).startswith(_PACKAGE + os.sep)


def _random_stream_error(err: BaseException) -> bool:
    """Whether a module's error is about its random streams (one vmaptune does not give it)."""
    text = str(err)
    return ("PRNG" in text or "RngStream" in text or "no `rngs` argument" in text
            or isinstance(err, flax.errors.InvalidRngError))


def _shape_hint(example: tuple[int, ...]) -> str:
    """What X might be reshaped to, for examples of shape `example`."""
    if len(example) == 1 and example[0] > 1 and math.isqrt(example[0]) ** 2 == example[0]:
        side = math.isqrt(example[0])
        return (f"e.g. X.reshape(-1, {side}, {side}, 1), shape (n, {side}, {side}, 1), for {side}x{side} images "
                f"with one channel (flax's nn.Conv takes (n, height, width, channels)), or reshape inside the "
                f"module's __call__")
    flat = math.prod(example)
    rows = f"X.reshape(len(X), -1), shape (n, {flat}), for a module that takes flat rows (nn.Dense, nnx.Linear); " \
        if len(example) > 1 else ""
    return (f"e.g. {rows}(n, height, width, channels) for images with flax's nn.Conv, (n, length, features) for "
            f"sequences; or reshape inside the module's __call__")


def _called_by_vmaptune(err: BaseException) -> bool:
    """Whether the call that raised `err` was vmaptune's own (the module itself called on a batch),
    not one in your code (an inner module called without an argument): the last frame of the
    traceback outside flax, JAX and Python's wrappers is vmaptune's."""
    last, tb = "", err.__traceback__
    while tb is not None:
        module = str(tb.tb_frame.f_globals.get("__name__", ""))
        if module.split(".")[0] not in ("flax", "jax", "jaxlib", "contextlib", "functools"):
            last = module
        tb = tb.tb_next
    return last.split(".")[0] == "vmaptune"


def module_class(module: Callable) -> type | None:
    """The module class a module argument makes: the class, or a functools.partial's (None: a
    factory function, whose class is known once it has built one)."""
    if isinstance(module, type):
        return module
    if isinstance(module, functools.partial) and isinstance(module.func, type):
        return module.func
    return None


def constructor(module: Callable) -> Callable:
    """The function whose signature lists a module's fields: a class's __init__; for a
    functools.partial of a class (partial(Net, widths=(8, 4))), its __init__ with those keywords
    bound (a partial of an nnx class shows only *args, **kwargs); a factory itself."""
    if isinstance(module, type):
        return module.__init__
    if isinstance(module, functools.partial) and isinstance(module.func, type) and not module.args:
        return functools.partial(module.func.__init__, **module.keywords)
    return module


def mode_keyword(call: Callable, switch: str | None = AUTO) -> tuple[str, bool] | None:
    """(keyword, inverse) of `call` that switches training mode, or None. switch: the model's
    train_switch: "auto" finds train / training / is_training / deterministic (inverse); "NAME" or
    "not NAME" is the keyword the user names; None passes none. In "auto", a true/false keyword
    named as another switch (is_train, train_mode, eval_mode) is refused: vmaptune would call it at
    its default in every training step, so its dropout would never drop and its BatchNorm never
    update, without a word."""
    if switch is None:
        return None
    if switch != AUTO:
        inverse = switch.startswith("not ")
        return (switch[len("not "):].strip() if inverse else switch), inverse
    try:
        params = inspect.signature(call).parameters
    except (TypeError, ValueError):
        return None
    known = next((k for k in MODE_KEYWORDS if k in params), None)
    if known is None:
        try:  # (annotations written as text, `from __future__ import annotations`: read as types)
            params = inspect.signature(call, eval_str=True).parameters
        except Exception:  # noqa: BLE001 (a name the annotation uses that is not importable here: the text)
            pass
        for name, param in params.items():
            if _names_a_switch(name) and _true_or_false(param):
                owner = getattr(call, "__qualname__", "the module's __call__")
                shown = f"{name}: bool" if param.default is inspect.Parameter.empty else f"{name}={param.default!r}"
                raise TypeError(f"{owner} takes {shown} as its switch between training and evaluation, a name "
                                f"vmaptune does not know: it passes train=True in the training step and train=False "
                                f"to evaluate (or training=, is_training=, deterministic=), so {name} would keep its "
                                f"default in every step (dropout never dropping, BatchNorm never updating). Name it: "
                                f"{_declared(name)}, or rename it to train (or training, is_training; "
                                f"deterministic for its inverse); train_switch=None when {name} is an option of the "
                                f"module's own, not a switch.")
    return None if known is None else (known, MODE_KEYWORDS[known])


def _declared(name: str) -> str:
    """How to declare a switch `name` vmaptune does not know, by what its name says it is True for."""
    if _reads_as(name) == "evaluate":
        return f"train_switch='not {name}' (True to evaluate; train_switch={name!r} for one True to train)"
    return f"train_switch={name!r} (train_switch='not {name}' for one True to evaluate)"


def mode_arguments(mode: tuple[str, bool] | None, train: bool) -> dict[str, bool]:
    """The keyword arguments that tell the module it trains (train=True) or evaluates."""
    if mode is None:
        return {}
    if isinstance(mode, str):  # (a model saved before train_switch: a known keyword's name)
        mode = (mode, MODE_KEYWORDS[mode])
    keyword, inverse = mode
    return {keyword: (not train) if inverse else train}


def normal_train_switch(switch: Any, owner: str) -> str | None:
    """train_switch as written the one way ("not  eval_mode" -> "not eval_mode"), or a TypeError for
    one that is not "auto", None, "NAME" or "not NAME", naming the argument and its forms."""
    if switch is None or switch == AUTO:
        return switch
    words = switch.split() if isinstance(switch, str) else []
    if not (len(words) == 1 and words[0].isidentifier() or len(words) == 2 and words[0] == "not"
            and words[1].isidentifier()):
        raise TypeError(f"{owner}(train_switch={switch!r}): give the name of the __call__ argument that is True when "
                        f"the module trains (train_switch='is_train'), 'not NAME' for one that is True when it "
                        f"evaluates (train_switch='not eval_mode'), None for a module without one, or leave it "
                        f"'auto' (train, training, is_training or deterministic).")
    return " ".join(words)


def check_train_switch(switch: str | None, call: Callable, owner: str) -> None:
    """A ValueError for a train_switch (normal_train_switch's) that `call`, the module's __call__,
    cannot take, or that reads the other way: NAME must be a keyword argument of it (not self, not
    the input); one whose name says evaluation (eval_mode, deterministic) must be "not NAME", one
    whose name says training (is_train) "NAME"; None is refused beside a mode keyword vmaptune
    passes (train=...), which it would leave at its default."""
    if switch == AUTO:
        return
    try:
        params = inspect.signature(call).parameters
    except (TypeError, ValueError):
        return
    where = getattr(call, "__qualname__", "__call__")
    if switch is None:
        known = next((k for k in MODE_KEYWORDS if k in params), None)
        if known is not None:
            raise ValueError(f"{owner}(train_switch=None): {where} takes {known!r}, which vmaptune passes "
                             f"({known}={not MODE_KEYWORDS[known]} in the training step); None would leave it at its "
                             f"default in every step. Leave train_switch out.")
        return
    keyword, inverse = mode_keyword(call, switch)
    positional = [n for n, p in params.items() if n != "self" and p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    takes = [n for n, p in params.items() if n != "self" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
             and n != (positional[0] if positional else None)]  # (the input comes first, positionally)
    if keyword not in takes and (keyword in params or not any(p.kind is p.VAR_KEYWORD for p in params.values())):
        raise ValueError(f"{owner}(train_switch={switch!r}): {where} takes no keyword argument {keyword!r} to switch "
                         f"modes (its input and self are not one); it takes {takes}. Give the name of its training "
                         f"switch.")
    reads = _reads_as(keyword)
    if reads is not None and reads != ("evaluate" if inverse else "train"):
        fixed = keyword if inverse else f"not {keyword}"
        raise ValueError(f"{owner}(train_switch={switch!r}) passes {keyword}={not inverse} in the training step and "
                         f"{keyword}={inverse} to evaluate, but its name reads True to {reads}: "
                         f"train_switch={fixed!r}.")


#: Words of a switch's name that say it is True to evaluate (the rest of SWITCH_WORDS: to train).
EVALUATE_WORDS = frozenset(SWITCH_WORDS - {"train", "training"})


#: Words that turn a switch's sense around or leave it open (no_train, skip_training, stochastic_inference).
TURNING_WORDS = frozenset({"no", "not", "non", "skip", "disable", "disabled", "without", "off", "stochastic",
                           "random", "noisy"})


def _reads_as(name: str) -> str | None:
    """"evaluate" or "train": what a switch's name says it is True for (None: its name does not say,
    or says it turned round: no_train)."""
    words = set(_words(name))
    if words & TURNING_WORDS:
        return None
    if words & EVALUATE_WORDS:
        return None if words & {"train", "training"} else "evaluate"
    return "train" if words & {"train", "training"} else None


def _words(name: str) -> list[str]:
    """A keyword's words, snake_case or camelCase, lower case (isTraining -> is, training)."""
    return re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name).lower().strip("_").split("_")


def _names_a_switch(name: str) -> bool:
    """Whether a keyword's name is a training switch's (SWITCH_WORDS): snake_case or camelCase words,
    any case, one switch word and the rest AROUND_SWITCH."""
    words = _words(name)
    return any(w in SWITCH_WORDS for w in words) and all(w in SWITCH_WORDS or w in AROUND_SWITCH for w in words)


def _true_or_false(param: inspect.Parameter) -> bool:
    """A parameter taking True / False: a bool default (numpy's or JAX's too), or annotated bool,
    Optional[bool], bool | None (a type, or text that did not resolve)."""
    default = param.default
    if isinstance(default, (bool, np.bool_)) or (getattr(default, "dtype", None) == np.bool_
                                                 and getattr(default, "shape", None) == ()):
        return True
    annotation = param.annotation
    if isinstance(annotation, str):
        text = annotation.replace(" ", "").replace("typing.", "")
        return text in ("bool", "Optional[bool]", "bool|None", "None|bool", "Union[bool,None]", "Union[None,bool]")
    if annotation is bool:
        return True
    args = typing.get_args(annotation)  # (Optional[bool], bool | None; not Callable[[int], bool] or dict[str, bool])
    return typing.get_origin(annotation) in (typing.Union, types.UnionType) and bool in args and \
        all(a in (bool, type(None)) for a in args)


def is_number(value: Any) -> bool:
    return isinstance(value, numbers.Number) and not isinstance(value, bool)
