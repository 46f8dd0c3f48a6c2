"""Functions, classes and layers named in error messages as code spells them (nn.relu,
jax.nn.mish, optax.adam, nn.Dense), and the fix for a callable given where a hyperparameter takes
a string or a number: search it by name and look the name up inside the module."""

from __future__ import annotations

import functools
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np


#: Built-in optimizers (vmaptune.optim.OPTIMIZERS: not imported here, which would be a cycle).
OPTIMIZER_NAMES = ("sgd", "momentum", "nesterov", "adam", "adamw", "rmsprop", "adagrad")


def named_modules() -> list[tuple[str, Any]]:
    """The modules a function is shown from, as a user imports them (`import flax.linen as nn`,
    `import jax.numpy as jnp`), first match first: flax.linen's activations (jax.nn's, shared) as
    nn.relu, jax.nn's others as jax.nn.mish."""
    import sys

    import flax.linen  # (here: space.py imports this module before any model is imported)

    out = [("nn", flax.linen), ("jax.nn", jax.nn), ("jnp", jnp), ("np", np)]
    out += [("nnx", sys.modules["flax.nnx"])] if "flax.nnx" in sys.modules else []  # (`from flax import nnx`)
    return out + [("optax", sys.modules["optax"])] if "optax" in sys.modules else out


def function_name(f: Callable) -> str | None:
    """A function's (or class's) name as code spells it (nn.relu, jax.nn.mish, jnp.sin, optax.adam,
    nn.Dense; a function of yours by its own name), or None for one without a usable name (a lambda,
    a partial, a callable object)."""
    name = getattr(f, "__name__", None)
    if not isinstance(name, str) or not name.isidentifier():
        return None
    for prefix, module in named_modules():
        if getattr(module, name, None) is f:  # (the very object: a function of yours named relu is not nn.relu)
            return f"{prefix}.{name}"
    return name


def shown(value: Any) -> str:
    """An option as an error shows it: a function by its name, an object whose repr takes lines (a
    flax layer's) as Dense(...), anything else by its repr."""
    shown = (function_name(value) or repr(value)) if callable(value) else repr(value)
    return f"{type(value).__name__}(...)" if is_object(value) and "\n" in shown else shown


def is_object(value: Any) -> bool:
    """A callable object (a layer made, nn.Dense(8)), not a function, a partial or a class."""
    return getattr(value, "__name__", None) is None and not isinstance(value, (type, functools.partial))


def what(value: Any) -> str:
    return "a class" if isinstance(value, type) else "an object" if is_object(value) else "a function"


def is_optax(value: Any) -> bool:
    return str(getattr(value, "__module__", None) or "").split(".")[0] == "optax"


def own_optimizer(names: list[str]) -> str:
    """The fix for optax functions given as values: the built-in optimizers by name, or your own."""
    built_in = [n for n in names if n in OPTIMIZER_NAMES]
    by_name = f"search the built-in optimizer by name, optimizer=vt.{'Choice' if len(built_in) > 1 else 'Fixed'}(" \
              f"{built_in if len(built_in) > 1 else built_in[0]!r}), or " if built_in == names else ""
    return (f"An optimizer is not a field of the module: {by_name}make your own from each member's "
            f"hyperparameters, vt.tune(..., optimizer=lambda hp: optax.adamw(hp['learning_rate'])) (the README's "
            f"'Your own optax optimizer').")


def by_name(options: Sequence) -> str:
    """How to search callables by name, as a sentence: the Choice of names (vt.Fixed for one), the
    field annotated str, and the look-up inside the module (getattr(nn, ...) where flax.linen has
    every name, jax.nn where it has them, else a table of the names to the functions; a field named
    activation, layer for classes and layers made). A function without a name (a lambda, a partial)
    is your_function there, an object your_layer."""
    import flax.linen

    callables = [o for o in options if callable(o) and not isinstance(o, str)]
    if callables and all(is_optax(o) for o in callables):
        return own_optimizer([(function_name(o) or "").removeprefix("optax.") for o in callables])
    layers = any(isinstance(o, type) or is_object(o) for o in callables)
    field, call = ("layer", "") if layers else ("activation", "(x)")
    code = {}  # name -> code for it, in the options' order (an alias, nn.swish for nn.silu, is one name)
    unnamed, several = 0, sum(not isinstance(o, str) and function_name(o) is None for o in options) > 1
    seen = []  # (the options already named: the same function twice, or an alias of it, nn.swish is nn.silu)
    for o in options:
        if any(o is p for p in seen):
            continue
        seen.append(o)
        name = function_name(o) if callable(o) and not isinstance(o, str) else None
        if name is None and not isinstance(o, str):
            unnamed += 1
            name = f"your_{field if layers else 'function'}{unnamed if several else ''}"
        elif isinstance(o, str):  # (a name beside the functions: flax's, jax.nn's, or one of yours)
            name = next((f"{p}.{o}" for p, m in named_modules()[:2] if hasattr(m, o)), o)
        if name in code.values():  # (a name beside its function: 'relu' and nn.relu are one option)
            continue
        key = name.rsplit(".", 1)[-1]  # (two functions of one name, gelu of yours beside nn.gelu: nn_gelu, gelu_2)
        if key in code:
            key = name.replace(".", "_") if "." in name else key
            key = next(f"{key}_{i}" for i in range(2, len(options) + 2) if f"{key}_{i}" not in code) \
                if key in code else key
        code[key] = name
    names = list(code)
    twice = " (an option is there twice: jax.nn's aliases, such as swish for silu, are one function)" \
        if len(names) < len(options) else ""
    choice = f"vt.Choice({names!r})" if len(names) > 1 else f"vt.Fixed({names[0]!r})"
    module = next((p for p, m in (("nn", flax.linen), ("jax.nn", jax.nn))
                   if all(c in (f"nn.{n}", f"jax.nn.{n}") and getattr(m, n, None) is not None
                          for n, c in code.items())), None)
    lookup = f"getattr({module}, self.{field}){call}" if module else \
        f"{{{', '.join(f'{n!r}: {c}' for n, c in code.items())}}}[self.{field}]{call}"
    return (f"Search them by name, {choice}{twice}, with the field annotated str, and look it up inside the module: "
            f"{lookup}.")
