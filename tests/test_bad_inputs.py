"""A catalogue of bad inputs: each raises a clear error before anything compiles.

The project's standard: name the argument (or column / key), show the value, say the fix or the
valid choices. Each case is (id, fn(tmp_path), exception type, expected): every str in expected
must appear in the message as it is, every compiled pattern must match it (re.search).

Nothing here trains: the engine's compiled entry points are replaced by a function that fails the
test, and each case must raise within a few seconds. Data are 40 rows.
"""

from __future__ import annotations

import functools
import json
import re
import time
import warnings

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import optax
import pytest
from flax import nnx
from scipy import stats
from sklearn.model_selection import LeaveOneOut

import vmaptune as vt
from vmaptune.checkpoint import RunMismatch
from vmaptune.metrics import TracedInPython
from vmaptune import cli, engine
from vmaptune.optim import TracedHyperparameterError

RNG = np.random.default_rng(0)
X = RNG.normal(size=(40, 3))
Y = np.arange(40) % 2  # two classes of 20
Y_REG = RNG.normal(size=40)
LR = vt.LogUniform(1e-3, 1e-1)
SPACE = vt.Space(learning_rate=LR)
SPACE_CONFIG = {"learning_rate": {"type": "LogUniform", "low": 1e-3, "high": 1e-1}}


def gelu(x):  # (a function of a user's own named as flax's)
    return nn.gelu(x, approximate=False)


class _Activated(nn.Module):
    activation: object = nn.relu

    @nn.compact
    def __call__(self, x):
        return nn.Dense(2)(self.activation(nn.Dense(4)(x)))


@functools.lru_cache(maxsize=None)
def tiny() -> vt.Dataset:
    """40 rows, 3 features, 2 classes: 24 train, 8 validation, 8 test rows."""
    return vt.Dataset.from_arrays(X, Y, "classification")


def predefined_split(fold):
    from sklearn.model_selection import PredefinedSplit

    return PredefinedSplit(fold)


def group_k_fold(k):
    from sklearn.model_selection import GroupKFold

    return GroupKFold(k)


def tune(space=SPACE, data=None, model=None, **kwargs):
    """vt.tune of a small MLP on the tiny data with a batch size that fits it, unless the case changes them."""
    kwargs.setdefault("batch_size", 8)
    return vt.tune(vt.MLP(hidden=1, units=4) if model is None else model, space, tiny() if data is None else data,
                   progress=False, **kwargs)


def write(tmp, name: str, text: str) -> str:
    path = tmp / name
    path.write_text(text)
    return str(path)


def csv(tmp, text_column: bool = False) -> str:
    """A 40-row CSV: features a, b (and a text column `color`), label y."""
    header = "a,b,color,y" if text_column else "a,b,y"
    rows = [f"{x[0]:.3f},{x[1]:.3f}," + (f"{'red' if i % 2 else 'blue'}," if text_column else "") + f"{i % 2}"
            for i, x in enumerate(X)]
    return write(tmp, "data.csv", "\n".join([header, *rows]) + "\n")


def config(tmp, **entries) -> dict:
    """A run config on the CSV data and the learning-rate space, with `entries` changed, read
    through a JSON file as `vmaptune run` reads it (None drops an entry)."""
    base = {"dataset": {"csv": csv(tmp), "target": "y", "task": "classification"}, "space": SPACE_CONFIG}
    base.update(entries)
    return cli.load_config(write(tmp, "run.json", json.dumps({k: v for k, v in base.items() if v is not None})))


def build(tmp, **entries):
    return cli.build(config(tmp, **entries))


def optuna_sampler(*args, **kwargs):
    pytest.importorskip("optuna")  # the optuna extra: skip where it is not installed
    return vt.OptunaSampler(*args, **kwargs)


class Net(nn.Module):
    width: int = 4

    @nn.compact
    def __call__(self, x):
        return nn.Dense(2)(nn.relu(nn.Dense(self.width)(x)))


class InitNamedField(nn.Module):  # a field named as vt.MLP's `init` hides nn.Module.init
    init: str = "he"

    @nn.compact
    def __call__(self, x):
        return nn.Dense(2)(x)


class ConvNet(nn.Module):  # takes images (n, height, width, channels), not flat rows
    @nn.compact
    def __call__(self, x):
        return nn.Dense(2)(nn.Conv(2, (3, 3))(x).reshape((x.shape[0], -1)))


class NormalisedOnlyInTraining(nn.Module):  # BatchNorm's statistics made only when training
    @nn.compact
    def __call__(self, x, train: bool = False):
        h = nn.Dense(4)(x)
        return nn.Dense(2)(nn.BatchNorm(use_running_average=False)(h) if train else h)


class NnxLayerMadeInCall(nnx.Module):  # no nnx.Param once built: a layer made anew at every step
    def __init__(self, *, rngs: nnx.Rngs):
        self.rngs = rngs

    def __call__(self, x):
        return nnx.Linear(x.shape[-1], 2, rngs=self.rngs)(x)


class NnxDropoutOfAnotherStream(nnx.Module):
    def __init__(self, *, rngs: nnx.Rngs):
        self.out, self.drop = nnx.Linear(3, 2, rngs=rngs), nnx.Dropout(0.2, rng_collection="noise", rngs=rngs)

    def __call__(self, x):
        return self.out(self.drop(x))


class NnxNet(nnx.Module):
    def __init__(self, *, rngs: nnx.Rngs):
        self.out = nnx.Linear(3, 2, rngs=rngs)

    def __call__(self, x):
        return self.out(x)


class LinenRateNeverUsed(nn.Module):  # a searched field the network forgot to apply
    rate: float = 0.0

    @nn.compact
    def __call__(self, x, train: bool = False):
        return nn.Dense(2)(nn.relu(nn.Dense(4)(x)))


class NormalisedWithoutTrainArgument(nn.Module):  # statistics that can never update
    @nn.compact
    def __call__(self, x):
        return nn.Dense(2)(nn.BatchNorm(use_running_average=True)(nn.Dense(4)(x)))


class NormalisedWithRunningAverageArgument(nn.Module):  # a mode argument vmaptune does not know
    @nn.compact
    def __call__(self, x, use_running_average: bool = True):
        return nn.Dense(2)(nn.BatchNorm(use_running_average=use_running_average)(nn.Dense(4)(x)))


class DropoutSwitchedByIsTrain(nn.Module):  # a switch vmaptune does not know: dropout never dropped
    @nn.compact
    def __call__(self, x, is_train: bool = False):
        return nn.Dense(2)(nn.Dropout(0.9)(nn.Dense(4)(x), deterministic=not is_train))


class NnxSwitchedByEvalMode(nnx.Module):
    def __init__(self, *, rngs: nnx.Rngs):
        self.out = nnx.Linear(3, 2, rngs=rngs)
        self.drop = nnx.Dropout(0.5, rngs=rngs)

    def __call__(self, x, eval_mode: bool):
        return self.out(self.drop(x, deterministic=eval_mode))


class NormalisedWhenMutable(nn.Module):  # flax's idiom: statistics update when they may (fine)
    @nn.compact
    def __call__(self, x):
        return nn.Dense(2)(nn.BatchNorm(use_running_average=not self.is_mutable_collection("batch_stats"))(
            nn.Dense(4)(x)))


class RateOnlyWithDropout(nn.Module):  # a field one structural group reads and another does not (fine)
    use_dropout: bool = False
    rate: float = 0.1

    @nn.compact
    def __call__(self, x, train: bool = False):
        h = nn.relu(nn.Dense(4)(x))
        if self.use_dropout:
            h = vt.nn.Dropout(self.rate)(h, deterministic=not train)
        return nn.Dense(2)(h)


class NnxRateNeverUsed(nnx.Module):
    def __init__(self, rate: float = 0.0, *, rngs: nnx.Rngs):
        self.out = nnx.Linear(3, 2, rngs=rngs)

    def __call__(self, x):
        return self.out(x)


def trained_model() -> vt.TrainedModel:
    """A TrainedModel of nothing (enough for save's checks of its path)."""
    return vt.TrainedModel(network=None, params={}, model_state={}, hp={}, hyperparameters={}, task="classification",
                           classes=np.arange(2), input_shape=(3,), input_dtype="float32")


