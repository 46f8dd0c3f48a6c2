"""Results of a search: one row per member trained, learning curves, best setting; save / load.

A run directory holds `results.npz` (everything, exactly: the table with its dtypes, the curves,
the encoded hyperparameters, the space and settings), readable copies of it (`members.csv` the
table, `curves.npz` the P x epochs curves, `hp.npz` the encoded hyperparameters, `run.json` space,
settings and best), `checkpoints/` while a search runs (vmaptune/checkpoint.py) and, when settings
were refit, `models/row_<i>/` (each refit member's trained weights, vmaptune/trained.py). Files
are replaced whole (vmaptune/atomic.py): a reader never sees a half-written run.
"""

from __future__ import annotations

import collections.abc
import functools
import json
import numbers
import os
import pickle
import shutil
import zipfile
import zlib
from typing import Any, Mapping

import numpy as np
import pandas as pd

from vmaptune import atomic, distributed, interrupts
from vmaptune.provenance import written_by
from vmaptune.space import Space

STATUS_OK, STATUS_DIVERGED, STATUS_STOPPED = "ok", "diverged", "stopped"
STATUS_INTERRUPTED = "interrupted"  # still training when Ctrl-C came: scores so far
STATUS_PRUNED = "pruned"  # a strategy ended it before the last epoch (successive halving's lower rungs)


#: Built-in regression errors, which vt.tune scores on standardised targets (metrics.METRICS).
STANDARDISED_ERRORS = ("neg_mse", "neg_mae", "mse", "mae")


