"""Your own flax.nnx module as a population model: `vt.Nnx(MyModule)`.

    class MLP(nnx.Module):
        def __init__(self, width: int, dropout: float, *, rngs: nnx.Rngs): ...
        def __call__(self, x): ...

    vt.tune(vt.Nnx(MLP), space, data, ...)

Space names that match the constructor's arguments fill them (see models/fields.py): int / bool /
str arguments are structural, float ones traced. Inside the vmapped step the module is built with
the member's values, its variables are put in (`nnx.update`), it runs in `train()` or `eval()`
mode, and its non-parameter variables (BatchNorm's batch statistics) come back out as the
member's model state. Building a module initialises its weights, which are overwritten at once:
XLA drops that work from the compiled step. `rngs` gets a "params" stream and each member's
"dropout" key for the step. nnx.Dropout cannot take a traced rate: use `vt.nn.NnxDropout`.
"""

from __future__ import annotations

import dataclasses
import inspect
from typing import ClassVar, Mapping

import flax.linen as nn
import jax
import jax.numpy as jnp
from flax import nnx

from vmaptune.arguments import checked_arguments
from vmaptune.models.fields import (AUTO, BuiltFlaxModel, FlaxModel, Field, check_train_switch, constructor,
                                    mode_arguments, mode_keyword)

__all__ = ["Nnx", "BuiltNnx"]

#: The variables that are the member's model state: every nnx.Variable but parameters and rng
#: counters. Only Variables: nnx also lists a concrete array attribute (a float argument stored as
#: `self.rate = rate`, concrete when a saved model is rebuilt, traced in the step), which would make
#: the state's structure depend on where the module was built. Nor what a call sows
#: (self.sow(nnx.Intermediate, ...)): it exists only after a call, as linen's 'intermediates'; a
#: Variable type of your own sown in a call is left out too (BuiltNnx._carried).
MODEL_STATE = nnx.All(nnx.Variable, nnx.Not(nnx.Any(nnx.Param, nnx.RngState, nnx.Intermediate)))


@checked_arguments("vt.Nnx(MyModule, static=('features',), loss='cross_entropy')")
@dataclasses.dataclass(frozen=True, eq=False, repr=False)  # (FlaxModel.__repr__)
class Nnx(FlaxModel):
    """A flax.nnx module class (or a factory) as a population model: constructor arguments by name,
    plus `rngs`. static, loss, metric, example_input: as vt.Linen's."""

    def fields(self) -> dict[str, Field]:
        return self._signature_fields(constructor(self.module), skip=("self", "rngs"))

    def _check_module_kind(self) -> None:
        self._check_class("flax.nnx", "flax.linen", "Linen")
        if not isinstance(self.module, type):  # (a factory: its own checks say what it lacks)
            return
        try:
            parameters = inspect.signature(self.module.__init__).parameters
        except (TypeError, ValueError):
            return
        if "rngs" not in parameters and not any(p.kind is p.VAR_KEYWORD for p in parameters.values()):
            name = self._module_name()
            raise TypeError(f"vt.Nnx({name}): {name} takes no `rngs` argument; vmaptune builds every member with "
                            f"rngs=nnx.Rngs(params=..., dropout=...), so that each starts from weights of its own and "
                            f"draws its own dropout. Add `*, rngs: nnx.Rngs` to its __init__ and build the layers "
                            f"with it (nnx.Linear(..., rngs=rngs)).")

    def _built(self, **kwargs) -> "BuiltNnx":
        if isinstance(self.module, type):  # (a training switch vmaptune does not know: refused now, not traced)
            mode_keyword(self.module.__call__, self.train_switch)
        return BuiltNnx(**kwargs, train_switch=self.train_switch)


