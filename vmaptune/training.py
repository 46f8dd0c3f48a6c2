"""Training one population to the end, with deciders acting between chunks.

A round's members may train as several `PopulationRun`s, one per program group (the model's
width buckets, say); `Population` shows them to deciders as one population of n members and
splits their decisions back. `train` runs the chunks, cut wherever a decider wants to look, and
hands each decider the snapshot it asked for. `StrategyDecider` lets a strategy that acts during
training (PBT, successive halving, a replayed schedule) take part, its state passed along.
"""

from __future__ import annotations

import contextlib
import numbers
from typing import Any, Callable, Sequence

import jax
import numpy as np

from vmaptune import ahead
from vmaptune.decisions import Decider, Decision, Snapshot, TrainingContext, check_decision, end_result, hook_result
from vmaptune.distributed import raise_if_interrupted
from vmaptune.engine import CURVES
from vmaptune.population import STATUS_FIELDS, PopulationRun
from vmaptune.replicas import Replicas


class Population:
    """n members trained as one or more runs. parts: [(run, member indices)]: the run's member i
    is member indices[i] of the population; every member is in exactly one part."""

    def __init__(self, parts: Sequence[tuple[PopulationRun, np.ndarray]]):
        self.parts = [(run, np.asarray(members)) for run, members in parts]
        self.size = sum(len(m) for _, m in self.parts)
        self.epochs = self.parts[0][0].total_epochs
        self.epochs_done = 0

    def train(self, epochs: int, chunk_epochs: int = 1, on_chunk: Callable | None = None) -> None:
        """Every part trains `epochs` more epochs. on_chunk(epochs_done, curves) as PopulationRun's;
        with several parts, epochs_done is the members' mean (a progress bar moves smoothly)."""
        if len(self.parts) == 1:
            self.parts[0][0].train(epochs, chunk_epochs, on_chunk)
        else:
            # one chunk (as a run_dir's checkpoints cut them): a signal or a spent time budget is heeded
            # before any part trains, so every part ends the chunk and it is checkpointed there; heeded
            # at a later part's start, the earlier parts' chunk was trained and never checkpointed
            one_chunk = epochs <= chunk_epochs
            if one_chunk:
                raise_if_interrupted()
            # the later parts' programs compile while the first part trains (ahead.py)
            started = [run.compile_ahead(min(chunk_epochs, epochs)) for run, _ in self.parts[1:]]
            try:
                for run, _ in self.parts:
                    run.train(epochs, chunk_epochs,
                              None if on_chunk is None else (lambda *_: on_chunk(*self._progress())),
                              interruptible=not one_chunk)
            except BaseException:  # Ctrl-C or an error: no call will wait for the compiles left
                ahead.cancel([key for key in started if key is not None])
                raise
        self.epochs_done += epochs

    def _progress(self) -> tuple[int, dict[str, np.ndarray]]:
        done = sum(run.epochs_done * len(m) for run, m in self.parts) // self.size
        return int(done), {k: v[:, :done] for k, v in self.curves.items()}

    @property
    def member_hp(self) -> dict[str, np.ndarray]:
        """name -> (n,), the values every member trains with now (its part's, after copies)."""
        return self._merge(lambda run: run.member_hp)

    @property
    def curves(self) -> dict[str, np.ndarray]:
        """name -> (n, epochs), every member's curves."""
        return self._merge(lambda run: run.curves, fill=np.nan)

    def status(self) -> dict[str, np.ndarray]:
        """Full-size (n,) status arrays (active, diverged, stopped, best_score, best_epoch)."""
        return self._merge(lambda run: run.status())

    def _merge(self, get: Callable[[PopulationRun], dict], fill: Any = 0) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        for run, members in self.parts:
            for key, value in get(run).items():
                if key not in out:
                    out[key] = np.full((self.size,) + value.shape[1:], fill, value.dtype)
                out[key][members] = value
        return out

    def snapshot(self) -> Snapshot:
        if len(self.parts) == 1:
            return self.parts[0][0].snapshot()
        snaps = [(run.snapshot(), members) for run, members in self.parts]
        merged: dict[str, Any] = {}
        for field in (*STATUS_FIELDS, "in_population"):
            merged[field] = np.zeros(self.size, getattr(snaps[0][0], field).dtype)
            for snap, members in snaps:
                merged[field][members] = getattr(snap, field)
        arrays = {}
        for group in ("curves", "hp"):
            arrays[group] = {}
            for key, value in getattr(snaps[0][0], group).items():
                arrays[group][key] = np.zeros((self.size,) + value.shape[1:], value.dtype)
                for snap, members in snaps:
                    arrays[group][key][members] = getattr(snap, group)[key]
        totals = {k: sum(getattr(s, k) for s, _ in snaps) for k in ("rows", "row_epochs", "member_epochs")}
        return Snapshot.make(epochs_done=snaps[0][0].epochs_done, epochs=self.epochs, **merged, **arrays, **totals)

    def apply(self, decision: Decision | None) -> None:
        """Splits a decision over the parts (members copy only within their own part)."""
        if decision is None or decision.empty:
            return
        if len(self.parts) == 1:
            self.parts[0][0].apply(decision)
            return
        part_of = np.empty(self.size, int)
        local = np.empty(self.size, int)
        for p, (_, members) in enumerate(self.parts):
            part_of[members] = p
            local[members] = np.arange(len(members))
        for p, (run, members) in enumerate(self.parts):
            fields: dict[str, Any] = {}
            if decision.keep is not None:
                keep = np.asarray(decision.keep, int)
                fields["keep"] = local[keep[part_of[keep] == p]]
            if decision.copy_from is not None:
                sources = np.asarray(decision.copy_from, int)[members]
                if (part_of[sources] != p).any():
                    raise ValueError("Decision.copy_from copies between members that train in different programs "
                                     "(bucketing split the population by structure). Set `copies_members = True` "
                                     "on the strategy (the population then trains in one program, as vt.PBT's "
                                     "does), pass bucketing=False, or copy only within one structure.")
                fields["copy_from"] = local[sources]
            if decision.hp is not None:
                fields["hp"] = {k: np.asarray(v)[members] for k, v in decision.hp.items()}
            for name in ("update", "freeze", "budget"):
                if getattr(decision, name) is not None:
                    fields[name] = np.asarray(getattr(decision, name))[members]
            run.apply(Decision(**fields))

    def checkpoint(self) -> tuple[dict, dict[str, np.ndarray]]:
        """(host bookkeeping, name -> array) of every part: what `restore` needs."""
        host, arrays = {"epochs_done": self.epochs_done, "parts": []}, {}
        for p, (run, _) in enumerate(self.parts):
            part_host, part_arrays = run.checkpoint()
            host["parts"].append(part_host)
            for tree, leaves in part_arrays.items():
                arrays.update({f"part{p}_{tree}_{i}": leaf for i, leaf in enumerate(leaves)})
        return host, arrays

    def restore(self, host: dict, arrays: dict[str, np.ndarray]) -> None:
        """Puts a population built the same way where `checkpoint` found it."""
        if len(host["parts"]) != len(self.parts):
            raise ValueError(f"the checkpoint holds {len(host['parts'])} program groups where this round has "
                             f"{len(self.parts)}; it was written with other settings.")
        for p, (run, _) in enumerate(self.parts):
            trees = {}
            for tree in ("state", "hp", "controls"):
                prefix = f"part{p}_{tree}_"
                count = sum(1 for name in arrays if name.startswith(prefix))
                trees[tree] = [arrays[f"{prefix}{i}"] for i in range(count)]
            run.restore(host["parts"][p], trees)
        self.epochs_done = host["epochs_done"]

    def useful_compute_fraction(self) -> float:
        """Useful share of the matmul work over every part, weighted by what each part computes."""
        costs = [run.busy_row_epochs * run.program.padded_row_epoch_flops(run.data.n_train, run.data.fold_rows)
                 for run, _ in self.parts]
        useful = [run.useful_compute_fraction() * c for (run, _), c in zip(self.parts, costs)]
        return float(sum(useful) / sum(costs)) if sum(costs) else 1.0