class Results:
    """What `vt.tune` returns.

    members: DataFrame, one row per member (round, member, hyperparameters decoded, score,
      best_score, final_score, best_epoch, status). `score` is what selection used: the best
      validation score over epochs, NaN for diverged members (they rank last).
    curves: dict name -> (n_members, epochs) arrays (train_loss, val_loss, val_score).
    hp: dict name -> (n_members,) encoded hyperparameters (the space's own encoding).
    strategy_state: the strategy's state at the end of the search (e.g. for
      `vt.CoarseToFine.ranges(state)`); in memory only: None for a run loaded from run_dir.
    """

    _saved_at: frozenset = frozenset()  # (results pickled before it existed)
    #: where the refit model is kept instead, when the search refits outside these results (PopulationSearchCV's)
    refit_elsewhere: str | None = None

    def __init__(self, space: Space, members: pd.DataFrame, curves: Mapping[str, np.ndarray],
                 hp: Mapping[str, np.ndarray], settings: Mapping[str, Any], models: Mapping[int, Any] | None = None):
        self.space = space
        self.members = members.reset_index(drop=True)
        self.curves = {k: np.asarray(v) for k, v in curves.items()}
        self.hp = {k: np.asarray(v) for k, v in hp.items()}
        self.settings = dict(settings)
        # row -> TrainedModel (refit members); a loaded run's are read when asked for
        self.models: Mapping[int, Any] = models if isinstance(models, SavedModels) else dict(models or {})
        self.strategy_state: Any = None
        self._saved_at: frozenset = frozenset()  # the directories these results were saved to or loaded from

    # -- selection -------------------------------------------------------------------------------
    @property
    def metric(self) -> str:
        return self.settings.get("metric", "score")

    @property
    def metric_sign(self) -> float:
        """-1.0 when the metric is one where lower is better (its scores are stored negated), else
        1.0: multiply a score by it to show the metric as people know it (a positive mse)."""
        if "greater_is_better" in self.settings:  # (recorded since: a metric of your own too)
            return 1.0 if self.settings["greater_is_better"] else -1.0
        from vmaptune.metrics import shown_sign

        return shown_sign(self.metric)

    def ranking(self) -> np.ndarray:
        """Row indices from best to worst; NaN scores (diverged, failed) last."""
        score = self.members["score"].to_numpy(dtype=float)
        score = np.where(np.isfinite(score), score, -np.inf)
        return np.argsort(-score, kind="stable")

    def unfinished(self) -> np.ndarray:
        """(members,) bool: members a resume may still train: interrupted ones, and all of the round a
        Ctrl-C cut short (pruned, stopped or diverged so far, a strategy may still copy a network
        into one: PBT's exploit does). A Ctrl-C between rounds cuts none: the last one finished."""
        table = self.members
        status = table["status"].to_numpy() if "status" in table else np.full(len(table), "")
        running = status == STATUS_INTERRUPTED
        if self.settings.get("interrupted") and "round" in table:
            cut = table["round"].to_numpy() == table["round"].max()  # (the last round, if it was cut short)
            if running[cut].any():
                running |= cut
        return running

    def validated(self) -> np.ndarray:
        """(members, epochs) bool: the epochs each member's validation score was measured at
        (vt.tune(evaluate_every=k): every k-th, the run's last, and the member's last trained, its
        budget; an unfinished member's last only when due); curves["val_score"] carries each score
        on between them. Every trained epoch where k = 1 (and in runs saved before the setting)."""
        curve = self.curves.get("val_score")
        n_epochs = 0 if curve is None else np.shape(curve)[1]
        every = int(self.settings.get("evaluate_every") or 1)
        epoch = np.arange(1, n_epochs + 1)[None, :]
        trained = (self.members["epochs_trained"].to_numpy(dtype=float) if "epochs_trained" in self.members
                   else np.full(len(self), float(n_epochs)))[:, None]
        trained = np.nan_to_num(trained, nan=n_epochs)
        last = (epoch == trained) & ~self.unfinished()[:, None]
        due = (epoch % every == 0) | (epoch == int(self.settings.get("epochs") or n_epochs)) | last
        return due & (epoch <= trained)

    def refit_rows(self, k: int) -> list[int]:
        """The rows vt.tune(refit=k) retrains: the k best that scored."""
        score = self.members["score"].to_numpy(dtype=float)
        return [int(i) for i in self.ranking()[:k] if np.isfinite(score[i])]

    @property
    def best_index(self) -> int:
        """Row of the best member. Raises when no member has a score (see `failure()`)."""
        if not self.succeeded:
            raise ValueError(f"there is no best member: {self.failure()}")
        return int(self.ranking()[0])

    @property
    def best_params(self) -> dict[str, Any]:
        """The best member's hyperparameters as plain Python values (a conditional one only where
        it is the member's setting: Space.only_when)."""
        i = self.best_index
        row, hp = self.members.iloc[i], {name: self.hp[name][i:i + 1] for name in self.space.names}
        active = self.space.active(hp)
        # (a conditional int's column is float, NaN where inactive, and a Choice of 0.5, 1 and 2.5's
        # column reads 1 as 1.0: their values from the encoded hp)
        decoded = set(active) | {name for name in self.space.names if self.space[name].kind == "categorical"}
        return {name: _plain(row[name] if name not in decoded else self.space[name].decode(hp[name][0]))
                for name in self.space.names if active.get(name, (True,))[0]}

    @property
    def best_score(self) -> float:
        return float(self.members["score"].iloc[self.best_index])

    @property
    def test_score(self) -> float:
        """Test score of the best setting, refit on train + validation (needs tune(..., refit=k))."""
        if "test_score" not in self.members.columns:
            if self.settings.get("refit") and len(self) and not self.succeeded:
                raise ValueError(f"no test score: no member scored, so none was refit. {self.failure()}")
            why = self._no_refit_yet()
            raise ValueError(f"no test score: {why[0].lower()}{why[1:]}")
        score = float(self.members["test_score"].iloc[self.best_index])
        if np.isnan(score) and "/ 0 test rows" in str(self.settings.get("data", "")):
            raise ValueError("no test score: the data set has no test split (test_fraction=0), so the refit (trained "
                             "on train + validation) was not tested. Score it on rows of your own: "
                             "results.best_model().score(X, y).")
        if np.isnan(score) and self.best_index not in list(self.models):  # (rows of an earlier refit were tested)
            why = self._why_no_model(self.best_index)
            raise ValueError(f"no test score: the best setting (row {self.best_index}) was not refit; "
                             f"{why[0].lower()}{why[1:]}")
        return score

    # -- trained models ----------------------------------------------------------------------------
    def model(self, row: int):
        """The trained model of row `row` (a vt.TrainedModel: predict, predict_proba, score, save),
        refit on train + validation. Rows vt.tune(..., refit=k) retrained have one. `row`: a
        position in the table, or one of its rows (`for i, r in df.iterrows()`: r)."""
        row = row.name if isinstance(row, pd.Series) else row
        if isinstance(row, (bool, np.bool_)) or not isinstance(row, numbers.Integral):
            raise TypeError(f"results.model({row!r}): give a row's position in the table (an integer, e.g. "
                            f"results.model({sorted(self.models)[0] if self.models else 0})), or one of its rows.")
        row = int(row)
        if not 0 <= row < len(self.members):  # (not a row at all: no refit= would give it a model)
            last = f"; the last is results.model({len(self.members) - 1})" if len(self.members) else ""
            raise IndexError(f"results.model({row}): the table has {len(self.members)} rows, counted from 0{last}.")
        if row not in self.models:
            raise ValueError(f"row {row} has no trained model: only refit settings keep their weights "
                             f"(rows {sorted(self.models)}). {self._why_no_model(row)}")
        return self.models[row]

    def _why_no_model(self, row: int) -> str:
        """Why row `row` (of the table) has no trained model, and how to get one."""
        refit = sorted(self.models)
        if self.members["status"].iloc[row] == "diverged":
            return "This one diverged in the search: a refit retrains only settings that did not."
        if self.refit_elsewhere is not None and not self.models:
            return self.refit_elsewhere
        asked = int(self.settings.get("refit_asked", self.settings.get("refit")) or 0)
        unfinished = self.settings.get("interrupted") or "refit_asked" in self.settings
        if not refit or (unfinished and row in self.refit_rows(asked)):  # (a refit still to run would keep it)
            return self._no_refit_yet()
        if row in self.refit_rows(len(refit)):  # (a run that searched on, refit= left out, keeps its refit)
            return (f"Those were the best before rounds added since; resume with refit={len(refit)} "
                    f"(vt.tune(..., run_dir=..., resume=True, refit={len(refit)}), or --resume with refit = "
                    f"{len(refit)} in the config) to refit the best of all rounds.")
        return f"Raise refit= to keep more than {max(len(refit), asked if unfinished else 0)}."

    def _no_refit_yet(self) -> str:
        """Why no setting was refit, and how to get one."""
        asked = self.settings.get("refit_asked", self.settings.get("refit"))
        if asked and "refit_asked" in self.settings and not self.settings.get("interrupted"):  # (on_round's results)
            return (f"The search's refit={asked} runs once its rounds have trained; these results are of a round "
                    f"before it (a run killed there: vt.tune(..., run_dir=..., resume=True) goes on to it).")
        held = sorted(d for d in self._saved_at if os.path.isdir(os.path.join(d, "checkpoints")))
        if asked and self.settings.get("interrupted"):  # (asked for, but the search did not end)
            why = "stopped by its time budget" if self.settings.get("time_budget_spent") else "interrupted"
            if self.settings.get("refit_interrupted"):  # (a refit without a run_dir, cut by Ctrl-C)
                before = "The time budget stopped the search" if self.settings.get("time_budget_spent") else \
                    "The search ended"
                return (f"{before}, and the refit={asked} that followed was interrupted as it trained; without a "
                        f"run_dir nothing is left to resume: run the search again (with run_dir= to keep it "
                        f"resumable).")
            if held:  # (the refit is left to the resume: a refit cut short is not checkpointed)
                return (f"The search was {why} before its refit={asked} ran; resume it: vt.tune(..., run_dir="
                        f"{held[0]!r}, resume=True) (on the command line: the same command with --resume) finishes "
                        f"the search and refits its best.")
            return (f"The search was {why} before its refit={asked} ran; resume it from its run directory: "
                    f"vt.tune(..., run_dir=<the run's directory>, resume=True) finishes the search and refits its "
                    f"best (a search run without a run_dir cannot be resumed: give run_dir= to keep a stopped one "
                    f"resumable).")
        if held:  # (a run directory: its resume trains the refit alone, not the search again)
            return (f"Resume the run with refit=1 (vt.tune(..., run_dir={held[0]!r}, resume=True, refit=1), or "
                    f"--resume with refit = 1 in the config): it trains only the refit of the best setting on "
                    f"train + validation, tests it and keeps it.")
        return "Run vt.tune(..., refit=1) to retrain the best setting on train + validation, test it and keep it."

    def best_model(self):
        """The best setting's trained model (vt.tune(..., refit=1) or more): refit on train +
        validation for the epochs at which its validation score peaked."""
        return self.model(self.best_index)

    def top(self, k: int = 10) -> pd.DataFrame:
        """The k best rows, best first."""
        if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 0:
            raise ValueError(f"top(k={k!r}): k is how many of the best rows to show, an integer >= 0 (e.g. top(5)); "
                             f"to sort by a column use to_dataframe().sort_values(...).")
        return self.members.iloc[self.ranking()[:k]]

    def to_dataframe(self) -> pd.DataFrame:
        """One row per member, in training order (a copy)."""
        return self.members.copy()

    def to_optuna(self, storage: Any = None, study_name: str | None = None, *, overwrite: bool = False,
                  append: bool = False):
        """-> an optuna.Study with one trial per member, for Optuna's dashboard, plots and
        importances (storage: None in memory, or a URL such as "sqlite:///runs.db"; overwrite /
        append a study of that name already there: an append after a resume finishes the RUNNING
        trials of the members that were interrupted); vmaptune/optuna_study.py says how members map
        to trials."""
        from vmaptune.optuna_study import to_optuna

        return to_optuna(self, storage, study_name, overwrite=overwrite, append=append)

    def __len__(self):
        return len(self.members)

    def __repr__(self):
        from vmaptune.metrics import shown

        n_div = int((self.members["status"] == STATUS_DIVERGED).sum()) if len(self.members) else 0
        best = (f"best {self.metric}={shown(self.best_score, self.metric_sign):.4g}" if self.succeeded else
                "empty" if not len(self) else "no member has a score")
        return f"Results({len(self.members)} members, {n_div} diverged, {best})"

    def summary(self, k: int = 10) -> str:
        """A short text report: the top-k table and the best setting. Scores are shown as the
        metric is known (a positive mse), though stored higher-is-better (negated)."""
        from vmaptune.metrics import shown

        sign = self.metric_sign
        cols = ["round", "member", *self.space.free_names, "score", "best_epoch", "status"]
        if self.settings.get("cv") or (self.settings.get("seeds") or 1) > 1:
            cols.insert(cols.index("score") + 1, "score_std")
        if "test_score" in self.members.columns:
            cols.append("test_score")
        table = self.top(k)[[c for c in cols if c in self.members.columns]].copy()
        for col in {"score", "test_score"} & set(table.columns):
            table[col] = shown(table[col], sign)
        with pd.option_context("display.width", 200, "display.max_columns", 30, "display.float_format", "{:.4g}".format):
            text = table.to_string(index=False)
        if not self.succeeded:
            return f"{len(self)} members trained, none with a score:\n{text}\n\n{self.failure()}"
        best = ", ".join(f"{k}={_fmt(v)}" for k, v in self.best_params.items())
        order = " (lower is better)" if sign < 0 else ""
        text = (f"top {min(k, len(self))} of {len(self)} by validation {self.metric}{order}:\n{text}\n\n"
                f"best: {best}\nbest validation {self.metric}: {shown(self.best_score, sign):.4f}")
        tested = float(self.members["test_score"].iloc[self.best_index]) if "test_score" in self.members else np.nan
        if np.isfinite(tested):
            text += f"\ntest {self.metric} of the best setting, refit on train + validation: {shown(tested, sign):.4f}"
        if self.settings.get("task") == "regression" and self.metric in STANDARDISED_ERRORS and \
                not self.settings.get("metric_in_target_units"):
            text += (f"\n({self.metric} in standardised units: the targets' own are these times data.y_std"
                     f"{'**2' if 'mse' in self.metric else ''}; metric='r2' or a vt.Metric of yours reads in theirs)")
        return text

    # -- persistence -------------------------------------------------------------------------------
    def _saved_in(self, path: str) -> bool:
        """Whether `path` holds these results already, from another process (the script run again,
        the same seed and data): the same metric, table and settings but their times. Then a save
        replaces nothing of another search's."""
        try:
            saved = load_results(path)
        except Exception:  # noqa: BLE001 (a table that does not read: not these results)
            return False
        timeless = lambda settings: {k: v for k, v in settings.items()  # noqa: E731 (times and clocks: the run's own)
                                     if k != "time" and not k.endswith(("_at", "seconds"))}
        return saved.metric == self.metric and saved.members.equals(self.members) and \
            repr(timeless(saved.settings)) == repr(timeless(self.settings))

    def save(self, path: str | os.PathLike, *, overwrite: bool = False) -> str:
        """Writes the run directory (created if needed); returns its path. Every file is written
        whole or not at all, `results.npz` last: it holds every value exactly (dtypes included) and
        is what `load_results` reads; members.csv, curves.npz, hp.npz and run.json are readable
        copies. Ctrl-C during a save is held until it ends. In a multi-process run only process 0
        writes (every process holds the same results) and the others return at once: read the
        directory back in process 0, or after vt.distributed.barrier("saved") in every process.

        A directory that holds another saved search is refused unless overwrite=True (its table
        and models are replaced); these results saved again where they were saved or loaded from
        are written over."""
        path = os.fspath(path)
        if not distributed.is_primary():
            return path
        from vmaptune.trained import pickled

        call = f"results.save({path!r})"
        # (held from here: a signal during the checks stopped the save before anything was written)
        with interrupts.deferred():
            for row, model in self.models.items():  # (a model that cannot be saved: said before anything is written)
                pickled(model.network, f"{call} (the refit model of row {row})")
            atomic.make_dir(path, call, f"{RESULTS_FILE}, members.csv and the refit models")
            here = os.path.realpath(path)
            if not overwrite and here not in self._saved_at and _holds_results(path) and not self._saved_in(path):
                raise FileExistsError(f"{call}: {path} already holds a saved search, which this save would replace "
                                      f"(its table and trained models). Give another directory, or overwrite=True to "
                                      f"replace it.")
            for row, model in self.models.items():
                final = os.path.join(path, "models", f"row_{row}")
                atomic.write_dir(final, functools.partial(model.save, shown_as=final))
            meta = self._meta()
            atomic.write_text(os.path.join(path, "run.json"), json.dumps(meta, indent=2, default=_plain))
            atomic.write_file(os.path.join(path, "members.csv"),
                              lambda f: f.write(self.members.to_csv(index=False).encode()))
            atomic.write_file(os.path.join(path, "curves.npz"), lambda f: np.savez(f, **self.curves))
            atomic.write_file(os.path.join(path, "hp.npz"), lambda f: np.savez(f, **self.hp))
            arrays, columns = {}, []
            for name in self.members.columns:
                values = self.members[name].to_numpy()
                if values.dtype.kind in "biuf":
                    arrays[f"table/{name}"] = values
                    columns.append({"name": name, "dtype": values.dtype.str})
                else:  # text and mixed columns (status, choices): exact as JSON, with pandas' dtype
                    columns.append({"name": name, "dtype": "json", "pandas_dtype": str(self.members[name].dtype),
                                    "values": [_plain(v) for v in values]})
            arrays.update({f"curves/{k}": v for k, v in self.curves.items()})
            arrays.update({f"hp/{k}": v for k, v in self.hp.items()})
            exact = {**meta, "format": RESULTS_FORMAT, "columns": columns, "models": sorted(self.models)}
            arrays["meta"] = np.array(json.dumps(exact, default=_plain))
            atomic.write_file(os.path.join(path, RESULTS_FILE), lambda f: np.savez(f, **arrays))
            _remove_other_models(os.path.join(path, "models"), self.models)
        self._saved_at = self._saved_at | {here}
        return path

    def _meta(self) -> dict[str, Any]:
        meta: dict[str, Any] = {"space": self.space.to_config(), "settings": self.settings,
                                "written_by": written_by()}
        if self.succeeded:
            meta["best_params"] = self.best_params
            meta["best_score"] = self.best_score
        return meta

    # -- failure ------------------------------------------------------------------------------------------
    @property
    def succeeded(self) -> bool:
        """Whether any member has a finite score (so there is a best one)."""
        return bool(np.isfinite(self.members["score"].to_numpy(dtype=float)).any()) if len(self.members) else False

    def metric_undefined(self) -> np.ndarray:
        """Rows of members whose metric was not finite at an epoch their validation loss was: the
        metric is undefined on some validation rows (a division by a zero target). They trained on,
        without a score for those epochs; one never scored ranks last."""
        loss, score = self.curves.get("val_loss"), self.curves.get("val_score")
        if loss is None or score is None or loss.shape != score.shape:
            return np.zeros(0, int)
        return np.flatnonzero((np.isfinite(loss) & ~np.isfinite(score)).any(axis=1))

    def metric_undefined_message(self) -> str:
        """What metric_undefined found, and the fix (empty when it found nothing)."""
        rows = self.metric_undefined()
        if len(rows) == 0:
            return ""
        metric = self.settings.get("metric", "the metric")
        never = int((~np.isfinite(self.members["score"].to_numpy(dtype=float)[rows])).sum())
        return (f"metric {metric!r} was NaN or infinite for {len(rows)} of {len(self)} members at epochs where "
                f"their validation loss was finite ({never} of them never had a finite score and rank last): "
                f"the metric is undefined on some validation rows, e.g. a division by a zero target or a log of "
                f"0. Their training went on. Make the metric finite on every row (e.g. add a small epsilon to a "
                f"denominator), or tune a metric that is.")

    def failure(self) -> str:
        """Why no member has a score, and what to try (empty when some member has one)."""
        if self.succeeded:
            return ""
        if len(self.members) == 0:
            return "no members were trained."
        n = len(self.members)
        if len(self.metric_undefined()) == n:
            return self.metric_undefined_message()
        status = self.members["status"].to_numpy() if "status" in self.members.columns else np.array([])
        stopped = int((status == STATUS_INTERRUPTED).sum())
        if stopped:  # (stopped before any validated epoch: not failed, and no learning rate to blame)
            others = f" ({n - stopped} other(s) diverged or never scored)" if stopped < n else ""
            return (f"{'all ' if stopped == n else ''}{stopped} of {n} members were interrupted before any of their "
                    f"epochs was validated{others} (a search without early stopping validates after its last "
                    f"epoch, or every evaluate_every epochs): none has a score yet. Run it again to its end (vt.tune "
                    f"with a run_dir goes on where it stopped: resume=True).")
        text = f"all {n} members failed (diverged or never scored)"
        first = "epochs_trained" in self.members.columns and (self.members["epochs_trained"].to_numpy() <= 1).all()
        if "learning_rate" in self.members.columns:
            lr = self.members["learning_rate"].to_numpy(dtype=float)
            text += (f"; learning rates from {np.nanmin(lr):.3g} to {np.nanmax(lr):.3g} all diverged: try a range "
                     f"below {np.nanmin(lr):.3g}, or a smaller init_scale")
        if first:  # (the same failure at any learning rate: a loss or model non-finite from the start)
            text += ("; every member failed in its first epoch, which a loss or model that is non-finite from the "
                     "initial weights also does at any learning rate (a log of 0, a division by 0, NaN in the "
                     "inputs): check your loss on one batch of the model's outputs")
        return text + "."


