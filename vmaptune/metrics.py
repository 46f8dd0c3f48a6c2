"""Training losses and validation metrics. Every metric is "higher is better" (scikit-learn's
convention: losses are negated, as in neg_log_loss and neg_mse).

Shapes: outputs (n, k): logits for classification (targets (n,) class ids), values for regression
(targets (n,) with k = 1, or (n, k) for k outputs). A regression metric averages over outputs
(scikit-learn's "uniform_average").
"""

from __future__ import annotations

import contextvars
import dataclasses
import difflib
import inspect
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax

from vmaptune.traced import USED_AS_PYTHON_VALUE
from vmaptune.warn import warn

TASKS = ("classification", "regression")


def regression_pair(out: jax.Array, y: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Outputs and targets of a regression as the same shape: (n,) for one target, else (n, k)."""
    if y.ndim == out.ndim - 1:
        return out[..., 0], y
    return out, y


@dataclasses.dataclass(frozen=True)
class Metric:
    """A validation metric. fn(outputs (n, k), targets) -> scalar, traced inside the program
    (use jnp). greater_is_better=False negates it, so the score stays "higher is better".
    Targets are (n,) class ids, (n,) values of one regression target (outputs then (n, 1): use
    outputs[:, 0]) or (n, k) of k targets.

    For regression your fn gets outputs and targets in the targets' own units (a MAPE or a cost
    in currency means what it says); the network fits standardised targets, and `in_target_units`
    converts them back inside the program. standardised=True (the built-in names) takes them as the
    network fits them."""

    name: str
    task: str
    fn: Callable[[jax.Array, jax.Array], jax.Array]
    greater_is_better: bool = True
    standardised: bool = dataclasses.field(default=False, repr=False)

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name:
            raise TypeError(f"Metric(name={self.name!r}): name must be a non-empty string (the score's name in "
                            f"tables and summaries), e.g. Metric('f1', 'classification', fn).")
        if not isinstance(self.greater_is_better, (bool, np.bool_)):  # ("False" is truthy: it would maximise)
            raise TypeError(f"Metric({self.name!r}, greater_is_better={self.greater_is_better!r}): give True (higher "
                            f"is better, e.g. accuracy) or False (lower is better, e.g. an error or a loss).")
        if self.task not in TASKS:
            raise ValueError(f"Metric(task={self.task!r}): task must be 'classification' or 'regression'.")
        if not callable(self.fn):
            raise TypeError(f"Metric(fn={self.fn!r}): fn must be a function (outputs, targets) -> scalar.")

    def score(self, out, y):
        value = self.fn(out, y)
        return value if self.greater_is_better else -value


@dataclasses.dataclass(frozen=True)
class _InTargetUnits:
    """fn(outputs, targets) of standardised regression values, called in the targets' own units.
    A frozen dataclass (not a closure) so that equal metrics stay equal: the program holding it is
    the jit cache key, and a new closure per search would compile again."""

    fn: Callable[[jax.Array, jax.Array], jax.Array]
    mean: tuple[float, ...]
    std: tuple[float, ...]

    def __call__(self, out, y):
        mean, std = jnp.asarray(self.mean, jnp.float32), jnp.asarray(self.std, jnp.float32)
        if len(self.mean) == 1:  # one target: scalars, whatever the outputs' shape
            mean, std = mean[0], std[0]
        return self.fn(out * std + mean, y * std + mean)


def in_target_units(metric: Metric, y_mean, y_std) -> Metric:
    """`metric` as scored on standardised regression outputs and targets: a Metric of yours gets
    them back in the targets' own units (value * y_std + y_mean); a classification or built-in
    (standardised) metric is returned as it is."""
    if metric.task != "regression" or metric.standardised:
        return metric
    as_tuple = (lambda v: tuple(float(x) for x in np.ravel(np.asarray(v, np.float64))))
    return dataclasses.replace(metric, fn=_InTargetUnits(metric.fn, as_tuple(y_mean), as_tuple(y_std)),
                               standardised=True)


@dataclasses.dataclass(frozen=True)
class _ScaledErrors:
    """fn(outputs, targets) of k standardised targets -> minus the mean of their errors in the
    targets' own units: each difference times its target's std, so the targets' offsets never
    enter (unscaled in float32, targets near 1.7e9 are rounded to steps of 128, and the errors with
    them). Frozen, as _InTargetUnits: equal searches hold equal metrics, one compiled program."""

    squared: bool
    std: tuple[float, ...]

    def __call__(self, out, y):
        out, y = regression_pair(out, y)
        difference = (out - y) * jnp.asarray(self.std, jnp.float32)
        return -jnp.mean(jnp.square(difference) if self.squared else jnp.abs(difference))


def errors_in_target_units(name: str, y_std) -> Metric:
    """neg_mse / neg_mae ("neg_mse" or "neg_mae") of k targets as scikit-learn's: the mean over
    targets of each one's error in its own units, scored on standardised values; y_std: (k,)."""
    std = tuple(float(v) for v in np.ravel(np.asarray(y_std, np.float64)))
    return Metric(name, "regression", _ScaledErrors(name == "neg_mse", std), standardised=True)