CASES = [
    # -- data -----------------------------------------------------------------------------------------------
    ("data-X-1d", lambda t: vt.Dataset.from_arrays(X[:, 0], Y, "classification"), ValueError,
     ["X must be at least 2-D", re.compile(r"got shape \(40,\)"), "X.reshape(-1, 1)"]),
    ("data-X-nan", lambda t: vt.Dataset.from_arrays(np.where(np.arange(120).reshape(40, 3) == 7, np.nan, X), Y,
                                                     "classification"), ValueError,
     ["X has 1 NaN or infinite values", re.compile(r"the first at row 2, column 1 \(nan\)"), "impute or drop them"]),
    ("data-y-text-with-none", lambda t: vt.Dataset.from_arrays(
        X, np.asarray(["cat", "dog", None, "cat"] * 10, dtype=object), "classification"), ValueError,
     ["y has 10 missing labels (None or NaN), the first at row 2; drop those rows first"]),
    ("data-y-text-with-nan", lambda t: vt.Dataset.from_arrays(
        X, np.asarray(["cat", "dog", float("nan"), "cat"] * 10, dtype=object), "classification"), ValueError,
     ["y has 10 missing labels (None or NaN), the first at row 2", "y.astype(str) would make a class of them"]),
    ("data-X-nullable-int-with-na", lambda t: vt.Dataset.from_arrays(
        pd.DataFrame({"a": X[:, 0], "k": pd.array([1, None] + [2] * 38, dtype="Int64")}), Y, "classification"),
     ValueError, ["X's column(s) ['k'] have missing values", "fill them (e.g. X.fillna(X.mean()))"]),
    ("data-X-nullable-bool-with-na", lambda t: vt.Dataset.from_arrays(  # (it was called text: 'NAType')
        pd.DataFrame({"a": X[:, 0], "f": pd.array([True, None] + [False] * 38, dtype="boolean")}), Y, "classification"),
     ValueError, ["X's column(s) ['f'] have missing values", "yes / no columns with one of their values, "
                  "X.fillna({'f': False})) or drop those rows first"]),
    ("data-X-dates", lambda t: vt.Dataset.from_arrays(
        pd.DataFrame({"a": X[:, 0], "when": pd.date_range("2020", periods=40)}), Y, "classification"),
     TypeError, ["X's column(s) ['when'] hold dates; give numbers"]),
    ("data-X-dates-alone-in-a-time-zone", lambda t: vt.Dataset.from_arrays(  # (converted silently, or "text")
        pd.DataFrame({"when": pd.date_range("2020", periods=40, tz="UTC")}), Y, "classification"),
     TypeError, ["X's column(s) ['when'] hold dates; give numbers"]),
    ("data-X-time-spans", lambda t: vt.Dataset.from_arrays(  # (called text, and pandas.get_dummies advised)
        pd.DataFrame({"a": X[:, 0], "wait": pd.to_timedelta(np.arange(40), unit="D")}), Y, "classification"),
     TypeError, ["X's column(s) ['wait'] hold time spans (durations); give numbers", "X[c].dt.total_seconds()"]),
    ("data-X-time-spans-alone", lambda t: vt.Dataset.from_arrays(  # (converted to nanoseconds silently)
        pd.DataFrame({"wait": pd.to_timedelta(np.arange(40), unit="D")}), Y, "classification"),
     TypeError, ["X's column(s) ['wait'] hold time spans (durations)"]),
    ("data-X-text", lambda t: vt.Dataset.from_arrays(np.full((40, 3), "a"), Y, "classification"), TypeError,
     ["X must be numeric", "one_hot=True"]),
    ("data-X-dict", lambda t: vt.Dataset.from_arrays({"image": X.reshape(40, 3, 1), "extra": X[:, :1]}, Y,
                                                      "classification"), TypeError,
     ["X must be one array of rows, got dict of 2 inputs (image: (40, 3, 1), extra: (40, 1))",
      "np.concatenate([a.reshape(len(a), -1) for a in inputs], axis=1)", "inside the module's __call__"]),
    ("data-X-list-of-inputs", lambda t: vt.Dataset.from_arrays([X, X[:, :1]], Y, "classification"), TypeError,
     ["got list of 2 inputs (X[0]: (40, 3), X[1]: (40, 1))", "np.concatenate"]),
    ("data-frame-text-column", lambda t: vt.Dataset.from_arrays(
        __import__("pandas").DataFrame({"a": X[:, 0], "species": ["setosa", "virginica"] * 20}), Y, "classification"),
     TypeError, ["X's column(s) ['species'] hold text", "'setosa'", "pandas.get_dummies(X, columns=['species'])"]),
    ("data-y-one-hot", lambda t: vt.Dataset.from_arrays(X, np.eye(2)[Y], "classification"), ValueError,
     ["got shape (40, 2)", "It looks one-hot encoded: pass y.argmax(axis=1)"]),
    ("data-y-multi-label", lambda t: vt.Dataset.from_arrays(X, np.stack([Y, 1 - Y, Y], 1), "classification"),
     ValueError, ["got shape (40, 3)", "several labels per row (multi-label)", "one search per label column",
                  "task='regression' with standardize=False", "optax.sigmoid_binary_cross_entropy(out, y).mean(-1)"]),
    ("loss-returning-none", lambda t: tune(model=vt.MLP(loss=lambda o, y: None)), ValueError,
     ["loss '<lambda>' returns None for a batch of 2 (a `return` missing?); it must return one array: one loss per "
      "example, shape (2,)."]),
    ("space-name-alias", lambda t: tune(vt.Space(lr=LR)), ValueError,
     ["space has 'lr', which the model and optimizer do not read", "Did you mean 'learning_rate'?"]),
    # (Keras' and scikit-learn's words: beta_1 had no hint, beta1 and weight_init pointed at momentum, weight_decay)
    ("space-name-keras-beta", lambda t: tune(vt.Space(learning_rate=LR, beta_1=vt.Uniform(0.8, 0.95))), ValueError,
     ["space has 'beta_1'", "Did you mean 'b1'?"]),
    ("space-name-weight-init", lambda t: tune(vt.Space(learning_rate=LR, weight_init=vt.Choice(["he", "xavier"]))),
     ValueError, ["space has 'weight_init'", "Did you mean 'init'?"]),
    ("space-name-lr-decay", lambda t: tune(vt.Space(learning_rate=LR, lr_decay=vt.Uniform(0.5, 0.9))), ValueError,
     ["space has 'lr_decay'", "Did you mean 'decay_rate'?"]),
    ("space-name-keep-prob", lambda t: tune(vt.Space(learning_rate=LR, keep_prob=vt.Uniform(0.5, 0.9))), ValueError,
     ["space has 'keep_prob'", "Did you mean 'dropout'? It is the share dropped: dropout = 1 - keep_prob."]),
    ("space-name-decay", lambda t: tune(vt.Space(learning_rate=LR, decay=vt.Uniform(0.5, 0.9))), ValueError,
     ["space has 'decay'", "Did you mean 'decay_rate' (the learning rate's decay, under schedule='step' or "
      "'exponential') or 'weight_decay' (an L2 penalty)?"]),
    ("space-name-epochs", lambda t: tune(vt.Space(learning_rate=LR, epochs=vt.IntUniform(5, 50))), ValueError,
     ["space has 'epochs', which the model and optimizer do not read. Training length and search size are the "
      "search's, not a member's: vt.tune(epochs=...)", "vt.SuccessiveHalving / vt.Hyperband"]),
    ("data-X-empty", lambda t: vt.Dataset.from_arrays(np.zeros((0, 3)), np.zeros(0), "classification"), ValueError,
     ["X is empty", "(0, 3)", "at least one row"]),
    ("data-rows-mismatch", lambda t: vt.Dataset.from_arrays(X, Y[:30], "classification"), ValueError,
     [re.compile(r"X has 40 rows but y has 30; they must match")]),
    ("data-task-unknown", lambda t: vt.Dataset.from_arrays(X, Y, "classify"), ValueError,
     ["task must be one of", "'classification'", "'regression'", "got 'classify'"]),
    ("data-y-2d-for-classes", lambda t: vt.Dataset.from_arrays(X, np.stack([Y, Y], 1), "classification"),
     ValueError, ["y must be 1-D", "got shape (40, 2)"]),
    ("data-y-continuous-for-classes", lambda t: vt.Dataset.from_arrays(X, Y_REG, "classification"), ValueError,
     ["y holds non-integer numbers", "task='regression'"]),
    ("data-y-bfloat16-fractional-labels", lambda t: vt.Dataset.from_arrays(
        X, np.where(np.arange(40) == 7, 0.5, Y).astype(jnp.bfloat16), "classification"), ValueError,
     ["y holds non-integer numbers (e.g. [0.5])", "task='regression'"]),
    ("data-y-bfloat16-nan-label", lambda t: vt.Dataset.from_arrays(
        X, np.where(np.arange(40) == 3, np.nan, Y).astype(jnp.bfloat16), "classification"), ValueError,
     ["y has 1 NaN or infinite labels, the first at row 3"]),
    ("tune-predefined-split-over-x-hint", lambda t: tune(cv=predefined_split(np.where(np.arange(40) % 5 == 0, 0, -1))),
     ValueError, ["are outside the train and validation splits'", "The splitter is given those rows only (the test "
                  "split's left out)", "PredefinedSplit(test_fold[np.sort(data.pool_index)])"]),
    ("data-ragged-token-sequences", lambda t: vt.Dataset.from_arrays(
        [[1, 2, 3], [4, 5]] * 20, np.arange(40) % 2, "classification"), ValueError,
     ["X's rows are sequences of different lengths ([2, 3]...); pad them to one length", "an id of its own"]),
    ("data-ragged-token-arrays", lambda t: vt.Dataset.from_arrays(
        [np.arange(3), np.arange(2)] * 20, np.arange(40) % 2, "classification"), ValueError,
     ["X's rows are sequences of different lengths ([2, 3]...); pad them to one length", "list(r) + [0]"]),
    ("data-y-one-class", lambda t: vt.Dataset.from_arrays(X, np.zeros(40), "classification"), ValueError,
     ["y has a single class [0.0]", "at least 2"]),
    ("data-y-inf-regression", lambda t: vt.Dataset.from_arrays(X, np.where(np.arange(40) == 3, np.inf, Y_REG),
                                                                "regression"), ValueError,
     ["y has 1 NaN or infinite values", "row 3", "drop those rows"]),
    ("data-y-text-regression", lambda t: vt.Dataset.from_arrays(X, np.full(40, "a"), "regression"), TypeError,
     ["y must be numeric for regression", "task='classification'"]),
    ("data-validation-nan-regression", lambda t: vt.Dataset.from_arrays(
        X, Y_REG, "regression", validation=(X[:10], np.where(np.arange(10) == 2, np.nan, Y_REG[:10]))), ValueError,
     ["validation[1] (y_val) has 1 NaN or infinite values", "row 2", "drop those rows"]),
    ("data-test-inf-regression", lambda t: vt.Dataset.from_arrays(
        X, Y_REG, "regression", test=(X[:10], np.where(np.arange(10) == 0, -np.inf, Y_REG[:10]))), ValueError,
     ["test[1] (y_test) has 1 NaN or infinite values", "row 0"]),
    ("data-validation-text-regression", lambda t: vt.Dataset.from_arrays(
        X, Y_REG, "regression", validation=(X[:4], np.array(list("abcd")))), TypeError,
     ["validation[1] (y_val) must be numeric for regression", "task='classification'"]),
    ("data-validation-not-a-pair", lambda t: vt.Dataset.from_arrays(X, Y, "classification", validation=X),
     TypeError, ["validation must be a pair (X_val, y_val)", "got ndarray"]),
    ("data-validation-features", lambda t: vt.Dataset.from_arrays(X, Y, "classification",
                                                                  validation=(X[:10, :2], Y[:10])), ValueError,
     ["validation: X has examples of shape (2,), but X's are (3,)", "same features"]),
    ("data-validation-rows", lambda t: vt.Dataset.from_arrays(X, Y, "classification", validation=(X[:10], Y[:8])),
     ValueError, ["validation: X has 10 rows and y has shape (8,)", "y_val must be (10,)"]),
    ("data-validation-new-labels", lambda t: vt.Dataset.from_arrays(X, Y, "classification",
                                                                    validation=(X[:10], Y[:10] + 5)), ValueError,
     ["validation: y holds labels [5, 6]", "classes [0, 1]"]),
    ("data-test-missing-text-label", lambda t: vt.Dataset.from_arrays(
        X, np.array(["a", "b"], object)[Y], "classification", test=(X[:4], np.array(["a", None, "b", "a"], object))),
     ValueError, ["test: y_test has 1 missing labels (None or NaN), the first at row 1", "drop those rows from "
                  "test=(X_test, y_test) first"]),
    ("data-validation-nan-label", lambda t: vt.Dataset.from_arrays(
        X, Y, "classification", validation=(X[:3], np.array([0.0, np.nan, 1.0])), test_fraction=0.2),
     ValueError, ["validation: y_val has 1 missing labels (None or NaN), the first at row 1"]),
    ("data-test-features", lambda t: vt.Dataset.from_arrays(X, Y, "classification", test=(X[:10, :2], Y[:10])),
     ValueError, ["test: X has examples of shape (2,)", "test=(X_test, y_test)"]),
    ("data-test-not-a-pair", lambda t: vt.Dataset.from_arrays(X, Y, "classification", test=(X[:10],)), TypeError,
     ["test must be a pair (X_test, y_test)", "a tuple of 1"]),
    ("data-val-fraction", lambda t: vt.Dataset.from_arrays(X, Y, "classification", val_fraction=1.5), ValueError,
     ["val_fraction must be a number in (0, 1)", "got 1.5"]),
    ("data-fractions-leave-no-train", lambda t: vt.Dataset.from_arrays(X, Y, "classification", val_fraction=0.6,
                                                                       test_fraction=0.5), ValueError,
     ["val_fraction + test_fraction must be < 1", "0.6 + 0.5"]),
    ("data-feature-names", lambda t: vt.Dataset.from_arrays(X, Y, "classification", feature_names=["a"]),
     ValueError, ["feature_names has 1 names", "one name per column"]),
    ("data-seed-text", lambda t: vt.Dataset.from_arrays(X, Y, "classification", seed="x"), TypeError,
     ["seed must be an integer", "got 'x'", "seed=0"]),
    ("csv-missing-file", lambda t: vt.Dataset.from_csv(t / "nope.csv", "y", "classification"), FileNotFoundError,
     ["nope.csv", "does not exist", "CSV file with a header row"]),
    ("csv-missing-target", lambda t: vt.Dataset.from_csv(csv(t), "label", "classification"), ValueError,
     ["target='label' is not a column", "columns are ['a', 'b', 'y']"]),
    ("csv-text-feature", lambda t: vt.Dataset.from_csv(csv(t, text_column=True), "y", "classification"),
     ValueError, ["feature columns ['color']", "hold text", "one_hot=True"]),
    ("csv-empty-cell", lambda t: vt.Dataset.from_csv(write(t, "e.csv", "a,b,y\n" + "".join(
        f"{i},{'' if i == 3 else i},{i % 2}\n" for i in range(20))), "y", "classification"), ValueError,
     [re.compile(r"e.csv: column 'b' has 1 empty cell\(s\), the first in data row 3 \(counting from 0 below the "
                 r"header\); fill them")]),
    ("csv-empty-text-cell", lambda t: vt.Dataset.from_csv(write(t, "et.csv", "a,color,y\n" + "".join(
        f"{i},{'' if i == 4 else 'rb'[i % 2]},{i % 2}\n" for i in range(20))), "y", "classification", one_hot=True),
     ValueError,  # (one_hot made it a row of 0s in every color column, without a word)
     [re.compile(r"et.csv: column 'color' has 1 empty cell\(s\), the first in data row 4 \(counting from 0 below "
                 r"the header\); fill them \(with a value of their own, e.g. 'unknown'"),
      "pandas reads text such as 'NA', 'N/A' or 'null' as empty too"]),
    ("csv-empty-true-false-cell", lambda t: vt.Dataset.from_csv(write(t, "f.csv", "a,flag,y\n" + "".join(
        f"{i},{'' if i == 2 else i % 3 == 0},{i % 2}\n" for i in range(20))), "y", "classification"),
     ValueError,  # (read as objects for the empty cell, it was called text and one_hot=True advised)
     [re.compile(r"f.csv: column 'flag' has 1 empty cell\(s\), the first in data row 2 \(counting from 0 below the "
                 r"header\); fill them \(a yes / no column: with one of its values, e.g. True\)")]),
    ("csv-empty-zero-one-cell", lambda t: vt.Dataset.from_csv(write(t, "z.csv", "a,flag,y\n" + "".join(
        f"{i},{'' if i == 2 else int(i % 3 == 0)},{i % 2}\n" for i in range(20))), "y", "classification"),
     ValueError,  # (a 0/1 flag was advised "with the column's mean", which makes it 0.35)
     [re.compile(r"z.csv: column 'flag' has 1 empty cell\(s\), the first in data row 2 \(counting from 0 below the "
                 r"header\); fill them \(a yes / no column: with one of its values, e.g. 1\)")]),
    ("csv-infinite-cell", lambda t: vt.Dataset.from_csv(write(t, "i.csv", "city,income,age,y\n" + "".join(
        f"{'ab'[i % 2]},{i},{'-inf' if i == 7 else 20 + i},{i % 2}\n" for i in range(20))), "y", "classification",
        one_hot=True), ValueError,  # (named by the file's column, not by its place among the one-hot columns)
     [re.compile(r"i.csv: column 'age' has 1 infinite value\(s\) \(-inf\), the first in data row 7 \(counting from "
                 r"0 below the header\); replace them")]),
    ("csv-number-column-with-a-marker", lambda t: vt.Dataset.from_csv(write(t, "m.csv", "a,age,y\n" + "".join(
        f"{i},{'?' if i == 5 else 20 + i},{i % 2}\n" for i in range(20))), "y", "classification", one_hot=True),
     ValueError, [re.compile(r"m.csv: column 'age' holds numbers and 1 cell\(s\) of \['\?'\], a marker of missing "
                             r"values \(the first in data row 5\)")]),
    ("csv-target-a-number", lambda t: vt.Dataset.from_csv(csv(t), 3, "classification"), TypeError,
     ["target=3: name the label column (text)", "target=['price', 'rent']"]),
    ("npz-missing-file", lambda t: vt.Dataset.from_npz(t / "nope.npz", "classification"), FileNotFoundError,
     ["nope.npz", "does not exist", "np.savez"]),
    ("npz-missing-array", lambda t: (np.savez(t / "a.npz", X=X, y=Y),
                                     vt.Dataset.from_npz(t / "a.npz", "classification", y="labels")), ValueError,
     ["no array 'labels'", "it has ['X', 'y']", "X= and y="]),
    ("npz-text-labels-of-objects", lambda t: (np.savez(t / "o.npz", X=X, y=np.array(["a", "b"] * 20, dtype=object)),
                                               vt.Dataset.from_npz(t / "o.npz", "classification")), ValueError,
     ["o.npz: array 'y' holds Python objects (text labels from pandas' to_numpy() are dtype object)",
      "np.savez(path, y=y.astype(str))"]),
    ("load-dataset-unknown", lambda t: vt.load_dataset("mnist"), ValueError,
     ["unknown dataset 'mnist'", "'digits'", "vt.Dataset.from_arrays"]),
    # -- distributions and spaces -----------------------------------------------------------------------------
    ("uniform-low-above-high", lambda t: vt.Uniform(1.0, 0.5), ValueError,
     ["Uniform(low=1.0, high=0.5)", "low must be < high", "Swap them"]),
    ("uniform-one-value", lambda t: vt.Uniform(1.0, 1.0), ValueError, ["low must be < high", "vt.Fixed"]),
    ("uniform-text-bound", lambda t: vt.Uniform("a", 1.0), TypeError,
     ["Uniform(low='a', high=1.0)", "low must be a real number"]),
    ("uniform-infinite-bound", lambda t: vt.Uniform(0.0, float("inf")), ValueError,
     ["high must be finite", "got inf"]),
    ("uniform-unknown-argument", lambda t: vt.Uniform(0.0, 1.0, log=True), TypeError,
     ["Uniform: unknown argument log=True", "vt.LogUniform", "takes low, high"]),
    ("loguniform-zero", lambda t: vt.LogUniform(0.0, 1.0), ValueError,
     ["LogUniform(low=0.0, high=1.0)", "must be > 0", "vt.Uniform"]),
    ("loguniform-negative", lambda t: vt.LogUniform(-1.0, 1.0), ValueError, ["low=-1.0", "must be > 0"]),
    ("loguniform-missing-high", lambda t: vt.LogUniform(1e-3), TypeError,
     ["LogUniform: missing high", "vt.LogUniform(1e-4, 1e-1)"]),
    ("oneminusloguniform-outside-0-1", lambda t: vt.OneMinusLogUniform(0.5, 1.0), ValueError,
     ["OneMinusLogUniform(low=0.5, high=1.0)", "strictly inside (0, 1)", "vt.Uniform"]),
    ("intuniform-float-bound", lambda t: vt.IntUniform(1, 2.5), TypeError,
     ["IntUniform(low=1, high=2.5)", "high must be an integer"]),
    ("intuniform-reversed", lambda t: vt.IntUniform(5, 2), ValueError,
     ["IntUniform(low=5, high=2)", "low must be <= high", "Swap them"]),
    ("intuniform-beyond-int32", lambda t: vt.IntUniform(0, 2**40), ValueError,
     ["IntUniform(low=0, high=1099511627776)", "does not fit in int32", "2147483647"]),
    ("intuniform-range-beyond-int32", lambda t: vt.IntUniform(-1, 2**31 - 1), ValueError,  # (each draw failed in jax)
     ["IntUniform(low=-1, high=2147483647)", "holds 2147483649 integers, more than int32", "low=-1, high=2147483645"]),
    ("intuniform-negative-range-beyond-int32", lambda t: vt.IntUniform(-2**31, -1), ValueError,
     ["holds 2147483648 integers", "low=-2147483648, high=-2"]),
    ("fixed-beyond-int32", lambda t: vt.Fixed(2**40), ValueError,
     ["Fixed(1099511627776)", "does not fit in int32", "2147483647"]),
    ("uniform-beyond-float32", lambda t: vt.Uniform(0.0, 1e39), ValueError,
     ["high=1e+39 is beyond float32", "3.4e+38"]),
    ("intloguniform-zero", lambda t: vt.IntLogUniform(0, 10), ValueError,
     ["IntLogUniform(low=0, high=10)", "low must be >= 1", "vt.IntUniform"]),
    ("choice-empty", lambda t: vt.Choice([]), ValueError,
     ["Choice(options=[])", "at least one option", "vt.Choice(['relu', 'tanh'])"]),
    ("choice-string", lambda t: vt.Choice("relu"), TypeError,
     ["Choice(options='relu')", "options must be a list", "vt.Choice(['relu', 'tanh'])"]),
    ("choice-duplicates", lambda t: vt.Choice(["a", "a"]), ValueError, ["Choice(options=['a', 'a'])", "distinct"]),
    ("choice-bad-option", lambda t: vt.Choice([None]), TypeError, ["option None", "a string, a bool or a real number"]),
    ("choice-bool-and-its-number", lambda t: vt.Choice([True, 1]), ValueError,
     ["Choice(options=[True, 1]): options must be distinct (True == 1 and False == 0 in Python"]),
    ("choice-flag-among-numbers", lambda t: vt.Choice([False, 0.001]), ValueError,
     ["Choice(options=[False, 0.001]) mixes True / False with numbers", "vt.Choice([0.0, 0.001])"]),
    ("choice-numpy-flag-among-numbers", lambda t: vt.Choice([np.True_, 2]), ValueError,
     ["mixes True / False with numbers", "vt.Choice([1.0, 2])"]),
    ("fixed-numpy-nan", lambda t: vt.Fixed(np.float32("nan")), ValueError, ["Fixed(nan)", "must be finite"]),
    ("choice-numpy-inf", lambda t: vt.Choice([np.float64("inf"), 1.0]), ValueError, ["is not finite"]),
    ("choice-unknown-argument", lambda t: vt.Choice(["a", "b"], weights=[1, 2]), TypeError,
     ["Choice: unknown argument weights=[1, 2]", "takes options"]),
    ("fixed-nan", lambda t: vt.Fixed(float("nan")), ValueError, ["Fixed(nan)", "must be finite"]),
    ("fixed-list", lambda t: vt.Fixed([1, 2]), TypeError, ["Fixed([1, 2])", "a string or a real number"]),
    ("space-empty", lambda t: vt.Space(), ValueError,
     ["Space()", "at least one hyperparameter", "vt.LogUniform(1e-4, 1e-1)"]),
    ("space-not-a-distribution", lambda t: vt.Space(lr=[1, 2]), TypeError,
     ["lr=[1, 2] is not a distribution", "Use lr=vt.Choice([1, 2]) for those two values, or vt.IntUniform(1, 2) "
      "for the range."]),
    ("space-skopt-range", lambda t: vt.Space(lr=(1e-6, 0.1, "log-uniform")), TypeError,
     ["Use lr=vt.LogUniform(1e-06, 0.1)."]),
    # (scikit-learn's ways to say a range: the equivalent named, and a long array not printed whole)
    ("space-scipy-loguniform", lambda t: vt.Space(learning_rate=stats.loguniform(3e-4, 3e-2)), TypeError,
     ["is not a distribution. Use learning_rate=vt.LogUniform(0.0003, 0.03)."]),
    ("space-numpy-range", lambda t: vt.Space(n_units=np.arange(1, 100)), TypeError,
     ["n_units=array([ 1,  2..., 97, 98, 99]) is not a distribution. Use n_units=vt.IntUniform(1, 99)."]),
    ("space-bad-name", lambda t: vt.Space({"learning-rate": 0.1}), ValueError,
     ["'learning-rate' must be a Python identifier", "'learning_rate'"]),
    ("space-name-twice", lambda t: vt.Space({"a": 1}, a=2), ValueError, ["['a'] given twice"]),
    ("space-learning-rate-a-bool", lambda t: tune(vt.Space(learning_rate=vt.Fixed(True))), ValueError,
     ["learning_rate=Fixed(value=True) must be numeric"]),
    ("space-name-model-does-not-read", lambda t: tune(vt.Space(learnin_rate=LR)), ValueError,
     ["'learnin_rate'", "do not read", "Did you mean 'learning_rate'?"]),
    ("space-float-depth", lambda t: tune(vt.Space(n_hidden=vt.Uniform(1.0, 3.0))), ValueError,
     ["n_hidden must be an integer distribution", "vt.IntUniform", "Uniform(low=1.0, high=3.0)"]),
    ("space-dropout-range", lambda t: tune(vt.Space(dropout=vt.Uniform(0.0, 1.0))), ValueError,
     ["dropout=Uniform(low=0.0, high=1.0)", "[0, 1)", "vt.Uniform(0.0, 0.5)"]),
    ("space-dropout-text", lambda t: tune(vt.Space(dropout=vt.Fixed("0.1"))), ValueError,  # (a bare TypeError was)
     ["dropout=Fixed(value='0.1') must be numeric", "vt.Uniform(0.0, 0.5)"]),
    ("space-momentum-range", lambda t: tune(vt.Space(momentum=vt.Uniform(0.5, 1.5))), ValueError,
     ["momentum=Uniform(low=0.5, high=1.5) allows 1.5", "[0.0, 1.0)", "vt.OneMinusLogUniform"]),
    ("space-activation-unknown", lambda t: tune(vt.Space(activation=vt.Choice(["relu", "swish"]))), ValueError,
     ["activation options ['swish'] are unknown", "'gelu'"]),
    ("space-optimizer-unknown", lambda t: tune(vt.Space(optimizer=vt.Choice(["adam", "lion2"]))), ValueError,
     ["optimizer options ['lion2'] are unknown", "'adamw'"]),
    ("space-batch-size-above-rows", lambda t: tune(vt.Space(batch_size=vt.IntUniform(8, 100))), ValueError,
     ["batch_size=IntUniform(low=8, high=100) allows 100", "24 training rows", "<= 24"]),
    ("from-config-unknown-type", lambda t: vt.Space.from_config({"lr": {"type": "Gaussian", "low": 0, "high": 1}}),
     ValueError, ["space entry 'lr'", "unknown distribution type 'Gaussian'", "'LogUniform'", "'Uniform'"]),
    ("from-config-misspelt-type", lambda t: vt.Space.from_config({"lr": {"type": "LogUnifrm"}}), ValueError,
     ["'LogUnifrm'", "Did you mean 'LogUniform'?"]),
    ("from-config-no-type", lambda t: vt.Space.from_config({"lr": {"low": 0, "high": 1}}), ValueError,
     ["space entry 'lr'", "has no 'type'", "'type': 'LogUniform'"]),
    ("from-config-unknown-setting", lambda t: vt.Space.from_config({"lr": {"type": "Uniform", "low": 0, "hi": 1}}),
     ValueError, ["space entry 'lr'", "Uniform has no setting 'hi'", "Did you mean 'high'", "['low', 'high']"]),
    ("from-config-bad-bounds", lambda t: vt.Space.from_config({"lr": {"type": "LogUniform", "low": 0, "high": 1}}),
     ValueError, ["space entry 'lr'", "LogUniform(low=0, high=1)", "must be > 0"]),
    ("from-config-plain-value", lambda t: vt.Space.from_config({"lr": 0.1}), TypeError,
     ["space entry 'lr'", "got 0.1", "{'type': 'Fixed', 'value': 0.1}"]),
    ("from-config-not-a-dict", lambda t: vt.Space.from_config([1]), TypeError,
     ["Space.from_config: config must be a dict", "got list"]),
    # -- strategies -------------------------------------------------------------------------------------------
    ("random-population-zero", lambda t: vt.RandomSearch(population=0), ValueError,
     ["RandomSearch: population must be an integer >= 1", "got 0"]),
    ("random-population-negative", lambda t: vt.RandomSearch(population=-3), ValueError,
     ["population must be an integer >= 1", "got -3"]),
    ("random-population-float", lambda t: vt.RandomSearch(population=2.5), ValueError,
     ["population must be an integer >= 1", "got 2.5"]),
    ("random-rounds-zero", lambda t: vt.RandomSearch(rounds=0), ValueError,
     ["RandomSearch: rounds must be an integer >= 1", "got 0"]),
    ("random-misspelt-argument", lambda t: vt.RandomSearch(popluation=8), TypeError,
     ["RandomSearch: unknown argument popluation=8", "Did you mean 'population'", "takes population, rounds"]),
    ("grid-empty-values", lambda t: vt.GridSearch(values={"learning_rate": []}), ValueError,
     ["values['learning_rate'] is empty", "Give at least one value"]),
    ("grid-values-not-a-dict", lambda t: vt.GridSearch(values=[1, 2]), TypeError,
     ["values must be a dict name -> list of values", "got list", "values={'learning_rate'"]),
    ("grid-points-per-axis-zero", lambda t: vt.GridSearch(points_per_axis=0), ValueError,
     ["points_per_axis must be an integer >= 1", "got 0"]),
    ("grid-name-not-in-space", lambda t: vt.GridSearch(values={"lr": [0.1]}).init(SPACE), ValueError,
     ["values has ['lr']", "the space has ['learning_rate']"]),
    ("grid-value-outside-space", lambda t: vt.GridSearch(values={"learning_rate": [5.0]}).init(SPACE), ValueError,
     ["values['learning_rate'] contains 5.0", "outside [0.001, 0.1]", "widen the space"]),
    ("bohb-ask-without-max-epochs", lambda t: vt.BOHB().ask(vt.BOHB().init(SPACE, jax.random.key(0)),
                                                            jax.random.key(1)), ValueError,
     ["BOHB: max_epochs is needed for ask / tell", "E.g. BOHB(max_epochs=27, eta=3)"]),
    ("hyperband-eta-one", lambda t: vt.Hyperband(eta=1), ValueError,
     ["Hyperband: eta must be an integer >= 2", "eta=1", "try eta=3"]),
    ("hyperband-min-epochs-zero", lambda t: vt.Hyperband(min_epochs=0), ValueError,
     ["min_epochs must be an integer >= 1", "min_epochs=0"]),
    ("hyperband-single-rung", lambda t: vt.Hyperband(max_epochs=2, eta=3), ValueError,
     ["max_epochs=2", "single rung", "max_epochs >= eta * min_epochs = 3"]),
    ("hyperband-population", lambda t: vt.Hyperband(max_epochs=27, population=8), TypeError,
     ["Hyperband: unknown argument population=8", "vt.SuccessiveHalving"]),
    ("halving-eta-float", lambda t: vt.SuccessiveHalving(eta=1.5), ValueError,
     ["SuccessiveHalving: eta must be an integer >= 2", "eta=1.5"]),
    ("halving-population-below-eta", lambda t: vt.SuccessiveHalving(population=2, eta=3), ValueError,
     ["population=2 with eta=3", "population >= eta"]),
    ("halving-max-epochs-zero", lambda t: vt.SuccessiveHalving(max_epochs=0), ValueError,
     ["max_epochs must be an integer >= 1", "max_epochs=0"]),
    ("pbt-fraction", lambda t: vt.PBT(fraction=0.7), ValueError,
     ["PBT: fraction must be a number in (0, 0.5]", "fraction=0.7", "try fraction=0.25"]),
    ("pbt-interval-zero", lambda t: vt.PBT(interval=0), ValueError,
     ["interval must be an integer >= 1", "interval=0", "interval=2"]),
    ("pbt-factors-empty", lambda t: vt.PBT(factors=()), ValueError,
     ["factors must be a non-empty list of positive numbers", "factors=(0.8, 1.2)"]),
    ("pbt-resample-prob", lambda t: vt.PBT(resample_prob=2), ValueError,
     ["resample_prob must be a number in [0, 1]", "resample_prob=2"]),
    ("pbt-population-too-small", lambda t: vt.PBT(population=2), ValueError,
     ["population=2 with fraction=0.25 replaces no member", "population >= 4"]),
    ("pbt-explore-string", lambda t: vt.PBT(explore="learning_rate"), ValueError,
     ["explore must be a list of hyperparameter names", "explore='learning_rate'"]),
    ("pbt-explore-not-in-space", lambda t: vt.PBT(explore=("lr",)).init(SPACE), ValueError,
     ["explore names ['lr']", "it has ['learning_rate']"]),
    ("bayesopt-acquisition", lambda t: vt.BayesOpt(acquisition="expected_improvement"), ValueError,
     ["BayesOpt: acquisition must be one of 'ei', 'pi', 'ucb', 'thompson'", "'expected_improvement'"]),
    ("bayesopt-initial-design", lambda t: vt.BayesOpt(initial_design="grid"), ValueError,
     ["initial_design must be one of 'sobol', 'lhs', 'random'", "got 'grid'"]),
    ("bayesopt-xi-negative", lambda t: vt.BayesOpt(xi=-1), ValueError, ["xi must be a finite number >= 0", "-1"]),
    ("evolution-selection", lambda t: vt.Evolution(selection="roulette"), ValueError,
     ["selection must be one of ['tournament', 'truncation']", "'roulette'"]),
    ("evolution-elite", lambda t: vt.Evolution(population=4, elite=4), ValueError,
     ["elite must be < population", "elite=4", "Lower elite"]),
    ("evolution-sigma", lambda t: vt.Evolution(sigma=0), ValueError,
     ["sigma must be a finite number > 0", "sigma=0", "sigma=0.1"]),
    ("coarse-to-fine-margin", lambda t: vt.CoarseToFine(margin=0.5), ValueError,
     ["margin must be a number in (0, 0.5)", "margin=0.5", "Try margin=0.1"]),
    ("coarse-to-fine-top-k", lambda t: vt.CoarseToFine(population=4, top_k=5), ValueError,
     ["top_k must be <= population", "top_k=5"]),
    ("optuna-not-a-sampler", lambda t: optuna_sampler("tpe"), TypeError,
     ["sampler must be an Optuna sampler", "got 'tpe'", "TPESampler"]),
    ("optuna-rounds-zero", lambda t: optuna_sampler(lambda seed: None, rounds=0), ValueError,
     ["OptunaSampler: rounds must be an integer >= 1", "got 0"]),
    # -- vt.tune's arguments ----------------------------------------------------------------------------------
    ("tune-epochs-zero", lambda t: tune(epochs=0), ValueError, ["epochs must be an integer >= 1", "got 0"]),
    ("tune-batch-size-zero", lambda t: tune(batch_size=0), ValueError,
     ["batch_size must be an integer >= 1", "got 0"]),
    ("tune-batch-size-above-rows", lambda t: tune(batch_size=1000), ValueError,
     ["batch_size=1000", "24 training rows", "batch_size <= 24"]),
    ("tune-chunk-epochs-zero", lambda t: tune(chunk_epochs=0), ValueError,
     ["chunk_epochs must be an integer >= 1", "got 0"]),
    ("tune-bucketing-word", lambda t: tune(bucketing="yes"), ValueError,
     ["bucketing='yes'", "use 'auto'", "True (groups) or False"]),
    ("tune-cv-one", lambda t: tune(cv=1), ValueError,
     ["cv=1", "an integer >= 2", "None for the fixed validation split"]),
    ("tune-cv-above-class-size", lambda t: tune(cv=40), ValueError,
     ["cv=40", "the smallest class has 16", "cv <= 16"]),
    ("tune-conditional-batch-size", lambda t: tune(space=vt.Space(learning_rate=LR, optimizer=vt.Choice(["sgd", "adam"]),
                                                                  batch_size=vt.Choice([8, 16])).only_when(
        "batch_size", optimizer="adam")), ValueError,
     ["space.only_when('batch_size', ...): a member's batch_size sets its steps and cannot depend on another setting"]),
    ("tune-groups-without-cv", lambda t: tune(groups=np.arange(40) % 4), ValueError,
     ["groups= with cv=None: without cv= the search scores on the validation split, with no folds",
      "cv=GroupKFold(5)"]),
    ("tune-predefined-split-over-x", lambda t: tune(cv=predefined_split(np.arange(40) % 2)), ValueError,
     ["cv's fold 0", "are outside the train and validation splits'"]),
    ("tune-groups-with-integer-cv", lambda t: tune(cv=3, groups=np.arange(40) % 4), ValueError,
     ["groups= with cv=3", "an integer cv deals its own folds, ignoring groups", "cv=GroupKFold(3)"]),
    ("tune-group-splitter-without-groups", lambda t: tune(cv=group_k_fold(2)), ValueError,
     ["cv=GroupKFold(n_splits=2", "needs the rows' groups: vt.tune(..., cv=GroupKFold(", "groups=groups)"]),
    ("tune-groups-wrong-length", lambda t: tune(cv=group_k_fold(2), groups=np.arange(10)), ValueError,
     ["groups has shape (10,), but the data set came from 40 rows", "one group per row"]),
    ("tune-seeds-zero", lambda t: tune(seeds=0), ValueError, ["seeds=0", "an integer >= 1"]),
    ("tune-refit-negative", lambda t: tune(refit=-1), ValueError, ["refit=-1", "(0 = none; True is 1)"]),
    ("tune-seed-text", lambda t: tune(seed="a"), TypeError, ["seed must be an integer", "got 'a'"]),
    ("space-log-below-float32", lambda t: vt.LogUniform(1e-50, 1e-40), ValueError,
     ["LogUniform(low=1e-50, high=1e-40): low is below 1.18e-38, float32's smallest normal number"]),
    ("space-one-minus-rounds-to-one", lambda t: vt.OneMinusLogUniform(0.9, 1 - 1e-12), ValueError,
     ["high rounds to 1 in float32", "keep high <= 0.99999994"]),
    ("space-uniform-one-float32", lambda t: vt.Uniform(1.0, 1.0 + 1e-12), ValueError,
     ["low and high are the same number in float32", "use vt.Fixed for one value"]),
    ("space-uniform-width-past-float32", lambda t: vt.Uniform(-3e38, 3e38), ValueError,
     ["the range's width, 6e+38, is beyond float32"]),
    ("space-fixed-complex", lambda t: vt.Fixed(1j), TypeError, ["Fixed(1j): the value must be a string or a real"]),
    ("space-choice-complex", lambda t: vt.Choice([1, 2j]), TypeError, ["option 2j must be a string, a bool or a real number"]),
    ("space-choice-tuple", lambda t: vt.Choice([(8,), (16, 16)]), TypeError,
     ["option (8,) must be a string or a real number, not a tuple", "depth=vt.IntUniform(1, 3), width=vt.Choice",
      "vt.Choice(['narrow', 'wide'])"]),
    ("space-fixed-tuple", lambda t: vt.Fixed((8, 8)), TypeError,
     ["Fixed((8, 8)): the value must be a string or a real number, not a tuple", "leave it at the module's default",
      "vt.Linen(functools.partial(Net, widths=(8, 8)))"]),
    # (an activation searched as functions: shown by name, with the fix, not as a custom_jvp object's repr)
    ("space-choice-functions", lambda t: vt.Choice([nn.relu, nn.tanh]), TypeError,
     ["Choice(options=[nn.relu, nn.tanh]): option nn.relu is a function", "vt.Choice(['relu', 'tanh'])",
      "the field annotated str", "getattr(nn, self.activation)(x)"]),
    ("space-choice-own-functions", lambda t: vt.Choice([abs, nn.gelu]), TypeError,
     ["Choice(options=[abs, nn.gelu]): option abs is a function", "vt.Choice(['abs', 'gelu'])",
      "{'abs': abs, 'gelu': nn.gelu}[self.activation](x)"]),
    ("space-fixed-function", lambda t: vt.Fixed(nn.tanh), TypeError,
     ["Fixed(nn.tanh): the value must be a string or a real number, not a function", "leave it at the module's "
      "default", "vt.Linen(functools.partial(Net, activation=nn.tanh))", "vt.Fixed('tanh')",
      "getattr(nn, self.activation)(x)"]),
    # (names the user can copy: jax.nn's own where flax.linen lacks it, jnp.sin, nn.Dense; an alias once)
    ("space-choice-jax-nn-only-functions", lambda t: vt.Choice([jax.nn.mish, jax.nn.relu]), TypeError,
     ["Choice(options=[jax.nn.mish, nn.relu])", "vt.Choice(['mish', 'relu'])", "getattr(jax.nn, self.activation)(x)"]),
    ("space-fixed-jax-nn-only-function", lambda t: vt.Fixed(jax.nn.squareplus), TypeError,
     ["vt.Linen(functools.partial(Net, activation=jax.nn.squareplus))", "vt.Fixed('squareplus')",
      "getattr(jax.nn, self.activation)(x)"]),
    ("space-choice-own-function-named-as-flaxs", lambda t: vt.Choice([gelu, nn.gelu]), TypeError,
     ["Search them by name, vt.Choice(['gelu', 'nn_gelu']), with the field annotated str, and look it up inside the "
      "module: {'gelu': gelu, 'nn_gelu': nn.gelu}[self.activation](x)."]),  # (was called an alias: one dropped)
    ("space-fixed-nnx-class", lambda t: vt.Fixed(__import__("flax.nnx").nnx.Linear), TypeError,
     ["Fixed(nnx.Linear): the value must be a string or a real number, not a class",
      "vt.Nnx(functools.partial(Net, layer=nnx.Linear))"]),
    ("space-choice-an-alias-twice", lambda t: vt.Choice([nn.swish, nn.silu]), TypeError,
     ["Search them by name, vt.Fixed('silu') (an option is there twice: jax.nn's aliases, such as swish for silu, "
      "are one function)"]),
    ("space-choice-jnp-functions", lambda t: vt.Choice([jnp.tanh, jnp.sin]), TypeError,
     ["Choice(options=[nn.tanh, jnp.sin])", "{'tanh': nn.tanh, 'sin': jnp.sin}[self.activation](x)"]),
    ("space-choice-classes", lambda t: vt.Choice([nn.Dense, nn.Conv]), TypeError,
     ["option nn.Dense is a class", "vt.Choice(['Dense', 'Conv'])", "getattr(nn, self.layer)."]),
    ("space-choice-optax-functions", lambda t: vt.Choice([optax.adam, optax.sgd]), TypeError,
     ["Choice(options=[optax.adam, optax.sgd])", "An optimizer is not a field of the module: search the built-in "
      "optimizer by name, optimizer=vt.Choice(['adam', 'sgd']), or make your own", "vt.tune(..., optimizer="]),
    ("space-fixed-optax-function", lambda t: vt.Fixed(optax.lion), TypeError,
     ["Fixed(optax.lion): the value must be a string or a real number, not a function. An optimizer is not a field "
      "of the module: make your own from each member's hyperparameters"]),
    # (a lambda's or partial's repr is no code; a layer made is an object, not a function)
    ("space-fixed-lambda", lambda t: vt.Fixed(lambda x: x), TypeError,
     ["vt.Linen(functools.partial(Net, activation=your_function))."]),
    ("space-fixed-partial", lambda t: vt.Fixed(functools.partial(nn.leaky_relu, negative_slope=0.2)), TypeError,
     ["vt.Linen(functools.partial(Net, activation=your_function))."]),
    ("space-choice-layers-made", lambda t: vt.Choice([nn.Dense(8), nn.Dense(16)]), TypeError,
     ["Choice(options=[Dense(...), Dense(...)]): option Dense(...) is an object;", "vt.Choice(['your_layer1', "
      "'your_layer2'])", "{'your_layer1': your_layer1, 'your_layer2': your_layer2}[self.layer]."]),
    ("tune-strategy-class", lambda t: tune(strategy=vt.Hyperband), TypeError,
     ["strategy=Hyperband is the class; give a strategy made from it, e.g. strategy=vt.Hyperband(...)"]),
    ("search-cv-strategy-class", lambda t: vt.PopulationSearchCV(vt.MLPClassifier(epochs=2), {"learning_rate": [0.1]},
                                                                 strategy=vt.RandomSearch, cv=2).fit(X, Y), TypeError,
     ["strategy=RandomSearch is the class"]),
    ("space-positional-distribution", lambda t: vt.Space(vt.Uniform(0, 1)), TypeError,
     ["Space(Uniform(low=0.0, high=1.0)): name each hyperparameter", "or give a dict of name -> distribution"]),
    ("space-sample-seed-for-key", lambda t: SPACE.sample(0, 2), TypeError,
     ["Space.sample(key, n): key must be a JAX random key, e.g. jax.random.key(0), got 0"]),
    ("load-dataset-list", lambda t: vt.load_dataset(["iris"]), ValueError, ["unknown dataset ['iris']"]),
    ("load-dataset-unknown-argument", lambda t: vt.load_dataset("iris", bogus=1), TypeError,
     ["load_dataset: unknown argument(s) ['bogus']", "val_fraction"]),
    ("csv-unknown-split-argument", lambda t: vt.Dataset.from_csv(csv(t), "y", "classification",
                                                                  validation_fraction=0.3), TypeError,
     ["vt.Dataset.from_csv: unknown argument validation_fraction=0.3", "Did you mean 'val_fraction'",
      "vt.Dataset.from_csv takes path, target, task, one_hot, weight, validation, test, val_fraction"]),
    ("csv-feature-names", lambda t: vt.Dataset.from_csv(csv(t), "y", "classification", feature_names=["a", "b"]),
     TypeError, ["vt.Dataset.from_csv: unknown argument feature_names=['a', 'b']",
                 "from_csv names the features by the file's header row"]),
    ("npz-unknown-split-argument", lambda t: (np.savez(t / "s.npz", X=X, y=Y), vt.Dataset.from_npz(
        t / "s.npz", "classification", validation_fraction=0.3)), TypeError,
     ["vt.Dataset.from_npz: unknown argument validation_fraction=0.3", "Did you mean 'val_fraction'",
      "vt.Dataset.from_npz takes path, task, X, y, validation, test, val_fraction"]),
    ("npz-target-keyword", lambda t: (np.savez(t / "s.npz", X=X, y=Y), vt.Dataset.from_npz(
        t / "s.npz", "classification", target="y")), TypeError,  # (from_csv's word; it was told "Did you mean 'test'")
     ["vt.Dataset.from_npz: unknown argument target='y'. from_npz names the arrays, not a column: y='name of the "
      "labels array'"]),
    ("npz-random-state-keyword", lambda t: (np.savez(t / "s.npz", X=X, y=Y), vt.Dataset.from_npz(
        t / "s.npz", "classification", random_state=0)), TypeError,
     ["vt.Dataset.from_npz: unknown argument random_state=0. The split's seed is seed=, e.g. seed=0."]),
    ("csv-y-keyword", lambda t: vt.Dataset.from_csv(csv(t), "y", "classification", y="y"), TypeError,
     ["vt.Dataset.from_csv: unknown argument y='y'. from_csv takes the label column as target='label'"]),
    ("csv-misspelt-array-keyword", lambda t: vt.Dataset.from_csv(csv(t), "y", "classification",
                                                                  sample_weights=np.ones(40)), TypeError,
     ["vt.Dataset.from_csv: unknown argument sample_weights=<ndarray of shape (40,)>. Did you mean 'sample_weight'"]),
    ("csv-misspelt-pair-keyword", lambda t: vt.Dataset.from_csv(csv(t), "y", "classification",
                                                                 validation_data=(X, Y)), TypeError,
     ["vt.Dataset.from_csv: unknown argument validation_data=(<ndarray of shape (40, 3)>, <ndarray of shape (40,)>)"]),
    ("data-X-sparse", lambda t: vt.Dataset.from_arrays(__import__("scipy.sparse").sparse.csr_matrix(X), Y,
                                                        "classification"), TypeError,
     ["X is a scipy sparse matrix of shape (40, 3); give its dense array (X.toarray())"]),
    ("data-X-complex", lambda t: vt.Dataset.from_arrays(X.astype(complex), Y, "classification"), TypeError,
     ["X holds complex numbers", "np.concatenate([X.real, X.imag], axis=1)"]),
    ("data-y-no-targets", lambda t: vt.Dataset.from_arrays(X, np.zeros((40, 0)), "regression"), ValueError,
     ["y has shape (40, 0): no targets in its rows"]),
    ("trained-model-load-missing", lambda t: vt.TrainedModel.load(t / "none"), FileNotFoundError,
     ["none does not exist; give the directory model.save(dir) wrote"]),
    ("tune-progress-text", lambda t: vt.tune(vt.MLP(hidden=1, units=4), SPACE, tiny(), batch_size=8, progress="no"), TypeError, ["progress='no': give True or False"]),
    ("tune-shared-order-text", lambda t: tune(shared_order="false"), TypeError,
     ["shared_order='false': give True or False"]),
    ("tune-run-dir-refit-of-a-lambda-factory",
     lambda t: tune(model=vt.Linen(lambda features=4: Net()), run_dir=str(t / "run"), refit=1), TypeError,
     ["run_dir=", "refit=1) saves the refit's trained models, and Linen(<lambda>): the model cannot be pickled",
      "define it at the top level of a module"]),
    ("nnx-layer-made-in-call", lambda t: tune(model=vt.Nnx(NnxLayerMadeInCall)), ValueError,
     ["vt.Nnx(NnxLayerMadeInCall) holds no parameters once built (no nnx.Param in it after __init__), so no member "
      "would train", "Build the layers in __init__ with the rngs it is given"]),
    ("linen-field-hides-a-module-method", lambda t: vt.Linen(InitNamedField), TypeError,
     ["vt.Linen(InitNamedField): its field 'init' takes the name of flax's own nn.Module.init", "rename the field "
      "(e.g. init_scheme), and the space's name with it"]),
    ("linen-factory-field-hides-a-module-method", lambda t: tune(model=vt.Linen(
        functools.partial(InitNamedField, init="he"))), TypeError, ["its field 'init' takes the name of flax's own"]),
    ("linen-variable-made-only-in-training", lambda t: tune(model=vt.Linen(NormalisedOnlyInTraining)), ValueError,
     ["ScopeCollectionNotFound", "a variable its initialisation did not make", "Create every variable in both modes"]),
    ("linen-searched-field-never-used", lambda t: tune(vt.Space(learning_rate=LR, rate=vt.Uniform(0.0, 0.5)),
                                                        model=vt.Linen(LinenRateNeverUsed)), ValueError,
     ["space searches rate=Uniform(low=0.0, high=0.5), a field of vt.Linen(LinenRateNeverUsed) that the module never "
      "uses", "every value trains alike", "Use self.rate in the module", "or drop 'rate' from the space"]),
    ("linen-batchnorm-without-train-argument", lambda t: tune(model=vt.Linen(NormalisedWithoutTrainArgument)),
     ValueError, ["vt.Linen(NormalisedWithoutTrainArgument)'s BatchNorm statistics do not change when it "
                  "trains", "a __call__ argument named train / training / is_training / deterministic",
                  "use_running_average=not train"]),
    ("linen-batchnorm-unknown-mode-argument", lambda t: tune(model=vt.Linen(NormalisedWithRunningAverageArgument)),
     ValueError, ["vt.Linen(NormalisedWithRunningAverageArgument)'s BatchNorm statistics do not change"]),
    ("linen-unknown-training-switch", lambda t: tune(model=vt.Linen(DropoutSwitchedByIsTrain)), TypeError,
     ["DropoutSwitchedByIsTrain.__call__ takes is_train=False as its switch between training and evaluation, a name "
      "vmaptune does not know", "so is_train would keep its default in every step (dropout never dropping",
      "Name it: train_switch='is_train' (train_switch='not is_train' for one True to evaluate), or rename it to "
      "train", "train_switch=None when is_train is an option of the module's own"]),
    ("nnx-unknown-training-switch", lambda t: tune(model=vt.Nnx(NnxSwitchedByEvalMode)), TypeError,
     ["NnxSwitchedByEvalMode.__call__ takes eval_mode: bool as its switch", "deterministic for its inverse",
      "Name it: train_switch='not eval_mode' (True to evaluate; train_switch='eval_mode' for one True to train)"]),
    ("nnx-searched-field-never-used", lambda t: tune(vt.Space(learning_rate=LR, rate=vt.Uniform(0.0, 0.5)),
                                                      model=vt.Nnx(NnxRateNeverUsed)), ValueError,
     ["space searches rate=Uniform(low=0.0, high=0.5), a field of vt.Nnx(NnxRateNeverUsed) that the module never "
      "uses"]),
    ("nnx-another-random-stream", lambda t: tune(model=vt.Nnx(NnxDropoutOfAnotherStream)), ValueError,
     ["vt.Nnx(NnxDropoutOfAnotherStream) fails when built: KeyError", "one random stream, 'dropout'"]),
    ("tune-even-batches-text", lambda t: tune(even_batches="yes"), TypeError,
     ["even_batches='yes': give True or False"]),
    ("tune-resume-without-run-dir", lambda t: tune(resume=True), ValueError,
     ["resume=True needs run_dir=, the directory of the run to continue", "nothing to resume"]),
    ("data-standardize-text", lambda t: vt.Dataset.from_arrays(X, Y, "classification", standardize="false"),
     TypeError, ["standardize='false': give True or False"]),
    ("early-stopping-restore-text", lambda t: vt.EarlyStopping(restore_best_weights="no"), TypeError,
     ["EarlyStopping(restore_best_weights='no'): give True or False"]),
    ("tune-seed-negative", lambda t: tune(seed=-1, cv=2), ValueError,
     ["seed=-1 must be from 0 to 2**63 - 1", "e.g. seed=0"]),
    ("tune-seed-past-a-c-long", lambda t: tune(seed=2**70), ValueError, ["seed=1180591620717411303424 must be from 0"]),
    ("tune-epochs-past-int32", lambda t: tune(epochs=10**12), ValueError,
     ["epochs=1000000000000 is past the largest count the compiled programs hold, 2**31 - 1"]),
    ("tune-steps-past-int32", lambda t: tune(epochs=10**9, batch_size=1), ValueError,
     ["epochs=1000000000 of up to 32 steps (batches of 1 of 32 rows)", "give epochs <= 67108863"]),
    ("tune-roc-auc-on-a-test-split-of-one-class", lambda t: tune(
        data=vt.Dataset.from_arrays(X, Y, "classification", test=(X[:4], np.ones(4, int))), metric="roc_auc", refit=1),
     ValueError, ["metric='roc_auc' is undefined on the test split: its 4 rows are all of one class", "refit=0"]),
    ("tune-roc-auc-ovr-on-a-validation-split-of-one-class", lambda t: tune(
        data=vt.Dataset.from_arrays(X, Y, "classification", validation=(X[:4], np.ones(4, int))),
        metric="roc_auc_ovr", batch_size=4),
     ValueError, ["metric='roc_auc_ovr' is undefined on the validation split: they are all of one class",
                  "Give a validation split that holds more than one class"]),
    # every member scored 0.0 on LeaveOneOut's folds of one row, and the first was best without a word
    ("tune-r2-on-folds-of-one-row", lambda t: tune(
        data=vt.Dataset.from_arrays(X[:12], X[:12, 0], "regression"), metric="r2", cv=LeaveOneOut(), batch_size=4),
     ValueError, ["metric='r2' is undefined on fold 0's 1 held-out row (as are", "Use metric='neg_mse'"]),
    ("tune-r2-on-a-validation-split-of-one-row", lambda t: tune(
        data=vt.Dataset.from_arrays(X[:12], X[:12, 0], "regression", validation=(X[12:13], X[12:13, 0])),
        metric="r2", batch_size=4),
     ValueError, ["metric='r2' is undefined on the validation split's 1 row", "a validation split of at least 2 rows"]),
    ("tune-r2-on-a-test-split-of-one-row", lambda t: tune(
        data=vt.Dataset.from_arrays(X[:12], X[:12, 0], "regression", test=(X[12:13], X[12:13, 0])),
        metric="r2", batch_size=4, refit=1),
     ValueError, ["metric='r2' is undefined on the test split's 1 row", "metric='neg_mse' (or refit=0)"]),
    ("data-seed-negative", lambda t: vt.Dataset.from_arrays(X, Y, "classification", seed=-3), ValueError,
     ["seed=-3 must be from 0 to 2**63 - 1 (it fixes the validation / test split)"]),
    # the dict's value won: set_params(learning_rate=...) and the searches changed nothing that trained
    # PBT's candidates change values as they train: best_estimator_ (refit with best_params_) trained other ones
    ("search-cv-pbt", lambda t: vt.PopulationSearchCV(vt.MLPClassifier(epochs=2), {"learning_rate": [0.01, 0.1]},
                                                      strategy=vt.PBT(population=4), cv=2).fit(X, Y), ValueError,
     ["PopulationSearchCV(strategy=PBT(...)): it changes a candidate's values while it trains",
      "Use vt.tune(model, space, data, vt.PBT(...), refit=1)"]),
    # None was dropped: the network fell back to vt.MLP's defaults (128 units), not the estimator's 100
    # numbers in a category column were standardised as quantities (zip codes), where the estimators refuse them
    ("data-categorical-numbers", lambda t: vt.Dataset.from_arrays(
        pd.DataFrame({"a": X[:, 0], "zip": pd.Categorical(np.where(Y, 10115, 20095))}), Y, "classification"),
     TypeError, ["X's column(s) ['zip'] are categorical (pandas' category dtype): their values are codes",
                 "pandas.get_dummies(X, columns=['zip'])"]),
    ("estimator-text-column", lambda t: vt.MLPClassifier(epochs=1).fit(
        pd.DataFrame({"a": X[:, 0], "city": pd.Categorical(np.where(Y, "u", "v"))}), Y), ValueError,
     ["MLPClassifier: X's columns ['city'] hold text or categories, not numbers",
      "make_column_transformer((OneHotEncoder(), ['city'])"]),
    ("estimator-hyperparameter-none", lambda t: vt.MLPClassifier(n_units=None, epochs=1).fit(X, Y), ValueError,
     ["MLPClassifier(n_units=None): give a value (the default is 100)"]),
    ("search-cv-scipy-zero-width", lambda t: vt.PopulationSearchCV(
        vt.MLPClassifier(epochs=1), {"dropout": stats.uniform(0.2, 0)}).fit(X, Y), ValueError,
     ["param_distributions['dropout']: scipy.stats.uniform(0.2, 0) spans nan..nan, not a range of values",
      "one value in a list ('dropout': [value])"]),
    ("search-cv-scipy-rv-discrete", lambda t: vt.PopulationSearchCV(
        vt.MLPClassifier(epochs=1), {"n_units": stats.rv_discrete(values=([2, 8], [.5, .5]))}
    ).fit(X, Y), ValueError, ["param_distributions['n_units']: a scipy.stats.rv_discrete has no vmaptune equivalent"]),
    ("estimator-multilabel-y", lambda t: vt.MLPClassifier(epochs=1).fit(X, np.c_[Y, 1 - Y]), ValueError,
     ["MLPClassifier takes one label per row; y has shape (40, 2)", "MultiOutputClassifier"]),
    ("network-hyperparameters-shadow-a-parameter",
     lambda t: vt.NetworkClassifier(vt.MLP(), {"n_units": 8, "learning_rate": 1e-5}, epochs=1).fit(X, Y), ValueError,
     ["NetworkClassifier: hyperparameters={'n_units': 8, 'learning_rate': 1e-05} sets ['learning_rate'], which is the "
      "estimator's own parameter: give learning_rate=1e-05 as a parameter"]),
    ("network-hyperparameter-a-function",  # (the estimator's "give one string or number" hid Fixed's fix)
     lambda t: vt.NetworkClassifier(vt.MLP(), {"activation": __import__("flax.linen").linen.tanh}, epochs=1).fit(
         X, Y), TypeError,
     ["NetworkClassifier(hyperparameters={'activation': nn.tanh}): a function, but each value here is one string or "
      "number: give one of the names it takes, ['elu', 'gelu', 'identity', 'leaky_relu', 'logistic', 'relu'"]),
    ("network-optimizer-an-optax-function",  # (was told hyperparameters={'optimizer': ...}, a field of the module)
     lambda t: vt.NetworkClassifier(vt.Linen(_Activated), optimizer=optax.adam, epochs=1).fit(X, Y), TypeError,
     ["NetworkClassifier(optimizer=optax.adam): a function of optax's; the estimators take the optimizer by name, "
      "optimizer='adam', and learning_rate as a number."]),
    ("estimator-optimizer-made",  # (the optax object's repr, and advice to search it with PopulationSearchCV)
     lambda t: vt.MLPClassifier(optimizer=optax.adam(1e-3), epochs=1).fit(X, Y), TypeError,
     ["MLPClassifier(optimizer=<an optax optimizer>): the estimators take the optimizer by name, one of ['adagrad', "
      "'adam', 'adamw', 'momentum', 'nesterov', 'rmsprop', 'sgd'], with learning_rate (and momentum, weight_decay) as "
      "numbers: optimizer='adam', learning_rate=1e-3."]),
    ("space-choice-flaxs-function-then-one-of-yours-named-alike", lambda t: vt.Choice([nn.gelu, gelu]), TypeError,
     ["vt.Choice(['gelu', 'gelu_2']), with the field annotated str, and look it up inside the module: "
      "{'gelu': nn.gelu, 'gelu_2': gelu}[self.activation](x)."]),  # (was one option: yours replaced flax's)
    ("space-choice-one-function-twice", lambda t: vt.Choice([nn.relu, nn.relu, nn.tanh]), TypeError,
     ["vt.Choice(['relu', 'tanh']) (an option is there twice"]),
    ("space-choice-a-name-beside-its-function", lambda t: vt.Choice(["relu", nn.relu]), TypeError,
     ["Search them by name, vt.Fixed('relu') (an option is there twice"]),
    ("csv-misspelt-long-tuple-keyword", lambda t: vt.Dataset.from_csv(csv(t), "y", "classification",
                                                                       validation_data=tuple(range(10000))), TypeError,
     ["unknown argument validation_data=(0, 1, 2, 3, 4, 5, ...). Did you mean 'validation'"]),
    ("network-hyperparameter-a-function-of-a-linen-module",
     lambda t: vt.NetworkClassifier(vt.Linen(_Activated), {"activation": nn.tanh}, epochs=1).fit(X, Y), TypeError,
     ["NetworkClassifier(hyperparameters={'activation': nn.tanh}): a function, but each hyperparameter here is one "
      "string or number. Make the module with it: model=vt.Linen(functools.partial(_Activated, activation=nn.tanh)); "
      "or give its name, {'activation': 'tanh'}, with the field annotated str and looked up inside the module: "
      "getattr(nn, self.activation)(x)."]),
    ("estimator-random-state-text", lambda t: vt.MLPClassifier(random_state="x").fit(X, Y), ValueError,
     ["random_state='x': give None, an integer or a np.random.RandomState"]),
    ("tune-early-stopping-int", lambda t: tune(early_stopping=5), TypeError,
     ["early_stopping must be vt.EarlyStopping(patience=...)", "got 5"]),
    ("tune-strategy-string", lambda t: tune(strategy="random"), TypeError,
     ["strategy must be a vt strategy", "vt.RandomSearch(population=64)", "got 'random'"]),
    ("tune-metric-unknown", lambda t: tune(metric="f1"), ValueError,
     ["metric='f1' is unknown", "Did you mean metric='f1_macro'? (f1_macro averages the F1 of every class; "
      "scikit-learn's 'f1' on two classes is class 1's alone", "'accuracy'"]),
    ("tune-metric-keras-loss", lambda t: tune(metric="val_loss"), ValueError,
     ["metric='val_loss' is unknown", "Did you mean metric='log_loss'?", "is minimised"]),
    ("tune-metric-sklearn-name", lambda t: tune(data=vt.Dataset.from_arrays(X, Y_REG, "regression"), metric="neg_mean_squared_error"), ValueError,
     ["metric='neg_mean_squared_error' is unknown", "Did you mean metric='neg_mse'?", "For regression"]),
    ("tune-metric-upper-case", lambda t: tune(metric="ACCURACY"), ValueError,
     ["metric='ACCURACY' is unknown", "Did you mean metric='accuracy'?"]),
    ("tune-keras-mode", lambda t: tune(mode="min"), TypeError,
     ["vt.tune: unknown argument mode='min'", "the metric sets the direction", "vt.tune takes model, space"]),
    ("run-dir-with-brackets", lambda t: tune(run_dir=str(t / "sweep[1]")), ValueError,
     ["run_dir=", "holds '[' and ']', which the checkpoint library", "choose a path without '[', ']', '\\\\'"]),
    ("tune-loss-on-tune", lambda t: tune(loss="huber"), TypeError,
     ["unknown argument loss='huber'", "A loss goes on the model: vt.Linen(Net, loss=...)"]),
    ("tune-learning-rate-on-tune", lambda t: tune(lr=0.1), TypeError,
     ["unknown argument lr=0.1", "Hyperparameters go in the space", "vt.Fixed(value)"]),
    ("tune-ray-time-budget", lambda t: tune(time_budget_s=60), TypeError,
     ["unknown argument time_budget_s=60", "Did you mean time_budget=?", "run_dir= a later call resumes it"]),
    ("tune-time-budget-text", lambda t: tune(time_budget="soon"), ValueError,
     ["time_budget='soon'", "give seconds (3600) or a duration such as '90s', '30min', '2h'"]),
    ("tune-time-budget-zero", lambda t: tune(time_budget=0), ValueError,
     ["time_budget=0", "a positive number of seconds", "leave it out (None) for no limit"]),
    ("tune-argument-typo", lambda t: tune(epoch=3), TypeError,
     ["unknown argument epoch=3", "Did you mean 'epochs' for 'epoch'?"]),
    ("tune-missing-data", lambda t: vt.tune(vt.MLP(), SPACE), TypeError, ["vt.tune: missing data", "e.g. vt.tune("]),
    ("tune-metric-other-task", lambda t: tune(metric="r2"), ValueError,
     ["metric='r2' is for regression", "the data is classification", "'accuracy'"]),
    ("tune-loss-unknown", lambda t: tune(model=vt.MLP(loss="hinge")), ValueError,
     ["loss='hinge' is unknown", "'cross_entropy'"]),
    ("tune-loss-keras-name", lambda t: tune(model=vt.MLP(loss="categorical_crossentropy")), ValueError,
     ["loss='categorical_crossentropy' is unknown; Did you mean loss='cross_entropy'? choose from"]),
    ("tune-loss-pytorch-name", lambda t: tune(model=vt.Linen(nn.Dense, loss="NLLLoss")), ValueError,
     ["loss='NLLLoss' is unknown; Did you mean loss='cross_entropy'?"]),
    ("tune-loss-of-the-other-task", lambda t: tune(model=vt.MLP(loss="huber_loss")), ValueError,
     ["loss='huber_loss' is unknown; choose from"]),  # (a classifier: no regression loss offered)
    ("tune-loss-another-error", lambda t: tune(model=vt.MLP(loss="mape")), ValueError,
     ["loss='mape' is unknown; choose from"]),  # (not mae: another error)
    ("linen-remat-traces-the-mode", lambda t: tune(model=vt.Linen(nn.remat(DropoutWithAnotherSwitch))), ValueError,
     ["vt.Linen(CheckpointDropoutWithAnotherSwitch) uses a traced value as a Python value", "it reads no traced "
      "hyperparameter", "every argument is traced, its mode keyword too", "apply the transform to the layers inside "
      "your module instead"]),
    ("loss-reading-hp-that-fails", lambda t: tune(SPACE.replace(delta=vt.LogUniform(0.1, 1.0)), model=vt.MLP(
        loss=lambda o, y, hp: optax.huber_loss(o, jax.nn.one_hot(y, 2), hp["delta"]).mean(-1))), ValueError,
     ["loss '<lambda>' fails on outputs (2, 2) and targets (2,) (TypeError: huber_loss() takes from 1 to 2 positional "
      "arguments but 3 were given)"]),
    ("loss-walking-hp-with-a-misspelt-space-name", lambda t: tune(
        SPACE.replace(w=vt.Uniform(0.5, 2.0), learnig_rate=vt.LogUniform(1e-3, 1e-1)),
        model=vt.MLP(loss=lambda o, y, hp: jax.tree.map(lambda v: v * 1.0, hp)["w"] * optax.softmax_cross_entropy(
            o, jax.nn.one_hot(y, 2)))), ValueError,
     ["space has 'learnig_rate', which the model and optimizer do not read. Did you mean 'learning_rate'?"]),
    ("loss-with-aux", lambda t: tune(model=vt.MLP(loss=lambda o, y: (optax.softmax_cross_entropy_with_integer_labels(
        o, y), {"wrong": (o.argmax(-1) != y)}))), ValueError,
     ["loss '<lambda>' returns a tuple ((2,), {'wrong': (2,)}) for a batch of 2; it must return one array: one loss per example, "
      "shape (2,). A (value, aux) pair as for jax.value_and_grad(has_aux=True) is not taken",
      "give what aux measured as a metric of its own (vt.tune(..., metric=...))"]),
    ("metric-with-aux", lambda t: tune(metric=vt.Metric("acc_and_out", "classification", lambda o, y: (
        jnp.mean(o.argmax(-1) == y), o))), ValueError,
     ["metric 'acc_and_out' returns a tuple", "one array: one value for the whole batch (a scalar)"]),
    # (numpy or scikit-learn in a metric or loss: the fix is jnp, not the label or one-hot advice of a shape error)
    ("metric-with-sklearn", lambda t: tune(metric=vt.Metric("kappa", "classification", lambda o, y: __import__(
        "sklearn.metrics").metrics.cohen_kappa_score(y, o.argmax(-1)))), ValueError,
     [re.compile(r"metric 'kappa' \(function <lambda> at test_bad_inputs.py:\d+\) turns its traced outputs or "
                 r"targets into Python values \(TracerArrayConversionError"),
      "write it with jax.numpy (import jax.numpy as jnp; jnp.mean(...)", "scikit-learn functions",
      re.compile(r"^(?!.*integer class labels)(?!.*one_hot)", re.S)]),
    ("loss-with-numpy", lambda t: tune(model=vt.MLP(loss=lambda o, y: np.abs(np.asarray(o[:, 1]) - y))), ValueError,
     ["loss '<lambda>' (function <lambda> at test_bad_inputs.py:", "TracerArrayConversionError",
      "write it with jax.numpy", re.compile(r"^(?!.*integer class labels)(?!.*one_hot)", re.S)]),
    ("loss-of-hp-with-numpy", lambda t: tune(model=vt.MLP(loss=lambda o, y, hp: np.abs(np.asarray(o[:, 1]) - y))),
     TracedInPython, ["turns its traced outputs or targets into Python values", "TracerArrayConversionError",
                  "write it with jax.numpy", re.compile(r"^(?!.*it had read \[\])", re.S)]),
    ("loss-reading-hp-then-numpy", lambda t: tune(model=vt.MLP(loss=lambda o, y, hp: hp["learning_rate"] * np.abs(
        np.asarray(o[:, 1]) - y))), TracedInPython, ["turns its traced outputs or targets into Python values"]),
    ("metric-with-float", lambda t: tune(metric=vt.Metric("acc", "classification", lambda o, y: float(jnp.mean(
        o.argmax(-1) == y)))), ValueError,
     ["metric 'acc' (function <lambda>", "ConcretizationTypeError", "float() and .item() cannot run there"]),
    ("loss-of-integers", lambda t: tune(model=vt.MLP(loss=lambda o, y: (o.argmax(-1) != y).astype(jnp.int32))),
     ValueError, ["loss '<lambda>' returns int32 losses; training needs float losses that change with the model's "
                  "outputs", "score the 0/1 error as the metric (metric='accuracy'"]),
    ("loss-without-gradient", lambda t: tune(model=vt.MLP(loss=lambda o, y: (o.argmax(-1) != y).astype(jnp.float32))),
     ValueError, ["loss '<lambda>' has a zero gradient with respect to the model's outputs (probed on 24 training "
                  "rows at zero and random outputs, with the space's low ends and its high ends, a Choice's first "
                  "and last options): training would "
                  "never change the weights", "built on argmax, comparisons"]),
    ("tune-model-string", lambda t: tune(model="mlp"), TypeError,
     ["model must be a vt.MLP(), vt.Linen(YourModule) or vt.Nnx(YourModule)", "got 'mlp'"]),
    ("tune-space-dict", lambda t: tune({"learning_rate": 0.1}), TypeError, ["space must be a vt.Space", "got dict"]),
    ("tune-data-tuple", lambda t: tune(data=(X, Y)), TypeError,
     ["data must be a vt.Dataset", "vt.Dataset.from_arrays", "got tuple"]),
    ("tune-hyperband-budget-above-epochs", lambda t: tune(strategy=vt.Hyperband(max_epochs=27), epochs=5),
     ValueError, ["max_epochs=27 but vt.tune(epochs=5)", "Use epochs=27"]),
    ("tune-pbt-interval-above-epochs", lambda t: tune(strategy=vt.PBT(interval=10), epochs=5), ValueError,
     ["interval=10 with epochs=5", "interval < epochs"]),
    # -- models -----------------------------------------------------------------------------------------------
    ("mlp-unknown-argument", lambda t: vt.MLP(layers=3), TypeError,
     ["MLP: unknown argument layers=3", "hidden=", "n_hidden"]),
    ("mlp-dropout-text", lambda t: vt.MLP(dropout="a"), TypeError,
     ["MLP(dropout='a')", "dropout must be a number", "dropout=0.1"]),
    ("mlp-dropout-one", lambda t: vt.MLP(dropout=1.0), ValueError, ["MLP(dropout=1.0)", "[0, 1)"]),
    ("mlp-activation", lambda t: vt.MLP(activation="relu6"), ValueError, ["MLP(activation='relu6')", "'relu'"]),
    ("mlp-units-zero", lambda t: vt.MLP(units=0), ValueError, ["MLP(units=0)", "units must be an integer >= 1"]),
    ("mlp-image-data", lambda t: tune(data=vt.Dataset.from_arrays(np.stack([X[:, :2], X[:, 1:]], 1), Y,
                                                                  "classification")), ValueError,
     ["vt.MLP reads flat rows", "shape (2, 2)", "flatten X to (n, 4)"]),
    ("linen-not-callable", lambda t: vt.Linen(3), TypeError, ["Linen(module=3)", "give the module class"]),
    ("linen-built-module", lambda t: vt.Linen(Net()), TypeError,
     ["Linen(module=Net(...))", "give the module class, vt.Linen(Net)", "vt.Fixed"]),
    ("linen-static-unknown", lambda t: vt.Linen(Net, static=("depth",)), ValueError,
     ["Linen(static=['depth'])", "['depth'] are not fields of Net", "its fields are ['width']"]),
    ("linen-unknown-argument", lambda t: vt.Linen(Net, statics=("width",)), TypeError,
     ["Linen: unknown argument statics=('width',)", "Did you mean 'static'"]),
    ("linen-output-width", lambda t: tune(model=vt.Linen(Net), data=vt.Dataset.from_arrays(X, np.arange(40) % 3,
                                                                                           "classification")),
     ValueError, ["output for a batch of 2 has shape (2, 2)", "(2, 3)", "nn.Dense(3)"]),
    ("linen-nnx-class", lambda t: vt.Linen(NnxNet), TypeError,
     ["vt.Linen(NnxNet): NnxNet is a flax.nnx Module", "use vt.Nnx(NnxNet)"]),
    ("nnx-linen-class", lambda t: vt.Nnx(Net), TypeError, ["vt.Nnx(Net): Net is a flax.linen Module", "use vt.Linen(Net)"]),
    ("linen-plain-class", lambda t: vt.Linen(dict), TypeError,
     ["vt.Linen(dict): dict is a class, but not a flax.linen.Module", "needs a flax.linen.Module class"]),
    ("linen-function", lambda t: tune(model=vt.Linen(lambda x: x)), ValueError,
     ["vt.Linen(<lambda>): vt.Linen needs a flax.linen.Module class; got a function", "field(s) ['x']",
      "Pass the module class (vt.Linen(MyModule))"]),
    ("linen-flat-rows-into-conv", lambda t: tune(model=vt.Linen(ConvNet)), ValueError,
     ["vt.Linen(ConvNet) fails when initialised (module.init) on an input batch of shape (1, 3), dtype float32",
      "ValueError: ", "reshape X to it", "(n, height, width, channels) for images"]),
    ("optimizer-python-float", lambda t: tune(optimizer=lambda hp: optax.sgd(float(hp["learning_rate"]))),
     TracedHyperparameterError,
     ["optimizer= (<lambda>) uses a hyperparameter as a Python value", "traced arrays, one per member",
      "pass them to optax as they are", "do not call float() / int() / bool() / np.asarray() on them"]),
    ("optimizer-optax-function-itself", lambda t: tune(optimizer=optax.adamw), TypeError,
     ["optimizer=optax.adamw is optax's own function, which takes optax's arguments, not hp",
      "optimizer=lambda hp: optax.adamw(hp['learning_rate'])", "optimizer='adam'"]),
    ("optimizer-optax-function-in-a-partial", lambda t: tune(optimizer=functools.partial(optax.adamw, b1=0.8)),
     TypeError, ["optimizer=functools.partial(optax.adamw, ...) is optax's own function",
                 "optimizer=lambda hp: optax.adamw(hp['learning_rate'], ...) (... : your other arguments)"]),
    ("optimizer-optax-chain-itself", lambda t: tune(optimizer=optax.chain), TypeError,
     ["optimizer=optax.chain is optax's own function", "optimizer=lambda hp: optax.adam(hp['learning_rate'])"]),
    ("optimizer-numpy-value", lambda t: tune(optimizer=lambda hp: optax.sgd(np.asarray(hp["learning_rate"]))),
     TracedHyperparameterError,
     ["optimizer= (<lambda>) uses a hyperparameter as a Python value (TracerArrayConversionError",
      "pass them to optax as they are"]),
    ("optimizer-optax-schedule-checks-in-python", lambda t: tune(
        space=SPACE.replace(decay=vt.Uniform(0.5, 0.9)),
        optimizer=lambda hp: optax.sgd(optax.exponential_decay(hp["learning_rate"], 10, hp["decay"]))),
     TracedHyperparameterError,
     ["optax's schedules check some arguments in Python", "give those a plain number",
      "search the built-in schedule names instead"]),
    ("space-batch-norm-on-the-mlp", lambda t: tune(space=SPACE.replace(batch_norm=vt.Choice(["on", "off"]))),
     ValueError, ["space has 'batch_norm', which the model and optimizer do not read",
                  "MLP has no normalisation layers to switch", "nn.BatchNorm", "vt.Linen"]),
    ("space-loss-is-the-model-s", lambda t: tune(space=SPACE.replace(loss=vt.Choice(["cross_entropy", "mse"]))),
     ValueError, ["space has 'loss', which the model and optimizer do not read",
                  "The training loss is the model's, one per search: MLP(loss='mse')", "one search per loss"]),
    ("estimator-fit-keras-arguments", lambda t: vt.MLPRegressor().fit(np.zeros((8, 2)), np.zeros(8), epochs=100),
     TypeError, ["MLPRegressor.fit(X, y, epochs=...): fit takes X and y only",
                 "it is the estimator's parameter: MLPRegressor(epochs=100).fit(X, y)"]),
    ("estimator-fit-validation-data", lambda t: vt.MLPClassifier().fit(np.zeros((8, 2)), np.zeros(8),
                                                                        validation_data=None), TypeError,
     ["MLPClassifier.fit(X, y, validation_data=...)", "early_stopping=True, validation_fraction=0.1"]),
    ("estimator-fit-sample-weight-shape", lambda t: vt.MLPClassifier().fit(np.zeros((8, 2)), np.arange(8) % 2,
                                                                            sample_weight=np.ones(5)), ValueError,
     ["sample_weight has shape (5,); give one weight per row of X, shape (8,)"]),
    ("data-sample-weight-negative", lambda t: vt.Dataset.from_arrays(X, Y, "classification",
                                                                      sample_weight=np.r_[np.ones(39), -1.0]),
     ValueError, ["sample_weight must be finite and >= 0; row 39 has -1.0 (1 such rows)"]),
    ("data-sample-weight-complex", lambda t: vt.Dataset.from_arrays(X, Y, "classification",
                                                                     sample_weight=np.ones(40) * (1 + 1j)),
     TypeError, ["sample_weight must be real numbers, one per row of X; it is complex", "np.abs(w) or w.real"]),
    ("data-sample-weight-zero", lambda t: vt.Dataset.from_arrays(X, Y, "classification", sample_weight=np.zeros(40)),
     ValueError, ["sample_weight: every row's weight is zero, so nothing would be learned"]),
    ("estimator-model-attribute", lambda t: vt.MLPClassifier().model, AttributeError,
     ["MLPClassifier has no attribute 'model': the fitted network is `model_`"]),
    ("estimator-sklearn-coefs", lambda t: vt.MLPRegressor().coefs_, AttributeError,
     ["'MLPRegressor' object has no attribute 'coefs_' (scikit-learn's MLPs have it)", "model_.variables['params']"]),
    ("estimator-sklearn-validation-scores", lambda t: vt.MLPClassifier().validation_scores_, AttributeError,
     ["no attribute 'validation_scores_'", "best_epoch_ is the epoch early stopping kept"]),
    ("early-stopping-keras-mode", lambda t: vt.EarlyStopping(monitor="val_loss", mode="min"), TypeError,
     ["EarlyStopping: unknown argument mode='min'", "there is no mode to give"]),
    ("early-stopping-keras-monitor", lambda t: vt.EarlyStopping(monitor="val_mse"), ValueError,
     ["EarlyStopping(monitor='val_mse')", "Keras' 'val_loss' is 'loss' here", "its 'loss' is 'train_loss'"]),
    ("estimator-alpha", lambda t: vt.MLPClassifier(alpha=1e-4), TypeError,
     ["alpha is scikit-learn's name; vmaptune's is weight_decay, on another scale", "alpha / batch_size",
      "about weight_decay=5e-7"]),
    ("save-into-a-file", lambda t: trained_model().save(write(t, "f", "x")), FileExistsError,
     [re.compile(r"model.save\('.*f'\): .*f is a file; save writes a directory"), "Give a directory path"]),
    ("metric-task", lambda t: vt.Metric("f1", "multi", lambda out, y: 0.0), ValueError,
     ["Metric(task='multi')", "'classification' or 'regression'"]),
    ("metric-greater-is-better-text", lambda t: vt.Metric("err", "classification", lambda out, y: 0.0,
                                                          greater_is_better="False"), TypeError,
     ["Metric('err', greater_is_better='False')", "give True (higher is better", "or False (lower is better"]),
    ("metric-name-a-number", lambda t: vt.Metric(123, "classification", lambda out, y: 0.0), TypeError,
     ["Metric(name=123): name must be a non-empty string"]),
    # -- run configs (vmaptune run) ---------------------------------------------------------------------------
    ("config-out-a-number", lambda t: config(t, out=5), ValueError,
     ["out = 5: give the run directory as text", 'out = "runs/my_search"']),
    ("config-out-empty", lambda t: config(t, out=""), ValueError,  # (an empty out ran in runs/<config name>)
     ["out = '': give the run directory as text", "or leave out out for its default"]),
    ("config-model-a-name", lambda t: build(t, model="mlp"), ValueError,
     ["model = 'mlp': give a table of vt.MLP's settings", "model = {hidden = 2, units = 128}", "vt.tune in Python"]),
    ("csv-header-only", lambda t: vt.Dataset.from_csv(write(t, "h.csv", "a,b,y\n"), target="y", task="classification"),
     ValueError, ["h.csv has a header row (['a', 'b', 'y']) but no rows of data under it"]),
    ("config-missing-file", lambda t: cli.load_config(str(t / "none.toml")), FileNotFoundError,
     ["none.toml", "does not exist"]),
    ("config-no-dataset", lambda t: cli.load_config(write(t, "c.toml", '[space.learning_rate]\ntype = "LogUniform"\n'
                                                                      'low = 0.001\nhigh = 0.1\n')), ValueError,
     ["c.toml", "the config needs a `dataset` entry"]),
    ("config-no-space", lambda t: config(t, space=None), ValueError, ["run.json", "the config needs a `space` entry"]),
    ("config-unknown-strategy", lambda t: build(t, strategy={"name": "Random"}), ValueError,
     ["strategy name 'Random' is unknown", "'RandomSearch'", "'Hyperband'"]),
    ("config-strategy-unknown-setting", lambda t: build(t, strategy={"name": "RandomSearch", "pop": 8}), TypeError,
     ["RandomSearch: unknown argument pop=8", "takes population, rounds"]),
    ("config-strategy-bad-value", lambda t: build(t, strategy={"name": "BayesOpt", "acquisition": "EI"}),
     ValueError, ["acquisition must be one of 'ei'", "got 'EI'"]),
    ("config-space-unknown-type", lambda t: build(t, space={"lr": {"type": "Gauss"}}), ValueError,
     ["space entry 'lr'", "unknown distribution type 'Gauss'", "'Uniform'"]),
    ("config-space-plain-value", lambda t: cli.build(cli.load_config(write(
        t, "c.toml", f'dataset = {{csv = "{csv(t)}", target = "y", task = "classification"}}\n'
                     '[space]\nlearning_rate = 0.1\n'))), TypeError,
     ["space entry 'learning_rate'", "{'type': 'Fixed', 'value': 0.1}"]),
    ("config-model-unknown-setting", lambda t: build(t, model={"layers": 3}), TypeError,
     ["MLP: unknown argument layers=3", "hidden="]),
    ("config-dataset-unknown", lambda t: build(t, dataset="mnist"), ValueError,
     ["unknown dataset 'mnist'", "'iris'"]),
    ("config-dataset-table", lambda t: build(t, dataset={"file": "x.csv"}), ValueError,
     ["dataset must be a built-in name (dataset = \"digits\"", "or {csv=..., target=..., task=...}",
      "{'file': 'x.csv'}"]),
    ("config-csv-target", lambda t: build(t, dataset={"csv": csv(t), "target": "label", "task": "classification"}),
     ValueError, ["target='label' is not a column", "['a', 'b', 'y']"]),
    ("config-unknown-key", lambda t: cli.load_config(write(t, "c.toml", 'dataset = "iris"\nepochz = 3\n')), ValueError,
     ["c.toml: unknown keys ['epochz']", "Did you mean 'epochz' -> 'epochs'?", "The keys are"]),
    ("config-bad-toml", lambda t: cli.load_config(write(t, "c.toml", 'dataset = iris\n')), ValueError,
     ["c.toml is not valid TOML", "line 1"]),
    ("config-bad-json", lambda t: cli.load_config(write(t, "c.json", '{"dataset": }')), ValueError,
     ["c.json is not valid JSON"]),
    ("config-csv-no-target", lambda t: build(t, dataset={"csv": csv(t)}), ValueError,
     ["a csv dataset needs ['target', 'task'] too", 'target = "label"']),
    ("config-early-stopping-typo", lambda t: build(t, early_stopping={"patiense": 3}), ValueError,
     ["early_stopping = {'patiense': 3}", "['patiense'] are not among them", "patience = 5"]),
    # -- run directories and checkpoints ----------------------------------------------------------------------
    ("run-dir-is-a-file", lambda t: tune(run_dir=write(t, "f", "x")), ValueError,
     [re.compile(r"run_dir='.*f' \(--out\) is a file"), "give a directory path"]),
    ("run-dir-under-a-file", lambda t: tune(run_dir=write(t, "f", "x") + "/run"), ValueError,
     ["cannot be written", "choose a directory you can write to"]),
    ("run-dir-holds-a-run", lambda t: tune(run_dir=finished_run_dir(t)), FileExistsError,
     ["already holds a run", "resume=True", "overwrite=True", "choose another run_dir"]),
    ("run-dir-resume-and-overwrite", lambda t: tune(run_dir=str(t / "r"), resume=True, overwrite=True), ValueError,
     ["resume=True and overwrite=True contradict each other", "pass one of them"]),
    ("run-dir-not-a-path", lambda t: tune(run_dir=3), TypeError, ["run_dir=3: give a directory path"]),
    ("max-memory-text", lambda t: tune(max_memory="lots"), ValueError,
     ["max_memory='lots'", "max_memory='2GB'"]),
    ("max-memory-two-points", lambda t: tune(max_memory="1.5.2GB"), ValueError,
     ["max_memory='1.5.2GB': give a positive number of bytes", "max_memory='2GB'"]),
    ("max-memory-under-a-byte", lambda t: tune(max_memory=0.5), ValueError,
     ["max_memory=0.5: give a positive number of bytes"]),
    ("max-memory-past-float", lambda t: tune(max_memory="9" * 400 + "GB"), ValueError,
     ["give a positive number of bytes"]),
    ("checkpoint-of-another-run", lambda t: tune(run_dir=stale_checkpoint(t), resume=True), RunMismatch,
     ["cannot resume the run in", "version: saved 0.0.1", "overwrite=True (--overwrite)"]),
]


