"""Named random streams: every random draw of a search comes from one of them.

The user's `seed` is the root. Each purpose has its own stream, folded in by a fixed number, so no
two purposes ever share draws (changing the strategy cannot change the minibatch order, and a
refit cannot replay the search's order on other data):

    stream      id  what it drives                                       indexed by
    members      0  each member's own key (below)                         member id
    order        1  the shared minibatch order                            epoch
    ask          2  strategy.ask                                          round
    decide       3  strategy decisions during training (PBT's explore)    round, then look
    strategy     4  strategy.init                                         -
    refit        5  the minibatch order of refits (train + validation)    epoch

A member's key is fold_in(members, member_id), so a member trains the same in any population.
From it come (fixed sub-ids): its initial weights (0), its dropout masks (1, then the step) and,
with shared_order=False, its own minibatch order (2, then the epoch).
"""

from __future__ import annotations

import jax

from vmaptune.compile_cache import quick_program

STREAMS = {"members": 0, "order": 1, "ask": 2, "decide": 3, "strategy": 4, "refit": 5}

# Sub-streams of a member's key.
MEMBER_INIT, MEMBER_DROPOUT, MEMBER_ORDER = 0, 1, 2


def root(seed: int) -> jax.Array:
    """The root key of a search: jax.random.key(seed)."""
    return jax.random.key(int(seed))


def stream(seed: int, name: str, *indices: int) -> jax.Array:
    """The key of stream `name` (see the table above), folded with `indices` in order
    (e.g. stream(seed, "ask", round))."""
    if name not in STREAMS:
        raise ValueError(f"unknown random stream {name!r}; the streams are {sorted(STREAMS)}.")
    return _fold_in_all(root(seed), (STREAMS[name],) + tuple(int(index) for index in indices))


@quick_program
def _fold_in_all(key: jax.Array, indices: tuple) -> jax.Array:
    # one small program for every stream: run eagerly, each fold_in was a program of its own
    for index in indices:
        key = jax.random.fold_in(key, index)
    return key


def member_keys(members_key: jax.Array, member_ids: jax.Array) -> jax.Array:
    """(P,) keys of members `member_ids` (P,): fold_in(members_key, id), traceable."""
    return jax.vmap(lambda i: jax.random.fold_in(members_key, i))(member_ids)


def member_stream(key: jax.Array, sub: int, index=None) -> jax.Array:
    """A member's sub-stream (MEMBER_INIT, MEMBER_DROPOUT or MEMBER_ORDER), folded with `index`
    (the step or epoch) when given. Traceable."""
    key = jax.random.fold_in(key, sub)
    return key if index is None else jax.random.fold_in(key, index)