def scores_in_target_units(metric: Metric) -> bool:
    """Whether a regression metric as the program holds it scores in the targets' own units: a
    Metric of yours (in_target_units), PopulationSearchCV's errors of several targets; not the
    built-ins, nor a Metric of yours marked standardised=True."""
    return isinstance(metric.fn, (_InTargetUnits, _ScaledErrors))


#: float32's spacing at the targets' mean, in standard deviations, above which a metric in the targets' own
#: units is warned about. Unscaled in float32, each output and target is rounded by up to half that
#: spacing: at 1e-3 of a standard deviation a close fit (an MAE of some hundredths of one, r2 about
#: 0.99) moves by 1 % or less, and members' scores stay apart; above it the rounding becomes part of
#: the score (timestamps of 1.7e9 s spread 50 s are rounded to steps of 128 s, 2.6 standard
#: deviations). Ordinary targets are far below (prices 2e5 +- 1e5: 2e-7; kelvins 290 +- 10: 3e-6).
UNITS_ROUNDING = 1e-3


def warn_if_rounded_in_units(metric: Metric, y_mean, y_std) -> None:
    """A regression Metric of yours is called in the targets' own units, unscaled inside the program
    in float32 (`in_target_units`): targets of a large offset against their spread (Unix timestamps,
    UTM coordinates) are rounded there to steps that swamp the errors it measures. Warns, naming the
    offset to take away, where those steps exceed UNITS_ROUNDING of a standard deviation."""
    if metric.task != "regression" or metric.standardised:
        return
    mean, std = np.broadcast_arrays(np.ravel(np.asarray(y_mean, np.float64)), np.ravel(np.asarray(y_std, np.float64)))
    step = np.spacing(np.abs(mean).astype(np.float32)).astype(np.float64)  # (float32's, at each target's mean)
    with np.errstate(divide="ignore", invalid="ignore"):
        lost = np.where(std > 0, step / std, 0.0)
    at = int(np.argmax(lost))
    if not lost[at] > UNITS_ROUNDING:
        return
    which = "targets" if len(mean) == 1 else f"target {at}'s values"
    warn(f"vt.Metric({metric.name!r}) scores outputs and targets in the targets' own units, computed in float32 "
         f"inside the program: {which} have mean {mean[at]:.10g} and std {std[at]:.4g}, where float32's values are "
         f"{step[at]:.4g} apart ({lost[at]:.2g} of a standard deviation): each output and target is rounded to that "
         f"step before your fn sees it, and its scores with them (members tie, and test_score differs from your "
         f"metric on model.predict). Subtract an offset from y "
         f"first, e.g. y - y.mean() (or the first timestamp), and add it back to the predictions: a metric of "
         f"differences (an MAE, an RMSE) is unchanged by it, one of ratios (a MAPE) is not.", UserWarning)


