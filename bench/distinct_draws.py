"""What drawing distinct settings costs a random strategy's ask (Space.sample(distinct=True),
vmaptune/distinct.py) against independent draws, for spaces of only discrete values: one that
members use up, a wide one, one nearly used up (the settings left are listed) and one too wide
to list. Each case: the best of `--repeat` calls after a first one (which compiles the draw).

    python bench/distinct_draws.py --json bench/out/distinct_draws.json
"""

from __future__ import annotations

import argparse
import time
import warnings

import jax
import numpy as np

import vmaptune as vt
from common import machine, write_json

CASES = {
    "9 settings, 65536 members": (vt.Space(a=vt.Choice([1, 2, 3]), b=vt.Choice(["x", "y", "z"])), 65536),
    "IntUniform(1, 1e6), 4096 members": (vt.Space(n=vt.IntUniform(1, 10**6)), 4096),
    "IntUniform(1, 2000), 1999 members": (vt.Space(n=vt.IntUniform(1, 2000)), 1999),
    "IntUniform(0, 2e9) x 2, 8 members": (vt.Space(n=vt.IntUniform(0, 2 * 10**9), c=vt.Choice([0, 1])), 8),
}


def best_seconds(space, n, distinct, repeat):
    space.sample(jax.random.key(0), n, distinct=distinct)  # (compiles the draw)
    times = []
    for r in range(repeat):
        started = time.perf_counter()
        hp = space.sample(jax.random.key(r + 1), n, distinct=distinct)
        jax.block_until_ready(hp)
        times.append(time.perf_counter() - started)
    rows = np.stack([np.asarray(v, np.float64) for v in hp.values()], 1)
    return min(times), len(np.unique(rows, axis=0))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    warnings.simplefilter("ignore")  # (the used-up space warns that its members repeat settings)
    figures = {"machine": machine(), "cases": {}}
    print(f"{'case':38s} {'independent s':>14s} {'distinct s':>11s} {'settings (indep. / distinct)':>30s}")
    for name, (space, n) in CASES.items():
        plain, plain_settings = best_seconds(space, n, False, args.repeat)
        apart, apart_settings = best_seconds(space, n, True, args.repeat)
        figures["cases"][name] = dict(independent_seconds=plain, distinct_seconds=apart,
                                      independent_settings=plain_settings, distinct_settings=apart_settings)
        print(f"{name:38s} {plain:14.4f} {apart:11.4f} {f'{plain_settings} / {apart_settings}':>30s}")
    write_json(args.json, figures)


if __name__ == "__main__":
    main()
