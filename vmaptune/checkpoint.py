"""Checkpoints of a running search, so a killed run continues where it was: `vt.tune(..., run_dir=DIR,
resume=True)`.

DIR/checkpoints/<step>/ is written by orbax-checkpoint's `CheckpointManager` (atomic commit: a
checkpoint killed half-way is never seen; the last `KEEP` are kept). Each holds

    meta     JSON: the format, the run's spec (below), the round, epochs done in it, the sha256 of
             each array (a checkpoint whose arrays differ from it is damaged, passed over).
    arrays   `host`: the pickled host side (finished rounds' records, the strategy's state, the
             round in progress's bookkeeping: curves, slots, the strategy's decider state) and each
             population part's device arrays (parameters, optimizer and model state, status, keys,
             hyperparameters, controls) as plain arrays.

A checkpoint is taken after every round and, during a round, at chunk ends (vmaptune/tune.py says
when). The random streams need no position: every draw is indexed by round, epoch, look or member
id (vmaptune/streams.py), so a restored run draws exactly what the uninterrupted one did.

The spec is one text per component (space, data, model, strategy, settings, version). Resuming
with a different one is refused, naming the component and both texts: a run continued with other
data or another space would silently mix two searches.
"""

from __future__ import annotations

import contextlib
import copyreg
import dataclasses
import dis
import enum
import functools
import hashlib
import inspect
import io
import json
import os
import pickle
import re
import shutil
import sys
import threading
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from vmaptune import distributed, interrupts
from vmaptune.warn import warn

CHECKPOINTS = "checkpoints"
EMPTY = "empty_arrays"  # the tree entry that lists arrays of zero size (orbax refuses to save them)


class _Pickler(pickle.Pickler):
    """pickle, with locks saved as new unlocked ones: a strategy's state may hold an object that
    guards itself with a lock (Optuna's NSGA-II sampler does), which pickle refuses; a lock holds
    nothing worth keeping between processes."""

    dispatch_table = {**copyreg.dispatch_table,
                      type(threading.Lock()): lambda lock: (threading.Lock, ()),
                      type(threading.RLock()): lambda lock: (threading.RLock, ())}


def dumps(host: Any) -> bytes:
    """A checkpoint's host side as bytes (`_Pickler`)."""
    out = io.BytesIO()
    _Pickler(out, protocol=pickle.HIGHEST_PROTOCOL).dump(host)
    return out.getvalue()


def check_picklable(owner: str, state: Any) -> None:
    """Raises, before anything trains, when a run directory could not checkpoint `state`."""
    try:
        dumps(state)
    except Exception as err:  # (pickle raises TypeError, AttributeError, PicklingError...)
        raise TypeError(f"{owner}'s state cannot be checkpointed to run_dir ({type(err).__name__}: {err}): every "
                        f"part of a strategy's state must pickle. Run without run_dir, or keep what does not "
                        f"pickle (a lambda, an open file or connection) out of the strategy's state.") from err
KEEP = 3
FORMAT = 1
SPEC_COMPONENTS = ("space", "data", "model", "strategy", "settings", "version")


# -- the spec ------------------------------------------------------------------------------------------
def run_spec(*, space, data, model, strategy, settings: dict[str, Any], version: str) -> dict[str, str]:
    """component -> the text that identifies it (what a resumed run must match)."""
    return {"space": json.dumps(space.to_config(), sort_keys=True, default=str),
            "data": data_fingerprint(data),
            "model": without_addresses(repr(model)) + source_fingerprint(model),
            "strategy": without_addresses(repr(strategy)),
            "settings": without_addresses(json.dumps(settings, sort_keys=True, default=repr)),
            "version": version}


def with_other_rounds(strategy: Any, saved: str | None) -> int | None:
    """The saved run's value of `strategy.rounds_field` when `saved` (its strategy's spec text)
    is `strategy` with that value and no other change, and it differs; else None."""
    field = getattr(strategy, "rounds_field", None)
    if field is None or saved is None or saved == without_addresses(repr(strategy)):
        return None
    for found in re.finditer(rf"\b{field}=(\d+)", saved):
        value = int(found.group(1))
        try:
            earlier = dataclasses.replace(strategy, **{field: value})
        except (TypeError, ValueError):
            continue
        if without_addresses(repr(earlier)) == saved:
            return value
    return None


