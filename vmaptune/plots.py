"""Plots of a search (matplotlib, headless): learning curves of the best members, and the
validation score against each hyperparameter in its own scale."""

from __future__ import annotations

import numbers
import os

import numpy as np

from vmaptune.results import Results
from vmaptune.space import IntLogUniform, LogUniform, OneMinusLogUniform


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only: works without a display, in CI and over ssh
    import matplotlib.pyplot as plt

    return plt


#: How far past the others a value must lie to be left off an axis: a thousand times their scale.
EXPLODED = 1000.0
#: The most curves plot_curves names in a legend (past it the legend outgrows the figure).
LEGEND_ROWS = 20


def _bulk(values: np.ndarray, log: bool = False) -> tuple[float, float, float] | None:
    """(low, high, cut) for an axis over the finite `values` (higher is better): a member that
    exploded without going NaN (a score of -5e25) would squash every other point into one line, so
    values under `cut` (-inf when none) are left beyond the axis. Only the bad end is cut: the best
    members always show. None when no value is finite.

    A value is cut only when it lies more than EXPLODED (1000) times the others' scale below their
    median: the scale is the largest of their spread (twice the median absolute deviation, about
    the interquartile range, robust to almost half of the values exploding), their size (|median|)
    and the best value's distance above the median. A merely bad member (a chance-level accuracy,
    an mse ten times the others') is a normal point, and scores that cannot go below 0 (accuracy,
    in [0, 1]) are never cut: none lies further below the median than the median itself. log=True: the values are
    log10s of a log axis's values; a value is cut when it lies more than 10 spreads and at least
    log10(EXPLODED) (3) decades below the median."""
    v = values[np.isfinite(values)]
    if v.size == 0:
        return None
    median = float(np.median(v))
    spread = 2.0 * float(np.median(np.abs(v - median)))
    if log:
        room = max(10.0 * spread, np.log10(EXPLODED))
    else:
        room = EXPLODED * (max(spread, abs(median), float(v.max()) - median) or 1.0)
    cut = median - room
    kept = v[v >= cut]
    low, high = float(kept.min()), float(kept.max())
    pad = 0.05 * (high - low) or 0.05 * abs(high) or 0.05
    return low - pad, high + pad, (cut if (v < cut).any() else -np.inf)


def _ylim(ax, bulk, sign: float) -> float:
    """Sets ax's y-limits from _bulk's (low, high) shown with `sign`; -> the y of the worst edge."""
    low, high = sorted((sign * bulk[0], sign * bulk[1]))
    ax.set_ylim(low, high)
    return low if sign > 0 else high


