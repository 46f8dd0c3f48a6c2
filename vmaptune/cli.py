"""The `vmaptune` command: `demo`, `run CONFIG`, `report RUN_DIR`."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import difflib
import inspect
import json
import os
import shlex
import sys
import time
import tomllib
import warnings
from typing import Any, Sequence

DEMO_SPACE = {
    "learning_rate": {"type": "LogUniform", "low": 1e-3, "high": 1.0},
    "momentum": {"type": "OneMinusLogUniform", "low": 0.5, "high": 0.99},
    "dropout": {"type": "Uniform", "low": 0.0, "high": 0.5},
    "init_scale": {"type": "LogUniform", "low": 0.1, "high": 10.0},
    "weight_decay": {"type": "LogUniform", "low": 1e-6, "high": 1e-2},
}


TUNE_KEYS = ("epochs", "seed", "metric", "batch_size", "shared_order", "chunk_epochs", "cv", "seeds", "refit",
             "bucketing", "devices", "member_block", "max_memory", "time_budget", "even_batches", "evaluate_every")


def _seed_flag(text: str) -> int:
    """argparse type: --seed, an integer from 0 to 2**63 - 1 (checked before anything runs)."""
    from vmaptune.arguments import check_seed

    try:
        return check_seed(int(text), "the root of every random draw of the search")
    except (TypeError, ValueError) as err:
        raise argparse.ArgumentTypeError(f"{text!r}: give an integer from 0 to 2**63 - 1, e.g. --seed 0") from err


def _duration_flag(text: str) -> float:
    """argparse type: --time-budget, seconds or a duration ('30min', '2h'), checked before anything runs."""
    from vmaptune.interrupts import parse_seconds

    try:
        return parse_seconds("--time-budget", text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"{text!r}: give a positive number of seconds (3600) or a duration such as "
                                         f"'90s', '30min', '2h'") from err


def _int_at_least(minimum: int, wanted: str):
    """argparse type: an integer >= minimum (below it, 0 would have meant the default, silently);
    wanted: what to give, said in the refusal."""
    def read(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not an integer; give {wanted}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"{value} is below {minimum}; give {wanted}")
        return value

    return read


_positive_int = _int_at_least(1, "an integer >= 1")
_process_id = _int_at_least(0, "this process's id, 0 .. N-1")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vmaptune", description="Tune a whole population of neural networks at once.")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="random search for an MLP on the digits data")
    demo.add_argument("--quick", action="store_true", help="a small run (population 64, 5 epochs)")
    demo.add_argument("--population", type=_positive_int, default=None, help="members per round (default 256, quick 64)")
    demo.add_argument("--epochs", type=_positive_int, default=None, help="epochs per member (default 20, quick 5)")
    demo.add_argument("--seed", type=_seed_flag, default=0, help="the search's seed (default 0): same seed, same result")
    demo.add_argument("--out", default=None, type=_out_flag,
                      help="run directory to write (default runs/demo, quick runs/demo-quick)")
    demo.add_argument("--no-progress", action="store_true", help="no progress bar (a log file, a CI job)")
    _run_dir_flags(demo)
    run = sub.add_parser("run", help="run a search described by a TOML or JSON config file")
    run.add_argument("config", type=_path_flag,
                     help="the run's config file (TOML or JSON): data, space, strategy, epochs...")
    run.add_argument("--out", default=None, type=_out_flag,
                     help="run directory (default: the config's `out`, else runs/<name>)")
    run.add_argument("--no-progress", action="store_true", help="no progress bar (a log file, a CI job)")
    _run_dir_flags(run)
    _process_flags(run)
    report = sub.add_parser("report", help="print a run directory's table and write its plots")
    report.add_argument("run_dir", type=_path_flag, help="the --out directory of `vmaptune run` / `vmaptune demo`")
    report.add_argument("--top", type=_positive_int, default=10, help="rows of the table to print (default 10)")
    report.add_argument("--plots", default=None, metavar="DIR", type=_path_flag,
                        help="write curves.png and scores.png to DIR (made if needed) instead of the run directory "
                             "(for a run directory you cannot write to)")
    export = sub.add_parser("export", help="write a run directory's members to an Optuna study (optuna-dashboard, "
                                           "Optuna's plots)")
    export.add_argument("run_dir", type=_path_flag, help="the --out directory of `vmaptune run` / `vmaptune demo`")
    export.add_argument("--optuna", required=True, metavar="STORAGE",
                        help="an Optuna storage URL, e.g. sqlite:///runs.db (what optuna-dashboard opens)")
    export.add_argument("--study-name", default=None, metavar="NAME", type=_study_name_flag,
                        help="default: the run directory's name")
    replace = export.add_mutually_exclusive_group()
    replace.add_argument("--overwrite", action="store_true", help="replace a study of that name")
    replace.add_argument("--append", action="store_true",
                         help="add the members the study lacks (the same run, exported again as it goes on)")
    args = parser.parse_args(argv)
    with warnings.catch_warnings():  # (restores warnings.showwarning when main returns)
        warnings.showwarning = _one_line_warnings(args.command)
        try:
            if args.command == "demo":
                return _demo(args)
            if args.command == "run":
                return _run(args)
            if args.command == "export":
                return _export(args)
            return _report(args.run_dir, args.top, args.plots)
        except BrokenPipeError:  # `vmaptune report ... | head`: the reader has what it wanted
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # (no second error at exit's flush)
            return 0
        except (ValueError, TypeError, OSError) as err:
            return _failed(args.command, err)
        except RuntimeError as err:
            from vmaptune.distributed import ProcessLost

            if not isinstance(err, ProcessLost):
                raise
            print(f"vmaptune {args.command}: error: {err}", file=sys.stderr)  # (one line: the cause is elsewhere)
            return FAILED
        except KeyboardInterrupt:  # (run, demo: before the run directory was looked at; _execute says a later one's)
            kept = "the run directory is as it was" if args.command in ("run", "demo") and (
                args.resume or args.overwrite) else "nothing to keep"  # (a run there: not "nothing")
            print(f"vmaptune {args.command}: interrupted before any member trained; {kept}.", file=sys.stderr)
            return INTERRUPTED


def _failed(command: str, err: BaseException) -> int:
    """Says an error and returns the exit code. One of vmaptune's own checks (raised in its
    code: bad input, said before anything trains) is one line: exit 2. A write that failed (a full
    disk) is one line with its notes, which say what was kept and how to go on: exit 1. Anything
    else (an error inside JAX, orbax or your model) keeps its traceback: exit 1."""
    import traceback

    from vmaptune import distributed

    stopped = distributed.stopped_on_error(type(err).__name__)  # (several processes: the others stop too)
    if stopped:
        print(stopped, file=sys.stderr)
    from vmaptune.models.fields import raised_by_vmaptune

    system = isinstance(err, OSError) and err.errno is not None  # (a full disk: not a setting to fix)
    ours = raised_by_vmaptune(err) and not system
    if ours or isinstance(err, OSError):
        print(f"vmaptune {command}: error: {err}", file=sys.stderr)
        for note in getattr(err, "__notes__", ()):
            print(note, file=sys.stderr)
        return BAD_INPUT if ours else FAILED
    traceback.print_exception(err)
    return FAILED


INTERRUPTED = 130  # the shell's code for a command ended by Ctrl-C
BAD_INPUT = 2  # argparse's code: a flag, config or setting the command refused
FAILED = 1  # an error while it ran (a full disk, an error inside JAX or your model)
NO_MEMBER_SUCCEEDED = 1  # the run finished, but every member diverged or failed


def _one_line_warnings(command: str):
    """warnings.showwarning for the command line: `vmaptune run: warning: <message>`, without the
    file, line and source Python shows (they point into vmaptune, not at anything the user wrote)."""
    def show(message, category, filename, lineno, file=None, line=None):
        print(f"vmaptune {command}: warning: {message}", file=file or sys.stderr)

    return show


def _run_dir_flags(parser) -> None:
    which = parser.add_mutually_exclusive_group()  # (argparse names both flags: "not allowed with argument")
    which.add_argument("--resume", action="store_true",
                       help="continue the run in the run directory (after a crash, a kill or Ctrl-C)")
    which.add_argument("--overwrite", action="store_true", help="replace the run in the run directory")
    parser.add_argument("--optuna", default=None, metavar="STORAGE",
                        help="keep an Optuna study (named after the run directory) up to date after each round, "
                             "e.g. sqlite:///runs.db, for optuna-dashboard")
    parser.add_argument("--study-name", default=None, metavar="NAME", type=_study_name_flag,
                        help="the --optuna study's name (default: the run directory's name)")
    parser.add_argument("--time-budget", default=None, metavar="DURATION", type=_duration_flag,
                        help="stop after this long (3600, '30min', '2h'), as Ctrl-C stops: what trained is kept, "
                             "and --resume continues")


def _process_flags(parser) -> None:
    group = parser.add_argument_group("several processes (one per host; README: Many machines)")
    group.add_argument("--coordinator", metavar="HOST:PORT", default=None,
                       help="process 0's address and a free port: joins a multi-process run")
    group.add_argument("--num-processes", type=_positive_int, default=None, metavar="N", help="processes in the run")
    group.add_argument("--process-id", type=_process_id, default=None, metavar="I", help="this process's id, 0 .. N-1")
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
        distributed.initialize(*flags, _words=distributed.CLI_WORDS)


def _demo(args) -> int:
    out = args.out or ("runs/demo-quick" if args.quick else "runs/demo")
    _refuse_held_run(out, args)  # (before the banner: it announced a run that was then refused)
    population = args.population if args.population is not None else (64 if args.quick else 256)
    epochs = args.epochs if args.epochs is not None else (5 if args.quick else 20)
    config = {"dataset": "digits", "epochs": epochs, "seed": args.seed, "space": DEMO_SPACE, "refit": 1,
              "strategy": {"name": "RandomSearch", "population": population}}
    print(f"vmaptune demo: random search, {population} MLPs (64-128-128-10) trained at once on digits "
          f"for {epochs} epochs.")
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
    if os.path.isdir(path):
        raise ValueError(f"config file {path!r} is a directory; give the path of a .toml or .json file.")
    with open(path, "rb") as f:
        try:
            config = json.load(f) if path.endswith(".json") else tomllib.load(f)
        except (ValueError, tomllib.TOMLDecodeError) as err:  # json's error is a ValueError
            kind = "JSON" if path.endswith(".json") else "TOML"
            raise ValueError(f"{path} is not valid {kind}: {err}. Fix that line (a .json file is read as JSON, "
                             "anything else as TOML).") from None
    if not isinstance(config, dict):
        raise ValueError(f"{path}: the config must be a table of keys, got {type(config).__name__}.")
    _known_keys(config, CONFIG_KEYS, f"{path}:")
    for key in ("dataset", "space"):
        if key not in config:
            raise ValueError(f"{path}: the config needs a `{key}` entry.")
    if not isinstance(config.get("out", ""), str) or ("out" in config and not config["out"].strip()):
        raise ValueError(f"{path}: out = {config['out']!r}: give the run directory as text, e.g. "
                         f"out = \"runs/my_search\", or leave out out for its default (an empty one fell back to it "
                         f"unsaid).")
    if "out" in config:  # (a config is no shell: "~/runs/x" made a folder named ~ in the current one)
        config["out"] = os.path.expanduser(config["out"])
    dataset = config["dataset"]
    for kind in ("csv", "npz"):
        if isinstance(dataset, dict) and isinstance(dataset.get(kind), str):
            config["dataset"] = {**dataset, kind: _data_path(dataset[kind], kind, path)}
            break
    return config


#: Other tuners' keys whose near miss among ours would mislead ('mode' is not 'model').
FOREIGN_KEYS = {
    **dict.fromkeys(("mode", "direction"), "Scores are higher-is-better; the metric sets the direction "
                                           "(metric = \"log_loss\" or \"mse\" is minimised)."),
    **dict.fromkeys(("objective", "scoring"), "Did you mean metric? (e.g. metric = \"accuracy\")"),
    **dict.fromkeys(("max_trials", "n_trials", "num_samples", "n_iter"),
                    "The strategy says how many settings train: [strategy] name = \"RandomSearch\", "
                    "population = 64."),
}


def _known_keys(table: dict, keys: Sequence[str], where: str) -> None:
    """Raises for keys of `table` not in `keys`, with a "did you mean" for near misses."""
    unknown = sorted(set(table) - set(keys))
    if unknown:
        foreign = [FOREIGN_KEYS[u] for u in unknown if u in FOREIGN_KEYS]
        hints = [f"{u!r} -> {m[0]!r}" for u in unknown
                 if u not in FOREIGN_KEYS and (m := difflib.get_close_matches(u, keys, 1))]
        hint = f" Did you mean {', '.join(hints)}?" if hints else ""
        hint += "".join(f" {text}" for text in foreign)
        raise ValueError(f"{where} unknown keys {unknown}.{hint} The keys are {list(keys)}.")


def _data_path(name: str, kind: str, config_path: str) -> str:
    """A data file named in a config: relative to the config file's folder (where it is usually
    kept, wherever the command runs), else to the current directory; ~ is the home directory."""
    path = os.path.expanduser(name)
    if os.path.isabs(path):
        return path
    candidates = [os.path.join(os.path.dirname(os.path.abspath(config_path)), path), os.path.abspath(path)]
    for candidate in candidates:
        if os.path.exists(candidate):
            return candidate
    raise FileNotFoundError(f"{config_path}: dataset {kind} = {name!r} does not exist; looked at "
                            f"{sorted(set(candidates))}. Give a path relative to the config file's folder, "
                            "or an absolute one.")


def build(config: dict[str, Any]):
    """config -> (model, space, data, strategy, tune kwargs)."""
    import vmaptune as vt

    dataset = config["dataset"]
    if isinstance(dataset, str):
        data = vt.load_dataset(dataset)
    elif isinstance(dataset, dict) and "csv" in dataset:
        _known_keys(dataset, CSV_KEYS, "dataset table (a csv file):")
        _needs(dataset, "csv", ("target", "task"), 'dataset = {csv = "data.csv", target = "label", task = "classification"}')
        data = vt.Dataset.from_csv(dataset["csv"], **{k: v for k, v in dataset.items() if k != "csv"})
    elif isinstance(dataset, dict) and "npz" in dataset:
        _known_keys(dataset, NPZ_KEYS, "dataset table (an npz file):")
        _needs(dataset, "npz", ("task",), 'dataset = {npz = "data.npz", task = "classification"}')
        data = vt.Dataset.from_npz(dataset["npz"], **{k: v for k, v in dataset.items() if k != "npz"})
    elif isinstance(dataset, dict) and "name" in dataset:  # a built-in one with its split's settings
        _known_keys(dataset, BUILTIN_KEYS, "dataset table (a built-in data set):")
        data = vt.load_dataset(dataset["name"], **{k: v for k, v in dataset.items() if k != "name"})
    else:
        raise ValueError(f"dataset must be a built-in name (dataset = \"digits\", or {{name = \"digits\", "
                         f"val_fraction = 0.2}} with its split's settings) or {{csv=..., target=..., task=...}} / "
                         f"{{npz=..., task=...}}, got {dataset!r}.")
    space = vt.Space.from_config(config["space"])
    if "batch_size" in config and "batch_size" in space:  # (vt.tune takes the space's, as its docstring says)
        from vmaptune.warn import warn

        warn(f"batch_size = {config['batch_size']!r} is not used: [space] batch_size is searched and gives each member "
             f"its own (a top-level batch_size is the batch of a space without one, as vt.tune's batch_size= is); "
             f"remove one of the two from a new run's config (a run started with both resumes with both: its "
             f"checkpoints record batch_size = {config['batch_size']!r}).")
    strategy = _strategy(config.get("strategy", "RandomSearch"))
    model = config.get("model", {})
    if not isinstance(model, dict):
        raise ValueError(f"model = {model!r}: give a table of vt.MLP's settings, e.g. model = {{hidden = 2, units = 128}} "
                         f"(the command line trains the built-in MLP; your own model: vt.tune in Python).")
    model = vt.MLP(**model)
    kwargs = {k: config[k] for k in TUNE_KEYS if k in config}
    if isinstance(kwargs.get("cv"), (dict, str)):  # cv = {name = "TimeSeriesSplit", n_splits = 4}: a splitter
        kwargs["cv"] = _splitter(kwargs["cv"] if isinstance(kwargs["cv"], dict) else {"name": kwargs["cv"]})
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


#: scikit-learn splitters a config cannot use: they need groups= (rows' groups a config cannot give)
#: or every row's fold (PredefinedSplit's test_fold).
GROUP_SPLITTERS = ("GroupKFold", "GroupShuffleSplit", "LeaveOneGroupOut", "LeavePGroupsOut", "StratifiedGroupKFold",
                   "PredefinedSplit")


def _splitter(config: dict):
    """cv = {name = "TimeSeriesSplit", n_splits = 4}: a sklearn.model_selection splitter by name."""
    import sklearn.model_selection as selection

    names = sorted(n for n in dir(selection) if n[0].isupper() and not n.startswith("Base")
                   and hasattr(getattr(selection, n), "split")
                   and hasattr(getattr(selection, n), "get_n_splits") and n not in GROUP_SPLITTERS)
    settings = dict(config)
    name = settings.pop("name", None)
    if name not in names:
        why = " (it needs the rows' groups or folds, which a config cannot give: use vt.tune(..., groups=) in " \
              "Python)" if name in GROUP_SPLITTERS else ""
        raise ValueError(f"cv = {config!r}: give an integer (dealt folds) or a table of a scikit-learn splitter's "
                         f"name and settings, e.g. cv = {{name = \"TimeSeriesSplit\", n_splits = 4}}{why}; the "
                         f"names are {names}.")
    try:
        return getattr(selection, name)(**settings)
    except (TypeError, ValueError) as err:  # (a setting it does not take, or one out of its range: KFold's n_splits=1)
        accepted = list(inspect.signature(getattr(selection, name)).parameters)
        raise ValueError(f"cv = {config!r}: {str(err).rstrip('.')}. {name}'s settings are {accepted}.") from None


# A dataset table's keys: the file, then the keywords of vt.Dataset.from_csv / from_npz a config can
# give (from_arrays' split settings among them; not validation= / test=, which are arrays).
SPLIT_KEYS = ("val_fraction", "test_fraction", "seed", "standardize", "name", "shuffle")
CSV_KEYS = ("csv", "target", "task", "one_hot", "weight", *SPLIT_KEYS)
NPZ_KEYS = ("npz", "task", "X", "y", *SPLIT_KEYS)
BUILTIN_KEYS = SPLIT_KEYS  # {name = "digits", val_fraction = 0.2}: vt.load_dataset's keywords


def _strategy(config: Any):
    """`strategy = "Name"` or a table: name = "Name" and the strategy class's settings."""
    import vmaptune as vt
    from vmaptune import strategies

    names = sorted(n for n in strategies.__all__ if isinstance(getattr(strategies, n), type)
                   and issubclass(getattr(strategies, n), vt.Strategy) and n != "Strategy")
    if isinstance(config, str):
        config = {"name": config}
    if not isinstance(config, dict):
        raise ValueError(f"strategy = {config!r}: give a strategy's name (strategy = \"RandomSearch\") or a table "
                         f"[strategy] with name = \"...\" and its settings; the names are {names}.")
    if "name" not in config:  # (random search in its place would run a search the config does not describe)
        raise ValueError(f"[strategy] = {config!r} has no name: add name = \"...\", one of {names}.")
    settings = dict(config)
    name = settings.pop("name")
    if name not in names:
        close = difflib.get_close_matches(str(name), names, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"strategy name {name!r} is unknown.{hint} Choose from {names}.")
    if name == "OptunaSampler":  # the sampler by name: [strategy] name = "OptunaSampler", sampler = "TPESampler"
        settings["sampler"] = _optuna_sampler(settings.get("sampler", "TPESampler"))
    if name == "PBTReplay":  # a PBT run's schedule: [strategy] name = "PBTReplay", results = "runs/pbt"
        return _pbt_replay(settings)
    if name == "BOHB" and isinstance(settings.get("model"), dict):  # model = {acquisition = "ucb"}: its BayesOpt
        settings["model"] = strategies.BayesOpt(**settings["model"])
    return getattr(strategies, name)(**settings)