def source_fingerprint(model) -> str:
    """' source sha256 <hex>' of your own module's class (or factory) source, so that a resume after
    an edit of the class is refused: its repr names only the class. '' for the built-in models
    (their repr holds their whole configuration) and for a class whose source cannot be read (one
    typed into an interactive session). Code the class calls elsewhere is not covered."""
    module = getattr(model, "module", None)
    if module is None:
        return ""
    try:
        source = inspect.getsource(module)
    except (OSError, TypeError):
        return ""
    return f" source sha256 {hashlib.sha256(source.encode()).hexdigest()[:16]}"


def code_fingerprint(fn: Any, *, loaded_only: bool = False) -> str:
    """' code sha256 <hex>' of a function of yours (an optimizer factory; a vt.Metric's fn): its
    compiled code (not its source text: a lambda's source is its whole line, which `resume=True`
    added to the call changes) and the values it reads from its globals and closure, so that
    processes given different functions under one name (`def opt(hp)` reading another `scale`)
    are told apart; ' values sha256 <hex>' follows when it reads or binds arrays, lists or dicts
    (their contents). '' for anything else (a name such as 'accuracy', None). What the function
    calls elsewhere, and objects it reads, are not covered. fn may be what holds it: a vt.Metric (its fn, in target units
    or not), a loss (per_example), your optimizer (factory); vmaptune's own functions give ''.
    loaded_only: the plain values of the globals it loads only, not of every name its code holds
    (`self.name` is no read of a global `name`; a resume keeps the older, wider reading)."""
    bound = []  # (functools.partial's arguments)
    for _ in range(6):  # (a Metric -> _InTargetUnits -> your fn; a partial -> its function)
        if isinstance(fn, functools.partial):
            bound.append((fn.args, sorted(fn.keywords.items())))
            fn = fn.func
            continue
        inner = next((getattr(fn, a) for a in ("fn", "per_example", "factory") if callable(getattr(fn, a, None))), None)
        if getattr(fn, "__code__", None) is not None or inner is None:
            break
        fn = inner
    code = getattr(fn, "__code__", None)
    if code is None or (getattr(fn, "__module__", None) or "").split(".")[0] == "vmaptune":
        return ""
    digest = hashlib.sha256()
    _digest_code(digest, code)
    for args, keywords in bound:
        digest.update(repr(([_plain_repr(a) for a in args], [(k, _plain_repr(v)) for k, v in keywords])).encode())
    defaults = (getattr(fn, "__defaults__", None) or (), sorted((getattr(fn, "__kwdefaults__", None) or {}).items()))
    digest.update(repr([_plain_repr(v) for v in defaults[0]] + [(k, _plain_repr(v)) for k, v in defaults[1]]).encode())
    namespace = getattr(fn, "__globals__", {})
    names = sorted(_globals_loaded(code)) if loaded_only else code.co_names
    read = [(name, namespace[name]) for name in names if name in namespace]
    for name, cell in zip(code.co_freevars, getattr(fn, "__closure__", None) or ()):
        try:
            read.append((name, cell.cell_contents))
        except ValueError:  # (a cell not yet filled)
            continue
    for name, value in read:
        if _plain(value):  # (not an object's repr: it may hold an address, another in every process)
            digest.update(f"{name}={value!r};".encode())
    # Arrays, lists and dicts it reads or binds (class weights, a table of scales) by their contents,
    # in a second digest: runs recorded before it was kept still compare their code hash alone.
    contents = hashlib.sha256()
    loaded = _globals_loaded(code)  # (not attribute names: `jnp.mean` is no read of a global array `mean`)
    held = [(name, value) for name, value in read if not _plain(value)
            and (name in loaded or name in code.co_freevars)
            and not (loaded_only and isinstance(value, dict))]  # (a config of each host's own paths, read for a key)
    held += [(f"bound{i}.{j}", v) for i, (args, _) in enumerate(bound) for j, v in enumerate(args)]
    held += [(f"bound{i}.{k}", v) for i, (_, keywords) in enumerate(bound) for k, v in keywords]
    held += [(f"defaults.{i}", v) for i, v in enumerate(defaults[0])] + [(f"defaults.{k}", v) for k, v in defaults[1]]
    for name, value in held:
        if (part := _contents(value)) is not None and not _plain(value):
            contents.update(name.encode() + b"=" + part + b";")
    if contents.digest() == hashlib.sha256().digest():  # (nothing of the kind: the code hash alone, as before)
        return f" code sha256 {digest.hexdigest()[:16]}"
    return f" code sha256 {digest.hexdigest()[:16]} values sha256 {contents.hexdigest()[:16]}"


