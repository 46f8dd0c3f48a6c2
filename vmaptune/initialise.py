"""One initialisation program for all of a round's program groups.

A round split into width or depth groups (`Programs.partition`) used to compile one
initialisation program per group: on the seed-004 digits search, three of its four 0.4 s init
compiles. When the model's initial weights do not depend on the padded shape they are built in
(`BuiltModel.shape_independent_init`: the MLP's hash-drawn kernels), the widest program initialises
every group's rows in one call, and each group takes its rows, every leaf cut to its own program's
shapes: the same numbers its own initialisation would give (tested bit for bit).
"""

from __future__ import annotations

import functools
from typing import Any, Sequence

import jax
import numpy as np

from vmaptune import engine
from vmaptune.distributed import place, population_mesh, to_host
from vmaptune.program import Program
from vmaptune.state import MEMBER_SPEC, Members, PopulationState


def initialise_together(runs: Sequence[Any], program: Program) -> bool:
    """Sets the initial state of every run (PopulationRun, not yet initialised) from one
    initialisation of `program`, the padded program whose shapes hold each run's. Returns False,
    changing nothing, where that cannot give each run its own initial state: fewer than two
    runs, a model whose initial weights depend on its shape, several processes, runs of other
    random streams, a run's shapes that do not fit in the padded ones. The runs then initialise
    themselves."""
    independent = (lambda p: getattr(p.model, "shape_independent_init", False))
    if (len(runs) < 2 or jax.process_count() > 1 or not independent(program)
            or any(not independent(run.program) or run.initialised for run in runs)):
        return False
    hosts = [to_host(run.init_args) for run in runs]
    if any(not np.array_equal(h.members_key, hosts[0].members_key) for h in hosts):
        return False
    rows = [run.rows for run in runs]
    total = 1 << (sum(rows) - 1).bit_length()  # a few sizes over rounds: the program compiles rarely
    total = -(-total // program.devices) * program.devices  # split evenly over the devices
    per_row = [h._replace(members_key=None) for h in hosts]  # the key is one for every row
    filler = jax.tree.map(lambda x: np.repeat(x[:1], total - sum(rows), axis=0), per_row[0])
    filler = filler._replace(active=np.zeros_like(filler.active))  # frozen copies of the first row
    every = jax.tree.map(lambda *parts: np.concatenate(parts), *per_row, filler)
    members_key = runs[0].init_args.members_key
    mesh = population_mesh(program.devices, total)
    hp, controls, member_ids, active = place((every.hp, every.controls, every.member_ids, every.active), mesh,
                                             MEMBER_SPEC)
    padded = engine.init_population(program, hp, controls, member_ids, members_key, active)
    key_impl = jax.random.key_impl(padded.members.key)
    padded = to_host(padded)
    states, start = [], 0
    for run, host in zip(runs, per_row):
        take = slice(start, start + run.rows)
        start += run.rows
        shapes = _member_shapes(run.program, jax.tree.map(lambda x: x[:1], host), members_key)
        members = _cut_members(padded.members, take, shapes)
        if members is None:
            return False
        members = members.replace(key=jax.random.wrap_key_data(members.key, impl=key_impl))  # typed, as the run's own
        states.append(PopulationState(members=members, epoch=padded.epoch))
    for run, state in zip(runs, states):
        run.state = place(state, population_mesh(run.program.devices, run.rows), state.specs())
    return True


_SHAPES: dict = {}  # program -> its member's shapes: traced once, not in every round


def _member_shapes(program: Program, one: Any, members_key) -> tuple:
    """(params, opt_state, model_state) shapes of one member of `program` (traced, not compiled)."""
    if program not in _SHAPES:
        params, opt_state, model_state, _ = jax.eval_shape(functools.partial(engine.init_members, program), one.hp,
                                                           one.controls, one.member_ids, members_key)
        _SHAPES[program] = (params, opt_state, model_state)
    return _SHAPES[program]


def _cut_members(members: Members, rows: slice, shapes: tuple) -> Members | None:
    """`rows` of the padded members, each weight leaf cut to `shapes` (its leading corner);
    None where a leaf of `shapes` has no counterpart in the padded tree that holds it."""
    params, opt_state, model_state = shapes
    cut = {}
    for name, target in (("params", params), ("opt_state", opt_state), ("model_state", model_state),
                         ("best_params", params), ("best_model_state", model_state)):
        source = getattr(members, name)
        cut[name] = None if source is None else _cut_tree(source, rows, target)
        if source is not None and cut[name] is None:
            return None
    return members.replace(**cut, status=jax.tree.map(lambda x: x[rows], members.status), key=members.key[rows])


def _cut_tree(source: Any, rows: slice, target: Any) -> Any | None:
    """Each leaf of `target` (shapes, member axis first) taken from the leaf at the same path of
    `source`: its `rows`, then the leading corner of every other axis. None on any mismatch."""
    found = dict(jax.tree_util.tree_flatten_with_path(source)[0])
    paths, treedef = jax.tree_util.tree_flatten_with_path(target)
    leaves = []
    for path, shape in paths:
        leaf = found.get(path)
        if (leaf is None or leaf.ndim != len(shape.shape) or leaf.dtype != shape.dtype
                or any(have < want for have, want in zip(leaf.shape[1:], shape.shape[1:]))):
            return None
        leaves.append(np.ascontiguousarray(leaf[(rows,) + tuple(slice(0, n) for n in shape.shape[1:])]))
    return jax.tree_util.tree_unflatten(treedef, leaves)
