"""The `vmaptune` command: `demo`, `run CONFIG`, `report RUN_DIR`."""

from __future__ import annotations

import argparse
import functools
import dataclasses
import difflib
import json
import os
import sys
import time
import tomllib
from typing import Any, Sequence

DEMO_SPACE = {
    "learning_rate": {"type": "LogUniform", "low": 1e-3, "high": 1.0},
    "momentum": {"type": "OneMinusLogUniform", "low": 0.5, "high": 0.99},
    "dropout": {"type": "Uniform", "low": 0.0, "high": 0.5},
    "init_scale": {"type": "LogUniform", "low": 0.1, "high": 10.0},
    "weight_decay": {"type": "LogUniform", "low": 1e-6, "high": 1e-2},
}


TUNE_KEYS = ("epochs", "seed", "metric", "batch_size", "shared_order", "chunk_epochs", "cv", "seeds", "refit",
             "bucketing", "devices", "member_block", "max_memory")


def _positive_int(text: str) -> int:
    """argparse type: an integer >= 1 (0 would have meant the default, silently)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer; give one >= 1") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} is below 1; give an integer >= 1")
    return value


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vmaptune", description="Tune a whole population of neural networks at once.")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="random search for an MLP on the digits data")
    demo.add_argument("--quick", action="store_true", help="a small run (population 64, 5 epochs)")
    demo.add_argument("--population", type=_positive_int, default=None, help="members per round (default 256, quick 64)")
    demo.add_argument("--epochs", type=_positive_int, default=None, help="epochs per member (default 20, quick 5)")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--out", default=None, help="run directory to write (default runs/demo, quick runs/demo-quick)")
    demo.add_argument("--no-progress", action="store_true")
    _run_dir_flags(demo)
    run = sub.add_parser("run", help="run a search described by a TOML or JSON config file")
    run.add_argument("config")
    run.add_argument("--out", default=None, help="run directory (default: the config's `out`, else runs/<name>)")
    run.add_argument("--no-progress", action="store_true")
    _run_dir_flags(run)
    _process_flags(run)
    report = sub.add_parser("report", help="print a run directory's table and write its plots")
    report.add_argument("run_dir")
    report.add_argument("--top", type=_positive_int, default=10)
    args = parser.parse_args(argv)
    try:
        if args.command == "demo":
            return _demo(args)
        if args.command == "run":
            return _run(args)
        return _report(args.run_dir, args.top)
    except (ValueError, TypeError, OSError) as err:
        print(f"vmaptune {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"vmaptune {args.command}: interrupted before any member trained; nothing to keep.", file=sys.stderr)
        return INTERRUPTED


INTERRUPTED = 130  # the shell's code for a command ended by Ctrl-C


def _run_dir_flags(parser) -> None:
    parser.add_argument("--resume", action="store_true",
                        help="continue the run in the run directory (after a crash, a kill or Ctrl-C)")
    parser.add_argument("--overwrite", action="store_true", help="replace the run in the run directory")


def _process_flags(parser) -> None:
    group = parser.add_argument_group("several processes (one per host; README: Many machines)")
    group.add_argument("--coordinator", metavar="HOST:PORT", default=None,
                       help="process 0's address and a free port: joins a multi-process run")
    group.add_argument("--num-processes", type=_positive_int, default=None, metavar="N", help="processes in the run")
    group.add_argument("--process-id", type=int, default=None, metavar="I", help="this process's id, 0 .. N-1")
    group.add_argument("--distributed", action="store_true",
                       help="join a multi-process run found by JAX (SLURM, Open MPI, Kubernetes, TPU pods)")


def _join_processes(args) -> None:
    """Starts JAX's distributed runtime when the flags ask for it (before anything uses JAX)."""
    flags = (getattr(args, "coordinator", None), getattr(args, "num_processes", None),
             getattr(args, "process_id", None))
    if getattr(args, "distributed", False) or any(f is not None for f in flags):
        from vmaptune import distributed

        if not getattr(args, "distributed", False) and None in flags:
            raise ValueError("--coordinator, --num-processes and --process-id go together (or use --distributed "
                             "to let JAX find them on a cluster).")
        distributed.initialize(*flags)