def _pbt_replay(settings: dict):
    """[strategy] name = "PBTReplay", results = "runs/pbt" (a PBT run's directory), and optionally
    member = 7 (its row; default the best) and population = 3 -> vt.PBTReplay.from_results."""
    import vmaptune as vt

    _known_keys(settings, ("results", "member", "population"), "[strategy] name = \"PBTReplay\":")
    if "results" not in settings:
        raise ValueError("[strategy] name = \"PBTReplay\" replays a PBT run's schedule: add results = \"runs/pbt\" "
                         "(that run's directory), and optionally member = N (its row; default the best) and "
                         "population = 3.")
    path = settings.pop("results")
    if not isinstance(path, str):
        raise ValueError(f"[strategy] results = {path!r}: give a PBT run's directory as text, e.g. "
                         f"results = \"runs/pbt\".")
    # (relative to the directory the command runs in, as --out is: not to the config's folder, as a dataset's file is)
    where = f"[strategy] results = {path!r}" + ("" if os.path.isabs(os.path.expanduser(path)) else
                                                 f" (relative to the current directory, {os.getcwd()})")
    path = os.path.expanduser(path)
    if not os.path.isdir(path):
        raise FileNotFoundError(f"{where}: " + ("is a file" if os.path.exists(path) else "no such directory")
                                + "; give the --out directory of a PBT run, relative to the directory you run the "
                                  "command in, or an absolute path.")
    try:
        results = vt.load_results(path)
    except FileNotFoundError as err:  # (a directory that holds no run's table)
        raise FileNotFoundError(f"{where}: {err} Give the --out directory of a PBT run.") from None
    member = settings.get("member")
    if member is not None and (isinstance(member, bool) or not isinstance(member, int) or
                               not 0 <= member < len(results)):
        raise ValueError(f"[strategy] member = {member!r}: give a row of the run in {path!r}, an integer in 0 .. "
                         f"{len(results) - 1}, or leave member out for its best row.")
    return vt.PBTReplay.from_results(results, **settings)