def model_fingerprint(model: Any) -> str:
    """What a model of yours computes with, for telling processes apart (not a resume: the module's
    source text is in run_spec): ' code <part> <value or hash>, ...' for every function of its
    module class and the classes it derives from outside flax (a global it loads, `x * SCALE`,
    counts), its class attributes (a field's default: `width: int = 8 if me == 0 else 16`; the
    function of a default_factory), its factory, its loss and metric, so that a refusal names the
    part that differs. Objects whose contents cannot be read alike in every process (a logger, a
    lock, a path) are left out. '' for vmaptune's own models."""
    module = getattr(model, "module", None)
    parts = {}
    if isinstance(module, type):
        for klass in module.__mro__:
            if (klass.__module__ or "").split(".")[0] in ("flax", "builtins", "vmaptune", "abc", "typing"):
                continue
            for name, value in sorted(vars(klass).items()):
                # (flax wraps a callable class attribute, a partial too, as a method of the module)
                value = inspect.unwrap(getattr(value, "__func__", value)) if callable(value) else value
                if inspect.isfunction(value):
                    if not (name in _DATACLASS_METHODS and value.__code__.co_filename == "<string>"):  # (made by
                        # dataclasses: the fields' defaults are below)
                        parts[f"{klass.__name__}.{name}"] = code_fingerprint(value, loaded_only=True)
                elif not name.startswith("_") and name not in ("name", "parent", "scope"):  # (flax's own)
                    parts[f"{klass.__name__}.{name}"] = _described(value)
            for field in getattr(klass, "__dataclass_fields__", {}).values():
                if callable(field.default_factory) and field.name in vars(klass).get("__annotations__", {}):
                    parts[f"{klass.__name__}.{field.name} factory"] = _described(field.default_factory)
    elif callable(module):
        parts["factory"] = code_fingerprint(module, loaded_only=True)
    parts.update({name: code_fingerprint(getattr(model, name, None), loaded_only=True) for name in ("loss", "metric")})
    shown = [f"{part} {text if len(text) <= 24 else hashlib.sha256(text.encode()).hexdigest()[:8]}"
             for part, text in parts.items() if text]
    return f" code {', '.join(shown)}" if shown else ""


#: The methods dataclasses writes for a class (code of its own, not the user's).
_DATACLASS_METHODS = frozenset({"__init__", "__repr__", "__eq__", "__hash__", "__setattr__", "__delattr__", "__lt__",
                                "__le__", "__gt__", "__ge__", "__getstate__", "__setstate__", "__replace__"})


def _described(value: Any) -> str:
    """A class attribute as the same text in every process ('' where there is none): a plain
    value's repr, an array's or container's contents, a function's code (a lambda or a factory's
    closure too), a class's or routine's qualified name, an Enum member's name."""
    if _plain(value):
        return _plain_repr(value)
    if isinstance(value, functools.partial):  # (partial(nn.leaky_relu, negative_slope=0.1))
        bound = [_plain_repr(a) for a in value.args]
        bound += [f"{k}={_plain_repr(v)}" for k, v in sorted(value.keywords.items())]
        return f"partial({_described(value.func)}, {', '.join(bound)})"
    if inspect.isfunction(value):
        return code_fingerprint(value, loaded_only=True) or f"{value.__module__}.{value.__qualname__}"
    if isinstance(value, enum.Enum):
        return f"{type(value).__qualname__}.{value.name}"
    if isinstance(value, np.dtype):
        return f"dtype {value}"
    if dataclasses.is_dataclass(value) and not isinstance(value, type):  # (a config's fields, each as above)
        fields = ", ".join(f"{f.name}={_described(getattr(value, f.name, None))}" for f in dataclasses.fields(value))
        return f"{type(value).__qualname__}({fields})"
    if isinstance(value, type) or (callable(value) and hasattr(value, "__qualname__")):  # (nn.relu, a jit)
        return f"{getattr(value, '__module__', None) or ''}.{value.__qualname__}"
    part = _contents(value)
    return "" if part is None else hashlib.sha256(part).hexdigest()


def _globals_loaded(code) -> set[str]:
    """The global names a code object (and the functions nested in it) loads as values."""
    names = {i.argval for i in dis.get_instructions(code) if i.opname in ("LOAD_GLOBAL", "LOAD_NAME")}
    for const in code.co_consts:
        if inspect.iscode(const):
            names |= _globals_loaded(const)
    return names