def train(population: Population, epochs: int, *, chunk_epochs: int = 1, deciders: Sequence[Decider] = (),
          on_chunk: Callable | None = None, on_stop: Callable[[], None] | None = None) -> None:
    """Trains the population to `epochs`, in chunks of `chunk_epochs` cut also wherever a decider
    wants to look; after each cut (not after the last epoch) every decider that looks there sees
    a snapshot and its decision is applied before the next decider looks. on_stop: called after
    every chunk's decisions (so the population can be checkpointed there); it cuts at every chunk.
    A population restored mid-way (epochs_done > 0) goes on from where it was."""
    looks: dict[int, list[Decider]] = {}
    for decider in deciders:
        wanted = decider.decision_epochs(epochs)
        at = range(chunk_epochs, epochs, chunk_epochs) if wanted is None else [e for e in wanted if 0 < e < epochs]
        for e in at:
            looks.setdefault(int(e), []).append(decider)
    stops = set(looks) | {epochs} | (set(range(chunk_epochs, epochs, chunk_epochs)) if on_stop else set())
    for stop in sorted(e for e in stops if e > population.epochs_done):
        population.train(stop - population.epochs_done, chunk_epochs, on_chunk)
        for decider in looks.get(stop, []):
            decision = decider.decide(population.snapshot())
            with decided_by(getattr(getattr(decider, "strategy", None), "name", None), "decide", stop):
                population.apply(decision)
        if on_stop is not None and stop < epochs:
            on_stop()