# Optuna samplers a config cannot build: they need a sampler object or a grid as an argument, or
# (BruteForceSampler) stop on any continuous hyperparameter; name = "GridSearch" searches grids.
UNBUILDABLE_SAMPLERS = ("PartialFixedSampler", "GridSampler", "BruteForceSampler")


def _optuna_sampler(config: Any):
    """`sampler = "TPESampler"` or `{name = "TPESampler", n_startup_trials = 4}` -> a function
    seed -> that sampler (seeded by the run's seed)."""
    import optuna

    names = sorted(n for n in dir(optuna.samplers) if isinstance(getattr(optuna.samplers, n), type)
                   and issubclass(getattr(optuna.samplers, n), optuna.samplers.BaseSampler)
                   and not n.startswith("Base") and n not in UNBUILDABLE_SAMPLERS)
    settings = dict(config) if isinstance(config, dict) else {"name": config}
    name = settings.pop("name", None)
    if name not in names:
        extra = " (for a grid: [strategy] name = \"GridSearch\")" if name in UNBUILDABLE_SAMPLERS else ""
        close = difflib.get_close_matches(str(name), names, n=1) if isinstance(name, str) and not extra else []
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"strategy sampler = {config!r}:{hint} give the name of an optuna.samplers class, one of "
                         f"{names}, or a table {{name = \"TPESampler\", n_startup_trials = 4}} of its name and "
                         f"settings{extra}.")
    if "seed" in settings:
        raise ValueError(f"strategy sampler = {config!r}: leave seed out; the sampler is seeded by the run's seed "
                         "(the config's top-level seed).")
    sampler = SeededSampler(name, settings)
    try:  # built once now, so a mistyped setting is an error before anything compiles
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # (its ExperimentalWarning shows when the run builds it)
            sampler(0)
    except (TypeError, ValueError) as err:
        accepted = [p for p in inspect.signature(getattr(optuna.samplers, name)).parameters if p != "seed"]
        raise ValueError(f"strategy sampler {name} with {settings}: {err}. Its settings are {accepted}.") from None
    return sampler


