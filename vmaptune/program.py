"""The static description of a compiled population program, and its constructor.

    program = vt.build_program(vt.MLP(), space, data, batch_size=64)

`build_program` runs every check a search needs before anything compiles (the space's names
against what the model, the optimizer and the engine read, their ranges, batch sizes, layout) and
returns a `Program`: hashable, the cache key of the compiled functions in `engine.py`.
Hyperparameter values are never part of it, so a new value never recompiles.

A search may need several programs: the model groups members that compile separately (width
buckets of the MLP), and `Programs` builds each group's program once.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
from typing import Any, Mapping, Sequence

import jax
import jax.extend.core
import jax.numpy as jnp
import numpy as np
from flax import errors as flax_errors
from flax import nnx

from vmaptune import compile_cache, costs
from vmaptune.arguments import check_flag, check_int_at_least
from vmaptune.data import Dataset
from vmaptune.distributed import agree, check_devices, check_member_block, default_member_block
from vmaptune.early_stopping import EarlyStopping
from vmaptune.metrics import (BUILT_IN_LOSSES, Loss, Metric, TracedInPython, get_loss, get_metric,
                              in_target_units, is_builtin, not_traceable, warn_if_rounded_in_units, warn_if_unpaired)
from vmaptune.models.base import BuiltModel, Group, Model
from vmaptune.models.fields import MODE_KEYWORDS
from vmaptune.optim import CustomOptimizer, PopulationOptimizer
from vmaptune.space import Fixed, Space, int_bounds
from vmaptune.state import Controls
from vmaptune.traced import USED_AS_PYTHON_VALUE
from vmaptune.warn import warn

#: Hyperparameters the engine itself reads (the rest belong to the model and the optimizer).
ENGINE_HYPERPARAMETERS = ("batch_size",)


@dataclasses.dataclass(frozen=True)
class Program:
    """Static description of one compiled population program (hashable: the jit cache key)."""

    model: BuiltModel
    optimizer: PopulationOptimizer | CustomOptimizer
    task: str
    metric: Metric
    loss: Loss
    batch_size: int  # rows per step: the padded batch, the largest member batch
    min_batch_size: int  # the smallest member batch: it sets how many steps an epoch has
    variable_batch: bool = False  # members have their own batch sizes (controls.batch_size)
    even_batches: bool = False  # a batch b on n rows steps n // ceil(n / b) rows (rows_per_step)
    # with even_batches, the rows every member's batch is evened over when not its own (0): a model
    # whose state each batch updates (BatchNorm) would take a padded batch's rows into it, so
    # members of folds of other sizes share the batch of the fewest rows (Search sets it)
    even_over: int = 0
    shared_order: bool = True  # members see the same minibatch order
    early_stopping: EarlyStopping | None = None
    evaluate: bool = True  # score on validation data every epoch (off for refits: test is read once, after)
    evaluate_every: int = 1  # with evaluate: every this many epochs, and at a member's last (its budget)
    devices: int = 1  # split the population over up to this many devices (vmaptune.distributed)
    member_block: int = 0  # step this many members at a time (CPU cache blocking); 0 = all at once
    # traced fields of your module it reads only when a member is built (a float kept in a variable,
    # an initialiser's scale): fixed at the start, as structural names are, for training-time strategies
    read_at_start: frozenset[str] = frozenset()

    def replace(self, **changes: Any) -> "Program":
        return dataclasses.replace(self, **changes)

    def steps_per_epoch(self, n_train: int, fold_rows: Sequence[int] | None = None) -> int:
        """Steps of an epoch over n_train rows, or the most of any fold's (fold_rows: each fold's
        training rows); a member with a larger batch, or on fewer rows, sits out the rest."""
        counts = (int(n_train),) if fold_rows is None else tuple(int(n) for n in fold_rows)
        return max(n // int(self.rows_per_step(self.min_batch_size, n)) for n in counts)

    def padded_batch(self, n_train: int, fold_rows: Sequence[int] | None = None) -> int:
        """Rows one step computes per member: the largest batch (even batches: the largest a
        member on n_train rows, or on any fold's, takes)."""
        if not self.even_batches:
            return self.batch_size
        counts = (int(n_train),) if fold_rows is None else tuple(int(n) for n in fold_rows)
        return max(int(self.rows_per_step(self.batch_size, n)) for n in counts)  # (rows per step grow with batch)

    def padded_row_epoch_flops(self, n_train: int, fold_rows: Sequence[int] | None = None) -> float:
        """Forward matmul FLOPs the program computes for one row (member) in one epoch: its steps
        (the most of any fold's, fold_rows as steps_per_epoch) x its padded batch x the padded
        network's FLOPs per input row."""
        return (self.steps_per_epoch(n_train, fold_rows) * self.padded_batch(n_train, fold_rows)
                * self.model.padded_row_flops())

    def rows_per_step(self, batch, rows, xp=np):
        """Each member's rows per step for its batch size `batch` on its `rows` training rows
        (numbers or (P,)): batch itself (rows // batch whole batches per epoch, the rest left to
        later epochs' orders), or with even_batches rows // ceil(rows / batch): batches of one size
        that leave out fewer rows than a batch (scikit-learn's MLP takes ceil(rows / batch) steps,
        the last partial); a batch above the rows is one step of all of them. An epoch is then
        rows // (rows per step) steps."""
        if not self.even_batches:
            return batch
        if self.even_over:
            rows = xp.minimum(rows, self.even_over)
        steps = -(-rows // xp.minimum(batch, rows))
        return rows // steps

    def structural_names(self) -> frozenset[str]:
        """Hyperparameters fixed when a member is built: the model's, the optimizer's kind and
        schedule, and the batch size. Training-time strategies copy them with the weights."""
        return (self.model.structural_names() | self.optimizer.structural_names() | set(ENGINE_HYPERPARAMETERS)
                | self.read_at_start)

    def controls(self, hp: Mapping[str, jax.Array], n_train, epochs, *, fold=None, budget=None) -> Controls:
        """The engine's per-member values for numeric hyperparameters hp (P,): batch size, the
        schedule length (epochs x steps per epoch over n_train rows: a number, or (P,) each
        member's fold's), fold and epoch budget (default: epochs)."""
        xp = jnp if any(isinstance(x, jax.core.Tracer) for x in jax.tree.leaves((hp, n_train, epochs, fold, budget))) else np
        p = jax.tree.leaves(hp)[0].shape[0] if hp else 0
        if self.variable_batch:
            batch = xp.asarray(hp["batch_size"], np.int32)
        else:
            batch = xp.full(p, self.batch_size, np.int32)
        n_train = xp.asarray(n_train, np.int32)
        batch = xp.asarray(self.rows_per_step(batch, n_train, xp), np.int32)
        epochs = xp.broadcast_to(xp.asarray(epochs, np.int32), (p,))
        budget = epochs if budget is None else xp.broadcast_to(xp.asarray(budget, np.int32), (p,))
        # on the host (numpy) unless traced: no small programs to compile for bookkeeping
        return Controls(batch_size=batch, total_steps=epochs * (n_train // batch),
                        fold=xp.zeros(p, np.int32) if fold is None else xp.asarray(fold, np.int32),
                        budget=budget)


#: Short names people use for what vmaptune calls otherwise (too far apart for a spelling match).
ALIASES = {"lr": "learning_rate", "eta": "learning_rate", "wd": "weight_decay", "l2": "weight_decay",
           "decay": "decay_rate", "lr_decay": "decay_rate", "learning_rate_decay": "decay_rate",
           "beta": "momentum", "beta1": "b1", "beta_1": "b1", "beta2": "b2", "beta_2": "b2", "bs": "batch_size",
           "batch": "batch_size", "units": "n_units", "width": "n_units", "hidden_units": "n_units",
           "layers": "n_hidden", "depth": "n_hidden", "n_layers": "n_hidden", "act": "activation",
           "opt": "optimizer", "drop": "dropout", "dropout_rate": "dropout",
           "weight_init": "init", "initializer": "init", "kernel_initializer": "init", "initialization": "init"}
#: Names of a training's length or a search's size: not a member's hyperparameter in vmaptune.
BUDGET_NAMES = ("epochs", "n_epochs", "num_epochs", "max_epochs", "max_iter", "n_iter", "patience")


def build_program(model: Model, space: Space, data: Dataset, *, batch_size: int = 64, metric: Any = None,
                  loss: Any = None, optimizer: Any = None, shared_order: bool = True,
                  early_stopping: EarlyStopping | None = None, devices: int | None = None,
                  member_block: int | None = None, group: Group = None, evaluate_every: int = 1,
                  even_batches: bool = False, train_rows: tuple[int, str] | None = None,
                  _names_given: str = "space has") -> Program:
    """The program that trains `model` over `space` on `data`, after checking every input.

    batch_size: rows per step when the space does not name batch_size (a space's batch_size gives
    each member its own, padded to the largest). metric, loss: the validation metric and training
    loss (default: the model's own, else accuracy / neg_mse and cross-entropy / mse).
    optimizer: None for the built-in population optimizer (kinds and settings from the space), or
    your own `fn(hp) -> optax.GradientTransformation`. devices, member_block: the layout
    (vmaptune.distributed; None = automatic). group: which of the model's member groups to build
    for (None: a template standing for all members). even_batches: batches of one size near
    batch_size that leave out fewer rows than a batch, as the scikit-learn estimators train
    (Program.rows_per_step); a batch may then exceed the rows (one step of all of them).
    train_rows: (the fewest rows a member trains on, what they are) where that is not data's
    training split (cv's folds train on part of training + validation): batches must fit them.
    _names_given: who gave the space's names, as a name no one reads is refused (an estimator's
    user wrote no space).
    """
    if not isinstance(space, Space):
        raise TypeError(f"space must be a vt.Space, got {type(space).__name__}.")
    check_dataset(data)
    if not isinstance(model, Model):
        raise TypeError(f"model must be a vt.MLP(), vt.Linen(YourModule) or vt.Nnx(YourModule), got {model!r}.")
    check_int_at_least("batch_size", batch_size, 1)
    even_batches = check_flag("even_batches", even_batches)
    rows, rows_are = (data.n_train, "training rows") if train_rows is None else train_rows
    if batch_size > rows and not even_batches:
        raise ValueError(f"batch_size={batch_size} is larger than the {rows} {rows_are}; use batch_size <= {rows}.")
    # (a regression Metric of yours is called in the targets' own units: metrics.in_target_units)
    metric = get_metric(metric if metric is not None else model.metric, data.task)
    warn_if_unpaired(metric, data.n_outputs)
    warn_if_rounded_in_units(metric, data.y_mean, data.y_std)
    metric = in_target_units(metric, data.y_mean, data.y_std)
    loss = get_loss(loss if loss is not None else model.loss, data.task)
    warn_if_unpaired(loss, data.n_outputs, data.task)
    built = model.build(space, data.spec, group)
    # a field of your module named as an optimizer setting (a BatchNorm's momentum) takes the name
    taken = frozenset(getattr(built, "field_names", ())) & set(space.names) & PopulationOptimizer().hyperparameters()
    if optimizer is None and taken:
        warn(f"space's {sorted(taken)} fill the fields of {model!r} so named, not the optimizer's settings of "
             f"those names (which keep their defaults); to search the optimizer's too, rename the field(s).",
             UserWarning)
    optimizer = PopulationOptimizer.from_space(space, taken) if optimizer is None else \
        CustomOptimizer.from_factory(optimizer, space, _weight_shapes(built, space))
    loss = _loss_reading_names(loss, space, data)
    read_elsewhere = optimizer.hyperparameters() | set(ENGINE_HYPERPARAMETERS) | set(loss.names)  # (not the model)
    engine_conditional = sorted(set(ENGINE_HYPERPARAMETERS) & space.traced_conditions().names)
    if engine_conditional:  # (the engine sizes each member's steps from it before anything is traced)
        raise ValueError(f"space.only_when({engine_conditional[0]!r}, ...): a member's {engine_conditional[0]} sets "
                         f"its steps and cannot depend on another setting; search it for every member (drop the "
                         f"condition), or run one search per value.")
    yours = set(loss.names) | (set(optimizer.hyperparameters()) if isinstance(optimizer, CustomOptimizer) else set())
    unsettled = sorted(yours & space.traced_conditions().names)
    if unsettled:  # (the built-in optimizer, the MLP and a module's fields take their defaults there)
        warn(f"space's {unsettled} are read by your {'optimizer' if isinstance(optimizer, CustomOptimizer) else 'loss'} "
             f"function, and Space.only_when says some members do not use them: those members still get the values "
             f"they drew there (their rows show NaN). Have your function ignore them for those members, or drop "
             f"the condition.", UserWarning)
    known = built.hyperparameters() | read_elsewhere
    check_int_at_least("evaluate_every", evaluate_every, 1)
    if evaluate_every > 1 and early_stopping is not None:
        raise ValueError(f"evaluate_every={evaluate_every} with early_stopping={early_stopping!r}: early stopping "
                         f"decides every epoch, so it needs every epoch's scores; use evaluate_every=1, or drop "
                         f"early_stopping.")
    for name in space.names:
        if name not in known:
            close = [ALIASES[name.lower()]] if ALIASES.get(name.lower()) in known else \
                difflib.get_close_matches(name, sorted(known), n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            if "norm" in name.lower() or name.lower() in ("bn", "use_bn"):  # (not batch_size, which it looks like)
                hint = (f" {type(model).__name__} has no normalisation layers to switch: build your network with "
                        f"flax's nn.BatchNorm and search it through vt.Linen (scripts/batchnorm_vs_not.py).")
            if name.lower() in ("keep_prob", "keep_probability") and "dropout" in known:
                hint = " Did you mean 'dropout'? It is the share dropped: dropout = 1 - keep_prob."
            if name.lower() == "decay" and {"decay_rate", "weight_decay"} <= known:  # (Keras' decay: the former)
                hint = (" Did you mean 'decay_rate' (the learning rate's decay, under schedule='step' or "
                        "'exponential') or 'weight_decay' (an L2 penalty)?")
            if name.lower() in BUDGET_NAMES:
                hint = (" Training length and search size are the search's, not a member's: vt.tune(epochs=...), a "
                        "strategy's population (vt.RandomSearch(population=64)), vt.EarlyStopping(patience=...), "
                        "or vt.SuccessiveHalving / vt.Hyperband to give settings different numbers of epochs.")
            if name.lower() in ("loss", "cost", "cost_function", "criterion", "objective"):
                hint = (f" The training loss is the model's, one per search: {type(model).__name__}(loss='mse') "
                        f"(on a classifier the class probabilities' squared error, against the default "
                        f"'cross_entropy'); run one search per loss and compare their results.")
            if getattr(model, "takes_any_keyword", lambda: False)():
                hint += (f" ({model!r} takes **kwargs, whose names vmaptune cannot see: name each argument the "
                         f"space sets, e.g. def build({name}=..., **rest).)")
            if name in getattr(optimizer, "unused", ()):  # (asked for, and its value reaches nothing it computes)
                hint += (f" (Your optimizer function asks for hp[{name!r}], but its value reaches nothing the "
                         f"optimizer computes, so every value would train alike.)")
            raise ValueError(f"{_names_given} {name!r}, which the model and optimizer do not read.{hint} "
                             f"Known names: {sorted(known)} (a loss of yours reads any it is given: "
                             f"loss=fn(outputs, targets, hp)).")
    for name, (what, mine, readers) in (optimizer.unread(space) if isinstance(optimizer, PopulationOptimizer)
                                        else {}).items():
        if name in loss.names:  # (your loss reads it: it does not train alike)
            continue
        warn(f"space searches {name}={space[name]!r}, which only the {what}s {list(readers)} read; the "
             f"space's {what} is {list(mine)}, so every value trains alike. Drop {name!r}, or "
             f"search {what}=vt.Choice([...]) with one of those.", UserWarning)
    if early_stopping is not None and not isinstance(early_stopping, EarlyStopping):
        raise TypeError(f"early_stopping must be vt.EarlyStopping(patience=...), got {early_stopping!r}.")
    smallest, largest = batch_sizes(space, batch_size, None if even_batches else (rows, rows_are))
    # (vt.MLP's weights are float32 whatever it computes in; an optimizer of yours keeps its state's dtypes)
    float32_params = isinstance(optimizer, PopulationOptimizer) and getattr(built, "adapter", None) is not None
    read_at_start = check_outputs(built, loss, space, data, metric, read_elsewhere=read_elsewhere,
                                  float32_params=float32_params)
    check_token_ids(built, space, data)
    compile_cache.release_if_near_map_limit()  # the checks passed: this call will compile
    return Program(model=built, optimizer=optimizer, task=data.task, metric=metric, loss=loss, batch_size=largest,
                   min_batch_size=smallest, variable_batch=smallest != largest, even_batches=even_batches,
                   shared_order=bool(shared_order),
                   early_stopping=early_stopping, devices=check_devices(devices), evaluate_every=int(evaluate_every),
                   member_block=_member_block(built, space, check_member_block(member_block), data, largest),
                   read_at_start=read_at_start)


def _weight_shapes(built: BuiltModel, space: Space) -> Any:
    """One member's weights as ShapeDtypeStructs (nothing runs), which an optimizer of yours takes
    its first step on when it is built; None where the model's initialisation fails (check_outputs
    reports that, with the fix)."""
    try:
        return jax.eval_shape(lambda key, hp: built.init(key, hp)[0], jax.random.key(0), one_member(space))
    except Exception:  # noqa: BLE001
        return None


def _statistics_passed_through(jaxpr: jax.extend.core.ClosedJaxpr, shapes: Any) -> bool:
    """Whether check_outputs' forward returns the training step's BatchNorm statistics (linen's
    batch_stats collection, nnx's BatchStat variables) as the very values initialisation made:
    nothing in training updates them."""
    flat, tree = jax.tree_util.tree_flatten(shapes)
    index = jax.tree_util.tree_unflatten(tree, list(range(len(flat))))
    _, (_, made, _, (_, trained)) = index
    made, trained = _statistics(made), _statistics(trained)
    outs = jaxpr.jaxpr.outvars
    if not made or len(made) != len(trained):
        return False
    # (only the statistics the training step's output reads: an nnx BatchNorm built but not called,
    # `if self.use_norm:` at its False, keeps its statistics as they were, rightly)
    used = _needed(jaxpr.jaxpr, outs[:1])
    pairs = [(outs[a], outs[b]) for a, b in zip(made, trained) if outs[a] in used]
    return bool(pairs) and all(a is b for a, b in pairs)


def _needed(jaxpr, outvars, effects: bool = False) -> set:
    """The variables of `jaxpr` that `outvars` depend on: a backward pass over its equations (one
    holding a sub-jaxpr reads all its inputs; effects: an equation with effects counts as read)."""
    needed = {v for v in outvars if not isinstance(v, jax.extend.core.Literal)}
    for eqn in reversed(jaxpr.eqns):
        if (effects and eqn.effects) or any(v in needed for v in eqn.outvars):
            needed.update(v for v in eqn.invars if not isinstance(v, jax.extend.core.Literal))
    return needed


def _how_told(built: BuiltModel) -> str:
    """How vmaptune tells `built` it trains, and the fix for a BatchNorm that does not follow."""
    if getattr(built, "adapter", "") == "Nnx":
        return ("vmaptune calls model.train() in the training step and model.eval() to evaluate, and passes the mode "
                "keyword where __call__ takes one (train=, or the one train_switch names): leave nnx.BatchNorm's "
                "use_running_average at None (it follows train() / eval()), or pass it `not train`.")
    mode = getattr(built, "mode", None)
    if mode is None:
        keywords = " / ".join(MODE_KEYWORDS)
        return (f"vmaptune tells the module when it trains through a __call__ argument named {keywords} (or the one "
                f"train_switch= names): take `train: bool = False` and use nn.BatchNorm(use_running_average=not "
                f"train); vmaptune passes train=True in the step and train=False to evaluate.")
    keyword, inverse = mode
    return (f"vmaptune passes {keyword}={not inverse} in the training step and {keyword}={inverse} to evaluate: use "
            f"nn.BatchNorm(use_running_average={keyword if inverse else 'not ' + keyword})" + (
                "" if keyword in MODE_KEYWORDS else
                f", or check train_switch ({keyword!r} is True to train, 'not {keyword}' True to evaluate)") + ".")


def _statistics(state: Any) -> list:
    """The leaves of a member's model state that are BatchNorm statistics."""
    if isinstance(state, nnx.State):
        held = jax.tree.leaves(state, is_leaf=lambda v: isinstance(v, nnx.BatchStat))
        return jax.tree.leaves([v for v in held if isinstance(v, nnx.BatchStat)])
    return jax.tree.leaves(state.get("batch_stats")) if isinstance(state, Mapping) else []


def _check_fields_read(built: BuiltModel, space: Space, jaxpr: jax.extend.core.ClosedJaxpr, hp: dict,
                       read_elsewhere: frozenset[str] | set[str]) -> None:
    """A searched traced field of your module (a float: `dropout: float`) that nothing the module
    computes reads (initialisation, training, evaluation) is an error: every value trains alike,
    and the table would show differences of initial weights as the field's effect. Not checked
    where structural fields are searched (this trace is one group's: a rate used only where
    use_dropout=True is read by another group) nor for a field under only_when."""
    searched = [n for n in getattr(built, "traced", ()) if n in space.names and n not in read_elsewhere
                and not isinstance(space[n], Fixed) and n not in space.conditions]
    if not searched or _searches_structure(built, space):
        return
    read = _names_read(jaxpr, hp)
    unread = [n for n in searched if n in read and not read[n]]
    if unread:
        name = unread[0]
        raise ValueError(f"space searches {name}={space[name]!r}, a field of {built.name()} that the module never "
                         f"uses: nothing it computes (initialisation, training, evaluation) reads self.{name}, so "
                         f"every value trains alike and the table would credit {name!r} with the differences of "
                         f"initial weights. Use self.{name} in the module (a dropout rate: vt.nn.Dropout(self.{name})"
                         f"), or drop {name!r} from the space."
                         + (f" Also unused: {unread[1:]}." if len(unread) > 1 else ""))


def _warn_if_init_ignores_the_key(built: BuiltModel, closed: jax.extend.core.ClosedJaxpr, shapes) -> None:
    """An nnx module whose parameters depend on no key vmaptune gives it (its layers built with an
    nnx.Rngs(0) of its own): every member and seed starts from the same weights, unsaid. (forward's
    outputs: the trained output, then the parameters' leaves; its first input: the member's key.)"""
    n = len(jax.tree.leaves(shapes[1][0]))
    outvars = closed.jaxpr.outvars[1:1 + n]
    if n and closed.jaxpr.invars[0] not in _needed(closed.jaxpr, outvars):
        warn(f"{built.name()}'s initial weights do not depend on the rngs vmaptune builds it with, so every member "
             f"(and every seed of seeds=) starts from the same weights: a layer given an nnx.Rngs of the module's "
             f"own? Build each layer with the rngs __init__ is given (nnx.Linear(..., rngs=rngs)).")


def _inputs_read(jaxpr) -> list[bool]:
    """For each input of a jaxpr: whether any output depends on it (an equation with effects counts
    as read)."""
    needed = _needed(jaxpr, jaxpr.outvars, effects=True)
    return [v in needed for v in jaxpr.invars]


def _loss_reading_names(loss: Loss, space: Space, data: Dataset) -> Loss:
    """A loss of yours that takes the member's hyperparameters (fn(outputs, targets, hp)), with the
    names it reads found by tracing it on shapes; one the space lacks is an error naming it."""
    if not loss.takes_hp:
        return loss
    hp = {n: jax.ShapeDtypeStruct(np.shape(v), np.asarray(v).dtype) for n, v in one_member(space).items()}
    out = jax.ShapeDtypeStruct((2, data.n_outputs), jnp.float32)
    y = jax.ShapeDtypeStruct((2,) + tuple(data.y_train.shape[1:]), data.y_train.dtype)
    try:  # (the names it asks for: a name the space lacks, or one read in Python, is said with its fix)
        read = loss.reading_names(hp, out, y)
    except KeyError as err:
        raise ValueError(str(err.args[0]) if err.args else str(err)) from None
    except TracedInPython:
        raise
    except Exception:  # noqa: BLE001 (jnp.asarray of the reading dict, ...: the program's names below)
        read = None
    try:  # the names its program computes with: a loss that walks hp (jax.tree.map(f, hp)) asks for them all
        return dataclasses.replace(loss, names=_names_in_program(loss, hp, out, y))
    except Exception as err:
        if read is not None:
            return read
        # (its own error, now: "space has 'delta', which nothing reads" came first)
        raise ValueError(f"loss {loss.name!r} fails on outputs {out.shape} and targets {y.shape} "
                         f"({type(err).__name__}: {err}).") from err


def _names_in_program(loss: Loss, hp: dict, out, y) -> tuple[str, ...]:
    """The names of hp (name -> ShapeDtypeStruct) whose values the loss's traced program uses."""
    names = sorted(hp)  # (a dict's leaves, in jax's order)
    closed = jax.make_jaxpr(lambda o, t, *values: loss.per_row(o, t, dict(zip(names, values))))(
        out, y, *(hp[n] for n in names))
    jaxpr = closed.jaxpr
    live = _needed(jaxpr, jaxpr.outvars)  # (what the losses depend on: `v * 1.0` for every value, unused, is not)
    return tuple(n for n, var in zip(names, jaxpr.invars[2:]) if var in live)


def check_outputs(built: BuiltModel, loss: Loss, space: Space, data: Dataset, metric: Metric | None = None,
                  read_elsewhere: frozenset[str] | set[str] = frozenset(), float32_params: bool = False
                  ) -> frozenset[str]:
    """Traces one member (no compile) on a batch of 2: its outputs must be (2, n_outputs), the loss
    one value per example and the metric one value per batch; hyperparameters used in Python
    control flow are named, and searched fields of your module that nothing it computes reads
    (read_elsewhere: the names the optimizer, loss and engine read). Returns the traced fields of
    your module read only when a member is built (_read_at_start). float32_params: parameters
    narrower than float32 are refused (check_parameter_dtypes)."""
    hp = one_member(space)
    x = jax.ShapeDtypeStruct((2,) + data.input_shape, data.X_train.dtype)
    y = jax.ShapeDtypeStruct((2,) + tuple(data.y_train.shape[1:]), data.y_train.dtype)

    def forward(key, x, hp):  # hp traced, as in the compiled step; evaluated too, as validation will
        params, state = built.init(key, hp)
        evaluated = built.apply(params, state, x, hp, train=False)
        trained = built.apply(params, state, x, hp, train=True, key=key)
        return trained[0], (params, state, evaluated, trained)

    try:
        jaxpr, shapes = jax.make_jaxpr(forward, return_shape=True)(jax.random.key(0), x, hp)
        out = shapes[0]
    except USED_AS_PYTHON_VALUE as err:
        traced = sorted(n for n in space.names if n in built.hyperparameters() and n not in built.structural_names())
        transform = ("Under a lifted transform of the whole module (nn.remat, nn.jit) every argument is traced, "
                     "its mode keyword too (vmaptune passes train by keyword, which nn.remat cannot mark static): "
                     "apply the transform to the layers inside your module instead.")
        if not traced:  # (no searched value of the module's is traced: its input is, or its mode keyword)
            raise ValueError(f"{built.name()} uses a traced value as a Python value (in an `if`, `not`, int(), numpy; "
                             f"{type(err).__name__}), and it reads no traced hyperparameter: keep what it computes "
                             f"from its input in jnp (jnp.where, not `if x.sum() > 0`). {transform}") from err
        # (traced fields take floats: annotated int, a rate would become 0; flax's Dropout of the module's kind)
        dropout = ("nnx.Dropout", "vt.nn.NnxDropout") if getattr(built, "adapter", "") == "Nnx" else \
            ("nn.Dropout", "vt.nn.Dropout")
        raise ValueError(f"the model uses a per-member hyperparameter as a Python value (in an `if`, int(), numpy, a "
                         f"shape; {type(err).__name__}); the traced ones are {traced}. Keep such a field traced: "
                         f"compute with it in jnp (jnp.where, not `if`); flax's {dropout[0]} tests `rate == 0` in "
                         f"Python, so use {dropout[1]} for a searched rate. Or make it structural, "
                         f"static=({traced[0] if len(traced) == 1 else 'name'!r},), and search it with a vt.Choice "
                         f"of a few values: each value compiles a program of its own. {transform}") from err
    except flax_errors.ModifyScopeVariableError as err:  # BatchNorm updating statistics in a call not told it trains
        raise ValueError(f"the model updates a variable when evaluated ({err}) A BatchNorm must follow the mode: "
                         f"{_how_told(built)} A collection of your own (a counter) is updated in training only where "
                         f"its update sits under `if self.is_mutable_collection('its name'):`.") from err
    if _statistics_passed_through(jaxpr, shapes):
        # (use_running_average=True in training, e.g. no train argument: statistics frozen at mean 0,
        # variance 1, silently; use_running_average=False in evaluation fails above)
        raise ValueError(f"{built.name()}'s BatchNorm statistics do not change when it trains: its BatchNorm never "
                         f"learns the data's mean and variance (use_running_average=True in training). "
                         f"{_how_told(built)}")
    _check_fields_read(built, space, jaxpr, hp, read_elsewhere)
    if getattr(built, "adapter", None) == "Nnx":
        _warn_if_init_ignores_the_key(built, jaxpr, shapes)
    if float32_params:
        check_parameter_dtypes(built, shapes[1][0])
    if jnp.issubdtype(x.dtype, jnp.integer) and getattr(built, "adapter", None) is not None:  # (vt.MLP says so
        _warn_if_read_as_numbers(built, jaxpr.jaxpr, jaxpr.jaxpr.invars[1])  # itself; forward's inputs: key, x, hp)
    read_at_start = _read_at_start(built, space, jaxpr, shapes, x, hp, read_elsewhere)
    need = (2, data.n_outputs)
    if not hasattr(out, "shape"):  # (logits, features), a dict, ...
        raise ValueError(f"the model returns {type(out).__name__} {jax.tree.map(lambda a: a.shape, out)} for a batch "
                         f"of 2; vmaptune trains on one output array of shape {need}: return the logits only (keep "
                         f"other outputs for a method of your own, e.g. module.apply(..., method=...)).")
    if out.shape != need:
        what = f"one logit per class ({data.n_outputs})" if data.task == "classification" else \
            f"one value per target ({data.n_outputs})"
        raise ValueError(f"the model's output for a batch of 2 has shape {out.shape}; the data needs {need}: "
                         f"{what}, e.g. end with nn.Dense({data.n_outputs}).")
    targets = (f"integer class labels, shape (batch,), dtype {y.dtype}: use e.g. "
               f"optax.softmax_cross_entropy_with_integer_labels, or jax.nn.one_hot(y, {data.n_outputs}) inside "
               f"your function" if data.task == "classification" else f"shape {('batch',) + y.shape[1:]}")
    try:
        per_example = jax.eval_shape(loss.per_row, out, y, hp)
    except USED_AS_PYTHON_VALUE as err:
        raise ValueError(not_traceable("loss", loss.name, loss.per_example, err)) from err
    except (TypeError, ValueError) as err:
        raise ValueError(f"loss {loss.name!r} fails on outputs {out.shape} and targets {y.shape} ({err}). Its targets "
                         f"are {targets}.") from err
    if metric is not None:
        try:
            value = jax.eval_shape(metric.score, out, y)
        except USED_AS_PYTHON_VALUE as err:
            raise ValueError(not_traceable("metric", metric.name, metric.fn, err)) from err
        except (TypeError, ValueError) as err:
            if is_builtin(metric):  # a built-in metric says what it needs (not advice for your function)
                raise ValueError(str(err)) from None
            raise ValueError(f"metric {metric.name!r} fails on outputs {out.shape} and targets {y.shape} ({err}). "
                             f"Its targets are {targets}.") from err
        if not hasattr(value, "shape"):
            raise ValueError(_not_one_array("metric", metric.name, value, "one value for the whole batch (a scalar)"))
        if value.shape != ():
            raise ValueError(f"metric {metric.name!r} returns shape {value.shape} for a batch of 2; it must return "
                             f"one value for the whole batch (a scalar), e.g. the mean over the rows: "
                             f"jnp.mean(...).")
    if not hasattr(per_example, "shape"):
        raise ValueError(_not_one_array("loss", loss.name, per_example, "one loss per example, shape (2,)"))
    if per_example.shape != (2,):
        raise ValueError(f"loss {loss.name!r} returns shape {per_example.shape} for a batch of 2; it must return one "
                         f"loss per example, shape (2,) (the engine takes the mean over each member's own rows).")
    check_loss_trains(loss, space, data, per_example.dtype)
    return read_at_start


def check_parameter_dtypes(built: BuiltModel, params: Any) -> None:
    """The built-in optimizer's settings are float32 arrays (optax.inject_hyperparams), which turn
    the moments of a bfloat16 or float16 parameter float32 in the first step: the training loop's
    state would change its dtype (a lax.scan error after compiling). Such parameters are named here.
    params: their shapes, from the first-call trace check_outputs makes."""
    narrow = [(path, leaf.dtype) for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]
              if jnp.issubdtype(leaf.dtype, jnp.floating) and jnp.promote_types(leaf.dtype, jnp.float32) != leaf.dtype]
    if narrow:
        path, dtype = narrow[0]
        name = "/".join(str(key.key if isinstance(key, jax.tree_util.DictKey) else key.idx) for key in path
                        if isinstance(key, (jax.tree_util.DictKey, jax.tree_util.SequenceKey)))
        others = f" (and {len(narrow) - 1} more)" if len(narrow) > 1 else ""
        raise ValueError(f"{built.name()}'s parameter {name} is {dtype}{others}; the built-in optimizer's settings are "
                         f"float32 arrays, which make its moments float32, so parameters must be float32. Keep "
                         f"param_dtype float32 and compute in {dtype} with dtype= (e.g. nn.Dense(32, dtype=jnp.{dtype}): "
                         f"float32 weights cast for each matmul, as mixed precision trains); vt.MLP(matmul_dtype="
                         f"\"bfloat16\") does so for the built-in model. Or give your own optimizer=fn(hp) (optax's "
                         f"optimizers keep their state in the parameters' dtype).")


def _not_one_array(what: str, name: str, value: Any, need: str) -> str:
    """The message for a loss or metric that returns a tuple or dict (JAX's has_aux style)."""
    if value is None:
        return (f"{what} {name!r} returns None for a batch of 2 (a `return` missing?); it must return one array: "
                f"{need}.")
    shapes = jax.tree.map(lambda a: a.shape, value)
    return (f"{what} {name!r} returns a {type(value).__name__} {shapes} for a batch of 2; it must return one "
            f"array: {need}. A (value, aux) pair as for jax.value_and_grad(has_aux=True) is not taken: return the "
            f"value alone, and give what aux measured as a metric of its own (vt.tune(..., metric=...)).")


def _read_at_start(built: BuiltModel, space: Space, jaxpr: jax.extend.core.ClosedJaxpr, shapes: Any, x: Any,
                   hp: dict, read_elsewhere: frozenset[str] | set[str]) -> frozenset[str]:
    """Traced fields of your module that initialisation reads and a training or evaluation step,
    given the member's variables, does not: a float kept in a variable (nnx.Variable(temperature),
    linen's self.variable), an initialiser's scale. A value a training-time strategy (PBT's
    explore) gave such a field mid-run would never reach the network, while the table showed it.
    Not for names the loss, optimizer or engine read (read_elsewhere: a new value reaches them),
    nor where structural fields are searched (this trace is one group's, as _check_fields_read's)."""
    traced = [n for n in getattr(built, "traced", ()) if n in hp and n not in read_elsewhere]
    if not traced or _searches_structure(built, space):
        return frozenset()
    _, (params, state, _, _) = shapes

    def applied(params, state, x, hp):
        return (built.apply(params, state, x, hp, train=True, key=jax.random.key(0)),
                built.apply(params, state, x, hp, train=False))

    try:
        closed = jax.make_jaxpr(applied)(params, state, x, hp)
    except Exception:  # noqa: BLE001 (a step that cannot be traced apart from its initialisation: none known)
        return frozenset()
    at_all, in_step = _names_read(jaxpr, hp), _names_read(closed, hp)
    return frozenset(n for n in traced if at_all[n] and not in_step[n])


def _searches_structure(built: BuiltModel, space: Space) -> bool:
    """Whether the space searches a structural field of the module: a trace of one member is then
    one group's, and what it reads is not every group's."""
    return any(n in space.names and not isinstance(space[n], Fixed) for n in getattr(built, "structural", ()))


def _names_read(closed: jax.extend.core.ClosedJaxpr, hp: dict) -> dict[str, bool]:
    """name -> whether the traced program's outputs depend on hp[name] (its last inputs, one scalar
    each, in jax's order of a dict's keys)."""
    names = sorted(hp)
    return dict(zip(names, _inputs_read(closed.jaxpr)[-len(names):]))


#: The fix for a loss the weights cannot learn from (check_loss_trains).
_NO_GRADIENT_FIX = ("A loss built on argmax, comparisons or integer casts (a 0/1 error) has no gradient: train on a "
                    "differentiable loss (cross-entropy, a squared error) and score the 0/1 error as the metric "
                    "(metric='accuracy', or a vt.Metric of yours).")


def check_loss_trains(loss: Loss, space: Space, data: Dataset, dtype: Any) -> None:
    """A loss of yours must give the weights a gradient: one returning integers, or built on argmax
    or comparisons, has none, and every member would keep its initial weights and be ranked on
    them (status ok, no error). Probed where a working loss has one somewhere: on 32 training rows
    spread over the data (not its first rows, of one class where the data is sorted), at zero
    outputs and random ones of two scales (a hinge flat at one is not flat at all), with the
    space's low ends and its high ends (a robust loss's scale at its smallest). The built-in
    losses are not probed."""
    if not jnp.issubdtype(dtype, jnp.floating):
        raise ValueError(f"loss {loss.name!r} returns {jnp.dtype(dtype).name} losses; training needs float losses "
                         f"that change with the model's outputs. {_NO_GRADIENT_FIX}")
    if loss.per_example in BUILT_IN_LOSSES:
        return
    rows = np.unique(np.linspace(0, data.n_train - 1, min(32, data.n_train)).astype(int))
    targets = jnp.asarray(np.asarray(data.y_train)[rows])
    shape = (len(rows), data.n_outputs)
    noise = np.random.default_rng(0).standard_normal(shape).astype(np.float32)  # (on the host: no program)
    gradient = _loss_gradient(loss)
    for hp in (one_member(space), one_member(space, end=-1)):
        for out in (np.zeros(shape, np.float32), noise, 3.0 * noise):
            try:
                grad = gradient(out, targets, hp)
            except Exception:  # (the training step's own trace reports a loss that fails)
                return
            if np.any(np.asarray(grad) != 0):
                return
    raise ValueError(f"loss {loss.name!r} has a zero gradient with respect to the model's outputs (probed on "
                     f"{len(rows)} training rows at zero and random outputs, with the space's low ends and its high "
                     f"ends, a Choice's first and last options): training would never change the weights, and "
                     f"every member would be ranked on its initial ones. {_NO_GRADIENT_FIX}")


@functools.lru_cache(maxsize=8)
def _loss_gradient(loss: Loss):
    """The loss's mean gradient in the outputs, (outputs, targets, hp) -> like outputs: one quick
    program for every probe, and every search of that loss in this process (op by op, a loss's
    first gradient compiled each of its operations: most of a second of a first search)."""
    return compile_cache.quick_program(jax.grad(lambda out, targets, hp: jnp.mean(loss.per_row(out, targets, hp))))


def check_token_ids(built: BuiltModel, space: Space, data: Dataset) -> None:
    """Integer inputs (token ids): one member's outputs for the rows holding each split's largest
    and smallest id must be finite. flax's nn.Embed gives NaN for an id past its vocabulary: such
    a validation row would mark every member diverged (as a learning rate too high would), and a
    test row would score as the first class."""
    if not np.issubdtype(np.dtype(data.X_train.dtype), np.integer):
        return
    probes = []
    for split in ("train", "val", "test"):
        X = np.asarray(getattr(data, f"X_{split}"))
        if len(X):
            flat = X.reshape(len(X), -1)
            for row in dict.fromkeys((int(flat.max(axis=1).argmax()), int(flat.min(axis=1).argmin()))):
                probes.append((split, row, X[row]))
    hp = one_member(space)
    params, state = built.init(jax.random.key(0), hp)
    out, _ = built.apply(params, state, jnp.asarray(np.stack([x for _, _, x in probes])), hp, train=False)
    finite = np.isfinite(np.asarray(out).reshape(len(probes), -1)).all(axis=1)
    if not finite.all():
        split, row, x = probes[int(np.argmin(finite))]
        ids = np.concatenate([np.asarray(getattr(data, f"X_{s}")).ravel() for s in ("train", "val", "test")])
        raise ValueError(f"the model's outputs for row {row} of the {split} split (ids {int(x.min())} to "
                         f"{int(x.max())}) are NaN: an id outside an embedding's table gives NaN in flax (nn.Embed, "
                         f"nnx.Embed). The data's ids run from {int(ids.min())} to {int(ids.max())}: give the "
                         f"embedding num_embeddings > {int(ids.max())} (or map ids it never saw to an 'unknown' id).")


#: Operations that pass an integer input on unchanged in kind (its shape, its order, its ints).
_SHAPE_ONLY = frozenset({"reshape", "squeeze", "expand_dims", "broadcast_in_dim", "transpose", "slice", "copy",
                         "copy_p", "rev", "concatenate", "pad", "select_n", "dynamic_slice"})


def _warn_if_read_as_numbers(built: BuiltModel, jaxpr, x) -> None:
    """Integer inputs are kept unscaled, as token ids. A module whose every use of them (`x` in the
    trace `jaxpr` of its steps) turns them into floats (nn.Dense, nn.Conv: int16 pixels, 12-bit
    counts) reads them as numbers, unscaled: on digits as int16, 0.78 against 0.87 standardised,
    without a word. Said, with the fix."""
    if _uses(jaxpr, x) == {"float"}:
        warn(f"{built.name()} reads its input as numbers (it makes X's integers floats), and vmaptune keeps integer "
             f"inputs as they are, unscaled (token ids for an embedding). Unless the module scales them itself, pass "
             f"X.astype('float32') to have them standardised with the training split's statistics.", UserWarning)


def _uses(jaxpr, var) -> set[str]:
    """How `jaxpr` ends up using integer input `var`: 'float' (made a float), 'other' (an
    embedding's gather, a comparison, integer arithmetic), through shape-only operations and
    nested programs (jit, custom rules)."""
    found: set[str] = set()
    for eqn in jaxpr.eqns:
        if not any(v is var for v in eqn.invars):
            continue
        inner = next((p for p in eqn.params.values() if isinstance(p, (jax.extend.core.ClosedJaxpr,
                                                                         jax.extend.core.Jaxpr))), None)
        if eqn.primitive.name == "convert_element_type":
            floating = jnp.issubdtype(eqn.params["new_dtype"], jnp.floating)
            found |= {"float"} if floating else _uses(jaxpr, eqn.outvars[0])
        elif inner is not None and len(getattr(inner, "jaxpr", inner).invars) == len(eqn.invars):
            body = getattr(inner, "jaxpr", inner)
            for outer, inside in zip(eqn.invars, body.invars):
                if outer is var:
                    found |= _uses(body, inside)
        elif eqn.primitive.name in _SHAPE_ONLY:
            for out in eqn.outvars:
                found |= _uses(jaxpr, out)
        else:
            found.add("other")
    return found


def one_member(space: Space, end: int = 0) -> dict[str, np.ndarray]:
    """One valid member's numeric hyperparameters (scalars, on the host): each range's low end,
    each choice's first option (end=-1: the high ends and last options). The checks and the
    memory plan trace the model with it; made on the host because a sample would compile a
    program of its own (a first search pays it)."""
    try:
        encoded = {name: np.asarray([dist.encode(dist.options[end] if hasattr(dist, "options") else
                                                 (dist.low, dist.high)[end])],
                                    np.dtype(dist.dtype)) for name, dist in space.items()}
    except (AttributeError, ValueError):  # a distribution of your own: one sampled member
        encoded = space.sample(jax.random.key(0), 1)
    return {k: np.asarray(v)[0] for k, v in space.numeric(encoded).items()}


class Programs:
    """The programs of one search: the model's member groups, each program built once.

    bucketing: False (one padded program), True (the model's groups, each its own program) or
    "auto": per round, whichever of the two is expected to finish first, compiles included
    (vmaptune/costs.py). epochs, n_train, fold_rows: what a round trains (for "auto"; fold_rows:
    each cross-validation fold's training rows, DataArrays.fold_rows)."""

    def __init__(self, model: Model, space: Space, data: Dataset, base: Program, *, bucketing: bool | str = False,
                 member_block: int | None = None, epochs: int = 1, n_train: int | None = None,
                 fold_rows: Sequence[int] | None = None, one_program: bool = False):
        self.model, self.space, self.data, self.base = model, space, data, base
        self.bucketing, self.member_block = check_bucketing(bucketing), member_block
        self.epochs, self.n_train = int(epochs), int(data.n_train if n_train is None else n_train)
        self.fold_rows = fold_rows
        self._built: dict[Group, Program] = {None: base}
        self.plan = -1  # the plan `partition` chose last (see partition)
        # A model with state it updates from each batch (BatchNorm's statistics) would take a
        # member's padded rows into it: members of different batch sizes never share a program,
        # when the space's batch sizes are a few options (a range would compile one program per
        # size drawn) and the strategy does not need one program (PBT copies members).
        stateful = base.variable_batch and updates_state(base.model, space)
        options = "batch_size" in space and hasattr(space["batch_size"], "options")
        self.exact_batches = stateful and options and not one_program
        if stateful and not self.exact_batches:
            why = "the strategy copies members between rows, so they share one program" if one_program else \
                f"batch_size={space['batch_size']!r} is a range (one program per size would compile each)"
            warn(f"the model keeps state it updates from each batch (BatchNorm's statistics) and the space "
                 f"searches batch_size, but {why}: a member whose batch is smaller than its program's takes "
                 f"the padded rows into its statistics, so its result depends on the other members. Search "
                 f"batch_size with vt.Choice([...]) (each size in a program of its own), or fix it.",
                 UserWarning)

    def program(self, group: Group) -> Program:
        if group not in self._built:
            if isinstance(group, BatchClass):  # the model group's program, stepping this class's batches
                self._built[group] = self.program(group.group).replace(
                    batch_size=group.largest, min_batch_size=group.smallest,
                    variable_batch=group.smallest != group.largest)
                return self._built[group]
            built = self.model.build(self.space, self.data.spec, group)
            block = _member_block(built, self.space, self.member_block, self.data, self.base.batch_size)
            self._built[group] = self.base.replace(model=built, member_block=block)
        return self._built[group]

    def split_batches(self, groups, numeric_hp: Mapping[str, Any]) -> list[tuple[Group, np.ndarray]]:
        """Each group's members split by batch-size class (batches in (2^(c-1), 2^c]), so a
        member's epoch costs at most about twice its own rows, not (smallest batch, largest batch)
        padding: one program steps n_train // smallest batch steps of the largest. Classes are
        bounded by the space (its options, or its range), so their programs repeat across rounds.
        Groups as they are when members share one batch size. With `exact_batches` (BatchNorm)
        each batch size is a class of its own: no member's batch is padded."""
        if not self.base.variable_batch:
            return groups
        batch = np.asarray(numeric_hp["batch_size"]).astype(np.int64)
        if self.exact_batches:
            return [(BatchClass(group, int(b), int(b)), np.asarray(members)[batch[members] == b])
                    for group, members in groups for b in np.unique(batch[np.asarray(members)])]
        dist = self.space["batch_size"]
        options = sorted(int(o) for o in dist.options) if hasattr(dist, "options") else None
        out = []
        for group, members in groups:
            members = np.asarray(members)
            classes = np.asarray([int(b - 1).bit_length() for b in batch[members]], np.int64)
            for c in np.unique(classes):
                low, high = (1 << int(c) >> 1) + 1 if c else 1, 1 << int(c)
                if options is not None:
                    inside = [o for o in options if low <= o <= high]
                    low, high = min(inside), max(inside)
                else:
                    low, high = max(low, self.base.min_batch_size), min(high, self.base.batch_size)
                out.append((BatchClass(group, low, high), members[classes == c]))
        return out

    def partition(self, numeric_hp: Mapping[str, jax.Array], rows: int | None = None, plan: int | None = None,
                  rounds: int = 1, work_share: float = 1.0, measured: bool = True) -> list[tuple[Program, np.ndarray]]:
        """[(program, member indices)] for a population's numeric hyperparameters (P,). rows: the
        rows one program would use (default P; several round theirs up to a power of two).
        rounds: the rounds of the search still to train, this one included (a plan's compiles
        are paid once, its training in each; "auto" prices all of them). work_share: the share of
        members x epochs the strategy will train (Strategy.work_share), which scales the training.
        measured=False prices at the platform's defaults (costs.plan_seconds): the same choice in
        every process, whatever it measured or compiled before.

        With bucketing="auto" the candidates are the plan without optional groups and every way
        to merge neighbouring groups of `model.groups(bucketing=True)` (a few shape classes); each
        is priced (costs.plan_seconds) and the cheapest taken. plan: the choice an interrupted
        round made (None: choose now); the choice is left in self.plan (-1: no optional groups,
        else a bit mask of the cuts between neighbouring groups, with SPLIT_BATCHES set when each
        group is split by batch-size class, `split_batches`: a space with batch_size)."""
        optional = self.model.groups(self.space, self.data.spec, numeric_hp, bucketing=bool(self.bucketing))
        if self.bucketing != "auto":
            if self.bucketing:
                self.plan = (1 << max(len(optional) - 1, 0)) - 1 | (SPLIT_BATCHES if self.base.variable_batch else 0)
                optional = self.split_batches(optional, numeric_hp)
            else:
                self.plan = -1
                if self.exact_batches:
                    optional = self.split_batches(optional, numeric_hp)
            return [(self.program(group), np.asarray(members)) for group, members in optional]
        padded = self.model.groups(self.space, self.data.spec, numeric_hp, bucketing=False)
        candidates = {-1: self.split_batches(padded, numeric_hp) if self.exact_batches else padded}
        for cuts in range(1 << max(len(optional) - 1, 0)):
            merged = _merge(self.model, optional, cuts)
            if merged is not None:
                if not self.exact_batches:
                    candidates[cuts] = merged
                if self.base.variable_batch:  # the same, each group split by batch-size class
                    candidates[cuts | SPLIT_BATCHES] = self.split_batches(merged, numeric_hp)
        if plan is None:
            priced = {key: costs.plan_seconds(self._layout(groups, rows), self.n_train, self.epochs, rounds,
                                              work_share=work_share, measured=measured, fold_rows=self.fold_rows)
                      for key, groups in candidates.items()}
            plan = agree(min(priced, key=priced.get))  # priced from this process's clock: process 0's choice
        self.plan = plan
        return [(self.program(group), np.asarray(members)) for group, members in candidates[plan]]

    def _layout(self, groups, rows: int | None) -> list[tuple[Program, int, int]]:
        """[(program, rows, members)] as vt.tune lays groups out: one group takes `rows` (default
        its members), several round theirs up to a power of two."""
        if len(groups) == 1:
            group, members = groups[0]
            return [(self.program(group), len(members) if rows is None else rows, len(members))]
        return [(self.program(group), 1 << max(len(m) - 1, 0).bit_length(), len(m)) for group, m in groups]


def updates_state(model: BuiltModel, space: Space) -> bool:
    """Whether the model keeps state besides its parameters (BatchNorm's batch statistics, a
    counter): what the training step updates from each batch as a whole."""
    hp = one_member(space)  # (on the host, outside the trace)
    shapes = jax.eval_shape(lambda key: model.init(key, hp), jax.random.key(0))
    return bool(jax.tree.leaves(shapes[1]))


#: Bit of a plan (Programs.partition) saying each group is split by batch-size class.
SPLIT_BATCHES = 1 << 20


@dataclasses.dataclass(frozen=True)
class BatchClass:
    """The members of a model group whose batch sizes lie in [smallest, largest]: one program."""

    group: Group
    smallest: int
    largest: int


def _merge(model: Model, groups, cuts: int):
    """The groups with neighbours merged except at the cuts (bit i: cut after group i), or None
    when the model cannot merge some of them."""
    out, start = [], 0
    for i in range(len(groups)):
        if i == len(groups) - 1 or cuts >> i & 1:
            run = groups[start:i + 1]
            ok, group = model.merge_groups([g for g, _ in run])
            if not ok:
                return None
            out.append((group, np.sort(np.concatenate([np.asarray(m) for _, m in run]))))
            start = i + 1
    return out


def check_bucketing(bucketing: Any) -> bool | str:
    if isinstance(bucketing, str) and bucketing == "auto":
        return bucketing
    if isinstance(bucketing, (bool, np.bool_)):  # (a numpy bool as the other flags take it)
        return bool(bucketing)
    raise ValueError(f"bucketing={bucketing!r}: use 'auto' (the cheaper of one padded program and the model's "
                     f"groups, compiles included), True (groups) or False (one padded program).")


# -- checks ---------------------------------------------------------------------------------------------
def check_dataset(data: Any) -> None:
    if not isinstance(data, Dataset):
        raise TypeError(f"data must be a vt.Dataset (vt.load_dataset or vt.Dataset.from_arrays), "
                        f"got {type(data).__name__}.")


def batch_sizes(space: Space, batch_size: int, rows: tuple[int, str] | None) -> tuple[int, int]:
    """(smallest, largest) member batch size: from the space if it names batch_size (at most
    rows = (the fewest rows a member trains on, what they are), unless None: even batches clip
    to the rows)."""
    if "batch_size" not in space:
        return int(batch_size), int(batch_size)
    low, high = int_bounds(space, "batch_size", 1)
    if rows is not None and high > rows[0]:
        raise ValueError(f"batch_size={space['batch_size']!r} allows {high}, more than the {rows[0]} {rows[1]}; "
                         f"keep batch sizes <= {rows[0]}.")
    return low, high


_MEMBER_BYTES: dict = {}  # (model, hp, batch) -> member_bytes: a later search in this process skips the traces


def member_bytes(model: BuiltModel, hp: Mapping[str, jax.Array], x: jax.ShapeDtypeStruct | None = None) -> int:
    """The largest buffer one member streams through a step: its params (gradients and moments
    are the same size) or, given a batch x, its largest activation (a convolution's output
    dwarfs its kernel). hp: one member's settings (scalars). Traces the model once per process
    (0.1 s for an MLP: seven width groups re-traced cost a later 2-epoch search a fifth of its
    time); runs nothing."""
    try:
        key = (model, tuple((name, np.asarray(v).dtype.str, np.asarray(v).tobytes()) for name, v in sorted(hp.items())),
               None if x is None else (x.shape, str(x.dtype)), bool(jax.config.jax_enable_x64))
        hash(key)
    except TypeError:  # a model that cannot be a dict key: traced every time
        return _member_bytes(model, hp, x)
    if key not in _MEMBER_BYTES:
        if len(_MEMBER_BYTES) >= 256:  # models compared by identity would otherwise pile up
            _MEMBER_BYTES.clear()
        _MEMBER_BYTES[key] = _member_bytes(model, hp, x)
    return _MEMBER_BYTES[key]


def _member_bytes(model: BuiltModel, hp: Mapping[str, jax.Array], x: jax.ShapeDtypeStruct | None) -> int:
    shapes = jax.eval_shape(lambda key: model.init(key, hp), jax.random.key(0))
    params = int(sum(np.prod(leaf.shape) * leaf.dtype.itemsize for leaf in jax.tree.leaves(shapes[0])))
    if x is None:
        return params
    jaxpr = jax.make_jaxpr(lambda p, s, x: model.apply(p, s, x, hp, train=True, key=jax.random.key(0)))(
        *shapes, x)
    return max(params, _largest_value_bytes(jaxpr.jaxpr))


def _largest_value_bytes(jaxpr) -> int:
    """The largest value (bytes) a jaxpr computes, its inner jaxprs (pjit, scan, cond) included."""
    largest = 0
    for eqn in jaxpr.eqns:
        for var in eqn.outvars:
            aval = var.aval
            if hasattr(aval, "shape") and not jax.dtypes.issubdtype(aval.dtype, jax.dtypes.prng_key):
                largest = max(largest, int(np.prod(aval.shape)) * np.dtype(aval.dtype).itemsize)
        for param in eqn.params.values():
            for inner in param if isinstance(param, (tuple, list)) else (param,):
                inner = getattr(inner, "jaxpr", inner)  # a ClosedJaxpr holds its Jaxpr
                if hasattr(inner, "eqns"):
                    largest = max(largest, _largest_value_bytes(inner))
    return largest


def _member_block(built: BuiltModel, space: Space, requested: int | None, data: Dataset, batch: int) -> int:
    """Members per block: `requested`, or when None the automatic size for the built network (its
    padded shape and one batch set the buffer bytes, so one sampled member measures every member)."""
    if requested is not None:
        return requested
    x = jax.ShapeDtypeStruct((batch,) + data.input_shape, data.X_train.dtype)
    return default_member_block(member_bytes(built, one_member(space), x))
