"""Plots of a search (matplotlib, headless): learning curves of the best members, and the
validation score against each hyperparameter in its own scale."""

from __future__ import annotations

import os

import numpy as np

from vmaptune.results import Results
from vmaptune.space import IntLogUniform, LogUniform, OneMinusLogUniform


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only: works without a display, in CI and over ssh
    import matplotlib.pyplot as plt

    return plt


def plot_curves(results: Results, path: str, k: int = 10) -> str:
    """Validation score and training loss per epoch of the k best members -> PNG at `path`."""
    plt = _pyplot()
    fig, (ax_score, ax_loss) = plt.subplots(1, 2, figsize=(11, 4))
    top = results.ranking()[:k]
    epochs = np.arange(1, results.curves["val_score"].shape[1] + 1)
    marker = "o" if len(epochs) == 1 else None  # one point is no line: mark it
    for rank, i in enumerate(top):
        label = f"#{rank + 1} (member {results.members['member'].iloc[i]})"
        ax_score.plot(epochs, results.curves["val_score"][i], label=label, marker=marker)
        ax_loss.plot(epochs, results.curves["train_loss"][i], marker=marker)
    ax_score.set(xlabel="epoch", ylabel=f"validation {results.metric}", title=f"top {len(top)} members")
    ax_loss.set(xlabel="epoch", ylabel="training loss", yscale="log", title="training loss")
    ax_score.legend(fontsize=7)
    fig.tight_layout()
    return _save(fig, path)


def plot_scores(results: Results, path: str) -> str:
    """Validation score against each searched hyperparameter (diverged members marked x)."""
    plt = _pyplot()
    from matplotlib.ticker import NullFormatter

    names = list(results.space.free_names) or list(results.space.names)
    cols = min(3, len(names))
    rows = int(np.ceil(len(names) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4 * cols, 3.2 * rows), squeeze=False)
    score = results.members["score"].to_numpy(dtype=float)
    ok = np.isfinite(score)
    floor = np.nanmin(score) if ok.any() else 0.0
    for ax, name in zip(axes.flat, names):
        dist = results.space[name]
        x = results.members[name]
        if dist.kind == "categorical":
            x = np.asarray(results.hp[name], float)
            ax.set_xticks(range(len(dist.options)), [str(o) for o in dist.options])
        x = np.asarray(x, float)
        ax.scatter(x[ok], score[ok], s=10, alpha=0.6)
        ax.scatter(x[~ok], np.full((~ok).sum(), floor), marker="x", color="red", s=12, label="diverged")
        if isinstance(dist, (LogUniform, IntLogUniform)):
            ax.set_xscale("log")
            if dist.high >= 100 * dist.low:  # decades' labels are enough; 2x10^-2, 3x10^-2, ... overlap
                ax.xaxis.set_minor_formatter(NullFormatter())
            else:  # within a decade or two matplotlib labels the minor ticks: smaller, slanted, apart
                ax.tick_params(axis="x", which="minor", labelsize=7, labelrotation=30)
        if isinstance(dist, OneMinusLogUniform):
            ax.set_xscale("function", functions=(lambda v: -np.log10(np.clip(1 - v, 1e-12, None)),
                                                 lambda t: 1 - 10.0 ** (-t)))
            # matplotlib's default ticks for this scale are linear in v and pile up near 1: put them
            # at the range's ends and at 0.9, 0.99, ... between
            ends = -np.log10(1 - np.asarray([dist.low, dist.high], float))
            decades = [1 - 10.0 ** -k for k in range(int(np.ceil(ends[0])), int(np.floor(ends[1])) + 1)]
            ticks = sorted({float(dist.low), float(dist.high), *decades})
            ticks = [t for i, t in enumerate(ticks) if i == 0 or -np.log10(1 - t) + np.log10(1 - ticks[i - 1]) > 0.2]
            ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
        ax.set(xlabel=name, ylabel=f"validation {results.metric}")
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    fig.tight_layout()
    return _save(fig, path)


def _save(fig, path: str) -> str:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=110)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path