def _contents(value: Any, depth: int = 0) -> bytes | None:
    """The bytes that say what a value holds, the same in every process, for plain values and
    numpy / JAX arrays, and lists, tuples and dicts of them; None for other objects (their repr
    may hold an address) and for nesting deeper than 4."""
    if depth > 4:
        return None
    if _plain(value) or isinstance(value, (set, frozenset)):
        return _plain_repr(value).encode()
    if isinstance(value, jax.Array) and not value.is_fully_addressable:  # (over every process: not readable here)
        return f"array{value.dtype}{value.shape} over processes".encode()
    if isinstance(value, jax.Array) and jax.dtypes.issubdtype(value.dtype, jax.dtypes.prng_key):  # (jax.random.key)
        value = jax.random.key_data(value)
    if isinstance(value, (np.ndarray, np.generic, jax.Array)):  # (not any __array__: a dask or h5py array
        array = np.ascontiguousarray(np.asarray(value))            # would be read whole)
        if array.dtype == object:
            return None
        return f"array{array.dtype}{array.shape}".encode() + hashlib.sha256(array.tobytes()).digest()
    if isinstance(value, (list, tuple)):
        parts = [_contents(v, depth + 1) for v in value]
        return None if None in parts else f"{type(value).__name__}[".encode() + b",".join(parts) + b"]"
    if isinstance(value, dict):
        items = sorted(((_contents(k, depth + 1), _contents(v, depth + 1)) for k, v in value.items()),
                       key=lambda kv: kv[0] or b"")
        if any(k is None or v is None for k, v in items):
            return None
        return b"dict{" + b",".join(k + b":" + v for k, v in items) + b"}"
    return None


def _digest_code(digest, code) -> None:
    """A code object's instructions, names and constants (nested functions' too), without its line
    numbers: the same function written anywhere hashes alike."""
    digest.update(code.co_code)
    digest.update(repr((code.co_names, code.co_varnames, code.co_freevars, code.co_argcount,
                        code.co_posonlyargcount, code.co_kwonlyargcount, code.co_flags)).encode())
    for const in code.co_consts:
        if inspect.iscode(const):
            _digest_code(digest, const)
        else:
            digest.update(_plain_repr(const).encode())


def _plain_repr(value: Any) -> str:
    """repr of a plain value (a set's members sorted: `x in {"relu", "gelu"}` compiles to a
    frozenset, whose order changes with the hash seed); the type's name for any other object."""
    if isinstance(value, (set, frozenset)) and all(_plain(v) for v in value):
        return f"{type(value).__name__}({sorted(map(repr, value))})"
    return repr(value) if _plain(value) else type(value).__name__


def _plain(value: Any) -> bool:
    """A number, text or None, or a tuple of them: values whose repr is the same in every process."""
    if isinstance(value, tuple):
        return all(_plain(v) for v in value)
    return isinstance(value, (int, float, complex, str, bytes, bool, type(None), np.number, np.bool_))


def data_fingerprint(data) -> str:
    """'<name> <task>: <n> train / <n> validation / <n> test rows, sha256 <hex>' of every split."""
    digest = hashlib.sha256(data.task.encode())
    weighted = ("w_train", "w_val") if getattr(data, "w_train", None) is not None else ()  # (unweighted: as before)
    for name in ("X_train", "y_train", "X_val", "y_val", "X_test", "y_test", *weighted):
        array = np.ascontiguousarray(np.asarray(getattr(data, name)))
        digest.update(f"{name}{array.dtype}{array.shape}".encode())
        digest.update(array.tobytes())
    return (f"{getattr(data, 'name', '?')} {data.task}: {len(data.y_train)} train / {len(data.y_val)} validation / "
            f"{len(data.y_test)} test rows, sha256 {digest.hexdigest()[:16]}")


def unnamed_data(fingerprint: str) -> str:
    """A `data_fingerprint` without the dataset's name (the rows, counts and sha256 alone): what the
    processes of one run must agree on (each host may read its own copy of a CSV, named by its file)."""
    found = re.fullmatch(r"(.*) (\S+: \d+ train / \d+ validation / \d+ test rows, sha256 [0-9a-f]+)", fingerprint,
                         flags=re.S)
    return found.group(2) if found else fingerprint