def warn_if_unpaired(scorer: "Metric | Loss", n_outputs: int, task: str | None = None) -> None:
    """A regression Metric or loss of yours with one target gets outputs (n, 1) and targets (n,):
    a fn that subtracts them broadcasts to (n, n), comparing every output with every target, and
    scores (or trains on) near-constant nonsense without an error (Keras' own
    mean(square(y_pred - y_true), axis=-1) does so). Probed on perfect predictions and the same
    reversed: a fn that pairs outputs with their targets scores the two apart."""
    loss = isinstance(scorer, Loss)
    if (task if loss else scorer.task) != "regression" or n_outputs != 1 or \
            (loss and scorer.name in LOSSES) or getattr(scorer, "standardised", False):
        return
    targets = jnp.linspace(1.0, 2.0, 8)
    fn = scorer.per_example if loss else scorer.fn
    try:
        right, reversed_ = (float(jnp.mean(fn(out, targets))) for out in (targets[:, None], targets[::-1, None]))
    except Exception:  # (build_program's own checks report a metric or loss that fails)
        return
    if np.isclose(right, reversed_, rtol=1e-6, atol=0.0):
        what = f"your loss {scorer.name!r}" if loss else f"vt.Metric({scorer.name!r})"
        example = ("jnp.square(outputs[:, 0] - targets), one value per row" if loss else
                   "-jnp.mean(jnp.abs(outputs[:, 0] - targets))")
        warn(f"{what} scores outputs in the right order and reversed alike ({right:.6g}): it likely "
             f"compares every output with every target. With one regression target outputs are (n, 1) "
             f"and targets (n,): use outputs[:, 0], e.g. {example}.", UserWarning)


def shown_sign(metric: "Metric | str") -> float:
    """-1.0 for a metric where lower is better (mse, mae, log_loss), else 1.0: scores are stored
    negated for those ("higher is better" everywhere: ranking, strategies, tables), and text,
    plots and Optuna's studies multiply by this to show the metric as it is known (a positive
    mse). A name that is not a built-in metric is shown as stored."""
    if isinstance(metric, Metric):
        return 1.0 if metric.greater_is_better else -1.0
    return 1.0 if getattr(METRICS.get(metric), "greater_is_better", True) else -1.0


def shown(value, sign: float):
    """A stored (higher-is-better) score in the metric's own units: value * shown_sign, + 0.0 so
    that a lower-is-better metric's 0 reads 0, not -0 (an error rate of 0 on small data)."""
    return sign * value + 0.0


def _accuracy(out, y):
    return jnp.mean(jnp.argmax(out, axis=-1) == y)


def _neg_log_loss(out, y):
    return -jnp.mean(optax.softmax_cross_entropy_with_integer_labels(out, y))


def _balanced_accuracy(out, y):
    """The mean over the classes present in y of each one's recall (scikit-learn's)."""
    k = out.shape[-1]
    hit = (jnp.argmax(out, axis=-1) == y)
    per_class = jax.nn.one_hot(y, k, dtype=out.dtype)  # (n, k)
    support = per_class.sum(axis=0)
    recall = (per_class * hit[:, None]).sum(axis=0) / jnp.maximum(support, 1)
    present = support > 0
    return jnp.sum(jnp.where(present, recall, 0.0)) / jnp.maximum(present.sum(), 1)


def _f1_macro(out, y):
    """The mean over the classes in y or in the predictions of each one's F1 (scikit-learn's
    f1_macro; a class neither true nor predicted is left out)."""
    k = out.shape[-1]
    true = jax.nn.one_hot(y, k, dtype=out.dtype)
    predicted = jax.nn.one_hot(jnp.argmax(out, axis=-1), k, dtype=out.dtype)
    tp = (true * predicted).sum(axis=0)
    wrong = true.sum(axis=0) + predicted.sum(axis=0) - 2 * tp  # false positives + false negatives
    seen = (tp + wrong) > 0
    f1 = 2 * tp / jnp.maximum(2 * tp + wrong, 1)
    return jnp.sum(jnp.where(seen, f1, 0.0)) / jnp.maximum(seen.sum(), 1)