@dataclasses.dataclass(frozen=True, eq=False)
class SeededSampler:
    """seed -> optuna.samplers.<name>(seed=seed, **settings); its repr is what checkpoints compare
    when a run resumes, so a changed setting is noticed."""

    name: str
    settings: dict

    def __call__(self, seed: int):
        import optuna

        return getattr(optuna.samplers, self.name)(seed=seed, **self.settings)

    def __repr__(self) -> str:
        return f"optuna.samplers.{self.name}({', '.join(f'{k}={v!r}' for k, v in self.settings.items())})"


def _needs(table: dict, kind: str, keys: tuple[str, ...], example: str) -> None:
    missing = [k for k in keys if k not in table]
    if missing:
        raise ValueError(f"dataset = {table!r}: a {kind} dataset needs {missing} too, e.g. {example}.")


def _refuse_held_run(out: str, args) -> None:
    """A run directory that holds a run is continued or replaced only when a flag says which; and
    --study-name names --optuna's study."""
    from vmaptune.run_dir import holds_run

    if os.path.isdir(out) and holds_run(out) and not (args.resume or args.overwrite):  # (said in the flags' words)
        raise ValueError(f"{out!r} already holds a run: add --resume to continue it, --overwrite to replace it, or "
                         f"--out DIR for another run directory.")
    if args.study_name is not None and args.optuna is None:
        raise ValueError(f"--study-name {args.study_name!r} names the study of --optuna: add --optuna STORAGE "
                         f"(e.g. sqlite:///runs.db), or leave --study-name out.")