def finished_run_dir(tmp) -> str:
    """A directory holding a (tiny, fake) finished run's results."""
    run_dir = tmp / "done"
    run_dir.mkdir()
    (run_dir / "results.npz").write_bytes(b"")
    return str(run_dir)


def stale_checkpoint(tmp) -> str:
    """A run directory whose checkpoint was written by another run (another version, other settings)."""
    from vmaptune.checkpoint import Checkpoints, run_spec

    run_dir = str(tmp / "stale")
    spec = run_spec(space=SPACE, data=tiny(), model=vt.MLP(hidden=1, units=4), strategy=vt.RandomSearch(),
                    settings={}, version="0.0.1")
    checkpoints = Checkpoints(run_dir, spec)
    checkpoints.save({"records": [], "strategy_state": None, "round": None}, {}, round=0, epochs_done=0)
    checkpoints.close()  # saves are asynchronous: wait for the commit
    return run_dir

#: Seconds one case may take: every check runs before anything compiles, so a case that takes
#: longer is doing work it should not (the first ones also pay for starting JAX's backend).
CASE_SECONDS = 5.0


def _no_training(*args, **kwargs):
    raise AssertionError("a bad input reached the compiled training program; it must be rejected before")


@pytest.fixture(autouse=True)
def nothing_compiles(monkeypatch):
    """The engine's compiled entry points fail the test if a case gets that far."""
    for name in ("init_population", "_init", "train_chunk", "evaluate_population", "write_hyperparameters"):
        monkeypatch.setattr(engine, name, _no_training, raising=False)


