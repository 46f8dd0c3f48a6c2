"""The padded-and-masked MLP computes exactly the small network each member stands for."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import vmaptune as vt
from vmaptune.data import DataSpec
from vmaptune.models import ACTIVATIONS
from vmaptune.models.mlp import INITS

N_FEATURES, N_OUT, MAX_DEPTH, MAX_WIDTH = 6, 3, 3, 12
SPACE = vt.Space(
    n_hidden=vt.IntUniform(0, MAX_DEPTH),
    n_units=vt.IntUniform(1, MAX_WIDTH),
    activation=vt.Choice(sorted(ACTIVATIONS)),
    dropout=vt.Uniform(0.0, 0.5),
)
def spec(n_features, n_outputs):
    return DataSpec((n_features,), n_outputs, "classification")


NET = vt.MLP().build(SPACE, spec(N_FEATURES, N_OUT))


def forward(net, params, x, hp, **kwargs):
    """The network's outputs (the MLP keeps no model state)."""
    out, state = net.apply(params, {}, x, hp, **kwargs)
    assert state == {}
    return out


init = jax.jit(lambda key, hp: NET.init(key, hp)[0])


@jax.jit
def masked_out_grad_mask(params, x, hp):
    """One compiled program for every depth, width and activation (they are traced values)."""
    out = forward(NET, params, x, hp, train=False)
    grads = jax.grad(lambda p: jnp.sum(jnp.sin(forward(NET, p, x, hp, train=False))))(params)
    return out, grads, NET.update_mask(hp)


def plain_network(params, x, depth, width, activation):
    """The small network, built with the member's live weights and no masks at all."""
    act = ACTIVATIONS[activation]
    if depth == 0:
        return x @ params["direct_head_kernel"] + params["direct_head_bias"]
    h = act(x @ params["hidden_0_kernel"][:, :width] + params["hidden_0_bias"][:width])
    for layer in range(1, depth):
        h = act(h @ params[f"hidden_{layer}_kernel"][:width, :width] + params[f"hidden_{layer}_bias"][:width])
    return h @ params["head_kernel"][:width] + params["head_bias"]


@pytest.mark.parametrize("activation", sorted(ACTIVATIONS))
def test_masked_equals_small_network_outputs_and_gradients(activation):
    x = jax.random.normal(jax.random.key(1), (9, N_FEATURES))
    for depth in range(MAX_DEPTH + 1):
        width = int(jax.random.randint(jax.random.key(depth), (), 1, MAX_WIDTH + 1))
        hp = SPACE.encode({"n_hidden": depth, "n_units": width, "activation": activation, "dropout": 0.2})
        hp = {k: v[0] for k, v in SPACE.numeric(hp).items()}
        params = init(jax.random.key(depth + 10), hp)
        out, g_masked, mask = masked_out_grad_mask(params, x, hp)
        ref = plain_network(params, x, depth, width, activation)
        np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-6)

        def loss_plain(p):
            return jnp.sum(jnp.sin(plain_network(p, x, depth, width, activation)))

        g_plain = jax.grad(loss_plain)(params)
        for name in params:
            # float32 sums in another order (XLA fuses the masked network differently): an absolute
            # tolerance on the gradient's own scale, for entries that cancel to near zero
            scale = max(1.0, float(np.max(np.abs(g_plain[name]))))
            np.testing.assert_allclose(g_masked[name], g_plain[name], rtol=1e-5, atol=1e-5 * scale, err_msg=name)
            # gradients vanish wherever the mask freezes a weight
            assert np.all(np.asarray(g_masked[name])[~np.asarray(mask[name])] == 0), name


def test_init_uses_the_members_real_fan_in():
    space = vt.Space(n_units=vt.IntUniform(4, 400), init=vt.Choice(["he_normal"]))
    net = vt.MLP(hidden=2).build(space, spec(50, 2))
    stds = []
    for width in (4, 400):
        hp = {k: v[0] for k, v in space.numeric(space.encode({"n_units": width, "init": "he_normal"})).items()}
        params, _ = net.init(jax.random.key(0), hp)
        w = np.asarray(params["hidden_1_kernel"])[:width, :width]
        stds.append(w.std())
        assert np.all(np.asarray(params["hidden_1_kernel"])[width:] == 0)  # padding starts at zero
    np.testing.assert_allclose(stds, [np.sqrt(2 / 4), np.sqrt(2 / 400)], rtol=0.35)


