"""Your own flax.linen module as a population model: `vt.Linen(MyModule)`.

    class CNN(nn.Module):
        features: int = 8        # int / bool / str field: structural, one compiled program per value
        dropout: float = 0.0     # float field: a traced per-member scalar, never a recompile
        @nn.compact
        def __call__(self, x, train: bool = False): ...

    vt.tune(vt.Linen(CNN), space, data, ...)

Space names that match the module's fields fill them (see models/fields.py); the rest go to the
optimizer. The module is built inside the vmapped step with each member's values and applied to
its own variables. Collections other than "params" (BatchNorm's batch_stats) are the member's
model state: updated when it trains, frozen with it, copied with its weights; what a call sows
(self.sow, which appends at every call, in any collection) is left out, as flax leaves out
"intermediates". The module's
`__call__` may take `train` (or `training`, `is_training`, `deterministic`) to switch modes,
or a keyword named by `train_switch=`;
dropout draws from the "dropout" rng, which vt.tune gives each member at every step. flax's
nn.Dropout cannot take a traced rate: use `vt.nn.Dropout`.
"""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any, ClassVar, Mapping

import flax.linen as nn
import jax
import jax.numpy as jnp
from flax import nnx

from vmaptune.arguments import checked_arguments
from vmaptune.models.fields import (DEFAULT_FACTORY, BuiltFlaxModel, FlaxModel, Field, check_train_switch,
                                    mode_arguments, mode_keyword)

__all__ = ["Linen", "BuiltLinen"]


@checked_arguments("vt.Linen(MyModule, static=('features',), loss='cross_entropy')")
@dataclasses.dataclass(frozen=True, eq=False, repr=False)  # (FlaxModel.__repr__)
class Linen(FlaxModel):
    """A flax.linen module class (or a factory of keyword arguments returning one) as a population
    model. static: field names to treat as structural whatever their type. loss, metric: the
    training loss (a name such as "cross_entropy", "mse", "huber", or fn(outputs, targets) ->
    per-example loss) and the validation metric. example_input: an input batch, when the data's
    example shape is not what the module takes."""

    def fields(self) -> dict[str, Field]:
        if isinstance(self.module, type) and issubclass(self.module, nn.Module):
            skip = {"parent", "name"}
            try:
                import typing

                hints = typing.get_type_hints(self.module)
            except Exception:
                hints = {}
            # (a default_factory is a default too: the field is not required)
            return {f.name: Field(f.name, hints.get(f.name, f.type),
                                  f.default if f.default_factory is dataclasses.MISSING else DEFAULT_FACTORY)
                    for f in dataclasses.fields(self.module) if f.name not in skip and f.init}
        return self._signature_fields(self.module, skip=())

    def _check_module_kind(self) -> None:
        self._check_class("flax.linen", "flax.nnx", "Nnx")
        if isinstance(self.module, type) and issubclass(self.module, nn.Module):
            check_field_names(self.module, self._module_name())

    def _built(self, **kwargs) -> "BuiltLinen":
        if isinstance(self.module, type) and issubclass(self.module, nn.Module):
            # (the class's __call__: an instance would need its searched fields' values, which the
            # members give later, each its own)
            return BuiltLinen(**kwargs, mode=mode_keyword(self.module.__call__, self.train_switch))
        fields, missing = self.fields(), (dataclasses.MISSING, inspect.Parameter.empty)
        placeholders = {n: 0.5 for n in kwargs["traced"] if n in fields and fields[n].default in missing}
        template = self.module(**dict(kwargs["static_values"]), **placeholders)
        if not isinstance(template, nn.Module):
            name = self._module_name()
            fix = f"use vt.Nnx({name}) for a flax.nnx module" if isinstance(template, nnx.Module) else \
                "give vt.Linen a flax.linen.Module class (vt.Linen(MyModule)), or a factory that returns one"
            raise TypeError(f"vt.Linen({name}): {name}(**{dict(kwargs['static_values'])}) returned "
                            f"{type(template).__name__}, not a flax.linen Module; {fix}.")
        check_field_names(type(template), self._module_name())
        check_train_switch(self.train_switch, type(template).__call__, "vt.Linen")
        return BuiltLinen(**kwargs, mode=mode_keyword(type(template).__call__, self.train_switch))


#: nn.Module names flax itself uses as each member is initialised and applied: a field of one of
#: these names replaces it (a field `init`, as vt.MLP's, made module.init a string).
FLAX_OWN_NAMES = ("apply", "clone", "init", "init_with_output", "scope", "setup")


def check_field_names(cls: type, name: str) -> None:
    """Raises TypeError for a field of the linen module class `cls` named as one of FLAX_OWN_NAMES."""
    taken = [f.name for f in dataclasses.fields(cls) if f.name in FLAX_OWN_NAMES]
    if taken:
        raise TypeError(f"vt.Linen({name}): its field {taken[0]!r} takes the name of flax's own "
                        f"nn.Module.{taken[0]}, which initialising and applying the module use; rename the field "
                        f"(e.g. {taken[0]}_scheme), and the space's name with it.")


