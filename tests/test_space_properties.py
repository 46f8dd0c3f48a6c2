"""Property tests of the search space (hypothesis): for every distribution, with drawn valid bounds,

- sampled values lie within the bounds (integers are integers, choices are among the options);
- encoded values -> unit interval -> encoded values round-trips, and so does unit -> value -> unit
  (exactly for discrete distributions: a value maps to the centre of its bin);
- positions in the unit interval lie in [0, 1];
- plain values -> encode -> decode round-trips; Space.to_config / from_config round-trips (through JSON too).

Bounds are drawn where float32 (the dtype values travel in) can tell the values of a range apart:
|bounds| <= 1e4 and a range at least 1e-3 of its magnitude wide.
"""

from __future__ import annotations

import json

import jax
import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import vmaptune as vt
from vmaptune.space import DISTRIBUTIONS

N = 64  # draws per sample: one shape, so JAX compiles each operation once
SETTINGS = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
U_TOL = 1e-3  # unit -> value -> unit, float distributions (float32 rounding over a narrow range)


# -- valid distributions of every kind ---------------------------------------------------------------------
@st.composite
def uniforms(draw):
    low = draw(st.floats(-1e4, 1e4))
    width = draw(st.floats(1e-3, 2e4)) * max(1.0, abs(low))
    return vt.Uniform(low, min(low + width, 2e4))


@st.composite
def log_uniforms(draw):
    low = 10 ** draw(st.floats(-8, 3))
    return vt.LogUniform(low, low * 10 ** draw(st.floats(0.01, 8)))


@st.composite
def one_minus_log_uniforms(draw):
    # 1 - high = a, 1 - low = b with 1e-3 <= a, 2 a <= b < 1: near 1, float32 keeps about 1 / a / 1.7e7
    # of the digits of 1 - x, so a narrower range leaves too few values for the tolerances here (see
    # test_positions_stay_in_the_unit_interval_at_float32_bounds for a narrow one).
    a = 10 ** draw(st.floats(-3, -0.5))
    b = min(a * 10 ** draw(st.floats(0.3, 3)), 0.999)  # a <= 0.32, so b >= 3 a
    return vt.OneMinusLogUniform(1.0 - b, 1.0 - a)


INT32 = st.integers(-2**31, 2**31 - 1)


@st.composite
def int_uniforms(draw):
    low = draw(st.one_of(st.integers(-1000, 1000), INT32))  # large bounds are exact in int32, not in float32
    return vt.IntUniform(low, min(low + draw(st.integers(0, 1000)), 2**31 - 1))


@st.composite
def int_log_uniforms(draw):
    low = draw(st.integers(1, 1000))
    return vt.IntLogUniform(low, low + draw(st.integers(0, 10_000)))


OPTION = st.one_of(st.text(max_size=6), st.integers(-1000, 1000), INT32, st.floats(-1e3, 1e3, width=32))
choices = st.lists(OPTION, min_size=1, max_size=8, unique=True).map(vt.Choice)
fixeds = OPTION.map(vt.Fixed)

KINDS = {
    "Uniform": uniforms(),
    "LogUniform": log_uniforms(),
    "OneMinusLogUniform": one_minus_log_uniforms(),
    "IntUniform": int_uniforms(),
    "IntLogUniform": int_log_uniforms(),
    "Choice": choices,
    "Fixed": fixeds,
}
any_distribution = st.one_of(*KINDS.values())


def test_every_distribution_kind_is_covered():
    assert set(KINDS) == set(DISTRIBUTIONS)


def sample(dist, seed: int) -> np.ndarray:
    return np.asarray(dist.sample(jax.random.key(seed), N))


def bounds(dist):
    return (dist.low, dist.high) if hasattr(dist, "low") else None


