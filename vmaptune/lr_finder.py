"""Learning-rate range test (Smith, 2017; fast.ai's "LR finder"), the whole population at once.

    result = vt.lr_range_test(vt.MLP(), data)            # 3 seeds, SGD, 1e-5 -> 10 over 300 steps
    result.suggested_lr                                  # rate at the loss minimum / 10
    space = vt.Space(learning_rate=result.to_space_entry())   # a log-uniform range around it
    result.plot("lr_range.png")

Every member takes one optimizer step per step at the same learning rate, which grows
exponentially: lr_t = min_lr * (max_lr / min_lr) ** (t / (steps - 1)). The rate is written into
each member's `inject_hyperparams` state, so a new range reuses the compiled program. Members are
optimizer x batch size x seed, trained in one jit(vmap(lax.scan)) program on a shared minibatch
order (a member with a smaller batch uses the first rows of the step's largest batch, the rest
weigh 0); members with the same seed start from the same weights.

The loss is smoothed by an exponential moving average with bias correction (beta 0.98, as fast.ai).
A member stops once its smoothed loss exceeds `stop_factor` x its best smoothed loss (for a loss that
falls to 0 or below, once it rises above its best by (stop_factor - 1) x a scale of its own: see
stop_limit), or its loss or weights turn non-finite: from then on it is frozen (an exact no-op) and its
losses are NaN.
"""

from __future__ import annotations

import collections
import dataclasses
import math
import numbers
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from vmaptune import engine, streams
from vmaptune.data import Dataset
from vmaptune.metrics import FIXED_ONLY
from vmaptune.models.base import Model
from vmaptune.optim import OPTIMIZERS
from vmaptune.program import updates_state
from vmaptune.space import Choice, Fixed, LogUniform, Space

__all__ = ["lr_range_test", "LRRangeTestResult", "LRSuggestion", "ema_smooth"]

#: How many times the range-test program was traced (a trace = a compile); tests read it.
TRACE_COUNTS: collections.Counter = collections.Counter()

# Space names the range test sets itself -> how to set them instead.
_RESERVED = {
    "learning_rate": "the range test ramps it from min_lr to max_lr",
    "optimizer": "pass optimizer='sgd' (or a list of kinds) to lr_range_test instead",
    "batch_size": "pass batch_size=64 (or a list of sizes) to lr_range_test instead",
    "schedule": "a schedule would rescale the ramp; the range test uses a constant schedule",
    "warmup_steps": "a warm-up would rescale the ramp",
    "decay_rate": "a decay would rescale the ramp",
    "decay_steps": "a decay would rescale the ramp",
}


# -- smoothing and suggestion (host, numpy) ----------------------------------------------------------
def ema_smooth(losses: Any, beta: float = 0.98) -> np.ndarray:
    """Bias-corrected exponential moving average along the last axis: (..., steps) -> same shape.

    s_t = a_t / (1 - beta ** (t + 1)), a_t = beta * a_{t-1} + (1 - beta) * loss_t, a_{-1} = 0.
    Once a loss is NaN every later value is NaN (a stopped member has no curve).
    """
    losses = np.asarray(losses, np.float64)
    avg = np.zeros(losses.shape[:-1])
    out = np.empty_like(losses)
    for t in range(losses.shape[-1]):
        avg = beta * avg + (1 - beta) * losses[..., t]
        out[..., t] = avg / (1 - beta ** (t + 1))
    return out


@dataclasses.dataclass(frozen=True)
class LRSuggestion:
    """What the range test suggests for one (optimizer, batch size) group, from its mean-over-seeds
    smoothed curve. Rates are NaN where the curve does not define them (see `warnings`).

    lr_at_min: rate at the minimum of the curve. lr_min_tenth: lr_at_min / 10.
    lr_steepest: rate of the most negative d(loss)/d(log lr) before the minimum.
    suggested: lr_min_tenth (Smith's / fast.ai's rule). low, high: a log-uniform range to search,
      [min(lr_steepest, lr_at_min / 30) (but >= lr_at_min / 1000), lr_at_min / 2], clipped to
      [min_lr, max_lr].
    """

    optimizer: str
    batch_size: int
    lr_at_min: float
    lr_min_tenth: float
    lr_steepest: float
    suggested: float
    low: float
    high: float
    min_loss: float
    warnings: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        """True when the curve gave a suggestion."""
        return math.isfinite(self.suggested)

    def to_space_entry(self, fixed: bool = False) -> LogUniform | Fixed:
        """vt.LogUniform(low, high) to search, or vt.Fixed(suggested) with fixed=True."""
        if not self.ok:
            raise ValueError(f"the range test gave no learning rate for optimizer={self.optimizer!r}, "
                             f"batch_size={self.batch_size}: {' '.join(self.warnings)}")
        return Fixed(float(self.suggested)) if fixed else LogUniform(float(self.low), float(self.high))