@dataclasses.dataclass(frozen=True)
class BuiltLinen(BuiltFlaxModel):
    mode: tuple[str, bool] | None = None  # the __call__ keyword that switches training mode, and if inverse

    adapter: ClassVar[str] = "Linen"

    def _call_kwargs(self, train: bool) -> dict[str, Any]:
        return mode_arguments(self.mode, train)

    def init(self, key: jax.Array, hp: Mapping[str, jax.Array]):
        module = self.module(**self.module_kwargs(hp))
        x = self.example()
        with self.calling_module(x, "initialised (module.init) on"):  # the module's first call
            variables = module.init({"params": key}, x, **self._call_kwargs(False))
        params = variables["params"]
        state = {name: value for name, value in variables.items() if name != "params"}
        if state:  # (what a training step writes: its state must keep init's structure, step after step)
            state = self._carried(module, params, state, x, key)
        return self.scaled(params, hp), state

    def _carried(self, module: nn.Module, params, state: dict, x: jax.Array, key: jax.Array) -> dict:
        """The collections of `state` (init's, but params) a training step carries: a value sown
        there (self.sow appends to a tuple at every call, so init's 1-tuple grows) is left out, and
        a collection that holds only sown values; traced for shapes only (jax.eval_shape), no work.
        A module this trace fails on keeps init's state: the training step's own checks say why."""
        def trained(params, state):
            return module.apply({"params": params, **state}, batch, **self._call_kwargs(True), rngs={"dropout": key},
                                mutable=list(state))[1]

        batch = jnp.concatenate([x, x])  # (two rows, as the output checks train on: a module may split its batch)
        try:
            written = jax.eval_shape(trained, params, state)
        except Exception:  # (before this trace, such a module's state was init's: its errors are the step's to say)
            return state
        kept = {name: _unchanged(value, written.get(name, value), self.name(), (name,))
                for name, value in state.items()}
        return {name: value for name, value in kept.items() if value is not None}

    def apply(self, params, model_state, x, hp, *, train: bool = False, key: jax.Array | None = None):
        module = self.module(**self.module_kwargs(hp))
        variables = {"params": params, **model_state}
        rngs = {"dropout": key} if key is not None else {}
        with self.calling_module(x, "trained on" if train else "evaluated on"):
            if train and model_state:
                out, updates = module.apply(variables, x, **self._call_kwargs(train), rngs=rngs,
                                            mutable=list(model_state))
                # (a value sown into a collection that also holds state is written anew: left out again)
                return out, {name: _like(updates.get(name, value), value) for name, value in model_state.items()}
            return module.apply(variables, x, **self._call_kwargs(train), rngs=rngs), model_state

    def flax_module(self, params, model_state, hp):
        """(module, variables): `module.apply(variables, x)` is the trained network on scaled x
        (pass your __call__'s mode keyword, e.g. train=False, where it has no default)."""
        return self.module(**self.concrete_kwargs(hp)), {"params": params, **model_state}


def _unchanged(before: Any, after: Any, model: str, path: tuple[str, ...]) -> Any:
    """The part of a collection's tree `before` (init's) whose structure a training call keeps in
    `after`, or None when nothing is left: a sown value (a tuple, which grows at every call) is left
    out; any other variable that a training call makes, or whose structure it changes, is refused,
    since a member's state must keep one structure from step to step."""
    if jax.tree.structure(before) == jax.tree.structure(after):
        return before
    if isinstance(before, tuple):  # self.sow's: (init's value,), then one more per call
        return None
    where = "/".join(path)
    if not (isinstance(before, Mapping) and isinstance(after, Mapping)):
        raise ValueError(f"{model}: the variable {where!r} changes structure when the module trains, so no step could "
                         f"carry it to the next: keep it one fixed shape (self.variable(...), updated in place), or "
                         f"sow into 'intermediates', which is not carried.")
    made = [k for k in after if k not in before and not isinstance(after[k], tuple)]  # (a tuple: sown when training)
    if made:
        raise ValueError(f"{model}: the variable {where + '/' + str(made[0])!r} is made only when the module trains, "
                         f"not when it is initialised (in evaluation mode), so the members' state would change "
                         f"structure after the first step: make it in both modes (self.variable(...) in every call, "
                         f"updated under `if self.is_mutable_collection({path[0]!r}):`), or sow into 'intermediates', "
                         f"which is not carried.")
    kept = {k: part for k, value in before.items() if (part := _unchanged(value, after[k], model, path + (k,)))
            is not None}
    return type(before)(kept) if kept else None


def _like(tree: Any, template: Any) -> Any:
    """`tree` (what a training call wrote into a collection) cut to the entries of `template`, the
    carried state's (_unchanged): what it sowed is left out."""
    if jax.tree.structure(tree) == jax.tree.structure(template) or not isinstance(template, Mapping):
        return tree
    return type(template)({k: _like(tree[k], value) for k, value in template.items()})