def _execute(config: dict[str, Any], out: str, args) -> int:
    import vmaptune as vt

    from vmaptune.metrics import get_metric
    from vmaptune.optuna_study import RUN_FIXES

    _refuse_held_run(out, args)
    study = _study_name(out) if args.study_name is None else args.study_name
    started = time.perf_counter()
    before = _run_entries(out)  # (a Ctrl-C before any member trained is said against it: _nothing_trained)
    result = None
    try:
        _join_processes(args)
        model, space, data, strategy, kwargs = build(config)
        data_seconds = time.perf_counter() - started
        with warnings.catch_warnings(), _optuna_logs_quiet(import_optuna=args.optuna is not None):
            warnings.filterwarnings("ignore", message="interrupted: ")  # said below in one line
            warnings.filterwarnings("ignore", message=r"vt\.tune: all \d+ members failed")  # the summary says it
            on_round = None if args.optuna is None else vt.OptunaExport(args.optuna, study, overwrite=args.overwrite,
                                                                        _fixes=RUN_FIXES)
            if on_round is not None:  # process 0 checks (or replaces) the study; every process stops on a refusal
                vt.distributed.in_process_0(
                    lambda: _check_study(args.optuna, study, out, args.resume, args.overwrite,
                                         get_metric(kwargs.get("metric"), data.task)),
                    f"process 0 refused the run: the Optuna study {study!r} in {args.optuna!r} cannot take it (process "
                    f"0's message says why).", ValueError)
            if args.time_budget is not None:
                kwargs["time_budget"] = args.time_budget
            warnings.filterwarnings("ignore", message="the time budget is spent: ")  # said below in one line
            result = vt.tune(model, space, data, strategy=strategy, progress=not args.no_progress, run_dir=out,
                             resume=args.resume, overwrite=args.overwrite, on_round=on_round, **kwargs)
            if on_round is not None and vt.distributed.is_primary() and not result.settings.get("interrupted"):
                on_round(result)  # the refit's test scores (it follows the last round); a resumed finished run's
    except KeyboardInterrupt:  # (vt.tune returns what trained: here, nothing had)
        if result is not None:  # (the run had returned, saved: its study was taking the refit's test scores)
            print(f"vmaptune {args.command}: interrupted after the run ended; it is saved in {out}, and `vmaptune export "
                  f"{shlex.quote(out)} --optuna {shlex.quote(args.optuna)} --study-name {shlex.quote(study)} --append` "
                  f"brings its Optuna study up to date.", file=sys.stderr)
            return INTERRUPTED
        print(f"vmaptune {args.command}: {_nothing_trained(out, args.overwrite, before)}", file=sys.stderr)
        return INTERRUPTED
    try:  # (vt.tune returned: the run is saved, and a Ctrl-C now cuts only what is said of it)
        return _said(result, out, args, study, on_round, data_seconds)
    except KeyboardInterrupt:  # (main's words, "before any member trained; nothing to keep", invited deleting it)
        if result.settings.get("interrupted"):  # (a Ctrl-C or the time budget had stopped the run)
            instead = " in place of --overwrite" if args.overwrite else ""
            said = f"stopped and is saved in {out} (run the same command with --resume{instead} to continue it)"
        else:
            said = f"finished and is saved in {out} (`vmaptune report {shlex.quote(out)}` shows it)"
        print(f"\nvmaptune {args.command}: interrupted while its summary printed; the run {said}.", file=sys.stderr)
        return INTERRUPTED