# -- per distribution --------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", sorted(KINDS))
@SETTINGS
@given(data=st.data(), seed=st.integers(0, 2**31 - 1))
def test_samples_lie_within_the_bounds(kind, data, seed):
    dist = data.draw(KINDS[kind], label="dist")
    x = sample(dist, seed)
    assert x.shape == (N,)
    if dist.kind == "float":
        assert x.dtype == np.float32
        if bounds(dist):
            low, high = bounds(dist)
            # float32 rounds a bound to its nearest float32 (at most half a float32 step out)
            assert np.all(x >= np.float32(low)) and np.all(x <= np.float32(high)), (dist, x.min(), x.max())
        else:  # a numeric Fixed
            assert np.all(x == np.float32(dist.value))
    elif dist.kind == "int":
        assert x.dtype == np.int32
        low, high = bounds(dist) or (dist.value, dist.value)
        assert np.all((x >= low) & (x <= high)), (dist, x.min(), x.max())
        assert all(type(v) is int and low <= v <= high for v in map(dist.decode, x))
    else:  # categorical: indices into the options
        assert x.dtype == np.int32
        assert np.all((x >= 0) & (x < len(dist.options)))
        assert all(dist.decode(i) in dist.options for i in x)


@pytest.mark.parametrize("kind", sorted(KINDS))
@SETTINGS
@given(data=st.data(), seed=st.integers(0, 2**31 - 1))
def test_values_to_unit_and_back(kind, data, seed):
    dist = data.draw(KINDS[kind], label="dist")
    x = sample(dist, seed)
    u = np.asarray(dist.to_unit(x))
    assert u.shape == (N,) and u.dtype == np.float32
    assert np.all((u >= 0.0) & (u <= 1.0)), (dist, u.min(), u.max())
    back = np.asarray(dist.from_unit(u))
    assert back.dtype == x.dtype
    if dist.kind == "float":
        low, high = bounds(dist) or (dist.value, dist.value)
        np.testing.assert_allclose(back, x, rtol=2e-5, atol=2e-5 * (high - low))
    else:
        np.testing.assert_array_equal(back, x)  # discrete: a value's bin centre maps back to it


@pytest.mark.parametrize("kind", sorted(KINDS))
@SETTINGS
@given(data=st.data(), some=st.lists(st.floats(0.0, 1.0), min_size=1, max_size=8), seed=st.integers(0, 2**32 - 1))
def test_unit_to_values_and_back(kind, data, some, seed):
    dist = data.draw(KINDS[kind], label="dist")
    # drawn positions and both ends, filled up with uniform ones: one shape (N,) for every example
    u = np.concatenate([some, [0.0, 1.0], np.random.default_rng(seed).random(N - len(some) - 2)]).astype(np.float32)
    x = np.asarray(dist.from_unit(u))
    again = np.asarray(dist.to_unit(x))
    assert np.all((again >= 0.0) & (again <= 1.0))
    if dist.is_fixed:
        np.testing.assert_array_equal(again, 0.5)
    elif dist.kind == "float":
        np.testing.assert_allclose(again, u, atol=U_TOL)
    else:  # u lands in a bin; it comes back as the bin's centre, in the same bin
        bins = np.asarray(dist.from_unit(again))
        np.testing.assert_array_equal(bins, x)
        if not isinstance(dist, vt.IntLogUniform):  # equal bins: the centre is within half a bin of u
            n = len(dist.options) if dist.kind == "categorical" else dist.high - dist.low + 1
            assert np.all(np.abs(again - u) <= 0.5 / n + 1e-6)


@SETTINGS
@given(dist=any_distribution, seed=st.integers(0, 2**31 - 1))
def test_plain_values_encode_and_decode(dist, seed):
    x = sample(dist, seed)
    plain = [dist.decode(v) for v in x]
    encoded = np.asarray([dist.encode(v) for v in plain], np.dtype(dist.dtype))
    np.testing.assert_array_equal(encoded, x)
    if dist.is_fixed:
        assert all(v == dist.value for v in plain)


@SETTINGS
@given(dist=any_distribution)
def test_distribution_config_round_trips(dist):
    config = dist.to_config()
    assert config["type"] == type(dist).__name__
    assert vt.Space.from_config({"x": config})["x"] == dist
    assert vt.Space.from_config(json.loads(json.dumps({"x": config})))["x"] == dist


@SETTINGS
@given(dist=st.one_of(uniforms(), log_uniforms(), one_minus_log_uniforms(), int_uniforms(), int_log_uniforms()),
       n=st.sampled_from((1, 5)))  # two sizes: JAX compiles the grid once per size
