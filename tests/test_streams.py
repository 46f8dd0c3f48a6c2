"""Named random streams: no stream serves two purposes, and the strategy's draws never touch training."""

import dataclasses

import jax
import numpy as np
import pytest

import vmaptune as vt
from vmaptune import streams


def key_data(key):
    return tuple(np.asarray(jax.random.key_data(key)).ravel().tolist())


def test_every_stream_and_index_gives_its_own_key():
    keys = [key_data(streams.stream(0, name)) for name in streams.STREAMS]
    keys += [key_data(streams.stream(0, "ask", r)) for r in range(3)]
    keys += [key_data(streams.stream(0, "decide", r, look)) for r in range(2) for look in range(2)]
    keys += [key_data(streams.stream(1, name)) for name in streams.STREAMS]
    assert len(set(keys)) == len(keys)
    with pytest.raises(ValueError, match=r"unknown random stream 'dropout'; the streams are \["):
        streams.stream(0, "dropout")


@dataclasses.dataclass(frozen=True)
class FixedAsker(vt.Strategy):
    """Asks the same given settings whatever its key, and records the keys it was handed."""

    population: int = 3
    values: tuple = (0.01, 0.03, 0.1)
    seen: list = dataclasses.field(default_factory=list, compare=False, hash=False)

    def init(self, space, key):
        self.seen.append(("init", key_data(key)))
        return {"space": space, "done": False}

    def ask(self, state, key):
        self.seen.append(("ask", key_data(key)))
        return state["space"].encode([{"learning_rate": v} for v in self.values]), state

    def tell(self, state, hp, scores):
        return {**state, "done": True}

    def done(self, state):
        return state["done"]


def test_the_strategy_draws_from_its_own_streams_and_never_moves_the_minibatch_order(digits):
    space = vt.Space(learning_rate=vt.LogUniform(1e-3, 1.0))
    model, kwargs = vt.MLP(hidden=1, units=8), dict(epochs=2, batch_size=128, progress=False, seed=3)
    spy = FixedAsker()
    mine = vt.tune(model, space, digits, spy, **kwargs)
    # the keys the strategy saw are its own streams, never the order, member or refit streams
    training = {key_data(streams.stream(3, name)) for name in ("members", "order", "refit", "decide")}
    assert dict(spy.seen)["init"] == key_data(streams.stream(3, "strategy"))
    assert dict(spy.seen)["ask"] == key_data(streams.stream(3, "ask", 0))
    assert not {k for _, k in spy.seen} & training
    # another strategy asking the same settings trains them on the same batches: identical curves
    grid = vt.tune(model, space, digits, vt.GridSearch(values={"learning_rate": [0.01, 0.03, 0.1]}, population=3),
                   **kwargs)
    for key in ("train_loss", "val_loss", "val_score"):
        np.testing.assert_array_equal(mine.curves[key], grid.curves[key])