def plot_curves(results: Results, path: str, k: int = 10) -> str:
    """Validation score and training loss per epoch of the k best members -> PNG at `path`, each
    member's up to its epochs_trained (a pruned or stopped member's curves carry its last value on).
    The score is drawn at the epochs it was measured (`evaluate_every=k`: every k-th and each
    member's last: results.validated()), not at the epochs between, whose curves carry the last one on."""
    if isinstance(k, bool) or not isinstance(k, numbers.Integral) or k < 1:
        raise ValueError(f"plot_curves(k={k!r}): k is how many of the best members to draw, an integer >= 1 "
                         f"(e.g. k=10).")
    plt = _pyplot()
    val = np.array(results.curves.get("val_score", np.zeros((len(results), 0))), float)
    loss = np.array(results.curves.get("train_loss", np.zeros_like(val)), float)
    untrained = np.zeros(val.shape, bool)
    if "epochs_trained" in results.members:  # (not drawn over epochs it never trained)
        trained = results.members["epochs_trained"].to_numpy(dtype=float)
        untrained = np.arange(val.shape[1])[None, :] >= np.nan_to_num(trained, nan=val.shape[1])[:, None]
        val[untrained], loss[untrained] = np.nan, np.nan
    # the score only where it was measured (a carried-on copy drew a flat step, then a jump never seen)
    validated = results.validated() & ~untrained if val.size else np.zeros(val.shape, bool)
    val[~validated] = np.nan
    # members with a point to draw (a diverged member's curves are NaN throughout)
    top = [i for i in results.ranking()[:k] if np.isfinite(val[i]).any() or np.isfinite(loss[i]).any()]
    if not top:  # an empty pair of axes (and a legend of nothing) would look like a broken plot
        fig, ax = plt.subplots(figsize=(11, 4))
        ax.axis("off")
        ax.text(0.5, 0.5, f"no member has a finite learning curve: all {len(results)} diverged or never scored",
                ha="center", va="center", fontsize=12)
        return _save(fig, path)
    from matplotlib.ticker import MaxNLocator

    fig, (ax_score, ax_loss) = plt.subplots(1, 2, figsize=(11, 4))
    sign = results.metric_sign
    epochs = np.arange(1, val.shape[1] + 1)
    colours = _colours(plt, len(top))
    for rank, i in enumerate(top):
        label = f"#{rank + 1} (member {results.members['member'].iloc[i]})"
        # (only the validated epochs: the line joins one measurement to the next)
        shown = val[i][validated[i]]
        ax_score.plot(epochs[validated[i]], sign * shown, label=label, color=colours[rank], **_isolated_marked(shown))
        ax_loss.plot(epochs, loss[i], color=colours[rank], **_isolated_marked(loss[i]))
    for ax in (ax_score, ax_loss):  # (epochs are whole: 3 epochs drew ticks at 1.25, 1.5, ...)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    title = f"top {len(top)} members"
    bulk = _bulk(val[top])
    if bulk is not None:
        _ylim(ax_score, bulk, sign)
        title += f" ({'larger' if sign < 0 else 'lower'} values off the axis)" if np.isfinite(bulk[2]) else ""
    positive = loss[top][np.isfinite(loss[top]) & (loss[top] > 0)]
    if positive.size:  # (a log axis: the bulk of -log10(loss), whose bad end is a large loss)
        bulk = _bulk(-np.log10(positive), log=True)
        ax_loss.set_ylim(10.0 ** -bulk[1], 10.0 ** -bulk[0])
    ax_score.set(xlabel="epoch", ylabel=f"validation {results.metric}", title=title)
    ax_loss.set(xlabel="epoch", ylabel="training loss", yscale="log", title="training loss")
    if len(top) <= LEGEND_ROWS:  # (more would not fit beside the curves: their colours go by rank)
        ax_score.legend(fontsize=7)
    fig.tight_layout()
    return _save(fig, path)


def _colours(plt, n: int) -> list:
    """n colours, one per curve, distinct: matplotlib's default cycle repeats after 10, so the
    11th best member was drawn in the best one's colour; tab20 holds 20, past that viridis' ramp."""
    if n <= 10:
        return [f"C{i}" for i in range(n)]
    if n <= 20:
        return [plt.get_cmap("tab20")(i) for i in range(n)]
    return [plt.get_cmap("viridis")(i / (n - 1)) for i in range(n)]


def _isolated_marked(y: np.ndarray) -> dict:
    """plot() keywords marking the finite points of `y` with no finite neighbour: a point is no
    line (a member that trained one epoch), and unmarked it is not drawn at all."""
    finite = np.isfinite(y)
    neighbour = np.zeros_like(finite)
    neighbour[1:] |= finite[:-1]
    neighbour[:-1] |= finite[1:]
    isolated = np.flatnonzero(finite & ~neighbour)
    return {"marker": "o", "markersize": 4, "markevery": isolated.tolist()} if isolated.size else {}