def test_fields_some_groups_read_and_statistics_updated_when_mutable_are_not_refused():
    """The checks for a searched field the module never uses, and for BatchNorm statistics that never
    update, trace one member: a rate read only where use_dropout=True (another group), and flax's
    is_mutable_collection idiom (no mode argument, statistics updated in training), pass them."""
    from vmaptune.program import build_program

    space = vt.Space(learning_rate=LR, use_dropout=vt.Choice([False, True]), rate=vt.Uniform(0.1, 0.5))
    build_program(vt.Linen(RateOnlyWithDropout), space, tiny(), batch_size=8)
    build_program(vt.Linen(RateOnlyWithDropout), space.only_when("rate", use_dropout=True), tiny(), batch_size=8)
    build_program(vt.Linen(NormalisedWhenMutable), SPACE, tiny(), batch_size=8)


class DropoutWithAnotherSwitch(nn.Module):  # train is the switch; return_hidden is the module's own
    @nn.compact
    def __call__(self, x, train: bool = False, return_hidden: bool = False, eval_steps: int = 3):
        hidden = nn.Dropout(0.5)(nn.Dense(4)(x), deterministic=not train)
        return hidden if return_hidden else nn.Dense(2)(hidden)


def test_true_false_keywords_beside_a_known_switch_or_named_otherwise_are_not_refused():
    from vmaptune.models.fields import mode_keyword
    from vmaptune.program import build_program

    build_program(vt.Linen(DropoutWithAnotherSwitch), SPACE, tiny(), batch_size=8)
    assert mode_keyword(DropoutWithAnotherSwitch.__call__) == ("train", False)

    def call(self, x, return_hidden: bool = False, eval_steps: int = 3, pretrained: bool = True,
             constrained: bool = False, use_retrieval: bool = False, return_eval_stats: bool = False,
             infer_shape: bool = True):  # (a module's own options: no switch's whole name)
        return x

    assert mode_keyword(call) is None

    def optional(self, x, is_train: bool | None = None):  # (a switch all the same)
        return x

    def camel(self, x, isTraining: "Union[bool, None]" = None):  # noqa: F821, N803 (text: `from __future__ ...`)
        return x

    def phase(self, x, phase_train=jnp.bool_(False)):
        return x

    for call, shown in ((optional, "is_train=None"), (camel, "isTraining=None"), (phase, "phase_train=Array")):
        with pytest.raises(TypeError, match=rf"takes {shown}.* as its switch between training and evaluation"):
            mode_keyword(call)


