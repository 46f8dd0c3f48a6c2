"""A grouped search's first call with its later groups' programs compiled in the background
(vmaptune/ahead.py, VMAPTUNE_COMPILE_AHEAD=N) against compiled one after another (=0).

Each row is a fresh process, compile cache off (every compile paid), bucketing=True (one program per
group: the searches where compiles pile up), alternating the two settings `--rounds` times. The
cases are bench/plans.py's. Compiling ahead is off by default: on a CPU a compile already uses the
cores the training needs; on an accelerator this bench shows what it buys.

    python bench/compile_ahead.py --json bench/out/compile_ahead.json
    python bench/compile_ahead.py --ahead 4 --only waste      # on a GPU host
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile

from common import machine, write_json
from plans import CASES


def fresh_process(case: str, epochs: int, ahead: int, home: str) -> dict:
    env = {**os.environ, "VMAPTUNE_COMPILE_CACHE": "0", "XDG_CACHE_HOME": home, "VMAPTUNE_COMPILE_AHEAD": str(ahead)}
    plans = os.path.join(os.path.dirname(os.path.abspath(__file__)), "plans.py")
    done = subprocess.run([sys.executable, plans, "--one", case, str(epochs), "true"], env=env,
                          capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])["first"]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ahead", type=int, default=2, help="programs compiling at once in the 'ahead' rows")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--only", default=None, help="run the cases whose name contains this text")
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    out = {"machine": machine(), "ahead": args.ahead, "cases": {}}
    for name, case in CASES.items():
        if args.only and args.only not in name:
            continue
        rows = {"in series": [], "ahead": []}
        for _ in range(args.rounds):
            for label, ahead in (("in series", 0), ("ahead", args.ahead)):
                home = tempfile.mkdtemp(prefix="vmaptune-bench-home-")  # nothing remembered: the same plan
                rows[label].append(fresh_process(case["case"], case["epochs"], ahead, home))
                print(name, label, rows[label][-1], flush=True)
        best = {label: min(r["seconds"] for r in runs) for label, runs in rows.items()}
        rows["ahead over in series (fastest of each)"] = round(best["ahead"] / best["in series"], 2)
        out["cases"][name] = rows
    print(json.dumps(out, indent=2))
    write_json(args.json, out)


if __name__ == "__main__":
    main()