def _said(result, out: str, args, study: str, on_round, data_seconds: float) -> int:
    """Says what a run that vt.tune returned did (its summary, the time, where to see it) and
    returns the command's exit code."""
    import vmaptune as vt
    from vmaptune.startup import describe

    again = ("run the same command with --resume in place of --overwrite to continue" if args.overwrite
             else "run the same command with --resume to continue")
    if result.settings.get("time_budget_spent"):  # (planned: the command did what it was asked)
        print(f"\nvmaptune {args.command}: the time budget is spent; {len(result)} members kept in {out} "
              f"({again})", file=sys.stderr)
        return 0
    if result.settings.get("interrupted"):
        print(f"\nvmaptune {args.command}: interrupted; {len(result)} members kept in {out} ({again})",
              file=sys.stderr)
        return INTERRUPTED
    if not vt.distributed.is_primary():  # process 0 reports for all
        return 0
    print()
    print(result.summary(10))
    seconds = result.settings["seconds"]
    from vmaptune.distributed import whole_rows
    from vmaptune.packing import Shape

    rounds = result.members["round"]
    # a round's networks train together (its members, each as cv folds x seeds networks), split as
    # the engine splits them: over the devices that divide them evenly (filler rows give several
    # processes as many each), a block of rows at a time
    largest_round = int(rounds.value_counts().max()) if len(rounds) else 0
    copies = _count(result.settings.get("cv")) * _count(result.settings.get("seeds"))
    shape = Shape.of(whole_rows(largest_round * copies), max(int(result.settings["devices"]), 1),
                     int(result.settings.get("member_block") or 0))
    layout = f"split over {shape.devices} device(s)"
    if 0 < shape.block < shape.shard:  # (a block as large as a device's share steps it all at once)
        layout += f", stepped {shape.block} at a time"
    resumed = int(result.settings.get("rounds_resumed") or 0)
    read_back = int((rounds < resumed).sum())  # (rounds the checkpoint held: not trained by this command)
    if resumed and resumed == result.settings.get("rounds"):  # a finished run, resumed: nothing left to train
        refit_now = int(result.settings.get("refit_trained") or 0)  # (a larger refit=, or a model file lost)
        print(f"\nthe run in {out} had finished: {len(result)} members, " + (
            f"no round trained now; {refit_now} setting(s) refit on train + validation" if refit_now
            else "none trained now"))
    else:
        kept = f", {read_back} more read back from its checkpoint" if read_back else ""
        print(f"\n{len(result) - read_back} members trained in {seconds:.1f} s ({layout}{kept}); run directory: "
              f"{out}")
    print(f"time: {describe({**result.settings['time'], 'data_seconds': data_seconds})}")
    print(f"see the plots with: vmaptune report {shlex.quote(out)}")
    if on_round is not None and on_round.error is None:
        print(f"and in Optuna's dashboard: optuna-dashboard {shlex.quote(args.optuna)} (study {study!r})")
    elif on_round is not None:  # (the warnings said why after each round)
        print(f"the Optuna study {study!r} in {args.optuna} is not up to date ({on_round.error}); once that is "
              f"fixed: vmaptune export {shlex.quote(out)} --optuna {shlex.quote(args.optuna)} --study-name "
              f"{shlex.quote(study)} --append", file=sys.stderr)
    if not result.succeeded:
        print(f"vmaptune {args.command}: the run finished, but no member succeeded (exit code "
              f"{NO_MEMBER_SUCCEEDED}).", file=sys.stderr)
        return NO_MEMBER_SUCCEEDED
    return 0