def pairwise_ranking(outputs, labels):  # (flat unless a batch holds two classes: a sorted data set's first rows do not)
    score = outputs[:, 1] - outputs[:, 0]
    apart = (labels[:, None] > labels[None, :]).astype(score.dtype)
    return jnp.mean(apart * jax.nn.softplus(score[None, :] - score[:, None]), axis=1)


def tukey(outputs, labels, hp):  # (flat at random outputs where its searched scale is at its smallest)
    r = outputs[:, 1] - outputs[:, 0] - (2.0 * labels - 1.0)
    c = hp["scale"]
    return jnp.where(jnp.abs(r) < c, c ** 2 / 6 * (1 - (1 - (r / c) ** 2) ** 3), c ** 2 / 6)


def test_losses_with_a_gradient_only_on_mixed_rows_or_wider_settings_are_not_refused():
    """The gradient probe reads rows spread over the data (iris's first 50 rows are one class) and
    the space's high ends too (Tukey's scale at 0.1 is flat at random outputs)."""
    from vmaptune.program import build_program

    sorted_rows = vt.Dataset.from_arrays(np.sort(X, axis=0), np.sort(Y), "classification", shuffle=False)
    build_program(vt.MLP(hidden=1, units=4, loss=pairwise_ranking), SPACE, sorted_rows, batch_size=8)
    build_program(vt.MLP(hidden=1, units=4, loss=tukey), SPACE.replace(scale=vt.Uniform(0.1, 3.0)), tiny(),
                  batch_size=8)