@pytest.mark.parametrize("name", sorted(INITS))
def test_each_init_draws_with_jax_s_own_initializer_s_spread(name):
    """he / xavier (Glorot) / lecun, normal / uniform, mean what jax.nn.initializers (and Keras)
    mean: a 300 x 100 layer's weights have their initializer's standard deviation, and uniform
    ones stay inside its bound."""
    space = vt.Space(n_units=vt.Fixed(100), init=vt.Choice([name]))
    net = vt.MLP(hidden=2).build(space, spec(300, 2))
    hp = {k: v[0] for k, v in space.numeric(space.encode({"n_units": 100, "init": name})).items()}
    w = np.asarray(net.init(jax.random.key(0), hp)[0]["hidden_0_kernel"])  # fan_in 300, fan_out 100
    family, distribution = name.split("_")
    reference = getattr(jax.nn.initializers, f"{'glorot' if family == 'xavier' else family}_{distribution}")
    theirs = np.asarray(reference()(jax.random.key(1), (300, 100)))
    np.testing.assert_allclose(w.std(), theirs.std(), rtol=0.03)
    if distribution == "uniform":
        assert np.abs(w).max() <= np.abs(theirs).max() * 1.01
    else:  # a normal's tails: 30 000 draws reach well past a uniform's bound, sqrt(3) std
        assert np.abs(w).max() > 2.5 * w.std()


def test_dropout_is_per_member_and_off_at_evaluation():
    hp = {k: v[0] for k, v in SPACE.numeric(SPACE.encode(
        {"n_hidden": 2, "n_units": 12, "activation": "relu", "dropout": 0.5})).items()}
    params, _ = NET.init(jax.random.key(0), hp)
    x = jnp.ones((4, N_FEATURES))
    a = forward(NET, params, x, hp, train=True, key=jax.random.key(1))
    b = forward(NET, params, x, hp, train=True, key=jax.random.key(2))
    assert not np.allclose(a, b)
    np.testing.assert_array_equal(forward(NET, params, x, hp, train=False), forward(NET, params, x, hp, train=False))
    hp0 = dict(hp, dropout=jnp.float32(0.0))
    np.testing.assert_allclose(forward(NET, params, x, hp0, train=True, key=jax.random.key(1)),
                               forward(NET, params, x, hp0, train=False), rtol=1e-6)


@pytest.mark.parametrize(
    "space, match",
    [
        (vt.Space(activation=vt.Choice(["relu", "swish2"])), r"activation options \['swish2'\] are unknown"),
        (vt.Space(n_units=vt.IntUniform(0, 8)), r"n_units=IntUniform\(low=0, high=8\) allows 0; n_units must be >= 1"),
        (vt.Space(n_hidden=vt.Uniform(0, 3)), "n_hidden must be an integer distribution"),
        (vt.Space(n_hidden=vt.IntUniform(1, 2), n_units_3=vt.IntUniform(1, 4)), r"n_units_3.*at most 2"),
        (vt.Space(init=vt.Choice(["he", "orthogonal"])), "unknown init 'orthogonal'"),
        (vt.Space(dropout=vt.Uniform(0.0, 1.0)), r"dropout=.* must stay within \[0, 1\)"),
    ],
)
def test_structures_no_mlp_can_take_are_rejected(space, match):
    with pytest.raises(ValueError, match=match):
        vt.MLP().build(space, spec(4, 2))


def test_bfloat16_matmuls_keep_float32_weights_and_stay_close_to_float32():
    net_bf16 = vt.MLP(matmul_dtype="bfloat16").build(SPACE, spec(N_FEATURES, N_OUT))
    x = jax.random.normal(jax.random.key(3), (16, N_FEATURES))
    hp = {"n_hidden": jnp.int32(2), "n_units": jnp.int32(10), "activation": jnp.int32(sorted(ACTIVATIONS).index("relu")),
          "dropout": jnp.float32(0.0)}
    params = init(jax.random.key(4), hp)  # init reads no matmul: both networks start from these weights
    exact = forward(NET, params, x, hp, train=False)
    low = forward(net_bf16, params, x, hp, train=False)
    relative = float(jnp.linalg.norm(low - exact) / jnp.linalg.norm(exact))
    assert 1e-5 < relative < 2e-2  # bf16 operands (8-bit mantissa), not float32, not garbage
    assert low.dtype == jnp.float32
    grads = jax.grad(lambda p: jnp.sum(forward(net_bf16, p, x, hp, train=False) ** 2))(params)
    assert all(g.dtype == jnp.float32 for g in jax.tree.leaves(grads))  # float32 master weights
    hlo = jax.jit(lambda p: forward(net_bf16, p, x, hp, train=False)).lower(params).as_text()
    assert "xbf16>, tensor<" in hlo and "-> tensor<16x12xf32>" in hlo  # bf16 operands, float32 products