@contextlib.contextmanager
def decided_by(owner: str | None, hook: str, epoch: int):
    """A decision the engine refuses (a shape, an index) names the strategy's hook that made it."""
    try:
        yield
    except (ValueError, TypeError) as err:
        if owner is not None:  # (vmaptune's own deciders: early stopping's packing)
            err.add_note(f"(the decision {owner}.{hook} returned after epoch {epoch})")
        raise


class StrategyDecider:
    """A strategy that acts during training, as a decider: it carries the strategy's state through
    begin_training, decide (at strategy.decision_epochs) and end_training. replicas: the round's
    cv folds and seeds; the strategy then sees and decides about settings, not their slots."""

    def __init__(self, strategy, state, context: TrainingContext, key: jax.Array, replicas: Replicas | None = None,
                 hp: dict[str, np.ndarray] | None = None):
        self.strategy, self.state, self.context, self.key = strategy, state, context, key
        self.replicas = replicas or Replicas(context.members or 0)  # (one split: nothing to translate)
        self.start_hp = {k: np.asarray(v) for k, v in (hp or {}).items()}  # (n,) numeric values asked
        self.looks = 0
        self.warned: set[str] = set()  # names whose values left the space's range (warned once)

    def begin(self) -> Decision | None:
        self.state, decision = self._checked("begin_training", self.strategy.begin_training(self.state, self.context),
                                             self.start_hp)
        return self.replicas.slot_decision(decision)

    def decision_epochs(self, epochs: int):
        given = self.strategy.decision_epochs(self.state, epochs)
        try:
            given = list(given)
        except TypeError:  # (epochs // 2 alone, or a forgotten return)
            raise TypeError(f"{self.strategy.name}.decision_epochs returned {given!r}; return a list of the epochs "
                            f"after which decide sees the population, e.g. [{max(epochs // 2, 1)}].") from None
        bad = [e for e in given if isinstance(e, (bool, np.bool_)) or not isinstance(e, numbers.Real)
               or not float(e).is_integer()]
        if bad:  # (2.7 was cut to 2 unsaid)
            raise ValueError(f"{self.strategy.name}.decision_epochs returned {bad[:3]}: epochs are whole numbers "
                             f"(e.g. round(epochs / 3)).")
        # (an epoch listed twice, [epochs // 3, 2 * epochs // 3] at a small epochs, is one look, not two decides)
        wanted = tuple(sorted({int(e) for e in given}))
        outside = sorted({e for e in wanted if not 0 < e < epochs})
        if outside:  # (they would be skipped: a decide the strategy counts on would never come)
            raise ValueError(f"{self.strategy.name}.decision_epochs returned {outside} for a {epochs}-epoch round: "
                             f"decide sees the population after epochs 1..{epochs - 1} only (after the last one, "
                             f"end_training does).")
        return wanted

    def decide(self, snapshot: Snapshot) -> Decision | None:
        members = self.replicas.member_snapshot(snapshot)
        self.state, decision = self._checked("decide", self.strategy.decide(
            self.state, members, jax.random.fold_in(self.key, self.looks)), members.hp)
        self.looks += 1
        return self.replicas.slot_decision(decision)

    def end(self, snapshot: Snapshot) -> tuple[Any, dict[str, np.ndarray]]:
        """-> (the state end_training returns, the (n,) values the members ended with). The decider's
        own state stays as it was before: a round checkpointed after this (its strategy failed on it)
        is ended again when resumed."""
        members = self.replicas.member_snapshot(snapshot)
        state = end_result(self.strategy.name, self.strategy.end_training(self.state, members))
        return state, {k: np.asarray(v) for k, v in members.hp.items()}

    def _checked(self, hook: str, out, current: dict[str, np.ndarray]) -> tuple:
        state, decision = hook_result(self.strategy.name, hook, out)
        check_decision(self.strategy.name, hook, decision, self.context, current, self.warned)
        return state, decision


__all__ = ["Population", "train", "StrategyDecider", "CURVES"]