RESULTS_FILE, RESULTS_FORMAT = "results.npz", 1


def load_results(path: str | os.PathLike) -> Results:
    """Reads a run directory written by `Results.save`: every value and dtype as saved."""
    path = os.fspath(path)
    if os.path.isfile(path):
        raise FileNotFoundError(f"vt.load_results({path!r}): {path} is a file; give the run directory that holds it: "
                                f"vt.load_results({os.path.dirname(path) or '.'!r}).")
    if not os.path.isdir(path):
        raise FileNotFoundError(f"run directory {path!r} does not exist.")
    exact = os.path.join(path, RESULTS_FILE)
    if not os.path.exists(exact):
        if all(os.path.exists(os.path.join(path, name)) for name in ("run.json", "members.csv", "curves.npz", "hp.npz")):
            results = _load_csv(path)  # written by vmaptune before results.npz existed
            results._saved_at = frozenset({os.path.realpath(path)})
            return results
        from vmaptune.checkpoint import CHECKPOINTS

        if os.path.isdir(os.path.join(path, CHECKPOINTS)) or os.path.exists(os.path.join(path, "run.json")):
            raise FileNotFoundError(f"{path} holds a run with no finished round saved yet (only its checkpoints): "
                                    f"its table ({RESULTS_FILE}) is written after each round. A run still in its "
                                    f"first round: read it once that round ends. One stopped there: resume it "
                                    f"(vt.tune(..., run_dir={path!r}, resume=True), or the same vmaptune command with "
                                    f"--resume in place of any --overwrite).")
        raise FileNotFoundError(f"{path} is not a vmaptune run directory (no {RESULTS_FILE} in it); "
                                "a run saves one after its first round.")
    try:
        results = _load_npz(path, exact)
    except (zipfile.BadZipFile, zlib.error, EOFError, KeyError, ValueError) as err:  # (cut short, overwritten, ...)
        raise ValueError(f"{exact} is damaged ({type(err).__name__}: {err}). If {path} holds checkpoints/, resume "
                         f"the run (vt.tune(..., run_dir={path!r}, resume=True), or the same vmaptune command with "
                         f"--resume in place of any --overwrite): it rebuilds the table from them and writes "
                         f"{RESULTS_FILE} again.") from err
    results._saved_at = frozenset({os.path.realpath(path)})
    return results