def _renamed_data(saved: str | None, now: str | None) -> tuple[str, str] | None:
    """(saved name, name now) where two `data_fingerprint`s differ in the dataset's name alone
    (from_csv names it by its file: the same rows copied under another file name), else None."""
    parts = [re.fullmatch(r"(.*) (\S+: \d+ train / \d+ validation / \d+ test rows, sha256 [0-9a-f]+)", text or "",
                          flags=re.S) for text in (saved, now)]
    if None in parts or saved == now or parts[0].group(2) != parts[1].group(2):
        return None
    return parts[0].group(1), parts[1].group(1)


def repr_without_unset(obj, later: tuple[str, ...]) -> str:
    """A dataclass's repr without the fields in `later` (added after run directories were written)
    while they are None: run_spec records this text and a run resumes only under the same, so the
    directories written before those fields existed still resume."""
    fields = [f for f in dataclasses.fields(obj) if f.repr and not (f.name in later and getattr(obj, f.name) is None)]
    return f"{type(obj).__qualname__}({', '.join(f'{f.name}={getattr(obj, f.name)!r}' for f in fields)})"


def without_addresses(text: str) -> str:
    """repr text without ' at 0x7f...' (a function or object's address changes every process)."""
    return re.sub(r" at 0x[0-9a-fA-F]+", "", text)


#: Settings used only once every round has trained (the refit of the best settings): a finished or
#: interrupted run resumes with another value, and the refit runs again with it.
AFTER_ROUNDS = ("refit",)


class RunMismatch(ValueError):
    """A resume given other inputs than the run it resumes: `differing` names the spec's parts
    ('data', 'space', 'settings.cv', ...), `difference` says each (saved, now)."""

    differing: list[str] = []
    difference = ""


def spec_difference(saved: dict[str, str], now: dict[str, str], free: tuple[str, ...] = ()) -> str:
    """'' when the specs match, else which components differ, with both texts (shortened). free:
    settings that may differ too (they change no result of this run: `Checkpoints`' free)."""
    lines = []
    if " source sha256 " not in saved.get("model", "") and now.get("model"):  # written before the source was
        now = {**now, "model": re.sub(r" source sha256 [0-9a-f]+$", "", now["model"])}  # recorded: as then
    now = {**now, "settings": _as_recorded_then(saved.get("settings"), now.get("settings"))}
    for name in SPEC_COMPONENTS:
        if saved.get(name) != now.get(name):
            keys = _differing_keys(saved.get(name), now.get(name))
            if name == "settings" and keys:  # settings applied after the rounds may change on resume
                keys = {k: v for k, v in keys.items() if k not in AFTER_ROUNDS + tuple(free)}
                if not keys:
                    continue
            if keys:  # a JSON object (the settings): only the entries that differ
                for key, (was, is_) in keys.items():
                    label = f"{name}.{key}"
                    lines.append(f"  {label}: saved {_short(was)}\n  {' ' * len(label)}  now   {_short(is_)}")
                continue
            lines.append(f"  {name}: saved {_short(saved.get(name))}\n  {' ' * len(name)}  now   {_short(now.get(name))}")
    return "\n".join(lines)


def _as_recorded_then(saved: str | None, now: str | None) -> str | None:
    """now's settings without the code fingerprints of your functions (metric, loss, optimizer)
    where the saved run predates them: it resumes, compared as it was then."""
    try:
        a, b = json.loads(saved), json.loads(now)
    except (TypeError, ValueError):
        return now
    changed = False
    for key in ("metric", "loss", "optimizer"):
        if not (isinstance(a.get(key), str) and isinstance(b.get(key), str)):
            continue
        for recorded in (" code sha256 ", " values sha256 "):  # (the values hash came after the code hash)
            if recorded not in a[key] and recorded in b[key]:
                b[key], changed = re.sub(rf"{recorded}[0-9a-f]+", "", b[key]), True
    return json.dumps(b, sort_keys=True) if changed else now


def _differing_keys(saved: str | None, now: str | None) -> dict[str, tuple[str, str]]:
    """{key: (saved, now)} of two JSON objects' differing entries (as JSON); {} when either is not one."""
    try:
        a, b = json.loads(saved), json.loads(now)
    except (TypeError, ValueError):
        return {}
    if not (isinstance(a, dict) and isinstance(b, dict)):
        return {}
    missing = object()
    show = lambda v: "(none)" if v is missing else json.dumps(v)  # noqa: E731
    return {k: (show(a.get(k, missing)), show(b.get(k, missing))) for k in sorted(set(a) | set(b))
            if a.get(k, missing) != b.get(k, missing)}


