"""The record of a search as it runs: one entry per round, the progress bar, and the `Results` they
make (with the round in progress when Ctrl-C came, if any)."""

from __future__ import annotations

import dataclasses
import time
from typing import Any, Mapping

import numpy as np
import pandas as pd

from vmaptune.metrics import Metric, shown, shown_sign
from vmaptune.results import STATUS_DIVERGED, STATUS_INTERRUPTED, STATUS_OK, STATUS_PRUNED, STATUS_STOPPED, Results
from vmaptune.space import Space

TABLE_COLUMNS = ("score", "score_std", "best_score", "final_score", "best_epoch", "epochs_trained", "status",
                 "final_train_loss")


@dataclasses.dataclass
class RoundRecord:
    """One round's members (n of them): ids, encoded hyperparameters, table columns, curves."""

    round: int
    member: np.ndarray
    hp: dict[str, np.ndarray]
    columns: dict[str, np.ndarray]  # TABLE_COLUMNS
    curves: dict[str, np.ndarray]
    extra: dict[str, np.ndarray]  # the strategy's own columns (PBT's lineage, halving's rung)
    useful_compute_fraction: float = 1.0
    programs: int = 1  # compiled programs the round trained in (bucketing)
    ended_at: float | None = None  # wall-clock time (time.time()) the round's record was made

    @property
    def scores(self) -> np.ndarray:
        """What the strategy is told: each member's score, NaN for failed members."""
        return self.columns["score"]


def _missing(like: np.ndarray, n: int) -> np.ndarray:
    """n values standing for 'none' in a column like `like`: -1 for integers, NaN for floats."""
    if like.dtype.kind in "iu":
        return np.full(n, -1, like.dtype)
    if like.dtype.kind == "f":
        return np.full(n, np.nan, like.dtype)
    if like.dtype.kind == "b":
        return np.zeros(n, bool)
    return np.full(n, None, object)


def epochs_trained(train_loss: np.ndarray) -> np.ndarray:
    """(n,) int32 epochs each member trained, from its (n, epochs) training-loss curve (NaN where it
    did not train: stopped early, dropped by the strategy, past its budget or diverged)."""
    return np.isfinite(train_loss).sum(axis=1).astype(np.int32)


def last_finite(curves: np.ndarray) -> np.ndarray:
    """(n,) each row's last finite value of (n, epochs) curves; NaN for a row with none."""
    finite = np.isfinite(curves)
    last = curves.shape[1] - 1 - np.argmax(finite[:, ::-1], axis=1)
    return np.where(finite.any(axis=1), curves[np.arange(len(curves)), last], np.nan)


def round_record(round_index: int, ids, hp: Mapping[str, Any], final: dict, curves: dict,
                 extra: Mapping[str, Any], in_progress: bool = False) -> RoundRecord:
    """A round's record from the members' final status and (n, epochs) curves. Status: diverged,
    stopped (its early stopping ended it before the round's last epoch), pruned (trained fewer
    epochs than the round's: a strategy ended it), ok; in_progress (a Ctrl-C ended the round): interrupted for members that were still
    training (the round is not finished: the strategy has not been told), pruned for those a
    strategy had already ended (final["active"] False: packed out, or out of budget)."""
    n = len(ids)
    diverged = final["diverged"][:n]
    stopped = final["stopped"][:n] & ~diverged
    best = np.where(np.isfinite(final["best_score"][:n]), final["best_score"][:n], np.nan)
    trained = final["epochs_trained"][:n] if "epochs_trained" in final else epochs_trained(curves["train_loss"][:n])
    ended_early = np.asarray(trained) < curves["train_loss"].shape[1]
    if in_progress:
        training = np.asarray(final["active"][:n]) if "active" in final else np.ones(n, bool)
        unfinished = np.where(training | ~ended_early, STATUS_INTERRUPTED, STATUS_PRUNED)
    else:
        unfinished = np.where(ended_early, STATUS_PRUNED, STATUS_OK)
    # early stopping that fired on the last epoch cut nothing short: the member trained every epoch
    status = np.where(diverged, STATUS_DIVERGED, np.where(stopped & ended_early, STATUS_STOPPED, unfinished))
    columns = {
        "score": np.where(diverged, np.nan, best),
        "score_std": np.where(diverged, np.nan, final["score_std"][:n]),
        "best_score": best,
        # (the last epoch trained: a round cut short, by a Ctrl-C or a time budget, has NaN after it)
        "final_score": np.where(diverged, np.nan, last_finite(curves["val_score"][:n])),
        "best_epoch": final["best_epoch"][:n],
        "epochs_trained": trained,
        "status": status,
        # the loss of the member's last trained epoch: an early-stopped or pruned member's curve is
        # NaN after it stops, and must not read as a diverged one (which keeps NaN)
        "final_train_loss": np.where(diverged, np.nan, last_finite(curves["train_loss"][:n])).astype(
            curves["train_loss"].dtype),
    }
    return RoundRecord(round=round_index, member=np.asarray(ids), hp={k: np.asarray(v) for k, v in hp.items()},
                       columns=columns, curves={k: v[:n] for k, v in curves.items()},
                       extra={k: np.asarray(v)[:n] for k, v in extra.items()}, ended_at=time.time())