def _auc(score, positive):
    """ROC AUC of `score` (n,) for the boolean labels `positive` (n,): the Mann-Whitney statistic
    with average ranks for ties (scikit-learn's value). NaN when one side is empty."""
    ordered = jnp.sort(score)
    rank = (jnp.searchsorted(ordered, score, side="left") + jnp.searchsorted(ordered, score, side="right") + 1) / 2
    n_pos = positive.sum()
    n_neg = positive.shape[0] - n_pos
    u = jnp.sum(jnp.where(positive, rank, 0.0)) - n_pos * (n_pos + 1) / 2
    return jnp.where((n_pos > 0) & (n_neg > 0), u / jnp.maximum(n_pos * n_neg, 1), jnp.nan)


def _roc_auc(out, y):
    """Two classes: the AUC of class 1's probability (scikit-learn's roc_auc)."""
    if out.shape[-1] != 2:
        raise ValueError(f"metric 'roc_auc' scores two classes, but the model has {out.shape[-1]} outputs; for "
                         f"several classes use 'roc_auc_ovr' (one class against the rest, averaged).")
    return _auc(out[:, 1] - out[:, 0], y == 1)


def _roc_auc_ovr(out, y):
    """The mean over the classes present in y of each class's AUC against the rest, from the softmax
    probabilities (scikit-learn's roc_auc_ovr, macro average)."""
    probabilities = jax.nn.softmax(out, axis=-1)
    k = out.shape[-1]
    aucs = jnp.stack([_auc(probabilities[:, c], y == c) for c in range(k)])
    return jnp.nanmean(aucs)


def _neg_mse(out, y):
    out, y = regression_pair(out, y)
    return -jnp.mean(jnp.square(out - y))


def _neg_mae(out, y):
    out, y = regression_pair(out, y)
    return -jnp.mean(jnp.abs(out - y))


def _r2(out, y):
    out, y = regression_pair(out, y)
    residual = jnp.sum(jnp.square(out - y), axis=0)
    total = jnp.sum(jnp.square(y - jnp.mean(y, axis=0)), axis=0)
    # targets that do not vary (a fold of one value) leave r2 undefined: 1 - residual / ~0 read about -1e12
    # and swamped every mean over folds. As scikit-learn's r2_score(force_finite=True): 1.0 where predicted
    # exactly, else 0.0 (standardised targets: 1e-8 is far below any real spread). A fold of one row reads
    # the same here, but scikit-learn's r2_score is NaN there whatever force_finite: vt.tune and
    # PopulationSearchCV refuse such folds before training (cv_splits.check_r2_folds)
    constant = total < 1e-8
    ratio = residual / jnp.where(constant, 1.0, total)
    return jnp.mean(jnp.where(constant, jnp.where(residual < 1e-8, 1.0, 0.0), 1.0 - ratio))