def _short(text: str | None, limit: int = 300) -> str:
    if text is None:
        return "(none)"
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} characters)"


# -- host trees: jax arrays to numpy and back ----------------------------------------------------------
@dataclasses.dataclass
class _DeviceArray:
    value: np.ndarray


@dataclasses.dataclass
class _Key:
    data: np.ndarray
    impl: str


def to_host(tree):
    """A pytree with its jax arrays (PRNG keys included) as picklable numpy stand-ins."""
    def convert(leaf):
        if isinstance(leaf, jax.Array):
            if jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key):
                return _Key(np.asarray(jax.random.key_data(leaf)), str(jax.random.key_impl(leaf)))
            return _DeviceArray(np.asarray(leaf))
        return leaf
    return jax.tree.map(convert, tree)


def from_host(tree):
    """`to_host`'s inverse: the same values, bit for bit, as jax arrays."""
    def convert(leaf):
        if isinstance(leaf, _Key):
            return jax.random.wrap_key_data(jnp.asarray(leaf.data), impl=leaf.impl)
        if isinstance(leaf, _DeviceArray):
            return jnp.asarray(leaf.value)
        return leaf
    return jax.tree.map(convert, tree, is_leaf=lambda x: isinstance(x, (_Key, _DeviceArray)))


def leaves_to_arrays(tree) -> list[np.ndarray]:
    """A device pytree's leaves as numpy arrays (keys as their raw uint32 data)."""
    return jax.tree.leaves(distributed.to_host(tree))


def arrays_to_tree(like, arrays: list[np.ndarray]):
    """The pytree `like` (same structure, any row count) with its leaves replaced by `arrays`."""
    leaves, treedef = jax.tree.flatten(like)
    if len(leaves) != len(arrays):
        raise ValueError(f"the checkpoint holds {len(arrays)} arrays where the population has {len(leaves)}; "
                         "it was written by another version of the model or of vmaptune.")
    out = []
    for old, new in zip(leaves, arrays):
        if jax.dtypes.issubdtype(old.dtype, jax.dtypes.prng_key):
            out.append(jax.random.wrap_key_data(jnp.asarray(new), impl=jax.random.key_impl(old)))
        else:
            out.append(jnp.asarray(new, old.dtype))
    return jax.tree.unflatten(treedef, out)


# -- the checkpoints of one run directory --------------------------------------------------------------
@contextlib.contextmanager
def _quiet_closed_loops():
    """Drops 'RuntimeError: Event loop is closed' raised where Python cannot raise it (an unraisable
    exception) while checkpoints are restored: orbax's restore of a damaged checkpoint fails and
    closes its asyncio loop while tensorstore's other reads are in flight, and each read ending then
    printed a traceback (some 75 of them around the one-line warning). Anything else is shown."""
    before = sys.unraisablehook

    def hook(unraisable):
        if not (isinstance(unraisable.exc_value, RuntimeError) and str(unraisable.exc_value) == "Event loop is closed"):
            before(unraisable)

    sys.unraisablehook = hook
    try:
        yield
    finally:
        sys.unraisablehook = before


def _digest(array: np.ndarray) -> str:
    """sha256 of an array's bytes, its dtype and shape (a checkpoint's entries, checked when restored)."""
    array = np.ascontiguousarray(array)
    digest = hashlib.sha256(f"{array.dtype.str}{array.shape}".encode())
    digest.update(array.reshape(-1).view(np.uint8) if array.size else b"")
    return digest.hexdigest()


@dataclasses.dataclass
class Restored:
    """What a checkpoint brings back. host: the dict `save` was given; arrays: name -> array;
    rounds_before: the saved strategy's `rounds_field` value where the resume changed it, else None."""

    step: int
    host: dict[str, Any]
    arrays: dict[str, np.ndarray]
    rounds_before: int | None = None