class History:
    """The rounds of one search so far."""

    def __init__(self, space: Space, settings: dict):
        self.space, self.settings = space, settings
        self.records: list[RoundRecord] = []
        self.started = time.perf_counter()
        self.settings.setdefault("started_at", round(time.time(), 3))  # (wall-clock: when this call started)
        self.best = -np.inf

    @property
    def rounds(self) -> int:
        return len(self.records)

    @property
    def members(self) -> int:
        """Members trained so far (the next round's first member id)."""
        return sum(len(r.member) for r in self.records)

    def add(self, record: RoundRecord) -> None:
        self.records.append(record)
        self.settings["useful_compute_fraction"].append(round(record.useful_compute_fraction, 4))
        self.settings.setdefault("programs", []).append(int(record.programs))
        # seconds since this call started, at each round's end (a resumed run counts from its restart)
        self.settings.setdefault("round_seconds", []).append(round(time.perf_counter() - self.started, 3))
        scores = np.asarray(record.scores, np.float32)  # numpy: a jnp call here would compile on the host
        scores = np.where(np.isfinite(scores), scores, -np.inf)
        if len(scores):
            self.best = max(self.best, float(np.max(scores)))

    def results(self, partial: RoundRecord | None = None) -> Results:
        """The finished rounds (and `partial`, a round cut short, when given) as Results."""
        settings = {**self.settings, "rounds": self.rounds, "seconds": round(time.perf_counter() - self.started, 3)}
        space, records = self.space, self.records + ([partial] if partial is not None else [])
        # when each round ended (a record checkpointed before this was kept has None)
        settings["round_ended_at"] = [getattr(r, "ended_at", None) for r in records]
        if not records:
            empty = pd.DataFrame(columns=["round", "member", *space.names, "score", "status"])
            return Results(space, empty, {}, {n: np.zeros(0) for n in space.names}, settings)
        hp = {k: np.concatenate([r.hp[k] for r in records]) for k in space.names}
        columns = {"round": np.concatenate([np.full(len(r.member), r.round) for r in records]),
                   "member": np.concatenate([r.member for r in records])}
        columns.update(space.decode_columns(hp))
        for key in TABLE_COLUMNS:  # (a record checkpointed before epochs_trained existed: from its curve)
            columns[key] = np.concatenate([r.columns[key] if key in r.columns else epochs_trained(r.curves["train_loss"])
                                           for r in records])
        extra = {}  # a strategy's columns, over every record that has them (a round interrupted, or a
        for record in records:  # bracket that ends before its decision, has none: filled in)
            for key, value in record.extra.items():
                extra.setdefault(key, np.asarray(value))
        for key, like in extra.items():
            columns[key] = np.concatenate([np.asarray(r.extra[key]) if key in r.extra else _missing(like, len(r.member))
                                           for r in records])
        curves = {k: np.concatenate([r.curves[k] for r in records]) for k in records[0].curves}
        return Results(space, pd.DataFrame(columns), curves, hp, settings)


class Progress:
    """The tqdm bar of a search: epochs over every round, and the best score seen."""

    def __init__(self, strategy, space: Space, epochs: int, metric: Metric, enabled: bool):
        from tqdm.auto import tqdm

        rounds = strategy.tune_rounds(space)
        self.metric, self.epochs = metric, epochs
        self.bar = tqdm(total=epochs * rounds if rounds else None, unit="epoch", desc=strategy.name,
                        disable=not enabled, dynamic_ncols=True, leave=True)
        self.done = 0

    def skip(self, rounds: int) -> None:
        """Counts `rounds` rounds finished before (a resumed run): where the bar starts, so its rate
        counts this call's epochs only (an update would count them all in an instant: 800,000 epoch/s)."""
        self.bar.initial = self.bar.n = self.bar.last_print_n = rounds * self.epochs
        self.bar.refresh()

    def start_round(self, best: float) -> "Progress":
        self.done, self.best = 0, best
        return self

    def on_chunk(self, done: int, curves: Mapping[str, np.ndarray]) -> None:
        self.bar.update(done - self.done)
        self.done = done
        scores = curves["val_score"]
        if np.isfinite(scores).any():
            best = shown(max(self.best, np.nanmax(scores)), shown_sign(self.metric))
            self.bar.set_postfix({f"best {self.metric.name}": f"{best:.4f}"}, refresh=False)

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.bar.close()