def _demo(args) -> int:
    population = args.population if args.population is not None else (64 if args.quick else 256)
    epochs = args.epochs if args.epochs is not None else (5 if args.quick else 20)
    config = {"dataset": "digits", "epochs": epochs, "seed": args.seed, "space": DEMO_SPACE, "refit": 1,
              "strategy": {"name": "RandomSearch", "population": population}}
    print(f"vmaptune demo: random search, {population} MLPs (64-128-128-10) trained at once on digits "
          f"for {epochs} epochs.")
    out = args.out or ("runs/demo-quick" if args.quick else "runs/demo")
    return _execute(config, out, args)


def _run(args) -> int:
    config = load_config(args.config)
    out = args.out or config.pop("out", None) or os.path.join("runs", os.path.splitext(os.path.basename(args.config))[0])
    config.pop("out", None)
    return _execute(config, out, args)


CONFIG_KEYS = ("dataset", "space", "strategy", "model", "out", "early_stopping", *TUNE_KEYS)


def load_config(path: str) -> dict[str, Any]:
    """A run config (TOML or JSON): dataset, space, strategy, model, epochs, seed, metric, batch_size."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"config file {path!r} does not exist.")
    with open(path, "rb") as f:
        try:
            config = json.load(f) if path.endswith(".json") else tomllib.load(f)
        except (ValueError, tomllib.TOMLDecodeError) as err:  # json's error is a ValueError
            kind = "JSON" if path.endswith(".json") else "TOML"
            raise ValueError(f"{path} is not valid {kind}: {err}. Fix that line (a .json file is read as JSON, "
                             "anything else as TOML).") from None
    if not isinstance(config, dict):
        raise ValueError(f"{path}: the config must be a table of keys, got {type(config).__name__}.")
    unknown = sorted(set(config) - set(CONFIG_KEYS))
    if unknown:
        hints = [f"{u!r} -> {m[0]!r}" for u in unknown if (m := difflib.get_close_matches(u, CONFIG_KEYS, 1))]
        hint = f" Did you mean {', '.join(hints)}?" if hints else ""
        raise ValueError(f"{path}: unknown keys {unknown}.{hint} The keys are {list(CONFIG_KEYS)}.")
    for key in ("dataset", "space"):
        if key not in config:
            raise ValueError(f"{path}: the config needs a `{key}` entry.")
    return config


def build(config: dict[str, Any]):
    """config -> (model, space, data, strategy, tune kwargs)."""
    import vmaptune as vt

    dataset = config["dataset"]
    if isinstance(dataset, str):
        data = vt.load_dataset(dataset)
    elif isinstance(dataset, dict) and "csv" in dataset:
        _needs(dataset, "csv", ("target", "task"), 'dataset = {csv = "data.csv", target = "label", task = "classification"}')
        data = vt.Dataset.from_csv(dataset["csv"], target=dataset["target"], task=dataset["task"])
    elif isinstance(dataset, dict) and "npz" in dataset:
        _needs(dataset, "npz", ("task",), 'dataset = {npz = "data.npz", task = "classification"}')
        data = vt.Dataset.from_npz(dataset["npz"], task=dataset["task"])
    else:
        raise ValueError(f"dataset must be a built-in name or {{csv=..., target=..., task=...}} / {{npz=..., task=...}}, got {dataset!r}.")
    space = vt.Space.from_config(config["space"])
    strategy_cfg = dict(config.get("strategy", {"name": "RandomSearch"}))
    name = strategy_cfg.pop("name", "RandomSearch")
    from vmaptune import strategies

    cls = getattr(strategies, name, None) if name in strategies.__all__ else None
    if not (isinstance(cls, type) and issubclass(cls, vt.Strategy)) or cls is vt.Strategy:
        names = sorted(n for n in strategies.__all__ if isinstance(getattr(strategies, n), type)
                       and issubclass(getattr(strategies, n), vt.Strategy) and n != "Strategy")
        raise ValueError(f"strategy name {name!r} is unknown; choose from {names}.")
    if name == "OptunaSampler":  # the sampler by name: [strategy] name = "OptunaSampler", sampler = "TPESampler"
        strategy_cfg["sampler"] = _optuna_sampler(strategy_cfg.get("sampler", "TPESampler"))
    strategy = cls(**strategy_cfg)
    model = vt.MLP(**config.get("model", {}))
    kwargs = {k: config[k] for k in TUNE_KEYS if k in config}
    if "early_stopping" in config:
        stopping = config["early_stopping"]
        fields = [f.name for f in dataclasses.fields(vt.EarlyStopping)]
        unknown = sorted(set(stopping) - set(fields)) if isinstance(stopping, dict) else None
        if unknown is None or unknown:
            raise ValueError(f"early_stopping = {stopping!r}: give a table of vt.EarlyStopping's settings {fields}, "
                             f"e.g. [early_stopping] patience = 5" + (f"; {unknown} are not among them." if unknown
                                                                      else "."))
        kwargs["early_stopping"] = vt.EarlyStopping(**stopping)
    return model, space, data, strategy, kwargs


def _optuna_sampler(name: Any):
    """An Optuna sampler class's name -> a function seed -> that sampler (seeded by the run)."""
    import optuna

    cls = getattr(optuna.samplers, name, None) if isinstance(name, str) else None
    if not (isinstance(cls, type) and issubclass(cls, optuna.samplers.BaseSampler)):
        names = sorted(n for n in dir(optuna.samplers) if n.endswith("Sampler") and n != "BaseSampler")
        raise ValueError(f"strategy sampler = {name!r}: give the name of an optuna.samplers class, one of {names}.")
    return functools.partial(_seeded, cls)