METRICS = {
    m.name: m
    for m in (
        Metric("accuracy", "classification", _accuracy),
        Metric("neg_log_loss", "classification", _neg_log_loss),
        Metric("balanced_accuracy", "classification", _balanced_accuracy),
        Metric("f1_macro", "classification", _f1_macro),
        Metric("roc_auc", "classification", _roc_auc),
        Metric("roc_auc_ovr", "classification", _roc_auc_ovr),
        # vt.tune reports regression errors in standardised units (the README says so): scored as fitted
        Metric("neg_mse", "regression", _neg_mse, standardised=True),
        Metric("neg_mae", "regression", _neg_mae, standardised=True),
        Metric("r2", "regression", _r2, standardised=True),
        Metric("mse", "regression", lambda out, y: -_neg_mse(out, y), greater_is_better=False, standardised=True),
        Metric("mae", "regression", lambda out, y: -_neg_mae(out, y), greater_is_better=False, standardised=True),
        Metric("log_loss", "classification", lambda out, y: -_neg_log_loss(out, y), greater_is_better=False),
    )
}
DEFAULT_METRIC = {"classification": "accuracy", "regression": "neg_mse"}
#: Other tools' names for the metrics (Keras, scikit-learn's scoring) -> vmaptune's, per task.
FOREIGN_METRICS = {
    **{k: {"classification": "log_loss", "regression": "mse"} for k in ("loss", "val_loss", "cross_entropy")},
    **{k: {"classification": "accuracy"} for k in ("acc", "val_acc", "val_accuracy", "categorical_accuracy",
                                                    "sparse_categorical_accuracy")},
    **{k: {"regression": "mse"} for k in ("mean_squared_error", "val_mse", "val_mean_squared_error")},
    **{k: {"regression": "mae"} for k in ("mean_absolute_error", "val_mae", "val_mean_absolute_error")},
    "neg_mean_squared_error": {"regression": "neg_mse"}, "neg_mean_absolute_error": {"regression": "neg_mae"},
    "auc": {"classification": "roc_auc"}, "val_auc": {"classification": "roc_auc"},
    "f1": {"classification": "f1_macro"}, "logloss": {"classification": "log_loss"},
}
#: What a suggested name measures where the foreign name measures something else.
NOT_THE_SAME = {"f1": "f1_macro averages the F1 of every class; scikit-learn's 'f1' on two classes is class 1's "
                      "alone: for that one, give a vt.Metric of your own (its fn in jax.numpy)"}


def is_builtin(metric: Metric) -> bool:
    """Whether metric is vmaptune's own of its name, not a vt.Metric of yours that bears the name
    (a "mae" in your targets' units): only a built-in's checks and advice apply to it."""
    return METRICS.get(metric.name) is metric


def get_metric(name: "str | Metric | None", task: str) -> Metric:
    """The metric called `name` (default: accuracy / neg_mse), or a user's Metric, checked against the task."""
    if isinstance(name, Metric):
        if name.task != task:
            raise ValueError(f"metric {name.name!r} is for {name.task}, but the data is {task}.")
        return name
    name = DEFAULT_METRIC[task] if name is None else name
    if not isinstance(name, str):
        raise TypeError(f"metric must be a name such as 'accuracy' or a vt.Metric(...), got {name!r}.")
    if name not in METRICS:
        options = sorted(n for n, m in METRICS.items() if m.task == task)
        known = FOREIGN_METRICS.get(name.lower(), {}).get(task) or next(iter(difflib.get_close_matches(
            name.lower(), options, n=1)), None)
        hint = f" Did you mean metric={known!r}?" if known else ""
        if known and name.lower() in NOT_THE_SAME:
            hint += f" ({NOT_THE_SAME[name.lower()]}.)"
        raise ValueError(f"metric={name!r} is unknown.{hint} For {task} choose from {options}, or give a "
                         f"vt.Metric. Each metric knows its direction: an error or loss ('log_loss', 'mse', 'mae') "
                         f"is minimised, a score maximised.")
    metric = METRICS[name]
    if metric.task != task:
        options = sorted(n for n, m in METRICS.items() if m.task == task)
        raise ValueError(f"metric={name!r} is for {metric.task}, but the data is {task}; use one of {options}.")
    return metric


# -- training losses -------------------------------------------------------------------------------------
def _per_output_mean(fn):
    """A regression loss of (out, y) elementwise -> per example, averaged over outputs."""
    def per_example(out, y):
        out, y = regression_pair(out, y)
        value = fn(out, y)
        return value if value.ndim == 1 else jnp.mean(value.reshape(value.shape[0], -1), axis=1)

    return per_example