def _holds_results(path: str) -> bool:
    """Whether the directory holds a saved search (its table, in either format)."""
    return any(os.path.exists(os.path.join(path, name)) for name in (RESULTS_FILE, "members.csv"))


def _load_npz(path: str, exact: str) -> Results:
    with np.load(exact) as f:
        meta = json.loads(str(f["meta"]))
        table = {}
        for column in meta["columns"]:
            name = column["name"]
            if column["dtype"] == "json":
                values = np.empty(len(column["values"]), object)
                values[:] = [tuple(v) if isinstance(v, list) else v for v in column["values"]]
                table[name] = pd.Series(values, dtype=object if column["pandas_dtype"] == "object" else
                                        column["pandas_dtype"])
            else:
                table[name] = pd.Series(f[f"table/{name}"])
        curves = {k.removeprefix("curves/"): f[k] for k in f.files if k.startswith("curves/")}
        hp = {k.removeprefix("hp/"): f[k] for k in f.files if k.startswith("hp/")}
    models = SavedModels(path, meta.get("models", []))
    return Results(Space.from_config(meta["space"], written=True), pd.DataFrame(table), curves, hp,
                   meta.get("settings", {}), models)


class SavedModels(collections.abc.MutableMapping):
    """row -> TrainedModel of a results directory, each read when first asked for: the table and
    curves load without the model's code, which a model of your own needs (its class must import)."""

    def __init__(self, path: str, rows):  # (the directory's absolute path: a later os.chdir must not lose it)
        self.path, self.rows, self._loaded = os.path.abspath(path), [int(r) for r in rows], {}

    def __getitem__(self, row: int):
        if row not in self.rows:
            raise KeyError(row)
        if row not in self._loaded:
            from vmaptune.trained import TrainedModel

            where = os.path.join(self.path, "models", f"row_{row}")
            try:
                self._loaded[row] = TrainedModel.load(where)
            except (KeyError, EOFError, zipfile.BadZipFile, pickle.UnpicklingError) as err:  # (files cut short or
                # damaged: said with their path; a KeyError read as "no such row" by `get`)
                raise ValueError(f"{where} cannot be read ({type(err).__name__}: {err}): its files are damaged or "
                                 f"were written by another version. Resuming the run with the refit it had "
                                 f"(vt.tune(..., run_dir=..., resume=True, refit=...)) trains the row again; "
                                 f"del results.models[{row}] leaves it out.") from err
        return self._loaded[row]

    def __contains__(self, row) -> bool:  # (asked without reading the model's files)
        return row in self.rows

    def __setitem__(self, row: int, model):
        self.rows = sorted(set(self.rows) | {int(row)})
        self._loaded[int(row)] = model

    def __delitem__(self, row: int):
        self.rows.remove(row)
        self._loaded.pop(row, None)

    def __iter__(self):
        return iter(self.rows)

    def __len__(self):
        return len(self.rows)