@dataclasses.dataclass(frozen=True)
class BuiltNnx(BuiltFlaxModel):
    train_switch: str | None = AUTO  # Nnx's: a factory's module class is known once built

    adapter: ClassVar[str] = "Nnx"

    def _module(self, hp: Mapping[str, jax.Array], params_key, dropout_key) -> nnx.Module:
        rngs = nnx.Rngs(params=params_key, dropout=dropout_key)
        with self.calling_module(None, "built"):  # (its own error, naming the values it was built with)
            model = self.module(**self.module_kwargs(hp), rngs=rngs)
        if not isinstance(model, nnx.Module):  # a factory's result
            name = getattr(self.module, "__name__", repr(self.module))
            fix = f"use vt.Linen({name}) for a flax.linen module" if isinstance(model, nn.Module) else \
                "give vt.Nnx a flax.nnx.Module class (vt.Nnx(MyModule)), or a factory that returns one"
            raise TypeError(f"vt.Nnx({name}): {name}(...) returned {type(model).__name__}, not a flax.nnx Module; "
                            f"{fix}.")
        return model

    def init(self, key: jax.Array, hp: Mapping[str, jax.Array]):
        model = self._module(hp, key, jax.random.fold_in(key, 1))  # nnx variables exist once built
        params = nnx.state(model, nnx.Param)
        if not jax.tree.leaves(params):  # (layers made in __call__ are made anew each step: nothing would train)
            raise ValueError(f"{self.name()} holds no parameters once built (no nnx.Param in it after __init__), "
                             f"so no member would train: layers made in __call__ are made anew at each step. "
                             f"Build the layers in __init__ with the rngs it is given (self.linear = "
                             f"nnx.Linear(..., rngs=rngs)) and call them in __call__.")
        return self.scaled(params, hp), nnx.state(model, MODEL_STATE)

    def apply(self, params, model_state, x, hp, *, train: bool = False, key: jax.Array | None = None):
        # training: each member and step draws its own numbers from either stream (a draw from
        # `params` in __call__, noise say, got one fixed key); the weights the build makes are
        # replaced at once, and XLA drops that work
        params_key = jax.random.key(0) if key is None else jax.random.fold_in(key, 1)
        model = self._module(hp, params_key, jax.random.key(0) if key is None else key)
        nnx.update(model, params, model_state)
        model.train() if train else model.eval()
        # a __call__ that takes the mode (train=, deterministic=, ...: per call, over the layers'
        # attributes that train() / eval() set) is given it, as vt.Linen gives it
        if not isinstance(self.module, type):
            check_train_switch(self.train_switch, type(model).__call__, "vt.Nnx")
        mode = mode_keyword(type(model).__call__, self.train_switch)
        with self.calling_module(x):  # the module's first call (building it only made its variables)
            out = model(x, **mode_arguments(mode, train))
        return out, self._carried(nnx.state(model, MODEL_STATE), model_state)

    def _carried(self, after: nnx.State, before: nnx.State) -> nnx.State:
        """The model state a call leaves (`after`) in the structure of the one it was given
        (`before`, as built): a value the call sowed (self.sow with a Variable type of your own, a
        tuple that grows at every call) is left out, as nnx.Intermediate is. A variable the call made
        otherwise (one created in __call__), or whose structure it changed, is refused: the module is
        built anew at every step, so it would start again at every step, and the state would change
        structure."""
        if not isinstance(before, nnx.State) or jax.tree.structure(after) == jax.tree.structure(before):
            return after
        given, flat = dict(before.flat_state()), list(after.flat_state())
        for path, variable in flat:
            where = ".".join(str(p) for p in path)
            if path not in given and not isinstance(variable.get_value(), tuple):
                raise ValueError(f"{self.name()}: its variable self.{where} ({type(variable).__name__}) is made when "
                                 f"the module is called, not when it is built: vmaptune builds each member's module "
                                 f"anew at every step and carries the variables __init__ makes, so this one would "
                                 f"start again at every step. Make it in __init__ (self.{where} = "
                                 f"{type(variable).__name__}(...)), or sow into nnx.Intermediate, which is not "
                                 f"carried.")
            if path in given and jax.tree.structure(variable) != jax.tree.structure(given[path]):
                raise ValueError(f"{self.name()}: its variable self.{where} ({type(variable).__name__}) changes "
                                 f"structure when the module is called (a value sown into it grows at every call), "
                                 f"so no step could carry it to the next: keep it one fixed shape, or sow into "
                                 f"nnx.Intermediate, which is not carried.")
        return nnx.State.from_flat_path([(path, variable) for path, variable in flat if path in given])

    def flax_module(self, params, model_state, hp) -> nnx.Module:
        """The nnx.Module holding the trained variables, in eval mode: `module(x)` on scaled x
        (pass your __call__'s mode keyword, e.g. train=False, where it has no default)."""
        model = self.module(**self.concrete_kwargs(hp), rngs=nnx.Rngs(params=0, dropout=0))
        nnx.update(model, jax.tree.map(jnp.asarray, params), jax.tree.map(jnp.asarray, model_state))
        model.eval()
        return model