def _run_entries(out: str) -> frozenset[str]:
    """The files and folders of a run (run_dir.RUN_FILES, RUN_DIRS) that `out` holds now."""
    from vmaptune.run_dir import RUN_DIRS, RUN_FILES

    return frozenset(name for name in (*RUN_FILES, *RUN_DIRS) if os.path.exists(os.path.join(out, name)))


def _nothing_trained(out: str, overwrite: bool, before: frozenset[str]) -> str:
    """The line for a Ctrl-C that came before any member trained (loading data, tracing): what `out`
    holds, said from the disk. A --resume's run is still there, as an --overwrite's is until its
    run starts ("nothing to keep" invited deleting it). before: _run_entries(out) as the command began."""
    from vmaptune.run_dir import holds_run

    now = _run_entries(out)
    if not (os.path.isdir(out) and holds_run(out)):
        removed = f" (--overwrite had removed the run in {out})" if overwrite and before else ""
        return f"interrupted before any member trained; nothing to keep{removed}."
    if overwrite and now != before:  # (a second Ctrl-C, at once, as --overwrite removed the run)
        return (f"interrupted before any member trained, as --overwrite removed the run in {out} (left there: "
                f"{', '.join(sorted(now))}); run the same command again to replace it.")
    if overwrite:
        return (f"interrupted before any member trained; the run in {out} is kept as it was (--overwrite removes it as "
                f"the new run starts): run the same command again to replace it, or with --resume in place of "
                f"--overwrite to continue it.")
    return (f"interrupted before any member trained; the run in {out} is kept as it was: run the same command with "
            f"--resume to continue it.")


def _count(setting) -> int:
    """A run's cv or seeds setting as a count of networks per member (None: one)."""
    return setting if isinstance(setting, int) and not isinstance(setting, bool) and setting > 1 else 1


def _check_study(storage: str, study: str, out: str, resume: bool, overwrite: bool, metric=None) -> None:
    """Before anything trains: a study of that name holding another run's trials (two runs whose
    --out folders share a name, runs/a/exp and runs/b/exp) is refused, since no export of this
    run could update it; so is one set to the other direction than `metric`'s (a vt.Metric). With
    --overwrite nothing is checked: OptunaExport deletes the study once vt.tune holds the run
    directory (deleted here, it was lost by a run refused there, the one writing it being live)."""
    import vmaptune as vt
    from vmaptune.optuna_study import RUN_FIXES, check_study

    if overwrite:
        return
    results = None
    if resume:
        try:  # (the rounds saved so far; none when the run stopped in its first)
            results = vt.load_results(out)
        except FileNotFoundError:
            pass
    check_study(storage, study, results, _fixes=RUN_FIXES, metric=metric)


@contextlib.contextmanager
def _optuna_logs_quiet(import_optuna: bool = False):
    """Optuna logs at INFO each study it creates ("A new study created in memory ..."): noise in
    the command's output. Its WARNINGs still show; the library leaves Optuna's logging alone."""
    if import_optuna:
        import optuna  # noqa: F401
    optuna = sys.modules.get("optuna")  # imported by build() when the strategy is an OptunaSampler
    if optuna is None:
        yield
        return
    previous = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        yield
    finally:
        optuna.logging.set_verbosity(previous)