class Checkpoints:
    """DIR/checkpoints of one run; `spec` identifies the run (see `run_spec`). free: the settings a
    resume may change because this run's results do not depend on them (chunk_epochs, where no
    decision is taken at every chunk's end: vt.tune says when)."""

    def __init__(self, run_dir: str, spec: dict[str, str], strategy: Any = None, free: tuple[str, ...] = ()):
        self.directory = os.path.join(os.path.abspath(run_dir), CHECKPOINTS)
        self.spec, self.free = spec, tuple(free)
        self.strategy = strategy  # (its rounds_field may differ from the saved run's: see restore)
        self._manager = None
        self._next_step: int | None = None
        self.saves = 0

    def _open(self):
        if self._manager is None:
            import orbax.checkpoint as ocp  # imported only by runs that checkpoint (about 2 s)

            # async: the arrays are on the host already; orbax writes and commits them in a thread
            # while training goes on (the next save, restore or close waits for it)
            # directories are created before save returns: created in orbax's thread, a failure (a
            # directory made read-only) left its other threads waiting 20 minutes for them at exit
            options = ocp.CheckpointManagerOptions(
                max_to_keep=KEEP, enable_async_checkpointing=True, create=True,
                async_options=ocp.options.AsyncOptions(create_directories_asynchronously=False))
            if jax.process_count() > 1:  # each process reads on its own; only process 0 saves (and creates)
                me = jax.process_index()
                if distributed.is_primary():
                    os.makedirs(self.directory, exist_ok=True)
                options = dataclasses.replace(options, create=False, multiprocessing_options=(
                    ocp.options.MultiprocessingOptions(primary_host=me, active_processes={me},
                                                       barrier_sync_key_prefix=f"vmaptune-{me}")))
            self._manager = ocp.CheckpointManager(self.directory, options=options)
        return self._manager

    def exists(self) -> bool:
        return os.path.isdir(self.directory) and self._open().latest_step() is not None

    def restore(self) -> Restored | None:
        """The latest checkpoint that reads whole, or None when there is none. Raises when it
        belongs to another run (the spec differs). A damaged newer one (a disk that failed, a file
        cut short) is passed over with a warning: the run goes on from the one before, and trains
        again what came after it."""
        if not self.exists():
            return None
        manager = self._open()
        damaged: list[str] = []
        with _quiet_closed_loops():
            restored = self._newest_whole(manager, damaged)
        if restored is not None:
            return restored
        raise ValueError(f"no checkpoint in {self.directory} can be read ({'; '.join(damaged)}), so the run cannot "
                         f"be resumed. vt.load_results(run_dir) still reads its finished rounds; overwrite=True "
                         f"(--overwrite) starts it again.")

    def _newest_whole(self, manager, damaged: list[str]) -> "Restored | None":
        """The newest checkpoint that reads whole (warned about the newer ones passed over), or None."""
        import orbax.checkpoint as ocp

        for step in sorted(manager.all_steps(), reverse=True):
            try:
                meta = manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"]
            except Exception as err:  # (orbax and tensorstore say a damaged file in many types)
                damaged.append(f"checkpoint {step}: {type(err).__name__}: {str(err)[:200]}")
                continue
            restored = self._restored(manager, step, meta, damaged)
            if restored is not None:
                if damaged:
                    warn(f"{self.directory}: {len(damaged)} newer checkpoint(s) cannot be read "
                         f"({'; '.join(damaged)}); resuming from checkpoint {step}, the newest whole one "
                         f"(what came after it trains again, to the same result).", UserWarning)
                return restored
        return None

    def _restored(self, manager, step: int, meta: Any, damaged: list[str]) -> "Restored | None":
        """Checkpoint `step`, whose meta was read, checked against this run and read whole; None
        (said in `damaged`) when it cannot be read."""
        import orbax.checkpoint as ocp

        if not isinstance(meta, dict) or "spec" not in meta:
            damaged.append(f"checkpoint {step}: its meta holds no run spec")
            return None
        if meta.get("format") != FORMAT:
            raise ValueError(f"{self.directory} holds checkpoints of format {meta.get('format')}, this vmaptune "
                             f"reads format {FORMAT}; finish the run with the vmaptune that started it, or start "
                             "again with overwrite=True (--overwrite).")
        saved = meta["spec"]
        rounds_before = with_other_rounds(self.strategy, saved.get("strategy"))
        if rounds_before is not None:  # the same strategy but for its rounds: a run searching on
            saved = {**saved, "strategy": self.spec["strategy"]}
        renamed = _renamed_data(saved.get("data"), self.spec.get("data"))
        if renamed is not None:  # the same rows under another name (a csv copied as train_v1.csv): one search
            warn(f"{os.path.dirname(self.directory)}: its data was named {renamed[0]!r}, now {renamed[1]!r}; the "
                 f"rows are the same (their sha256 matches), so the run resumes.", UserWarning)
            saved = {**saved, "data": self.spec["data"]}
        difference = spec_difference(saved, self.spec, self.free)
        if difference:
            folds = ("\nGiven folds differ where the splitter, its settings or groups= differ. Or the run was started "
                     "before vmaptune called a splitter on the rows in the order they came to vt.Dataset.from_arrays "
                     "(2026-12): where validation was carved, it split them in data.pool()'s order (train split, then "
                     "validation), and those folds resume it: cv=list(splitter.split(np.asarray(data.pool()[0])))."
                     ) if "given folds" in difference else ""
            chunks = ("\nchunk_epochs matters to this run: its early stopping takes stopped members out of the "
                      "population at chunk ends (EarlyStopping's compact_below), so the chunks set when the "
                      "population's layout changes, and another layout may round floats differently (results "
                      "differing from the run's own in their last bits). Resume with its chunk_epochs; a run without "
                      "early stopping, or with EarlyStopping(compact_below=0), or PBT's, may change them."
                      ) if "settings.chunk_epochs: saved" in difference else ""
            refused = RunMismatch(f"cannot resume the run in {os.path.dirname(self.directory)}: it was started with "
                                  f"a different\n{difference}{chunks}\nResume with the same inputs. To search on with "
                                  "other "
                                  "settings, choose another run_dir (--out; this run stays, and pd.concat joins the "
                                  "two tables); overwrite=True (--overwrite) deletes this run and starts again."
                                  f"{folds}")
            refused.difference = difference
            refused.differing = re.findall(r"^  (\S+?): saved", difference, flags=re.M)
            raise refused
        try:
            arrays = manager.restore(step, args=ocp.args.Composite(arrays=ocp.args.PyTreeRestore()))["arrays"]
            arrays = {k: np.asarray(v) for k, v in arrays.items()}
            altered = [k for k, digest in (meta.get("sha256") or {}).items()  # (none: saved before checksums, trusted)
                       if k not in arrays or _digest(arrays[k]) != digest]
            if altered:  # (a flipped bit may still decompress and unpickle, into wrong values)
                damaged.append(f"checkpoint {step}: {len(altered)} of its arrays differ from the sha256 saved with "
                               f"them")
                return None
            host = pickle.loads(arrays.pop("host").tobytes())
            if EMPTY in arrays:  # arrays of zero size, kept as (shape, dtype): orbax saves none
                arrays.update({k: np.zeros(shape, dtype) for k, (shape, dtype) in
                               pickle.loads(arrays.pop(EMPTY).tobytes()).items()})
        except Exception as err:  # (a damaged arrays file: OUT_OF_RANGE, a short pickle, ...)
            damaged.append(f"checkpoint {step}: {type(err).__name__}: {str(err)[:200]}")
            return None
        return Restored(step=step, host=host, arrays=arrays, rounds_before=rounds_before)

    def save(self, host: dict[str, Any], arrays: dict[str, np.ndarray], **meta: Any) -> int | None:
        """Commits a checkpoint of `host` (pickled) and `arrays`; returns its step (None in the
        processes of a multi-process run other than process 0: they hold the same, it writes)."""
        import orbax.checkpoint as ocp

        if not distributed.is_primary():
            return None

        manager = self._open()
        if self._next_step is None:  # counted here: an async save in flight is not yet a latest_step
            self._next_step = (manager.latest_step() or 0) + 1
        step, self._next_step = self._next_step, self._next_step + 1
        tree = {"host": np.frombuffer(dumps(host), np.uint8)}
        arrays = {k: np.asarray(v) for k, v in arrays.items()}
        empty = {k: (v.shape, v.dtype.str) for k, v in arrays.items() if v.size == 0}
        if empty:  # (a population part whose members were all packed out has zero rows)
            tree[EMPTY] = np.frombuffer(dumps(empty), np.uint8)
        tree.update({k: v for k, v in arrays.items() if v.size})
        # (checked when restored: orbax's compressed chunks carry no checksum of their own)
        meta = {**meta, "sha256": {k: _digest(v) for k, v in tree.items()}}
        with interrupts.deferred():
            manager.save(step, args=ocp.args.Composite(
                arrays=ocp.args.PyTreeSave(tree),
                meta=ocp.args.JsonSave({"format": FORMAT, "spec": self.spec, **meta})))
        self.saves += 1
        return step

    def clear(self) -> None:
        self.close()
        shutil.rmtree(self.directory, ignore_errors=True)
        self._next_step = None

    def close(self) -> None:
        """Waits for a save in progress to commit, then lets the manager go."""
        if self._manager is not None:
            with interrupts.deferred():
                self._manager.wait_until_finished()
                self._manager.close()
            self._manager = None
