"""What the gradient probe of a loss of yours (program.check_loss_trains: a loss with no gradient in
the outputs trains nothing, so it is refused before compiling) costs a first search. Each run is a
fresh Python process, persistent compile cache off, running a small search (iris, P = 8, 2
epochs) with a label-smoothed cross-entropy of your own that reads a searched value; it reports
the probe's seconds (the first call, and a second one in the same process) and the whole
vt.tune's.

    python bench/loss_probe.py --json bench/out/loss_probe.json
    python bench/loss_probe.py --tree /tmp/old      # the vmaptune of another checkout (A/B)
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

from common import machine, write_json

SEARCH = """
import json, time
import jax, jax.numpy as jnp, optax
import vmaptune as vt
from vmaptune import program

def smoothed(outputs, targets, hp):
    labels = optax.smooth_labels(jax.nn.one_hot(targets, outputs.shape[-1]), hp["smoothing"])
    return optax.softmax_cross_entropy(outputs, labels)

probe, timed = program.check_loss_trains, []
def timed_probe(*args, **kwargs):
    started = time.perf_counter()
    probe(*args, **kwargs)
    timed.append(time.perf_counter() - started)
program.check_loss_trains = timed_probe

space = vt.Space(learning_rate=vt.LogUniform(1e-3, 0.1), smoothing=vt.Uniform(0.0, 0.2))
data = vt.load_dataset("iris")
started = time.perf_counter()
vt.tune(vt.MLP(hidden=1, units=16, loss=smoothed), space, data, vt.RandomSearch(population=8), epochs=2,
        batch_size=16, progress=False)
tune_seconds = time.perf_counter() - started
again = time.perf_counter()
probe(vt.metrics.get_loss(smoothed, "classification"), space, data, jnp.float32)
print(json.dumps({"probe_s": timed[0], "probe_again_s": time.perf_counter() - again, "tune_s": tune_seconds}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="fresh processes")
    parser.add_argument("--tree", default=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                        help="the checkout whose vmaptune runs (default: this one)")
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args()
    # (run from the tree itself: `python -c` puts the working directory first on the path)
    env = {**os.environ, "VMAPTUNE_COMPILE_CACHE": "0", "PYTHONPATH": args.tree}
    runs = []
    for _ in range(args.repeat):
        out = subprocess.run([sys.executable, "-c", SEARCH], env=env, cwd=args.tree, capture_output=True, text=True,
                             check=True)
        runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
    for run in runs:
        print(f"probe {run['probe_s']:.3f} s (again {run['probe_again_s']:.4f} s) of a first vt.tune of "
              f"{run['tune_s']:.2f} s ({100 * run['probe_s'] / run['tune_s']:.1f} %)")
    write_json(args.json, {"machine": machine(), "runs": runs})
    print(machine())


if __name__ == "__main__":
    main()