def _report(run_dir: str, top: int, plots: str | None = None) -> int:
    import vmaptune as vt
    from vmaptune.plots import plot_curves, plot_scores
    from vmaptune.results import RESULTS_FILE, STATUS_INTERRUPTED

    if os.path.isfile(run_dir):
        parent = os.path.dirname(run_dir) or "."
        fix = (f"vmaptune report {shlex.quote(parent)}" if os.path.exists(os.path.join(parent, RESULTS_FILE))
               else "vmaptune report RUN_DIR, the --out directory of `vmaptune run` / `vmaptune demo`")
        raise ValueError(f"{run_dir!r} is a file, not a run directory; give the directory a run wrote: {fix}.")
    result = vt.load_results(run_dir)
    if result.settings.get("interrupted"):
        cut = result.members["status"] == STATUS_INTERRUPTED
        partial = int(cut.sum())
        quoted = shlex.quote(run_dir)
        # (a time budget is a planned stop, which the run said with exit code 0: not an interruption; one that
        # cut a round is said by that round: "after 0 round(s)" of a one-round search read as nothing trained)
        stop = "run interrupted"
        if result.settings.get("time_budget_spent") and partial and "round" in result.members:
            stop = (f"run stopped by its time budget during round {int(result.members['round'][cut].max())} (the "
                    f"table's round column)")
        elif result.settings.get("time_budget_spent"):
            stop = f"run stopped by its time budget after {result.settings.get('rounds', '?')} round(s)"
        some = f"{partial} of {len(result)} members are partial (scores so far)" if partial or not \
            result.settings.get("time_budget_spent") else f"{len(result)} members, none partial"
        from vmaptune.run_dir import results_without_checkpoints

        if results_without_checkpoints(run_dir):  # (results.save's folder: a resume there is refused)
            print(f"{stop}: {some}; it holds no checkpoints/ (results.save of a run without a run_dir, or its "
                  f"checkpoints removed), so it cannot be continued: run the search again with a run directory "
                  f"to keep it resumable.")
        else:
            print(f"{stop}: {some}; continue it with "
                  f"the command that started it plus --resume (less any --overwrite): `vmaptune run <config> --out "
                  f"{quoted} --resume`, or `vmaptune demo [its flags] --out {quoted} --resume` for a demo; in "
                  f"Python, vt.tune(..., run_dir={run_dir!r}, resume=True).")
    elif result.settings.get("finished") is False:  # (saved after a round; runs written before the flag: unsaid)
        print(f"run unfinished: {result.settings.get('rounds', '?')} round(s) saved, and the run did not end: it was "
              f"killed, or is still running. Continue a killed run with the command that started it plus "
              f"--resume (less any --overwrite): `vmaptune run <config> --out {shlex.quote(run_dir)} --resume`; in "
              f"Python, vt.tune(..., run_dir={run_dir!r}, resume=True).")
    print(result.summary(top))
    where = run_dir if plots is None else plots
    try:
        if plots is not None and os.path.exists(plots) and not os.path.isdir(plots):
            raise NotADirectoryError(f"{plots!r} is a file")
        curves = plot_curves(result, os.path.join(where, "curves.png"), k=max(1, min(top, len(result))))
        scores = plot_scores(result, os.path.join(where, "scores.png"))
    except OSError as err:
        if plots is not None:
            raise ValueError(f"--plots {plots!r}: the plots cannot be written there ({err}); give a directory you "
                             f"can write to (it is made if needed).") from None
        # a run directory read-only to this user (a shared or archived run): the report stands without its plots
        print(f"vmaptune report: warning: plots not written: {err}; write them elsewhere with --plots DIR.",
              file=sys.stderr)
        return 0
    print(f"\nplots: {curves}, {scores}")
    return 0


def _study_name_flag(text: str) -> str:
    """--study-name's value: a name (an empty one fell back to the default name unsaid)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("give the study a name, or leave --study-name out (the run directory's name)")
    return text


def _out_flag(text: str) -> str:
    """--out's value: a directory (an empty one, often an unset shell variable in --out "$RUN_DIR", fell
    back to the default run directory unsaid)."""
    if not text.strip():
        raise argparse.ArgumentTypeError(f"{text!r}: give the run directory, or leave --out out for its default (an "
                                         f"empty --out is often an unset shell variable: --out \"$RUN_DIR\")")
    return _path_flag(text)


def _path_flag(text: str) -> str:
    """A path on the command line, ~ as the home directory: the shell leaves --out=~/x, and a quoted
    '~/x', as they are (a folder named ~ was made in the current one)."""
    return os.path.expanduser(text)


def _study_name(run_dir: str) -> str:
    """The Optuna study a run directory is exported to: its folder's name ('.' names the folder)."""
    return os.path.basename(os.path.abspath(run_dir))


def _export(args) -> int:
    import vmaptune as vt
    from vmaptune.optuna_study import CLI_FIXES, to_optuna

    if not os.path.isdir(args.run_dir):
        raise ValueError(f"{args.run_dir!r} is not a run directory; give the --out directory of `vmaptune run` / "
                         f"`vmaptune demo`.")
    name = args.study_name or _study_name(args.run_dir)
    with _optuna_logs_quiet(import_optuna=True):
        study = to_optuna(vt.load_results(args.run_dir), args.optuna, name, overwrite=args.overwrite,
                          append=args.append, _fixes=CLI_FIXES)  # (its errors name the flags, not Python's arguments)
    states = {}
    for trial in study.trials:
        states[trial.state.name.lower()] = states.get(trial.state.name.lower(), 0) + 1
    print(f"{len(study.trials)} trials in study {name!r} of {args.optuna} "
          f"({', '.join(f'{n} {state}' for state, n in sorted(states.items()))}); see them with: "
          f"optuna-dashboard {shlex.quote(args.optuna)}")
    if states.get("running"):
        print(f"the {states['running']} running trials are the members of the interrupted round: after "
              f"`vmaptune run ... --resume`, export with --append to finish them.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