@example(dist=vt.Uniform(2730.8520344471754, 8192.556103341525), n=5)  # low + 1 * (high - low) > high in float32
def test_grid_points_lie_within_the_bounds(dist, n):
    points = np.asarray(dist.grid(n))
    assert 1 <= len(points) <= n
    if dist.kind == "int":
        assert points.dtype == np.int32 and np.all((points >= dist.low) & (points <= dist.high))
        assert np.all(np.diff(points) > 0)  # distinct, ascending
    else:
        assert np.all(points >= np.float32(dist.low)) and np.all(points <= np.float32(dist.high))


@pytest.mark.parametrize("dist", [vt.OneMinusLogUniform(0.9998925392171679, 0.9999), vt.LogUniform(1e-8, 1.02e-8),
                                  vt.Uniform(1e4, 1e4 + 10.0), vt.OneMinusLogUniform(0.1, 0.999999)],
                         ids=repr)
def test_positions_stay_in_the_unit_interval_at_float32_bounds(dist):
    """A bound rounded to float32 can lie outside the range; its position is still in [0, 1]."""
    x = np.concatenate([sample(dist, 1), np.asarray(dist.from_unit(np.asarray([0.0, 1.0], np.float32)))])
    u = np.asarray(dist.to_unit(x))
    assert np.all((u >= 0.0) & (u <= 1.0)), (u.min(), u.max())


# -- a whole space -----------------------------------------------------------------------------------------
NAMES = ("learning_rate", "momentum", "n_units", "activation")
spaces = st.lists(any_distribution, min_size=1, max_size=len(NAMES)).map(
    lambda dists: vt.Space(dict(zip(NAMES, dists))))


@SETTINGS
@given(space=spaces, seed=st.integers(0, 2**31 - 1))
def test_space_unit_cube_round_trip(space, seed):
    hp = space.sample(jax.random.key(seed), N)
    assert set(hp) == set(space.names) and all(np.shape(v) == (N,) for v in hp.values())
    u = np.asarray(space.to_unit(hp))
    assert u.shape == (N, len(space))
    assert np.all((u >= 0.0) & (u <= 1.0))
    back = space.from_unit(u)
    for name, dist in space.items():
        if dist.kind == "float":
            low, high = bounds(dist) or (0.0, 0.0)
            np.testing.assert_allclose(np.asarray(back[name]), np.asarray(hp[name]), rtol=2e-5,
                                       atol=2e-5 * (high - low))
        else:
            np.testing.assert_array_equal(np.asarray(back[name]), np.asarray(hp[name]))


@SETTINGS
@given(space=spaces, seed=st.integers(0, 2**31 - 1))
def test_space_decode_encode_round_trip(space, seed):
    hp = space.sample(jax.random.key(seed), 8)
    rows = space.decode(hp)
    columns = space.decode_columns(hp)
    assert len(rows) == 8 and all(list(row) == list(space.names) for row in rows)
    assert columns == {name: [row[name] for row in rows] for name in space.names}
    for name, dist in space.items():
        if dist.kind == "categorical" or isinstance(dist, vt.Choice):
            assert all(row[name] in dist.options for row in rows)
    again = space.encode(rows)
    for name in space.names:
        np.testing.assert_array_equal(np.asarray(again[name]), np.asarray(hp[name]))
    numeric = space.numeric(hp)
    for name, dist in space.items():  # numeric choices become their values, the rest stay as they are
        expected = np.asarray(dist.values())[np.asarray(hp[name])] if isinstance(dist, vt.Choice) and \
            dist.is_numeric else np.asarray(hp[name])
        np.testing.assert_allclose(np.asarray(numeric[name], np.float64), expected.astype(np.float64), rtol=1e-6)


@SETTINGS
@given(space=spaces)
def test_space_config_round_trips(space):
    config = space.to_config()
    assert list(config) == list(space.names)
    again = vt.Space.from_config(config)
    assert again == space and again.names == space.names
    via_json = vt.Space.from_config(json.loads(json.dumps(config)))
    assert via_json == space and hash(via_json) == hash(space)