def _first_invalid(curve: np.ndarray) -> int:
    """Number of leading finite values of a 1-D curve."""
    bad = np.flatnonzero(~np.isfinite(curve))
    return int(bad[0]) if len(bad) else len(curve)


#: Passes over the training rows past which a range test's falling loss may be the network learning
#: (memorising) the rows more than the rate working: the suggestion is then said to be doubtful.
#: On digits (1079 rows) adam's suggestion trained well up to 36 passes and failed at 59 (0.11
#: accuracy at lr 1.0); on wine it failed at 91.
MAX_PASSES = 25.0


def suggest(learning_rates: np.ndarray, smoothed: np.ndarray, *, optimizer: str = "sgd",
            batch_size: int = 0, train_rows: int | None = None, stop_factor: float = 4.0) -> LRSuggestion:
    """Suggestion from smoothed curves of one group's seeds: (seeds, steps) against (steps,) rates.

    The group curve is the mean over seeds, kept only up to the first step where some seed has
    stopped (a rate at which any seed blew up is no candidate). train_rows: the rows the test
    draws its batches from (with batch_size, how many passes over them it made: see MAX_PASSES).
    A curve whose lowest value after the warm-up is still above stop_factor x its first step's loss
    (its level over FIRST_STEPS steps where batch_size < FIRST_ROWS) blew up in the warm-up, which
    no stop watches: no suggestion.
    """
    lrs = np.asarray(learning_rates, np.float64)
    curve = np.mean(np.asarray(smoothed, np.float64), axis=0)
    steps = len(lrs)
    n = _first_invalid(curve)
    skip = max(1, steps // 10)  # the first smoothed values average only a few noisy losses
    nan = float("nan")
    if n < skip + 2:
        why = (f"the loss blew up within the first {n} of {steps} steps (rate {lrs[max(n - 1, 0)]:.3g}); "
               f"lower min_lr (now {lrs[0]:.3g}).")
        return LRSuggestion(optimizer, int(batch_size), nan, nan, nan, nan, nan, nan, nan, (why,))
    curve = curve[:n]
    i_min = skip + int(np.argmin(curve[skip:]))  # (the first values average only a few losses)
    # A loss that blew up in the warm-up (no stop watches it) and never came back is refused: judged
    # against its first step's loss (adam from 1 on digits rose 3 -> 3900 in one step), or, where that
    # step's minibatch is too small to stand for the loss (fewer than FIRST_ROWS rows, which every seed
    # shares: at batch_size=1 one row, 0.006 where the rest read 1.5), against its level over its first
    # steps (FIRST_STEPS), with a warning only against the first step's.
    first, level = float(curve[0]), float(curve[min(FIRST_STEPS, skip) - 1])
    few = 0 < batch_size < FIRST_ROWS
    above = lambda reference: curve[i_min] > reference + (stop_factor - 1) * abs(reference)  # noqa: E731
    lowest = (f"its lowest after them, {curve[i_min]:.3g} (rate {lrs[i_min]:.3g}), is above stop_factor="
              f"{stop_factor:g} x")
    if above(level if few else first):
        said = (f"its level over the first {min(FIRST_STEPS, skip)} steps ({level:.3g})" if few else
                f"its first step's ({first:.3g})")
        why = (f"the loss blew up within the first {skip} of {steps} steps (rates up to {lrs[skip - 1]:.3g}) and "
               f"never came back: {lowest} {said}; lower min_lr (now {lrs[0]:.3g}).")
        return LRSuggestion(optimizer, int(batch_size), nan, nan, nan, nan, nan, nan, float(curve[i_min]), (why,))
    warnings: list[str] = []
    blown = few and above(first)
    if blown:
        warnings.append(f"the loss may have blown up from its first steps (rates from {lrs[0]:.3g}) and not come "
                        f"back: {lowest} its first step's ({first:.3g}); lower min_lr, unless that first minibatch's "
                        f"loss ({batch_size} row(s)) lay far below the rest (see the plot).")
    passes = steps * batch_size / train_rows if train_rows and batch_size else 0.0
    many_passes = passes > MAX_PASSES
    if many_passes:  # (small data: a rate too high to train well still finds the loss low after many passes)
        fewer = max(int(MAX_PASSES * train_rows / batch_size), 1)
        warnings.append(f"the test's {steps} steps of {batch_size} rows made {passes:.0f} passes over the "
                        f"{train_rows} training rows, so the loss may have fallen because the network learned those "
                        f"rows rather than because of the rate, which moves the minimum to rates too high to train "
                        f"with: try the suggestion in a short run, or test again with steps={fewer} or fewer (at "
                        f"most {MAX_PASSES:g} passes) or a smaller batch_size.")
    if i_min == steps - 1 and not many_passes and not blown:
        warnings.append(f"the loss was still falling at max_lr={lrs[-1]:.3g}; raise max_lr.")
    if i_min <= skip:
        warnings.append(f"the loss was lowest among the first rates (minimum at {lrs[i_min]:.3g}); "
                        f"lower min_lr (now {lrs[0]:.3g}).")
    start = float(np.median(curve[:skip + 1]))  # (not curve[0] alone: one minibatch's loss, high or low by chance)
    if start - curve[i_min] < 0.02 * abs(start):  # (a fall under 2% of the start's size, whatever its sign)
        warnings.append("the loss hardly fell anywhere in the range; check the data, the model and the range.")
    lr_at_min = float(lrs[i_min])
    slope = np.gradient(curve, np.log(lrs[:n])) if n > 1 else np.zeros(1)
    if i_min > skip:
        i_steep = skip + int(np.argmin(slope[skip:i_min + 1]))
        lr_steepest = float(lrs[i_steep])
    else:
        lr_steepest = nan
    lo_lr, hi_lr = float(lrs[0]), float(lrs[-1])
    # Search from the steepest descent (kept between 1.5 and 3 decades below the minimum) up to half
    # the minimum: there the loss has stopped falling but not yet blown up.
    low = lr_at_min / 30 if not math.isfinite(lr_steepest) else min(lr_steepest, lr_at_min / 30)
    low = max(low, lr_at_min / 1000)
    low, high = max(low, lo_lr), min(max(lr_at_min / 2, lo_lr), hi_lr)
    if not low < high:  # squeezed against min_lr: widen by a decade upwards
        high = min(low * 10, hi_lr) if low < hi_lr else hi_lr
        low = max(min(low, high / 10), lo_lr)  # (never below min_lr: rates the test did not try)
    return LRSuggestion(
        optimizer=optimizer, batch_size=int(batch_size), lr_at_min=lr_at_min, lr_min_tenth=lr_at_min / 10,
        lr_steepest=lr_steepest, suggested=lr_at_min / 10, low=float(low), high=float(high),
        min_loss=float(curve[i_min]), warnings=tuple(warnings),
    )


# -- result ------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True, eq=False)
class LRRangeTestResult:
    """What `lr_range_test` returns. P members, `steps` steps.

    learning_rates: (steps,) rate of each step. losses: (P, steps) raw minibatch loss before each
      step's update (NaN after the member stopped). smoothed: (P, steps) bias-corrected EMA of it.
    seed, optimizer, batch_size: (P,) member labels. stopped_at: (P,) step at which the member
      stopped (its last recorded loss), or `steps` if it ran through.
    suggestions: one `LRSuggestion` per (optimizer, batch size) group. settings: the arguments.
    """

    learning_rates: np.ndarray
    losses: np.ndarray
    smoothed: np.ndarray
    seed: np.ndarray
    optimizer: np.ndarray
    batch_size: np.ndarray
    stopped_at: np.ndarray
    suggestions: tuple[LRSuggestion, ...]
    settings: dict

    def suggestion(self, optimizer: str | None = None, batch_size: int | None = None, *,
                   _called: str = "suggestion") -> LRSuggestion:
        """The suggestion of one group; optimizer / batch_size may be left out when they have one value."""
        found = [s for s in self.suggestions if (optimizer is None or s.optimizer == optimizer)
                 and (batch_size is None or s.batch_size == batch_size)]
        if len(found) != 1:
            groups = [(s.optimizer, s.batch_size) for s in self.suggestions]
            what = "matches no group" if not found else "matches several groups"
            example = found[0] if found else next((s for s in self.suggestions if s.optimizer == optimizer or
                                                   s.batch_size == batch_size), self.suggestions[0])
            raise ValueError(f"optimizer={optimizer!r}, batch_size={batch_size!r} {what}; the groups "
                             f"(optimizer, batch_size) are {groups}: name one, e.g. result.{_called}("
                             f"optimizer={example.optimizer!r}, batch_size={example.batch_size}).")
        return found[0]

    @property
    def suggested_lr(self) -> float:
        """The suggested learning rate (one group only; else use `.suggestion(optimizer=, batch_size=)`)."""
        return self.suggestion().suggested

    @property
    def suggested_range(self) -> tuple[float, float]:
        """(low, high) log-uniform search range (one group only)."""
        s = self.suggestion()
        return s.low, s.high

    def to_space_entry(self, optimizer: str | None = None, batch_size: int | None = None, *,
                       fixed: bool = False) -> LogUniform | Fixed:
        """vt.LogUniform(low, high) for a space's learning_rate, or vt.Fixed(suggested_lr) with fixed=True."""
        return self.suggestion(optimizer, batch_size, _called="to_space_entry").to_space_entry(fixed=fixed)

    def to_dataframe(self) -> pd.DataFrame:
        """Long table: one row per member and step (member, seed, optimizer, batch_size, step,
        learning_rate, loss, smoothed)."""
        p, steps = self.losses.shape
        return pd.DataFrame({
            "member": np.repeat(np.arange(p), steps),
            "seed": np.repeat(self.seed, steps),
            "optimizer": np.repeat(self.optimizer, steps),
            "batch_size": np.repeat(self.batch_size, steps),
            "step": np.tile(np.arange(steps), p),
            "learning_rate": np.tile(self.learning_rates, p),
            "loss": self.losses.reshape(-1),
            "smoothed": self.smoothed.reshape(-1),
        })

    def summary(self) -> str:
        """One line per group: suggested rate, steepest point, minimum and search range."""
        lines = []
        for s in self.suggestions:
            lines.append(f"{s.optimizer}, batch {s.batch_size}: suggested lr {s.suggested:.3g} "
                         f"(minimum at {s.lr_at_min:.3g}, steepest at {s.lr_steepest:.3g}); "
                         f"search LogUniform({s.low:.3g}, {s.high:.3g})")
            lines += [f"  warning: {w}" for w in s.warnings]
        return "\n".join(lines)

    def plot(self, path: str) -> str:
        """Loss against learning rate (log x): raw losses faint, smoothed per seed, the group mean
        bold, the suggestion (o), steepest point (v) and search range (bar) -> PNG at `path`."""
        from vmaptune.plots import _pyplot, _save

        plt = _pyplot()
        fig, ax = plt.subplots(figsize=(7.5, 4.5))
        lrs = self.learning_rates
        colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
        for g, s in enumerate(self.suggestions):
            color = colors[g % len(colors)]
            rows = (self.optimizer == s.optimizer) & (self.batch_size == s.batch_size)
            for raw, smooth in zip(self.losses[rows], self.smoothed[rows]):
                ax.plot(lrs, raw, color=color, alpha=0.12, lw=0.6)
                ax.plot(lrs, smooth, color=color, alpha=0.45, lw=0.8)
            mean = np.mean(self.smoothed[rows], axis=0)
            label = f"{s.optimizer}, batch {s.batch_size}"
            ax.plot(lrs, mean, color=color, lw=2.2, label=f"{label}: suggested lr {s.suggested:.3g}")
            if s.ok:
                at = lambda lr: np.interp(np.log(lr), np.log(lrs), np.where(np.isfinite(mean), mean, np.nan))
                ax.plot([s.suggested], [at(s.suggested)], "o", color=color, ms=8, mec="black")
                if math.isfinite(s.lr_steepest):
                    ax.plot([s.lr_steepest], [at(s.lr_steepest)], "v", color=color, ms=8, mec="black")
                if len(self.suggestions) == 1:
                    ax.axvspan(s.low, s.high, color=color, alpha=0.08)
                # the search range as a bar along the bottom (one row per group: shades would overlap)
                ax.plot([s.low, s.high], [0.03 + 0.03 * g] * 2, color=color, lw=4, solid_capstyle="butt",
                        transform=ax.get_xaxis_transform())
        finite = self.smoothed[np.isfinite(self.smoothed)]
        if finite.size:
            start = self.smoothed[:, : max(1, len(lrs) // 10)]
            top = np.nanmax(start) if np.isfinite(start).any() else finite.max()
            top += 0.3 * abs(top)  # (30% above it, whatever its sign)
            level = self.smoothed[:, min(FIRST_STEPS, len(lrs)) - 1]  # (the loss's level as the test starts)
            level = level[np.isfinite(level)]
            if level.size:  # (at most 4x that level: a warm-up that blew up reached 1e28)
                top = min(top, level.max() + 3 * abs(level.max()))
            bottom = min(np.nanmin(np.where(np.isfinite(self.losses), self.losses, np.nan)), finite.min())
            low = bottom - 0.05 * (top - bottom)
            ax.set_ylim(max(0.0, low) if bottom >= 0 else low, top)  # (a loss that goes below 0 is drawn there)
        ax.set(xscale="log", xlabel="learning rate", ylabel="training loss",
               title="learning-rate range test (o suggested, v steepest, bar: search range)")
        ax.legend(fontsize=8)
        fig.tight_layout()
        return _save(fig, str(path))


# -- the compiled program ---------------------------------------------------------------------------
def learning_rate_ramp(min_lr: float, max_lr: float, steps: int) -> np.ndarray:
    """(steps,) float32: min_lr * (max_lr / min_lr) ** (t / (steps - 1)), exactly min_lr and max_lr at the ends."""
    return np.geomspace(min_lr, max_lr, steps).astype(np.float32)


#: Steps whose smoothed loss is the loss's level as a range test starts, and the rows a first
#: minibatch needs to stand for it alone (a warm-up that blew up is judged against them: see suggest).
FIRST_STEPS = 5
FIRST_ROWS = 16

#: A loss's rise is measured against at least this share of its fall from its first value (see stop_limit).
RISE_FLOOR = 0.02


def stop_limit(best, first, stop_factor):
    """The smoothed loss above which a member stops: best + (stop_factor - 1) x scale, the scale the
    larger of |best| and RISE_FLOOR x (first - best), first the loss before the first step. For a
    best above that floor it is stop_factor x best, as Smith's rule; a loss that falls to 0 or below
    (a Gaussian negative log-likelihood) is stopped by a rise on its own scale (stop_factor x a
    negative best is below the best itself, and stopped every member at once). inf with
    stop_factor=inf; NaN (never stops, "not above") where the scale is 0."""
    floor = RISE_FLOOR * (first - best)
    return jnp.where(best >= floor, stop_factor * best,  # (written so: bit for bit Smith's rule there)
                     best + (stop_factor - 1) * jnp.maximum(jnp.abs(best), floor))


def initial_members(program: engine.Program, hp, member_ids, members_key):
    """The range test's members before their first step -> (params, opt_state, model_state, keys,
    controls): the engine's own initialisation. With members_key = streams.stream(seed, "members"),
    as here, member id i starts from the weights vt.tune gives member i with the same seed."""
    controls = program.controls(hp, 1, 1)  # a constant schedule: no schedule length is read
    return (*engine.init_members(program, hp, controls, member_ids, members_key), controls)


def _range_test(program: engine.Program, hp, member_ids, X, y, lrs, members_key, order_key, stop_factor, beta,
                row_weights=None, *, steps: int):
    """-> losses (steps, P), smoothed (steps, P), stopped_at (P,). One compiled program.
    row_weights: (n,) the rows' weights in the loss (the data's sample_weight), or None."""
    TRACE_COUNTS["range_test"] += 1
    params, opt_state, model_state, member_keys, controls = initial_members(program, hp, member_ids, members_key)
    masks = engine.update_masks(program, hp)
    p, n_train, batch = member_ids.shape[0], X.shape[0], program.batch_size
    # Shared minibatch order: consecutive epochs' permutations of the search's order stream, cut into
    # steps of the largest batch (the same batches a search's first epochs see).
    n_epochs = -(-steps * batch // n_train)
    perms = jax.vmap(lambda e: jax.random.permutation(jax.random.fold_in(order_key, e), n_train))(
        jnp.arange(n_epochs))
    indices = perms.reshape(-1)[: steps * batch].reshape(steps, batch)
    weights = None
    if program.variable_batch:  # a member with batch b uses the step's first b rows
        weights = (jnp.arange(batch)[None, :] < controls.batch_size[:, None]).astype(jnp.float32)

    def member_step(params, opt_state, model_state, key, hp_m, total_steps, mask_m, active, avg, best, first, w,
                    xb, yb, lr, t):
        opt_state = program.optimizer.with_learning_rate(opt_state, lr)
        new_params, new_opt, new_model_state, loss, ok = engine.member_update(
            program, params, opt_state, model_state, key, hp_m, total_steps, mask_m, xb, yb, w, t)
        new_avg = beta * avg + (1 - beta) * loss
        smooth = new_avg / (1 - beta ** (t + 1).astype(jnp.float32))
        first = jnp.where(t == 0, loss, first)  # (the loss before the first step)
        # best stays +inf through the warm-up (the first tenth of the steps, which suggest skips):
        # the smoothed loss there averages only a few minibatches, and a stop on their noise took a
        # group's suggestion away; only a non-finite loss or weights stop a member there. Written
        # as "not above" so that an undefined limit (inf x 0 with stop_factor=inf) never stops one.
        take = active & ok & ~(smooth > stop_limit(best, first, stop_factor))
        counted = take & (t + 1 >= max(1, steps // 10))
        nan = jnp.float32(jnp.nan)
        return (engine.select(take, new_params, params), engine.select(take, new_opt, opt_state),
                engine.select(take, new_model_state, model_state),
                jnp.where(take, new_avg, avg), jnp.where(counted, jnp.minimum(best, smooth), best), first, take,
                jnp.where(active & jnp.isfinite(loss), loss, nan),
                jnp.where(active & jnp.isfinite(smooth), smooth, nan))

    vstep = jax.vmap(member_step, in_axes=(0, 0, 0, 0, 0, 0, 0 if masks is not None else None, 0, 0, 0, 0,
                                           0 if weights is not None else None, None, None, None, None))

    def step_body(carry, inputs):
        params, opt_state, model_state, active, avg, best, first, stopped_at = carry
        idx, lr, t = inputs
        xb, yb = X[idx], y[idx]  # shared order: one gather for every member
        w = weights  # (a per-member weight only where batch sizes differ; a row's weight is every member's)
        if row_weights is not None:
            w = row_weights[idx] if weights is None else weights * row_weights[idx]
        params, opt_state, model_state, avg, best, first, still, loss, smooth = vstep(
            params, opt_state, model_state, member_keys, hp, controls.total_steps, masks, active, avg, best,
            first, w, xb, yb, lr, t)
        stopped_at = jnp.where(active & ~still, t, stopped_at)
        return (params, opt_state, model_state, still, avg, best, first, stopped_at), (loss, smooth)

    carry = (params, opt_state, model_state, jnp.ones(p, bool), jnp.zeros(p, jnp.float32),
             jnp.full(p, jnp.inf, jnp.float32), jnp.zeros(p, jnp.float32), jnp.full(p, steps, jnp.int32))
    (*_, stopped_at), (losses, smoothed) = jax.lax.scan(
        step_body, carry, (indices, lrs, jnp.arange(steps, dtype=jnp.int32)))
    return losses, smoothed, stopped_at


_run_range_test = jax.jit(_range_test, static_argnames=("program", "steps"))


# -- checks, before anything compiles ----------------------------------------------------------------
def _check_positive_int(name: str, value: Any, minimum: int, example: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name}={value!r} must be an integer; use e.g. {example}.")
    if value < minimum:
        raise ValueError(f"{name}={value!r} is too small: use {name} >= {minimum}, e.g. {example}.")
    return int(value)


def _check_real(name: str, value: Any, example: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}={value!r} must be a number; use e.g. {example}.")
    return float(value)


def _as_list(name: str, value: Any) -> list:
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, (str, numbers.Number)):
        return [value]
    if isinstance(value, Sequence) and len(value) > 0:
        values = list(value)
        if len(set(values)) != len(values):
            raise ValueError(f"{name}={value!r} lists a value twice; list each once.")
        return values
    raise ValueError(f"{name}={value!r} must be one value or a non-empty list of values.")


def _check_arguments(model, data, space, min_lr, max_lr, steps, seeds, optimizer, batch_size,
                     stop_factor, beta, seed):
    """-> (optimizers, batch sizes, space or None). Every error names the argument, value and fix."""
    if not isinstance(data, Dataset):
        raise TypeError(f"data must be a vt.Dataset (vt.load_dataset or vt.Dataset.from_arrays), "
                        f"got {type(data).__name__}.")
    if not isinstance(model, Model):
        raise TypeError(f"model must be a vt.MLP() or another vt model (a flax module of yours wrapped: "
                        f"vt.Linen(YourModule) or vt.Nnx(YourModule)), got {model!r}.")
    lo = _check_real("min_lr", min_lr, "min_lr=1e-5")
    hi = _check_real("max_lr", max_lr, "max_lr=10.0")
    for name, v, ex in (("min_lr", lo, "min_lr=1e-5"), ("max_lr", hi, "max_lr=10.0")):
        if not math.isfinite(v):
            raise ValueError(f"{name}={v!r} must be finite; use e.g. {ex}.")
        if v <= 0:
            raise ValueError(f"{name}={v!r} must be > 0: the rate ramps on a log scale; use e.g. {ex}.")
    if lo >= hi:
        raise ValueError(f"min_lr={min_lr!r} must be < max_lr={max_lr!r}: the rate ramps up from min_lr to "
                         f"max_lr; swap them or widen the range, e.g. min_lr=1e-5, max_lr=10.0.")
    _check_positive_int("steps", steps, 10, "steps=300 (a few hundred steps give a smooth curve)")
    _check_positive_int("seeds", seeds, 1, "seeds=3")
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"seed={seed!r} must be an integer, e.g. seed=0.")
    factor = _check_real("stop_factor", stop_factor, "stop_factor=4.0")
    if not factor > 1:
        raise ValueError(f"stop_factor={stop_factor!r} must be > 1 (a member stops once its smoothed loss "
                         f"exceeds stop_factor x its best); use e.g. stop_factor=4.0.")
    b = _check_real("beta", beta, "beta=0.98")
    if not 0 <= b < 1:
        raise ValueError(f"beta={beta!r} must be in [0, 1) (the smoothing weight; 0 = no smoothing); "
                         f"use e.g. beta=0.98.")
    if callable(optimizer):  # (vt.tune takes one; the test ramps a built-in kind's learning rate itself)
        raise ValueError(f"optimizer={optimizer!r}: lr_range_test takes built-in optimizer names (one of "
                         f"{list(OPTIMIZERS)}, or a list of them), not an optax factory of yours: test the nearest "
                         f"built-in kind (e.g. 'adamw' for optax.adamw), with its other settings fixed in "
                         f"space=vt.Space(...).")
    optimizers = _as_list("optimizer", optimizer)
    unknown = [o for o in optimizers if o not in OPTIMIZERS]
    if unknown:
        raise ValueError(f"optimizer={optimizer!r}: {unknown} unknown; choose from {list(OPTIMIZERS)}.")
    sizes = _as_list("batch_size", batch_size)
    for s in sizes:
        if isinstance(s, bool) or not isinstance(s, numbers.Integral) or s < 1:
            raise ValueError(f"batch_size={batch_size!r}: {s!r} is not an integer >= 1; use e.g. batch_size=64.")
        if s > data.n_train:
            raise ValueError(f"batch_size={batch_size!r}: {s} is larger than the {data.n_train} training rows; "
                             f"use batch sizes <= {data.n_train}.")
    if space is not None:
        if not isinstance(space, Space):
            raise TypeError(f"space={space!r} must be a vt.Space of fixed values, e.g. "
                            f"vt.Space(momentum=vt.Fixed(0.9)), or None.")
        for name, dist in space.items():
            if name in _RESERVED:
                raise ValueError(f"space has {name}={dist!r}, which lr_range_test sets itself: {_RESERVED[name]}. "
                                 f"Drop {name!r} from the space.")
            if not isinstance(dist, Fixed):
                raise ValueError(f"space has {name}={dist!r}; the range test needs one value per hyperparameter: "
                                 f"use vt.Fixed(value) (search it later with vt.tune).")
    return [str(o) for o in optimizers], [int(s) for s in sizes], space


def lr_range_test(
    model: Any,
    data: Dataset,
    space: Space | None = None,
    *,
    min_lr: float = 1e-5,
    max_lr: float = 10.0,
    steps: int = 300,
    seeds: int = 3,
    optimizer: str | Sequence[str] = "sgd",
    batch_size: int | Sequence[int] = 64,
    stop_factor: float = 4.0,
    beta: float = 0.98,
    seed: int = 0,
) -> LRRangeTestResult:
    """Learning-rate range test of `model` on `data`'s training split, all members in one program.

    space: other hyperparameters, fixed (e.g. vt.Space(momentum=vt.Fixed(0.9))); None = the
      model's and optimizer's defaults. min_lr, max_lr, steps: the exponential ramp.
    seeds: initialisations per group. optimizer, batch_size: one value or a list; every
      combination is a group (optimizer x batch size x seeds members in all).
    stop_factor: a member stops once its smoothed loss exceeds stop_factor x its best (a best near or
      below 0: once it rises above it by (stop_factor - 1) x a scale of the loss's own, see
      stop_limit); inf never stops one.
    beta: EMA smoothing weight. seed: root of the init and minibatch randomness.
    """
    optimizers, sizes, user_space = _check_arguments(model, data, space, min_lr, max_lr, steps, seeds,
                                                     optimizer, batch_size, stop_factor, beta, seed)
    fixed = {name: dist for name, dist in user_space.items()} if user_space is not None else {}
    full = Space({**fixed, "learning_rate": Fixed(float(min_lr)), "optimizer": Choice(optimizers),
                  "batch_size": Choice(sizes)})
    labels = [(o, b, s) for o in optimizers for b in sizes for s in range(seeds)]
    rows = [{**{n: d.value for n, d in fixed.items()}, "learning_rate": float(min_lr), "optimizer": o,
             "batch_size": b} for o, b, _ in labels]
    hp = full.numeric(full.encode(rows))
    fixed_only = FIXED_ONLY.set(True)  # (a name the space lacks is advised as vt.Fixed alone: no distribution here)
    try:
        group = model.groups(full, data.spec, hp)[0][0]  # fixed values: one group (one structure)
        program = engine.build_program(model, full, data, batch_size=max(sizes), group=group)  # vt.tune's checks
    finally:
        FIXED_ONLY.reset(fixed_only)
    lrs = learning_rate_ramp(float(min_lr), float(max_lr), steps)
    member_ids = np.asarray([s for _, _, s in labels], np.int32)  # same seed -> same initial weights
    member_opt = np.asarray([o for o, _, _ in labels], dtype=object)
    member_bs = np.asarray([b for _, b, _ in labels])
    # A smaller batch steps on the first rows of the largest's, the rest weighing 0 in its loss; but
    # a model whose state each batch updates (BatchNorm's statistics) would take those rows into it:
    # each batch size then runs in a program of its own, as it would alone.
    parts = [(program, np.arange(len(labels)))]
    if len(sizes) > 1 and updates_state(program.model, full):
        parts = [(program.replace(batch_size=b, min_batch_size=b, variable_batch=False), np.flatnonzero(member_bs == b))
                 for b in sizes]
    losses, smoothed = np.empty((len(labels), int(steps)), np.float32), np.empty((len(labels), int(steps)), np.float32)
    stopped_at = np.empty(len(labels), np.int32)
    for part, members in parts:
        part_losses, part_smoothed, part_stopped = jax.device_get(_run_range_test(
            part, {k: v[members] for k, v in hp.items()}, jnp.asarray(member_ids[members]), data.X_train, data.y_train,
            jnp.asarray(lrs), streams.stream(seed, "members"), streams.stream(seed, "order"), jnp.float32(stop_factor),
            jnp.float32(beta), getattr(data, "w_train", None), steps=int(steps)))
        losses[members], smoothed[members], stopped_at[members] = \
            np.asarray(part_losses).T, np.asarray(part_smoothed).T, part_stopped
    suggestions = tuple(
        suggest(lrs, smoothed[(member_opt == o) & (member_bs == b)], optimizer=o, batch_size=b,
                train_rows=data.n_train, stop_factor=float(stop_factor))
        for o in optimizers for b in sizes)
    settings = {"min_lr": float(min_lr), "max_lr": float(max_lr), "steps": int(steps), "seeds": int(seeds),
                "optimizer": optimizers, "batch_size": sizes, "stop_factor": float(stop_factor),
                "beta": float(beta), "seed": int(seed), "model": repr(model),
                "space": repr(user_space), "dataset": getattr(data, "name", "?")}
    return LRRangeTestResult(
        learning_rates=lrs.astype(np.float64), losses=losses, smoothed=smoothed,
        seed=np.asarray([s for _, _, s in labels]), optimizer=member_opt, batch_size=member_bs,
        stopped_at=np.asarray(stopped_at), suggestions=suggestions, settings=settings)
