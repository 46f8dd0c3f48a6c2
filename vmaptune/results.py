"""Results of a search: one row per member trained, learning curves, best setting; save / load.

A run directory holds `members.csv` (the table), `curves.npz` (P x epochs arrays), `hp.npz` (the
encoded hyperparameters, so a strategy can be resumed or a member retrained exactly),
`run.json` (space, settings, best) and, when settings were refit, `models/row_<i>/` (each refit
member's trained weights, vmaptune/trained.py). The table and curves are plain files readable
without vmaptune.
"""

from __future__ import annotations

import json
import os
from typing import Any, Mapping

import numpy as np
import pandas as pd

from vmaptune.space import Space

STATUS_OK, STATUS_DIVERGED, STATUS_STOPPED = "ok", "diverged", "stopped"


class Results:
    """What `vt.tune` returns.

    members: DataFrame, one row per member (round, member, hyperparameters decoded, score,
      best_score, final_score, best_epoch, status). `score` is what selection used: the best
      validation score over epochs, NaN for diverged members (they rank last).
    curves: dict name -> (n_members, epochs) arrays (train_loss, val_loss, val_score).
    hp: dict name -> (n_members,) encoded hyperparameters (the space's own encoding).
    """

    def __init__(self, space: Space, members: pd.DataFrame, curves: Mapping[str, np.ndarray],
                 hp: Mapping[str, np.ndarray], settings: Mapping[str, Any], models: Mapping[int, Any] | None = None):
        self.space = space
        self.members = members.reset_index(drop=True)
        self.curves = {k: np.asarray(v) for k, v in curves.items()}
        self.hp = {k: np.asarray(v) for k, v in hp.items()}
        self.settings = dict(settings)
        self.models: dict[int, Any] = dict(models or {})  # row -> TrainedModel (refit members)

    # -- selection -------------------------------------------------------------------------------
    @property
    def metric(self) -> str:
        return self.settings.get("metric", "score")

    def ranking(self) -> np.ndarray:
        """Row indices from best to worst; NaN scores (diverged, failed) last."""
        score = self.members["score"].to_numpy(dtype=float)
        score = np.where(np.isfinite(score), score, -np.inf)
        return np.argsort(-score, kind="stable")

    @property
    def best_index(self) -> int:
        if len(self.members) == 0:
            raise ValueError("no members were trained, so there is no best one.")
        return int(self.ranking()[0])

    @property
    def best_params(self) -> dict[str, Any]:
        """The best member's hyperparameters as plain Python values."""
        row = self.members.iloc[self.best_index]
        return {name: _plain(row[name]) for name in self.space.names}

    @property
    def best_score(self) -> float:
        return float(self.members["score"].iloc[self.best_index])

    @property
    def test_score(self) -> float:
        """Test score of the best setting, refit on train + validation (needs tune(..., refit=k))."""
        if "test_score" not in self.members.columns:
            raise ValueError("no test score: run vt.tune(..., refit=1) to retrain the best setting and test it.")
        return float(self.members["test_score"].iloc[self.best_index])

    # -- trained models ----------------------------------------------------------------------------
    def model(self, row: int):
        """The trained model of row `row` (a vt.TrainedModel: predict, predict_proba, score, save),
        refit on train + validation. Rows vt.tune(..., refit=k) retrained have one."""
        row = int(row)
        if row not in self.models:
            refit = sorted(self.models)
            raise ValueError(f"row {row} has no trained model: only refit settings keep their weights "
                             f"(rows {refit}). " + ("Run vt.tune(..., refit=1) to retrain the best setting on "
                                                   "train + validation and keep it." if not refit else
                                                   f"Raise refit= to keep more than {len(refit)}."))
        return self.models[row]

    def best_model(self):
        """The best setting's trained model (vt.tune(..., refit=1) or more): refit on train +
        validation for the epochs at which its validation score peaked."""
        if len(self.members) == 0:
            raise ValueError("no members were trained, so there is no best model.")
        return self.model(self.best_index)

    def top(self, k: int = 10) -> pd.DataFrame:
        """The k best rows, best first."""
        return self.members.iloc[self.ranking()[:k]]

    def to_dataframe(self) -> pd.DataFrame:
        """One row per member, in training order (a copy)."""
        return self.members.copy()

    def __len__(self):
        return len(self.members)

    def __repr__(self):
        n_div = int((self.members["status"] == STATUS_DIVERGED).sum()) if len(self.members) else 0
        best = f"best {self.metric}={self.best_score:.4g}" if len(self.members) else "empty"
        return f"Results({len(self.members)} members, {n_div} diverged, {best})"

    def summary(self, k: int = 10) -> str:
        """A short text report: the top-k table and the best setting."""
        cols = ["round", "member", *self.space.free_names, "score", "best_epoch", "status"]
        if self.settings.get("cv") or (self.settings.get("seeds") or 1) > 1:
            cols.insert(cols.index("score") + 1, "score_std")
        if "test_score" in self.members.columns:
            cols.append("test_score")
        table = self.top(k)[[c for c in cols if c in self.members.columns]]
        with pd.option_context("display.width", 200, "display.max_columns", 30, "display.float_format", "{:.4g}".format):
            text = table.to_string(index=False)
        best = ", ".join(f"{k}={_fmt(v)}" for k, v in self.best_params.items())
        text = (f"top {min(k, len(self))} of {len(self)} by validation {self.metric}:\n{text}\n\nbest: {best}\n"
                f"best validation {self.metric}: {self.best_score:.4f}")
        if "test_score" in self.members.columns and np.isfinite(self.test_score):
            text += f"\ntest {self.metric} of the best setting, refit on train + validation: {self.test_score:.4f}"
        return text

    # -- persistence -------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> str:
        """Writes the run directory (created if needed); returns its path."""
        path = os.fspath(path)
        os.makedirs(path, exist_ok=True)
        self.members.to_csv(os.path.join(path, "members.csv"), index=False)
        np.savez(os.path.join(path, "curves.npz"), **self.curves)
        np.savez(os.path.join(path, "hp.npz"), **self.hp)
        meta = {"space": self.space.to_config(), "settings": self.settings}
        if len(self.members):
            meta["best_params"] = self.best_params
            meta["best_score"] = self.best_score if np.isfinite(self.best_score) else None
        with open(os.path.join(path, "run.json"), "w") as f:
            json.dump(meta, f, indent=2, default=_plain)
        for row, model in self.models.items():
            model.save(os.path.join(path, "models", f"row_{row}"))
        return path


def load_results(path: str | os.PathLike) -> Results:
    """Reads a run directory written by `Results.save`."""
    path = os.fspath(path)
    meta_path = os.path.join(path, "run.json")
    if not os.path.exists(meta_path):
        raise FileNotFoundError(f"{path} is not a vmaptune run directory (no run.json in it).")
    with open(meta_path) as f:
        meta = json.load(f)
    space = Space.from_config(meta["space"])
    members = pd.read_csv(os.path.join(path, "members.csv"))
    with np.load(os.path.join(path, "curves.npz")) as c:
        curves = {k: c[k] for k in c.files}
    with np.load(os.path.join(path, "hp.npz")) as h:
        hp = {k: h[k] for k in h.files}
    models = {}
    models_dir = os.path.join(path, "models")
    if os.path.isdir(models_dir):
        from vmaptune.trained import TrainedModel

        for name in sorted(os.listdir(models_dir)):
            if name.startswith("row_"):
                models[int(name.removeprefix("row_"))] = TrainedModel.load(os.path.join(models_dir, name))
    return Results(space, members, curves, hp, meta.get("settings", {}), models)


def _plain(value):
    if isinstance(value, np.generic):
        return value.item()
    return value


def _fmt(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)