def _cross_entropy(out, y):
    return optax.softmax_cross_entropy_with_integer_labels(out, y)


def _probability_squared_error(out, y):
    """Classification's least mean squares: mean over the k classes of (softmax(out) - one_hot(y))^2,
    (n,). What Keras trains with loss="mse" on softmax outputs and one-hot labels."""
    return jnp.mean(jnp.square(jax.nn.softmax(out) - jax.nn.one_hot(y, out.shape[-1], dtype=out.dtype)), axis=-1)


LOSSES = {
    "cross_entropy": ("classification", _cross_entropy),
    "mse": ("regression", _per_output_mean(lambda o, y: jnp.square(o - y))),
    "mae": ("regression", _per_output_mean(lambda o, y: jnp.abs(o - y))),
    "huber": ("regression", _per_output_mean(lambda o, y: optax.huber_loss(o, y, delta=1.0))),
    "log_cosh": ("regression", _per_output_mean(lambda o, y: optax.log_cosh(o, y))),
}
DEFAULT_LOSS = {"classification": "cross_entropy", "regression": "mse"}
#: Other libraries' names for the losses (Keras, PyTorch, scikit-learn), each told as its own for
#: the task it is for; names that mean another loss (mape, msle) have none.
FOREIGN_LOSSES = {
    "classification": dict.fromkeys((
        "crossentropy", "categorical_crossentropy", "sparse_categorical_crossentropy", "log_loss", "neg_log_loss",
        "logloss", "nll", "ce", "softmax_cross_entropy", "categorical_cross_entropy", "softmax"), "cross_entropy"),
    "regression": {**dict.fromkeys(("mean_squared_error", "squared_error", "l2", "neg_mean_squared_error"), "mse"),
                   **dict.fromkeys(("mean_absolute_error", "absolute_error", "l1", "neg_mean_absolute_error"), "mae"),
                   **dict.fromkeys(("smooth_l1", "smoothl1"), "huber"), "logcosh": "log_cosh"},
}


def _loss_meant(name: str, task: str) -> str | None:
    """The loss a name unknown to LOSSES most likely means on `task`: another library's name for it
    (NLLLoss, categorical_crossentropy), or a near spelling of one the task trains with."""
    key = name.lower().replace("-", "_").replace(" ", "_")
    if key.endswith("loss") and key not in FOREIGN_LOSSES.get(task, {}):
        key = key[:-len("loss")].rstrip("_") or key  # (PyTorch's NLLLoss, L1Loss, MSELoss)
    options = sorted(n for n, (kind, _) in LOSSES.items() if kind == task or n in CLASSIFICATION_LOSSES and
                     task == "classification")
    if key in options:
        return key
    return FOREIGN_LOSSES.get(task, {}).get(key) or next(iter(difflib.get_close_matches(key, options, n=1,
                                                                                         cutoff=0.88)), None)
#: Names that mean another loss on a classification task: "mse" there is the squared error of the
#: class probabilities against one-hot labels (the least mean squares cost against cross-entropy).
CLASSIFICATION_LOSSES = {"mse": _probability_squared_error}
#: The per-example functions of the losses above (a check of your own loss's gradient skips them).
BUILT_IN_LOSSES = frozenset([fn for _, fn in LOSSES.values()] + list(CLASSIFICATION_LOSSES.values()))


#: True while lr_range_test builds its program: it takes only vt.Fixed values, so the errors for a
#: name the space lacks (a loss's, a model field's) advise no distribution to search there.
FIXED_ONLY: contextvars.ContextVar[bool] = contextvars.ContextVar("vmaptune_fixed_only", default=False)


def or_a_distribution(joint: str = " or") -> str:
    """The end of a missing name's advice: '{joint} a distribution to search', or '' under FIXED_ONLY."""
    return "" if FIXED_ONLY.get() else f"{joint} a distribution to search"