def _seeded(cls, seed: int):
    return cls(seed=seed)


def _needs(table: dict, kind: str, keys: tuple[str, ...], example: str) -> None:
    missing = [k for k in keys if k not in table]
    if missing:
        raise ValueError(f"dataset = {table!r}: a {kind} dataset needs {missing} too, e.g. {example}.")


def _execute(config: dict[str, Any], out: str, args) -> int:
    import warnings

    import vmaptune as vt

    from vmaptune.startup import describe

    started = time.perf_counter()
    _join_processes(args)
    model, space, data, strategy, kwargs = build(config)
    data_seconds = time.perf_counter() - started
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="interrupted: ")  # said below in one line
        result = vt.tune(model, space, data, strategy=strategy, progress=not args.no_progress, run_dir=out,
                         resume=args.resume, overwrite=args.overwrite, **kwargs)
    if result.settings.get("interrupted"):
        print(f"\nvmaptune {args.command}: interrupted; {len(result)} members kept in {out} "
              "(run the same command with --resume to continue)", file=sys.stderr)
        return INTERRUPTED
    if not vt.distributed.is_primary():  # process 0 reports for all
        return 0
    print()
    print(result.summary(10))
    seconds = result.settings["seconds"]
    layout = f"split over {result.settings['devices']} device(s)"
    per_device = -(-len(result) // max(int(result.settings["devices"]), 1))
    block = int(result.settings.get("member_block") or 0)
    if 0 < block < per_device:  # (a block as large as a device's share steps it all at once)
        layout += f", stepped {block} at a time"
    print(f"\n{len(result)} members trained in {seconds:.1f} s ({layout}); run directory: {out}")
    print(f"time: {describe({**result.settings['time'], 'data_seconds': data_seconds})}")
    print(f"see the plots with: vmaptune report {out}")
    return 0


def _report(run_dir: str, top: int) -> int:
    import vmaptune as vt
    from vmaptune.plots import plot_curves, plot_scores

    result = vt.load_results(run_dir)
    print(result.summary(top))
    curves = plot_curves(result, os.path.join(run_dir, "curves.png"), k=min(top, len(result)))
    scores = plot_scores(result, os.path.join(run_dir, "scores.png"))
    print(f"\nplots: {curves}, {scores}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