def plot_scores(results: Results, path: str) -> str:
    """Validation score against each searched hyperparameter -> PNG at `path`. Members without a
    score (diverged) and members that exploded to a finite score (over 1000x the others' scale
    below them, see _bulk) are drawn at the axis' worst edge; merely bad members are normal points."""
    plt = _pyplot()
    from matplotlib.ticker import MaxNLocator, NullFormatter

    names = list(results.space.free_names) or list(results.space.names)
    cols = min(3, len(names))
    rows = int(np.ceil(len(names) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3.2 * rows), squeeze=False)
    sign = results.metric_sign
    score = results.members["score"].to_numpy(dtype=float)
    ok = np.isfinite(score)
    bulk = _bulk(score)
    beyond = ok & (score < bulk[2]) if bulk is not None else np.zeros_like(ok)
    inside = ok & ~beyond
    active = results.space.active(results.hp)
    for ax, name in zip(axes.flat, names):
        dist = results.space[name]
        x = results.members[name]
        if dist.kind == "categorical":
            x = np.asarray(results.hp[name], float)
            ax.set_xticks(range(len(dist.options)), [str(o) for o in dist.options])
        x = np.asarray(x, float)
        if name in active:  # (a member whose setting does not use it has no point here: Space.only_when)
            x = np.where(active[name], x, np.nan)
        ax.scatter(x[inside], sign * score[inside], s=10, alpha=0.6)
        edge = _ylim(ax, bulk, sign) if bulk is not None else 0.0
        if bulk is None:  # no score to put on the axis
            ax.set_yticks([])
        if beyond.any():
            worst = sign * score[beyond][np.argmin(score[beyond])]
            many = beyond.sum()
            what = f"{many} exploded (worst {worst:.3g}" if many > 1 else f"exploded ({worst:.3g}"
            ax.scatter(x[beyond], np.full(many, edge), marker="v" if sign > 0 else "^", color="purple",
                       s=16, clip_on=False, label=f"{what}, over {EXPLODED:g}x the others' scale), drawn at the edge")
        if (~ok).any():
            ax.scatter(x[~ok], np.full((~ok).sum(), edge), marker="x", color="red", s=12, clip_on=False,
                       label="diverged (no score), drawn at the edge")
        if not np.isfinite(x).any():  # (no member uses it: an empty panel, on no scale)
            ax.set_title("used by no member", fontsize=9)
        elif isinstance(dist, (LogUniform, IntLogUniform)):
            ax.set_xscale("log")
            if dist.high >= 100 * dist.low:  # decades' labels are enough; 2x10^-2, 3x10^-2, ... overlap
                ax.xaxis.set_minor_formatter(NullFormatter())
            else:  # within a decade or two matplotlib labels the minor ticks: smaller, slanted, apart
                ax.tick_params(axis="x", which="minor", labelsize=7, labelrotation=30)
        elif isinstance(dist, OneMinusLogUniform):
            ax.set_xscale("function", functions=(lambda v: -np.log10(np.clip(1 - v, 1e-12, None)),
                                                 lambda t: 1 - 10.0 ** (-t)))
            # matplotlib's default ticks for this scale are linear in v and pile up near 1: put them
            # at the range's ends and at 0.9, 0.99, ... between
            ends = -np.log10(1 - np.asarray([dist.low, dist.high], float))
            decades = [1 - 10.0 ** -k for k in range(int(np.ceil(ends[0])), int(np.floor(ends[1])) + 1)]
            ticks = sorted({float(dist.low), float(dist.high), *decades})
            ticks = [t for i, t in enumerate(ticks) if i == 0 or -np.log10(1 - t) + np.log10(1 - ticks[i - 1]) > 0.2]
            ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
            # the margin in the scale's own units: matplotlib's, set in v before the scale, reached
            # past 1 and stretched the axis over twelve decades, the points in its first seventh
            margin = 0.05 * (ends[1] - ends[0])
            ax.set_xlim(1 - 10.0 ** -(ends[0] - margin), 1 - 10.0 ** -(ends[1] + margin))
        if dist.kind == "int" and not isinstance(dist, IntLogUniform):  # (no 1.5 layers on the axis)
            held = np.unique(x[np.isfinite(x)])
            if held.size == 1:  # (the view around one value holds one whole number: MaxNLocator gave up on
                # whole ones and drew 0.945, 0.96, ...)
                ax.set_xticks(held, [f"{held[0]:.0f}"])
            else:
                ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set(xlabel=name, ylabel=f"validation {results.metric}")
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    if beyond.any() or (~ok).any():  # every panel has the same members: one legend says what the marks are,
        # below the panels (its text is wider than a panel: inside one it covered the axis's label)
        handles, labels = axes.flat[0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=7, frameon=False)
        fig.tight_layout(rect=(0, 0.07, 1, 1))
    else:
        fig.tight_layout()
    return _save(fig, path)


def _save(fig, path: str) -> str:
    """Writes `fig` to `path` in the format its extension names, PNG when it names none that
    matplotlib writes (a path without one, or with a dot in its name: 'curves_lr0.01'); returns
    the path of the file written."""
    import matplotlib.pyplot as plt

    path = os.fspath(path)
    if os.path.splitext(path)[1][1:].lower() not in fig.canvas.get_supported_filetypes():
        path += ".png"
    try:  # (closed also when the file cannot be written: a caller may go on without it)
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        fig.savefig(path, dpi=110)
    finally:
        plt.close(fig)
    return path