@dataclasses.dataclass(frozen=True)
class Loss:
    """A training loss: per_example(outputs (n, k), targets) -> (n,), or with takes_hp
    per_example(outputs, targets, hp), hp the member's hyperparameters (scalars, traced: label
    smoothing, a focal loss's gamma, Huber's delta, searched like any other); the step minimises
    its mean over a member's own rows (row weights zero out padded rows). names: the
    hyperparameters it reads (build_program finds them: reading_names)."""

    name: str
    per_example: Callable[..., jax.Array]
    takes_hp: bool = False
    names: tuple[str, ...] = ()

    def per_row(self, out: jax.Array, y: jax.Array, hp=None) -> jax.Array:
        """(n,) losses of one member's rows."""
        return self.per_example(out, y, hp) if self.takes_hp else self.per_example(out, y)

    def __call__(self, out: jax.Array, y: jax.Array, weights: jax.Array | None = None, hp=None) -> jax.Array:
        per_row = self.per_row(out, y, hp)
        if weights is None:
            return jnp.mean(per_row)
        total = jnp.sum(weights)  # (a batch whose rows all weigh 0: loss 0, no step)
        return jnp.sum(per_row * weights) / jnp.where(total > 0, total, 1.0)

    def reading_names(self, hp: dict, out, y) -> "Loss":
        """This loss with `names`: those of hp (name -> ShapeDtypeStruct) its function reads, found
        by tracing it once on shapes (nothing compiles). A name it reads that hp lacks is an error."""
        if not self.takes_hp:
            return self
        read: list[str] = []

        class Reading(dict):  # (the traced values, noting each name asked for)
            def __getitem__(self, name):
                read.append(name)
                if name not in self:
                    close = difflib.get_close_matches(str(name), list(self), n=1)
                    hint = f" Did you mean {close[0]!r} (a typo in your loss)? Otherwise add" if close else " Add"
                    raise KeyError(f"loss {loss_name!r} reads hp[{name!r}], which the space does not name.{hint} "
                                   f"it, e.g. {name}=vt.Fixed(...){or_a_distribution()}.")
                return dict.__getitem__(self, name)

            def get(self, name, default=None):
                read.append(name)
                return dict.get(self, name, default)

            def __contains__(self, name):
                read.append(name)
                return dict.__contains__(self, name)

            # A loss that copies or walks hp ({**hp}, dict(hp), hp.items()) may read any of them.
            # (Overriding __iter__ also sends dict(hp) and {**hp} through keys() and __getitem__.)
            def _reading_all(method):
                def walk(self):
                    read.extend(dict.keys(self))
                    return method(self)
                return walk

            keys, values, items = _reading_all(dict.keys), _reading_all(dict.values), _reading_all(dict.items)
            __iter__, copy = _reading_all(dict.__iter__), _reading_all(lambda self: dict(dict.items(self)))

        loss_name = self.name
        try:
            jax.eval_shape(lambda o, t, h: self.per_example(o, t, Reading(h)), out, y, hp)
        except USED_AS_PYTHON_VALUE as err:
            names = [n for n in dict.fromkeys(read) if n in hp]
            if not names or _fails_with_values(self.per_example, out, y, hp):
                # (no hyperparameter read yet, or it fails with their values given as numbers too: its
                # outputs or targets went to numpy, or an `if`)
                raise TracedInPython(not_traceable("loss", loss_name, self.per_example, err)) from err
            raise TracedInPython(
                f"loss {loss_name!r} uses a hyperparameter as a Python value (in an `if`, float(), numpy, a shape; "
                f"{type(err).__name__}); it had read {names} when it did. Each member's values are traced, so "
                f"that a new value never recompiles: keep them in jnp, e.g. jnp.where(hp['gamma'] > 0.5, a, b) "
                f"instead of `a if hp['gamma'] > 0.5 else b`.") from err
        return dataclasses.replace(self, names=tuple(n for n in dict.fromkeys(read) if n in hp))