def test_the_catalogue_is_large_and_ids_are_distinct():
    ids = [case[0] for case in CASES]
    assert len(ids) == len(set(ids)) and len(ids) >= 45


@pytest.mark.parametrize("fn, error, expected", [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_bad_input_is_named_with_its_fix(fn, error, expected, tmp_path):
    start = time.perf_counter()
    with pytest.raises(error) as info:
        fn(tmp_path)
    seconds = time.perf_counter() - start
    message = str(info.value)
    for part in expected:
        if isinstance(part, re.Pattern):
            assert part.search(message), f"{part.pattern!r} does not match: {message}"
        else:
            assert part in message, f"{part!r} is not in: {message}"
    assert info.type is error, f"raised {info.type.__name__}, expected exactly {error.__name__}: {message}"
    assert seconds < CASE_SECONDS, f"took {seconds:.1f} s to reject: it must fail in its checks, before compiling"


def test_a_searched_setting_no_chosen_optimizer_reads_warns(digits):
    space = vt.Space(learning_rate=vt.Fixed(0.01), optimizer=vt.Fixed("adam"), momentum=vt.Uniform(0.5, 0.99),
                     b2=vt.OneMinusLogUniform(0.9, 0.99))
    with pytest.warns(UserWarning, match=r"searches momentum=Uniform.*only the optimizers \['sgd', 'momentum', "
                                         r"'nesterov'\] read; the space's optimizer is \['adam'\]") as caught:
        vt.build_program(vt.MLP(), space, digits)
    assert not any("b2" in str(w.message) for w in caught)  # adam reads b2
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a fixed value is not a search, and a choice with sgd reads momentum
        vt.build_program(vt.MLP(), space.replace(momentum=vt.Fixed(0.9)), digits)
        vt.build_program(vt.MLP(), space.replace(optimizer=vt.Choice(["adam", "sgd"])), digits)