def _load_csv(path: str) -> Results:
    with open(os.path.join(path, "run.json")) as f:
        meta = json.load(f)
    members = pd.read_csv(os.path.join(path, "members.csv"))
    with np.load(os.path.join(path, "curves.npz")) as c:
        curves = {k: c[k] for k in c.files}
    with np.load(os.path.join(path, "hp.npz")) as h:
        hp = {k: h[k] for k in h.files}
    models_dir = os.path.join(path, "models")
    rows = [int(n.removeprefix("row_")) for n in sorted(os.listdir(models_dir)) if n.startswith("row_")] \
        if os.path.isdir(models_dir) else []
    return Results(Space.from_config(meta["space"], written=True), members, curves, hp, meta.get("settings", {}),
                   SavedModels(path, rows))


def _plain(value):
    if isinstance(value, np.generic):
        return value.item()
    return value


def _fmt(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _remove_other_models(directory: str, models: Mapping[int, Any]) -> None:
    """Deletes models/row_N folders of rows this save holds no model for (a refit of an earlier
    end of the run, before a resume searched on): results.npz names the models, these are stale."""
    if not os.path.isdir(directory):
        return
    for entry in os.listdir(directory):
        if entry.startswith("row_") and entry[4:].isdigit() and int(entry[4:]) not in models:
            shutil.rmtree(os.path.join(directory, entry), ignore_errors=True)