def not_traceable(what: str, name: str, fn: Any, err: Exception) -> str:
    """The message for a loss or metric of yours that hands its traced outputs or targets to numpy,
    scikit-learn or a Python `if` / float() (not a shape problem: advice on labels would mislead)."""
    while not hasattr(fn, "__code__") and callable(getattr(fn, "fn", None)):  # (in_target_units wraps a metric)
        fn = fn.fn
    code = getattr(fn, "__code__", None)
    where = f" at {code.co_filename.rsplit('/', 1)[-1]}:{code.co_firstlineno}" if code is not None else ""
    named = getattr(fn, "__name__", type(fn).__name__)
    return (f"{what} {name!r} (function {named}{where}) turns its traced outputs or "
            f"targets into Python values ({type(err).__name__}: {str(err).splitlines()[0]}). It runs traced inside the "
            f"compiled program, so write it with jax.numpy (import jax.numpy as jnp; jnp.mean(...), jnp.argmax(...), "
            f"jnp.where(...) instead of an `if`): numpy and scikit-learn functions (np.asarray, sklearn.metrics...), "
            f"float() and .item() cannot run there.")


def _fails_with_values(per_example: Callable, out, y, hp: dict) -> bool:
    """Whether a loss traced on shapes also fails where its hyperparameters are plain numbers (0):
    then its outputs or targets, not a hyperparameter, are what it used as a Python value."""
    values = {name: np.zeros(spec.shape, spec.dtype) for name, spec in hp.items()}
    try:
        jax.eval_shape(lambda o, t: per_example(o, t, values), out, y)
    except USED_AS_PYTHON_VALUE:
        return True
    except Exception:  # (another failure, which the checks after this one name)
        return False
    return False


class TracedInPython(ValueError):
    """A loss of yours used a member's (traced) hyperparameter as a Python value."""


def _takes_hp(fn: Callable) -> bool:
    """Whether a loss function of yours takes the member's hyperparameters: a third positional
    parameter (fn(outputs, targets, hp))."""
    try:
        parameters = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):  # (a builtin: two arguments)
        return False
    positional = [p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(positional) >= 3 and positional[2].default is inspect.Parameter.empty


def get_loss(loss: "str | Callable | Loss | None", task: str) -> Loss:
    """The training loss: a name from LOSSES (default cross_entropy or mse; "mse" on a classifier
    is CLASSIFICATION_LOSSES'), a vt Loss, or your own fn(outputs, targets) -> per-example loss (n,),
    or fn(outputs, targets, hp) reading the member's hyperparameters."""
    if isinstance(loss, Loss):
        return loss
    if loss is None:
        loss = DEFAULT_LOSS[task]
    if callable(loss):
        return Loss(getattr(loss, "__name__", "custom"), loss, takes_hp=_takes_hp(loss))
    if not isinstance(loss, str) or loss not in LOSSES:
        known = _loss_meant(loss, task) if isinstance(loss, str) else None
        hint = f" Did you mean loss={known!r}?" if known else ""
        raise ValueError(f"loss={loss!r} is unknown;{hint} choose from {sorted(LOSSES)} or pass a function "
                         f"fn(outputs, targets) -> per-example loss of shape (n,).")
    loss_task, fn = LOSSES[loss]
    if task == "classification" and loss in CLASSIFICATION_LOSSES:
        return Loss(loss, CLASSIFICATION_LOSSES[loss])
    if loss_task != task:
        options = sorted({n for n, (t, _) in LOSSES.items() if t == task} |
                         (set(CLASSIFICATION_LOSSES) if task == "classification" else set()))
        raise ValueError(f"loss={loss!r} is for {loss_task}, but the data is {task}; use one of {options}.")
    return Loss(loss, fn)


def training_loss(task: str, out: jax.Array, y: jax.Array, weights: jax.Array | None = None) -> jax.Array:
    """The task's default loss: mean cross-entropy (classification) or mean squared error."""
    return get_loss(None, task)(out, y, weights)
