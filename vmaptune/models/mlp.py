"""The built-in MLP, padded to the largest shape its space allows and masked per member.

One compiled program trains members of different depth, width and activation: every member owns
weights of the largest shape; a member's `n_hidden` and `n_units` switch layers and units off.
A masked unit outputs 0 and its weights never change; a skipped layer passes its input through;
a member with `n_hidden = 0` reads the input with its own linear head. Each member therefore
computes exactly the function of the small network it stands for (tests/test_models.py).

Hyperparameters the MLP reads (per member, as scalars under vmap):
  n_hidden, n_units, n_units_1 .. n_units_L (per-layer widths), activation, init, init_scale, dropout.

With bucketing, members are grouped by their widest live layer rounded up to a power of two, and
each group gets the same network padded only to that width (`MLP.groups`, `MLP.build(group=cap)`).
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import zlib
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from vmaptune.arguments import checked_arguments
from vmaptune.data import DataSpec
from vmaptune.fast_random import dropout_keep, hash_normal_matrix
from vmaptune.models.base import BuiltModel, Model
from vmaptune.space import (Conditions, IntUniform, Space, categorical_options, check_range, int_bounds,
                            numeric_bounds)
from vmaptune.warn import warn

ACTIVATIONS = {
    "relu": jax.nn.relu,
    "leaky_relu": jax.nn.leaky_relu,
    "elu": jax.nn.elu,
    "gelu": jax.nn.gelu,
    "tanh": jnp.tanh,
    "sigmoid": jax.nn.sigmoid,
    "logistic": jax.nn.sigmoid,  # (scikit-learn's name for it)
    "silu": jax.nn.silu,
    "identity": lambda x: x,
}

# name -> (gain, fan mode, distribution); std = init_scale * sqrt(gain / fan), the fan of "avg"
# being (fan_in + fan_out) / 2: Glorot's variance 2 / (fan_in + fan_out) is gain 1 over it.
# The variances of jax.nn.initializers and Keras (tests/test_models.py checks all six against
# them); the normal draws are not truncated as theirs are.
INITS = {
    "he_normal": (2.0, "in", "normal"),
    "he_uniform": (2.0, "in", "uniform"),
    "xavier_normal": (1.0, "avg", "normal"),
    "xavier_uniform": (1.0, "avg", "uniform"),
    "lecun_normal": (1.0, "in", "normal"),
    "lecun_uniform": (1.0, "in", "uniform"),
}
INIT_ALIASES = {
    "he": "he_normal", "kaiming": "he_normal", "kaiming_normal": "he_normal", "kaiming_uniform": "he_uniform",
    "xavier": "xavier_normal", "glorot": "xavier_normal", "glorot_normal": "xavier_normal",
    "glorot_uniform": "xavier_uniform", "lecun": "lecun_normal",
}

#: matmul input dtypes MLP(matmul_dtype=...) accepts; products always accumulate in float32.
MATMUL_DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}

MLP_HYPERPARAMETERS = ("n_hidden", "n_units", "activation", "init", "init_scale", "dropout")
#: Names fixed when a member's network is built or initialised (plus the per-layer widths).
MLP_STRUCTURAL = ("n_hidden", "n_units", "activation", "init", "init_scale")


def _canonical_init(name: str) -> str:
    name = INIT_ALIASES.get(name, name)
    if name not in INITS:
        raise ValueError(f"unknown init {name!r}; choose from {sorted(INITS)} (aliases: {sorted(INIT_ALIASES)}).")
    return name


@checked_arguments("vt.MLP(hidden=2, units=128, activation='relu')",
                   {"layers": "Use hidden= (hidden layers), or search it with n_hidden in the space.",
                    "width": "Use units= (units per layer), or search it with n_units in the space.",
                    "n_hidden": "n_hidden is a space name: search it with vt.Space(n_hidden=...), or fix it "
                                "with hidden=.",
                    "n_units": "n_units is a space name: search it with vt.Space(n_units=...), or fix it with "
                               "units=."})
@dataclasses.dataclass(frozen=True)
class MLP(Model):
    """Multi-layer perceptron whose structure follows the space.

    Settings here are the values used when the space does not name the hyperparameter:
    `hidden` layers of `units` units, `activation`, `init` (he_normal, xavier_uniform, ...),
    `dropout`. `max_units` caps the padded width (default: the space's largest width).
    `matmul_dtype`: "float32" (default) or "bfloat16": the dtype the layers' matmul inputs are cast to
    (products accumulate in float32; weights, activations, loss and optimizer stay float32, so the
    weights are float32 master copies). bfloat16 suits GPUs and TPUs with bf16 matrix units.
    `loss`: the training loss (a name from vt.LOSSES such as "huber", or fn(outputs, targets) ->
    per-example loss); default cross-entropy or mse.
    """

    hidden: int = 2
    units: int = 128
    activation: str = "relu"
    init: str = "he_normal"
    init_scale: float = 1.0
    dropout: float = 0.0
    matmul_dtype: str = "float32"
    loss: Any = None

    def __post_init__(self):
        if isinstance(self.hidden, bool) or not isinstance(self.hidden, int) or self.hidden < 0:
            raise ValueError(f"MLP(hidden={self.hidden!r}): hidden must be an integer >= 0.")
        if isinstance(self.units, bool) or not isinstance(self.units, int) or self.units < 1:
            raise ValueError(f"MLP(units={self.units!r}): units must be an integer >= 1.")
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"MLP(activation={self.activation!r}): choose from {sorted(ACTIVATIONS)}.")
        if not isinstance(self.init, str):
            raise TypeError(f"MLP(init={self.init!r}): init must be a name such as 'he_normal'; choose from "
                            f"{sorted(INITS)}.")
        _canonical_init(self.init)
        for name, value in (("dropout", self.dropout), ("init_scale", self.init_scale)):
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise TypeError(f"MLP({name}={value!r}): {name} must be a number, e.g. "
                                f"{'dropout=0.1' if name == 'dropout' else 'init_scale=1.0'}; to search it, name "
                                f"it in the space instead.")
        if not 0.0 <= float(self.dropout) < 1.0:
            raise ValueError(f"MLP(dropout={self.dropout!r}): dropout must be in [0, 1), e.g. dropout=0.1.")
        if not float(self.init_scale) > 0:
            raise ValueError(f"MLP(init_scale={self.init_scale!r}): init_scale must be > 0, e.g. init_scale=1.0.")
        if not isinstance(self.matmul_dtype, str) or self.matmul_dtype not in MATMUL_DTYPES:
            raise ValueError(f"MLP(matmul_dtype={self.matmul_dtype!r}): choose from {sorted(MATMUL_DTYPES)} "
                             f"(bfloat16 casts matmul inputs; weights stay float32).")

    def build(self, space: Space, data: DataSpec, group: int | None = None) -> "BuiltMLP":
        """The static, padded network for this space (checks the space's structure first).
        group: a width cap (from `groups`): the network is padded to that width only."""
        if len(data.input_shape) != 1:
            raise ValueError(f"vt.MLP reads flat rows, but the data's examples have shape {data.input_shape}; "
                             f"flatten X to (n, {data.n_features}) or use your own model.")
        if group is None and np.issubdtype(np.dtype(data.input_dtype), np.integer):
            warn(f"vt.MLP reads its inputs as numbers, but the data's are {data.input_dtype}, which a "
                 f"vt.Dataset keeps unscaled (as token ids for an embedding). Build the Dataset from "
                 f"X.astype('float32') (or a DataFrame) to have them standardised.", UserWarning)
        # where n_units is not a member's setting (Space.only_when) it takes vt.MLP's units kept within the
        # space's range (the whole space's: a width group's narrower range would give it another width)
        unit_default = int(np.clip(self.units, *(int_bounds(space, "n_units", 1) or (self.units, self.units))))
        otherwise = space._otherwise  # (values a member takes where a name is not its setting: the network holds them)
        if group is not None:  # (a group's cap already holds its members' widths, settled ones too: MLP.groups)
            space = space.replace(**{n: IntUniform(1, int(group)) for n in _width_names(space)})
            otherwise = {n: v for n, v in otherwise.items() if not (n == "n_units" or n.startswith("n_units_"))}
        depth = int_bounds(space, "n_hidden", 0) or (self.hidden, self.hidden)
        if "n_hidden" in otherwise:
            depth = (min(depth[0], int(otherwise["n_hidden"])), max(depth[1], int(otherwise["n_hidden"])))
        max_depth = depth[1]
        width = int_bounds(space, "n_units", 1) or (self.units, self.units)
        max_width = max([width[1]] + [int(v) for n, v in otherwise.items() if n == "n_units" or n.startswith("n_units_")])
        for layer in range(1, max_depth + 1):
            per_layer = int_bounds(space, f"n_units_{layer}", 1)
            if per_layer is not None:
                max_width = max(max_width, per_layer[1])
        extra = [n for n in space.names if n.startswith("n_units_")
                 and n.removeprefix("n_units_") not in {str(i) for i in range(1, max_depth + 1)}]
        if extra:
            raise ValueError(f"{extra} name layers the network cannot have: n_hidden is at most {max_depth}, "
                             f"so per-layer widths are n_units_1 .. n_units_{max_depth}.")
        activations = categorical_options(space, "activation", self.activation)
        unknown = [a for a in activations if a not in ACTIVATIONS]
        if unknown:
            raise ValueError(f"activation options {unknown} are unknown; choose from {sorted(ACTIVATIONS)}.")
        inits = tuple(_canonical_init(i) for i in categorical_options(space, "init", self.init))
        # a conditional activation / init where it is not the member's setting is the MLP's own, as a
        # space without the name gives: compiled in after the space's options where it is not one
        if "activation" in space.conditions and self.activation not in activations:
            activations = (*activations, self.activation)
        if "init" in space.conditions and _canonical_init(self.init) not in inits:
            inits = (*inits, _canonical_init(self.init))
        check_range(space, "dropout", -np.inf, np.inf, True, True, "use e.g. vt.Uniform(0.0, 0.5)")  # (numbers)
        if "dropout" in space:
            d = space["dropout"]
            low, high = numeric_bounds(d)
            if not (0.0 <= low and high < 1.0):
                raise ValueError(f"dropout={d!r} must stay within [0, 1) (allows {low} .. {high}); use e.g. "
                                 f"vt.Uniform(0.0, 0.5).")
        check_range(space, "init_scale", 0.0, np.inf, False, False, "use e.g. vt.LogUniform(0.1, 10.0)")
        return BuiltMLP(MaskedMLP(
            n_features=data.n_features, n_outputs=int(data.n_outputs),
            max_depth=max_depth, min_depth=depth[0], max_width=max_width,
            activations=activations, inits=inits,
            # a space that only allows rate 0 (sklearn's estimators fix it there) draws no masks
            use_dropout=(numeric_bounds(space["dropout"])[1] > 0) if "dropout" in space else self.dropout > 0,
            variable_width=any(n == "n_units" or n.startswith("n_units_") for n in space.free_names),
            matmul_dtype=self.matmul_dtype,
            # (a structural default inside the padded network: a conditional n_units of Choice([16, 32])
            # where it is not the member's setting is 32, not the MLP's 128 that the network cannot hold)
            defaults=(("n_hidden", int(np.clip(self.hidden, *depth))), ("n_units", unit_default),
                      ("init_scale", self.init_scale), ("dropout", self.dropout),
                      ("activation", _index_or_first(activations, self.activation)),
                      ("init", _index_or_first(inits, _canonical_init(self.init)))),
            conditions=space.traced_conditions(),
        ))

    def groups(self, space: Space, data: DataSpec, numeric_hp, *, bucketing: bool = False):
        """Without bucketing one group. With it: members grouped by their widest live layer,
        rounded up to a power of two (at least 8, at most the space's widest): [(cap, indices)]."""
        size = len(next(iter(numeric_hp.values())))
        if not bucketing or not _width_names(space):
            return [(None, np.arange(size))]
        net = self.build(space, data).net
        depth, widths, _ = net.structure(numeric_hp, xp=np)
        live = np.arange(widths.shape[1])[None, :] < depth[:, None]
        widest = np.max(np.where(live, widths, 1), axis=1)
        caps = np.minimum(2 ** np.ceil(np.log2(np.maximum(widest, 8))).astype(int), net.max_width)
        return [(int(c), np.flatnonzero(caps == c)) for c in np.unique(caps)]

    def merge_groups(self, groups):
        """Width buckets merge into the widest of them (it pads the narrower members)."""
        return True, max(groups)


def _index_or_first(options: tuple, value) -> int:
    """The index of `value` among a categorical's options, else 0 (the first)."""
    return options.index(value) if value in options else 0


def _width_names(space: Space) -> list[str]:
    return [n for n in space.names if n == "n_units" or n.startswith("n_units_")]


class MaskedMLP(nn.Module):
    """The padded network for ONE member (the engine vmaps it). Static fields only."""

    n_features: int
    n_outputs: int
    max_depth: int
    min_depth: int
    max_width: int
    activations: tuple[str, ...]
    inits: tuple[str, ...]
    use_dropout: bool
    defaults: tuple[tuple[str, Any], ...]
    variable_width: bool = True
    matmul_dtype: str = "float32"
    conditions: Conditions = Conditions()  # the space's only_when (settled)

    def settled(self, hp, xp=jnp):
        """hp with each of the network's numeric names that is not a member's setting
        (Space.only_when; its row shows NaN) at the value a space without it gives: the MLP's
        default, and a layer's width at the member's n_units."""
        if not self.conditions.rules:
            return hp
        hp = self.conditions.settle(hp, dict(self.defaults), xp)
        width = self.value(hp, "n_units", xp)
        return self.conditions.settle(hp, {f"n_units_{i + 1}": width for i in range(self.max_depth)}, xp)

    def value(self, hp, name, xp=jnp):
        """hp[name], or the MLP's default when the space does not name it."""
        return hp[name] if name in hp else xp.asarray(dict(self.defaults)[name])

    def structure(self, hp, xp=jnp):
        """-> depth (...), widths (..., max_depth) int32, last_width (...): the live shape of one
        member (scalar hp, traced in the program) or of many (hp arrays (P,) and xp=np: on the
        host, where eager jnp would compile a small program per operation)."""
        return self._live_shape(self.settled(hp, xp), xp)

    def _live_shape(self, hp, xp=jnp):
        """structure() of hp already settled."""
        depth = xp.asarray(self.value(hp, "n_hidden", xp), xp.int32)
        width = xp.asarray(self.value(hp, "n_units", xp), xp.int32)
        layers = [xp.asarray(hp.get(f"n_units_{i + 1}", width), xp.int32) for i in range(self.max_depth)] or [width]
        depth, *layers = xp.broadcast_arrays(depth, *layers)
        widths = xp.stack(layers, axis=-1)
        last = xp.clip(depth - 1, 0, max(self.max_depth - 1, 0))
        last_width = xp.take_along_axis(widths, last[..., None], axis=-1)[..., 0]
        return depth, widths, last_width

    def _activate(self, z, hp):
        if len(self.activations) == 1:
            return ACTIVATIONS[self.activations[0]](z)
        branches = [ACTIVATIONS[a] for a in self.activations]
        # Under vmap this becomes a select over every branch: elementwise work, small next to matmuls.
        return jax.lax.switch(jnp.asarray(hp.get("activation", 0), jnp.int32), branches, z)

    def _dense(self, name, h, rows_live, cols_live, fan_in, fan_out, hp, base_key):
        """h @ kernel + bias. Padded rows/columns start at 0; the init uses the member's real fans and
        a key from base_key (the module's first draw at init; None after) and the layer's name."""
        shape = (h.shape[-1], cols_live.shape[0])
        scale = jnp.asarray(self.value(hp, "init_scale"), jnp.float32)
        scheme = jnp.asarray(hp.get("init", 0), jnp.int32)

        def kernel_init(_flax_key, shape):
            stds, uniform = [], []
            for init_name in self.inits:
                gain, mode, dist = INITS[init_name]
                fan = fan_in if mode == "in" else 0.5 * (fan_in + fan_out)
                stds.append(jnp.sqrt(gain / jnp.maximum(fan, 1.0)))
                uniform.append(dist == "uniform")
            std = jnp.stack(stds)[scheme] * scale
            # entry (i, j) depends on (key, i, j) only: the same initial network in any padded shape. The
            # key is the layer's name's, not flax's (a count of the params made before it: the head's
            # depended on the population's largest depth, so a member's start on the others' depths)
            key = jax.random.fold_in(base_key, zlib.crc32(name.encode()) & 0x7FFFFFFF)
            normal, uniform_draw = hash_normal_matrix(key, shape)
            draw = jnp.where(jnp.asarray(uniform)[scheme], math.sqrt(3.0) * uniform_draw, normal)
            return jnp.where(rows_live[:, None] & cols_live[None, :], draw * std, 0.0)

        # flax traces a param's init at every apply, only to check its shape: a zeros init
        # there keeps the check without tracing the hash draws (each trace of the program pays it)
        init = kernel_init if self.is_initializing() else (lambda key, shape: jnp.zeros(shape, jnp.float32))
        kernel = self.param(f"{name}_kernel", init, shape)
        bias = self.param(f"{name}_bias", nn.initializers.zeros, (shape[1],), jnp.float32)  # (float32 under x64 too)
        if self.matmul_dtype == "float32":
            return h @ kernel + bias
        # bf16 inputs, float32 accumulation; the cast's gradient returns float32 to the master weights
        low = MATMUL_DTYPES[self.matmul_dtype]
        return jnp.matmul(h.astype(low), kernel.astype(low), preferred_element_type=jnp.float32) + bias

    @nn.compact
    def __call__(self, x, hp, *, train: bool):
        hp = self.settled(hp)
        depth, widths, last_width = self._live_shape(hp)
        units = jnp.arange(self.max_width)
        f32 = lambda v: jnp.asarray(v, jnp.float32)
        h, rows_live, fan_in = x, jnp.ones((self.n_features,), bool), f32(self.n_features)
        base = self.make_rng("params") if self.is_initializing() else None  # (the first draw: the same in any shape)
        for layer in range(self.max_depth):
            # Live layers are 0 .. depth-1, so a live layer's input is the previous layer's output.
            cols_live = units < widths[layer]
            z = self._dense(f"hidden_{layer}", h, rows_live, cols_live, fan_in, f32(widths[layer]), hp, base)
            a = jnp.where(cols_live, self._activate(z, hp), 0.0)  # masked units output exactly 0
            if self.use_dropout and train:
                rate = f32(self.value(hp, "dropout"))
                keep = dropout_keep(self.make_rng("dropout"), rate, a.shape)
                a = jnp.where(keep, a / (1.0 - rate), 0.0)
            h = a if layer == 0 else jnp.where(layer < depth, a, h)  # a skipped layer passes h through
            rows_live, fan_in = cols_live, f32(widths[layer])
        n_out = f32(self.n_outputs)
        all_out = jnp.ones((self.n_outputs,), bool)
        out = None
        if self.max_depth > 0:
            out = self._dense("head", h, units < last_width, all_out, f32(last_width), n_out, hp, base)
        if self.min_depth == 0:
            direct = self._dense("direct_head", x, jnp.ones((self.n_features,), bool), all_out,
                                 f32(self.n_features), n_out, hp, base)
            out = direct if out is None else jnp.where(depth == 0, direct, out)
        return out


class PlainDense(nn.Module):
    """flax.linen.Dense's layout ({"kernel", "bias"}) with the MLP's matmul (bf16 inputs and f32
    accumulation where matmul_dtype says so)."""

    features: int
    matmul_dtype: str = "float32"

    @nn.compact
    def __call__(self, h):
        kernel = self.param("kernel", nn.initializers.lecun_normal(), (h.shape[-1], self.features), jnp.float32)
        bias = self.param("bias", nn.initializers.zeros, (self.features,), jnp.float32)
        if self.matmul_dtype == "float32":
            return h @ kernel + bias
        low = MATMUL_DTYPES[self.matmul_dtype]
        return jnp.matmul(h.astype(low), kernel.astype(low), preferred_element_type=jnp.float32) + bias


class PlainMLP(nn.Module):
    """One trained member of vt.MLP at its own size (TrainedModel.flax_module): Dense layers
    hidden_0 .. hidden_{L-1} of `widths`, `activation` after each, and `head` (`direct_head` with
    no hidden layer). Takes scaled inputs; gives logits, or standardised values."""

    widths: tuple[int, ...]
    n_outputs: int
    activation: str = "relu"
    matmul_dtype: str = "float32"

    @nn.compact
    def __call__(self, x):
        h = x
        for i, width in enumerate(self.widths):
            h = ACTIVATIONS[self.activation](PlainDense(width, self.matmul_dtype, name=f"hidden_{i}")(h))
        return PlainDense(self.n_outputs, self.matmul_dtype, name="head" if self.widths else "direct_head")(h)


@dataclasses.dataclass(frozen=True)
class BuiltMLP(BuiltModel):
    """The engine's view of a MaskedMLP. Hashable: static config."""

    net: MaskedMLP
    shape_independent_init = True  # hash_normal_matrix: entry (i, j) from (key, i, j) only

    def hyperparameters(self) -> frozenset[str]:
        return frozenset(MLP_HYPERPARAMETERS) | self._layer_widths()

    def structural_names(self) -> frozenset[str]:
        return frozenset(MLP_STRUCTURAL) | self._layer_widths()

    def _layer_widths(self) -> frozenset[str]:
        return frozenset(f"n_units_{i}" for i in range(1, self.net.max_depth + 1))

    def init(self, key, hp):
        x = jnp.zeros((1, self.net.n_features), jnp.float32)
        return self.net.init({"params": key}, x, hp, train=False)["params"], {}

    def apply(self, params, model_state, x, hp, *, train=False, key=None):
        rngs = {"dropout": key} if (train and self.net.use_dropout) else {}
        return self.net.apply({"params": params}, x, hp, train=train, rngs=rngs), model_state

    def flax_module(self, params, model_state, hp) -> tuple[PlainMLP, dict]:
        """(PlainMLP, {"params": ...}): the member at its own depth and widths, its weights cut
        out of the padded ones the search trained (the padding holds zeros that never train)."""
        net = self.net
        hp = net.settled({k: np.asarray(v) for k, v in hp.items()}, np)  # (as it trained: Space.only_when)
        depth, widths, _ = net._live_shape(hp, xp=np)
        widths = tuple(int(w) for w in np.atleast_1d(widths)[:int(depth)])
        activation = net.activations[int(np.asarray(hp.get("activation", 0)))]
        take = lambda name, rows, cols: {"kernel": np.asarray(params[f"{name}_kernel"])[:rows, :cols],  # noqa: E731
                                         "bias": np.asarray(params[f"{name}_bias"])[:cols]}
        layers, rows = {}, net.n_features
        for i, width in enumerate(widths):
            layers[f"hidden_{i}"] = take(f"hidden_{i}", rows, width)
            rows = width
        layers["head" if widths else "direct_head"] = take("head" if widths else "direct_head", rows, net.n_outputs)
        module = PlainMLP(widths=widths, n_outputs=net.n_outputs, activation=activation, matmul_dtype=net.matmul_dtype)
        return module, {"params": layers}

    def row_flops(self, hp, size: int) -> np.ndarray:
        """(size,) forward matmul FLOPs per input row of each member's live network (2 per
        multiply-add), on the host."""
        net = self.net
        depth, widths, last_width = net.structure(hp, xp=np)
        depth, last_width = np.broadcast_to(depth, (size,)), np.broadcast_to(last_width, (size,))
        widths = np.broadcast_to(widths, (size, widths.shape[-1])).astype(np.float64)
        flops, fan_in = np.zeros(size), np.full(size, float(net.n_features))
        for layer in range(net.max_depth):
            live = layer < depth
            flops += np.where(live, 2.0 * fan_in * widths[:, layer], 0.0)
            fan_in = np.where(live, widths[:, layer], fan_in)
        head = np.where(depth > 0, 2.0 * last_width * net.n_outputs, 2.0 * net.n_features * net.n_outputs)
        return flops + head

    def padded_row_flops(self) -> float:
        """Forward matmul FLOPs per row the padded program actually computes, for every member."""
        net = self.net
        widths = [net.n_features] + [net.max_width] * net.max_depth
        flops = sum(2.0 * a * b for a, b in zip(widths[:-1], widths[1:]))
        flops += 2.0 * net.max_width * net.n_outputs if net.max_depth > 0 else 0.0
        return flops + (2.0 * net.n_features * net.n_outputs if net.min_depth == 0 else 0.0)

    @property
    def fixed_structure(self) -> bool:
        """True when every member has the full padded shape (then no masks are needed)."""
        return self.net.min_depth == self.net.max_depth and not self.net.variable_width

    def update_mask(self, hp):
        """Pytree like params: False where a weight must never change; None if nothing is masked."""
        net = self.net
        if self.fixed_structure:
            return None
        depth, widths, last_width = net.structure(hp)
        units = jnp.arange(net.max_width)
        mask = {}
        rows_live = jnp.ones((net.n_features,), bool)
        for layer in range(net.max_depth):
            cols_live = (units < widths[layer]) & (layer < depth)
            mask[f"hidden_{layer}_kernel"] = rows_live[:, None] & cols_live[None, :]
            mask[f"hidden_{layer}_bias"] = cols_live
            rows_live = units < widths[layer]
        shape_out = (net.n_outputs,)
        if net.max_depth > 0:
            rows = (units < last_width) & (depth > 0)
            mask["head_kernel"] = jnp.broadcast_to(rows[:, None], (net.max_width, net.n_outputs))
            mask["head_bias"] = jnp.broadcast_to(depth > 0, shape_out)
        if net.min_depth == 0:
            mask["direct_head_kernel"] = jnp.broadcast_to(depth == 0, (net.n_features, net.n_outputs))
            mask["direct_head_bias"] = jnp.broadcast_to(depth == 0, shape_out)
        return mask
