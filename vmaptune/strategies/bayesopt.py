"""Bayesian optimisation: a GP surrogate proposes each population (batch BO), ask/tell like the rest.

Round by round: the first `initial_size` members come from a space-filling design (Sobol, Latin
hypercube or random); after that every `ask` fits a GP (Matern-5/2 ARD, `vmaptune.gp`) to all
scores so far and maximises an acquisition function for P distinct proposals
(`vmaptune.acquisition`).

The GP sees the space through `Encoding`: each float or integer parameter is one coordinate in
[0, 1] in its own scale (log for `LogUniform`, ...), each `Choice` is a one-hot block, `Fixed`
parameters are dropped. Integers and choices are snapped to real values before a proposal is
scored, so the GP never proposes a point between two integers.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from typing import Any, ClassVar, Mapping

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from vmaptune.arguments import checked_arguments
from vmaptune import acquisition, gp
from vmaptune.checkpoint import repr_without_unset
from vmaptune.compile_cache import quick_program
from vmaptune.space import Space
from vmaptune.strategies.base import Strategy, check_positive_int, check_scores, check_space
from vmaptune.warn import warn

INITIAL_DESIGNS = ("sobol", "lhs", "random")
FAILED_POLICIES = ("worst", "ignore")
# TuRBO's side lengths (minimum, initial, maximum) as shares of the unit cube, the batches in a row
# that double it, and the relative improvement that counts as a success (Eriksson et al., 2019).
TRUST_REGION_LENGTH = (0.5**7, 0.8, 1.6)
TRUST_REGION_SUCCESSES = 3
TRUST_REGION_IMPROVEMENT = 1e-3
# The box's sides follow the lengthscales clipped to TuRBO's range: a parameter the GP finds
# irrelevant (a lengthscale at the fit's upper bound, 20) would otherwise squeeze all the others.
TRUST_REGION_LENGTHSCALES = (0.005, 2.0)
TRUST_REGION_PERTURBED = 20  # parameters a candidate changes on average (all of them in smaller spaces)


# -- the space as GP inputs --------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Encoding:
    """Maps populations of a `Space` to points of the encoded cube [0, 1]^D and back.

    D = one column per float / int parameter + one column per option of each `Choice`; `Fixed`
    parameters have none. Hashable, so jitted functions can take it as a static argument.
    """

    space: Space
    # (name, kind, first column, width) per non-fixed parameter, in space order.
    blocks: tuple = dataclasses.field(init=False, compare=False, repr=False)

    def __post_init__(self):
        blocks, col = [], 0
        for name, dist in self.space.items():
            if dist.is_fixed:
                continue
            width = len(dist.options) if dist.kind == "categorical" else 1
            blocks.append((name, dist.kind, col, width))
            col += width
        object.__setattr__(self, "blocks", tuple(blocks))

    @property
    def width(self) -> int:
        """D, the number of GP input columns."""
        return sum(b[3] for b in self.blocks)

    @property
    def num_units(self) -> int:
        """Columns of the space's own unit cube (`Space.from_unit`), fixed ones included."""
        return len(self.space)

    @property
    def free_mask(self) -> np.ndarray:
        """(D,) 1.0 on coordinates that gradient refinement may move (floats and integers)."""
        m = np.zeros(self.width)
        for _, kind, col, width in self.blocks:
            if kind != "categorical":
                m[col : col + width] = 1.0
        return m

    @property
    def block_matrix(self) -> np.ndarray:
        """(B, D) 1.0 where column d belongs to the b-th non-fixed parameter."""
        m = np.zeros((len(self.blocks), self.width))
        for b, (_, _, col, width) in enumerate(self.blocks):
            m[b, col : col + width] = 1.0
        return m

    def encode(self, hp: Mapping[str, Any]) -> jax.Array:
        """dict name -> (n,) encoded values -> (n, D). A conditional name a member's setting does
        not use (Space.only_when) takes one constant, the block's middle, so that the GP sees all
        such members alike there, observed and proposed."""
        active = self.space.active(hp, xp=jnp) if self.space.conditions else {}
        cols = []
        for name, kind, _, width in self.blocks:
            x = jnp.asarray(hp[name])
            if kind == "categorical":
                col = jax.nn.one_hot(x, width, dtype=jnp.result_type(float))
            else:
                col = self.space[name].to_unit(x)[:, None].astype(jnp.result_type(float))
            if name in active:
                col = jnp.where(active[name][:, None], col, jnp.asarray(0.5 if kind != "categorical" else 1 / width,
                                                                        col.dtype))
            cols.append(col)
        return jnp.concatenate(cols, axis=1)

    def decode(self, Z: jax.Array) -> dict[str, jax.Array]:
        """(n, D) -> dict name -> (n,) values: integers to their bin, a choice to its largest
        one-hot entry, fixed parameters to their value."""
        Z = jnp.asarray(Z)
        by_name = {b[0]: b for b in self.blocks}
        cols = []
        for name in self.space.names:
            if name not in by_name:
                cols.append(jnp.full((Z.shape[0],), 0.5, Z.dtype))
                continue
            _, kind, col, width = by_name[name]
            if kind == "categorical":
                cols.append((jnp.argmax(Z[:, col : col + width], axis=1) + 0.5) / width)
            else:
                cols.append(jnp.clip(Z[:, col], 0.0, 1.0))
        return self.space.from_unit(jnp.stack(cols, axis=1))

    def snap(self, Z: jax.Array) -> jax.Array:
        """(n, D) -> (n, D): the encoding of the values Z decodes to (a projection onto the space)."""
        return self.encode(self.decode(Z)).astype(Z.dtype)

    def unit_to_z(self, U: jax.Array) -> jax.Array:
        """Points of the space's unit cube (n, len(space)) -> (n, D)."""
        return self.encode(self.space.from_unit(U)).astype(U.dtype)


# -- host-side conversions ---------------------------------------------------------------------------
# ask and tell convert a population or two per round; run eagerly, each jnp operation of a
# conversion compiled a program of its own (about 60, 2-3 s of a first search's compiles).
_host_program = quick_program(static_argnums=0)
_encode = _host_program(lambda encoding, hp: encoding.encode(hp))
_decode = _host_program(lambda encoding, Z: encoding.decode(Z))
_unit_to_z = _host_program(lambda encoding, U: encoding.unit_to_z(U))
_constrain = quick_program(gp.constrain)
_default_raw = _host_program(lambda d: gp.unconstrain(gp.default_params(d)))


# -- helpers ---------------------------------------------------------------------------------------
def bucket(n: int, minimum: int = 128) -> int:
    """Padded size for n observations: `minimum`, then 3/4 and 1 of each power of two. Few sizes
    mean few compilations; the padding costs at most a factor 4/3 in rows."""
    if n <= minimum:
        return minimum
    step = 2 ** (math.ceil(math.log2(n)) - 2)
    return -(-n // step) * step


def _pad(a: np.ndarray, size: int) -> np.ndarray:
    out = np.zeros((size,) + a.shape[1:], a.dtype)
    out[: len(a)] = a
    return out


def _warn_if_repeated(Z: np.ndarray, observed: np.ndarray) -> None:
    """Says so when a population repeats itself or a point already tried: only a discrete space
    with fewer new points than the population forces that."""
    repeats = len(Z) - len(_first_distinct(Z, len(Z), exclude=observed))
    if repeats:
        warn(f"BayesOpt: {repeats} of this round's {len(Z)} members repeat points already tried or "
             f"asked: the space has fewer new points than the population (a discrete space this small is "
             f"searched whole by vt.GridSearch).", UserWarning)


def _first_distinct(Z: np.ndarray, n: int, exclude: np.ndarray | None = None) -> np.ndarray:
    """The first n rows of Z that repeat neither an earlier row nor a row of `exclude`."""
    rounded = [tuple(r) for r in np.round(Z, 6)]
    seen = set() if exclude is None else {tuple(r) for r in np.round(exclude, 6)}
    keep = []
    for i, r in enumerate(rounded):
        if r not in seen:
            seen.add(r)
            keep.append(i)
            if len(keep) == n:
                break
    return Z[keep]


def _key_seed(key: jax.Array) -> int:
    """An integer seed for numpy / scipy drawn from a JAX key (keeps 'same key, same result')."""
    return int(_seed_draw(key))


_seed_draw = quick_program(lambda key: jax.random.randint(key, (), 0, 2**31 - 1, jnp.int32))  # (int32 under x64 too)
_split_in_three = quick_program(lambda key: tuple(jax.random.split(key, 3)))  # unpacked eagerly: two programs


def _check_choice(owner: str, name: str, value: Any, allowed: tuple, fix: str = "") -> None:
    if value not in allowed:
        raise ValueError(f"{owner}: {name} must be one of {', '.join(map(repr, allowed))}, got {value!r}.{fix}")


def _check_nonnegative(owner: str, name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not (math.isfinite(value) and value >= 0):
        raise ValueError(f"{owner}: {name} must be a finite number >= 0, got {value!r}.")
    return float(value)


# -- state and strategy ----------------------------------------------------------------------------
@struct.dataclass
class BayesOptState:
    space: Space = struct.field(pytree_node=False)
    encoding: Encoding = struct.field(pytree_node=False)
    X: np.ndarray  # (n, D) every evaluated point, encoded
    y: np.ndarray  # (n,) its score, NaN where it failed
    design: np.ndarray  # (initial_size, D) the initial design, handed out first
    gp_raw: np.ndarray  # (D + 2,) last fitted log-hyperparameters (warm start); (0,) before any fit
    round: int = struct.field(pytree_node=False, default=0)
    design_next: int = struct.field(pytree_node=False, default=0)
    # The trust region (BayesOpt(trust_region=...)): its side as a share of the cube, the batches
    # in a row that improved / did not improve on the region's best, the first observation of the
    # region (older ones belong to regions given up), how many members of the last batch came
    # from the region (the first ones; only they move the counters), whether the next ask starts a
    # new region with a space-filling batch, and the model-based asks so far (a hedge's split).
    region_length: float = struct.field(pytree_node=False, default=TRUST_REGION_LENGTH[1])
    region_successes: int = struct.field(pytree_node=False, default=0)
    region_failures: int = struct.field(pytree_node=False, default=0)
    region_start: int = struct.field(pytree_node=False, default=0)
    region_asked: int = struct.field(pytree_node=False, default=0)
    region_restart: bool = struct.field(pytree_node=False, default=False)
    model_asks: int = struct.field(pytree_node=False, default=0)

    @property
    def num_observations(self) -> int:
        return int(self.y.shape[0])


@checked_arguments("vt.BayesOpt(population=64, rounds=10, acquisition='ei')")
@dataclasses.dataclass(frozen=True)
class BayesOpt(Strategy):
    """Batch Bayesian optimisation with a GP surrogate.

    population: members per ask. rounds: number of asks (`done` after that many tells).
    acquisition: "ei" (expected improvement), "pi" (probability of improvement), "ucb" (upper
        confidence bound) - batched by kriging believer - or "thompson" (one posterior sample per
        member).
    initial_design: "sobol", "lhs" or "random"; initial_size: its size (default: one population).
    restarts: starts of the fit (the previous fit is one of them; default 2: under the lengthscale
        prior a third start changed nothing on BBOB or Hartmann-6 and cost a third of an ask).
    max_fit_points: the hyperparameters are fitted on at most this many observations (the best
        half and a random rest); the posterior always uses all of them.
    num_candidates, num_starts, refine_steps: acquisition maximiser (pool size, starts refined per
        member, Adam steps). xi: EI / PI margin; kappa: UCB width (both on the standardised scale).
    num_features: random Fourier features per Thompson sample.
    failed: "worst" (NaN scores count as the worst score seen) or "ignore" (left out of the fit).
        Either way, failed points are never proposed again.
    output_warping: how the scores are transformed before the GP fit (`gp.warp_outputs`), always
        by an increasing map: "none" (standardised only), "copula" (rank-based Gaussian copula:
        only the order of the scores counts) or "power" (Yeo-Johnson by maximum likelihood).
        Warping keeps scores that span decades (a long tail of very bad ones) from flattening
        the model where the good ones are. Default "power": on the BBOB suite (bench/blackbox.py,
        24 functions x 3 instances, batches of 8; 5-D on 8 seeds, 20-D on 2) it beat TPE on 16
        and 17 functions of 24 where "none" beat it on 13 and 14, and lowered the 5-D mean log10
        regret from 1.06 to 0.92 (bench/RESULTS.md). "copula" did worse than either there.
    trust_region: where each batch's members are proposed. A share in (0, 1) (default 0.5):
        that share of each batch inside a box around the best point so far (TuRBO, Eriksson et
        al., 2019), the rest over the whole space; the global members keep the large moves, the
        region members refine. With population 1 the batches alternate. On the BBOB suite
        (bench/blackbox.py, 24 functions x 3 instances, batches of 8) the hedge had the lowest
        mean log10 regret in 5-D and beat TPE on more functions than either pure search in 5-D
        and 20-D (bench/RESULTS.md). True: every member in the box (TuRBO-1), for spaces of many
        parameters; False: the whole space only. The box's sides follow the GP's lengthscales;
        it doubles after 3 batches in a row whose region members improve on the best and halves
        after max(4, D) / (region members per batch) batches that do not. Below 0.5^7 of the
        cube, with True the region is given up and a new one starts from a space-filling batch,
        modelled on its own observations; with a share it starts again at its first size around
        the incumbent, and the model always keeps every observation.
    lengthscale_prior: (median, sigma) of a log-normal prior on each lengthscale (the encoded
        space is the unit cube), fitted by maximum a posteriori; None: maximum likelihood. Default
        (0.5, 0.7), close to BoTorch's classic Gamma(3, 6) prior. With few observations the
        likelihood alone often picks lengthscales of 3-20 (a nearly flat model along a parameter,
        one basin): on Hartmann-6 (8 x 10) the prior found the global optimum on 15 seeds of 20
        against 9, and on the BBOB suite (batches of 8) it beat the unregularised fit on 16 of 24
        functions in 5-D and 23 of 24 in 20-D (bench/RESULTS.md).
    """

    population: int = 64
    rounds: int = 10
    rounds_field: ClassVar[str | None] = "rounds"  # a resume may change it (Strategy.rounds_field)
    acquisition: str = "ei"
    initial_design: str = "sobol"
    initial_size: int | None = None
    restarts: int = 2
    max_fit_points: int = 512
    num_candidates: int = 1024
    num_starts: int = 4
    refine_steps: int = 20
    xi: float = 0.01
    kappa: float = 2.0
    num_features: int = 1024
    failed: str = "worst"
    output_warping: str = "power"
    trust_region: bool | float = 0.5
    lengthscale_prior: tuple[float, float] | None = (0.5, 0.7)

    def __post_init__(self):
        super().__post_init__()
        owner = "BayesOpt"
        check_positive_int(owner, "rounds", self.rounds)
        _check_choice(owner, "acquisition", self.acquisition, acquisition.ACQUISITIONS,
                      " Use 'ei' (expected improvement), 'pi', 'ucb' or 'thompson'.")
        _check_choice(owner, "initial_design", self.initial_design, INITIAL_DESIGNS)
        if self.initial_size is not None:
            check_positive_int(owner, "initial_size", self.initial_size)
            budget = self.population * self.rounds
            if self.initial_size >= budget:  # (a quasi-random search under BayesOpt's name)
                warn(f"BayesOpt(initial_size={self.initial_size}) covers its whole budget, population x rounds = "
                     f"{budget} evaluations: every member comes from the initial {self.initial_design} design and "
                     f"the model is never fitted. Lower initial_size below {budget} (the default is one population, "
                     f"{self.population}), or raise rounds.", UserWarning)
        check_positive_int(owner, "restarts", self.restarts)
        check_positive_int(owner, "max_fit_points", self.max_fit_points, minimum=8)
        check_positive_int(owner, "num_candidates", self.num_candidates)
        check_positive_int(owner, "num_starts", self.num_starts)
        check_positive_int(owner, "refine_steps", self.refine_steps, minimum=0)
        check_positive_int(owner, "num_features", self.num_features)
        _check_nonnegative(owner, "xi", self.xi)
        _check_nonnegative(owner, "kappa", self.kappa)
        _check_choice(owner, "failed", self.failed, FAILED_POLICIES,
                      " 'worst' scores failures as the worst value seen, 'ignore' leaves them out of the fit.")
        _check_choice(owner, "output_warping", self.output_warping, gp.OUTPUT_WARPINGS,
                      " 'none' standardises the scores, 'copula' uses their ranks, 'power' a Yeo-Johnson transform.")
        prior = self.lengthscale_prior
        if prior is not None and not (isinstance(prior, (tuple, list)) and len(prior) == 2
                                      and all(isinstance(v, numbers.Real) and not isinstance(v, bool)
                                              and 0 < v < math.inf for v in prior)):
            raise ValueError(f"BayesOpt: lengthscale_prior must be None or (median, sigma), two positive numbers: the "
                             f"median lengthscale on the unit cube and the sd of its log, e.g. (0.5, 0.7); "
                             f"got {prior!r}.")
        if prior is not None:  # a list becomes a tuple: the settings stay hashable
            object.__setattr__(self, "lengthscale_prior", (float(prior[0]), float(prior[1])))
        share = self.trust_region
        if not (isinstance(share, (bool, np.bool_)) or (isinstance(share, numbers.Real) and 0 < share < 1)):
            raise ValueError(f"BayesOpt: trust_region must be True, False or a share of each batch between 0 and 1 "
                             f"(0.5: half the members in the region, half over the whole space), got {share!r}.")

    def __repr__(self) -> str:
        """The dataclass's, without lengthscale_prior while it is None: the run directories written
        before the prior existed resume with lengthscale_prior=None."""
        return repr_without_unset(self, ("lengthscale_prior",))

    @property
    def _hedge(self) -> bool:
        """Part of each batch in the trust region, the rest global (trust_region a share)."""
        return not isinstance(self.trust_region, (bool, np.bool_))

    @property
    def _region_share(self) -> float:
        return float(self.trust_region)

    def _region_members(self, state: "BayesOptState") -> int:
        """Members of this model-based batch proposed in the trust region: all of them with
        trust_region=True; with a share, floor((k + 1) s P) - floor(k s P) at the k-th such batch
        (alternating at P = 1)."""
        if not self._hedge:
            return self.population if self.trust_region else 0
        k, share = state.model_asks, self._region_share * self.population
        return math.floor((k + 1) * share + 1e-9) - math.floor(k * share + 1e-9)

    @property
    def _initial_size(self) -> int:
        return self.population if self.initial_size is None else self.initial_size

    @property
    def _settings(self) -> acquisition.BatchSettings:
        return acquisition.BatchSettings(
            thompson=self.acquisition == "thompson",
            population=acquisition.population_capacity(self.population),
            num_candidates=self.num_candidates,
            num_starts=self.num_starts,
            refine_steps=self.refine_steps,
            refine_lr=0.02,
            num_features=self.num_features,
            trust_region=bool(self.trust_region),
            hedge=self._hedge,
        )

    @property
    def _choice(self) -> acquisition.AcquisitionChoice:
        index = acquisition.ACQUISITIONS.index(self.acquisition) if self.acquisition != "thompson" else 0
        return acquisition.AcquisitionChoice(jnp.asarray(index, jnp.int32), jnp.asarray(self.xi), jnp.asarray(self.kappa))

    # -- protocol ------------------------------------------------------------------------------
    def init(self, space: Space, key: jax.Array) -> BayesOptState:
        space = check_space("BayesOpt", space)
        if not space.free_names:
            raise ValueError(
                f"BayesOpt.init: the space has nothing to search (every parameter is Fixed): {space!r}. "
                "Give at least one distribution, e.g. vt.LogUniform(1e-4, 1e-1)."
            )
        encoding = Encoding(space)
        design = self._design(encoding, key)
        D = encoding.width
        return BayesOptState(
            space=space,
            encoding=encoding,
            X=np.zeros((0, D)),
            y=np.zeros((0,)),
            design=design,
            gp_raw=np.zeros((0,)),
        )

    def ask(self, state: BayesOptState, key: jax.Array):
        P = self.population
        if state.design_next < len(state.design):
            Z = state.design[state.design_next : state.design_next + P]
            if len(Z) < P:  # the design ran out mid-population: top up with random points
                Z = self._top_up(state, Z, key)
            return _decode(state.encoding, jnp.asarray(Z, jnp.float32)), state.replace(
                design_next=state.design_next + P
            )
        if state.region_restart:  # a new trust region starts from a space-filling batch
            Z = self._top_up(state, np.zeros((0, state.encoding.width)), key)
            return _decode(state.encoding, jnp.asarray(Z, jnp.float32)), state.replace(region_restart=False,
                                                                                      region_asked=0)
        if np.sum(np.isfinite(state.y[state.region_start :])) < 2:
            # Nothing to fit yet (every score so far failed): keep exploring at random.
            return state.space.sample(key, P), state.replace(region_asked=0)
        region_members = self._region_members(state)
        # one BLAS thread: the fit's numpy and the proposal's LAPACK calls (jaxlib's CPU kernels
        # use scipy's) work on small matrices, where waiting threads cost more than they save
        with jax.enable_x64(True), gp.one_blas_thread():
            Z, raw = self._fit_and_propose(state, key, region_members)
        _warn_if_repeated(np.asarray(Z, np.float64), state.X)
        return _decode(state.encoding, jnp.asarray(Z, jnp.float32)), state.replace(
            gp_raw=raw, region_asked=region_members, model_asks=state.model_asks + 1)

    def tell(self, state: BayesOptState, hp: Mapping[str, jax.Array], scores) -> BayesOptState:
        n = state.space.check_told(hp, "BayesOpt.tell")
        check_scores("BayesOpt", scores, n)
        hp = {name: np.asarray(values) for name, values in hp.items()}  # (lists: jit traces each entry)
        with jax.enable_x64(True):
            Z = np.asarray(_encode(state.encoding, hp), np.float64)
        # (as given, not through float32: 1e8 - (x - 0.3)**2 kept its order, 1e39 stayed finite)
        scores = np.asarray(scores, np.float64)
        if state.region_asked:
            state = self._update_region(state, scores)
        return state.replace(
            X=np.concatenate([state.X, Z]),
            y=np.concatenate([state.y, scores]),
            round=state.round + 1,
        )

    def done(self, state: BayesOptState) -> bool:
        return state.round >= self.rounds

    def total_evaluations(self, space: Space | None = None) -> int:
        return self.population * self.rounds

    # -- internals -----------------------------------------------------------------------------
    def _update_region(self, state: BayesOptState, scores: np.ndarray) -> BayesOptState:
        """TuRBO's bookkeeping after a batch whose first state.region_asked members were proposed
        from the trust region (state: before the batch is added). Success: those members beat the
        region's best by a relative 1e-3. A hedge's region that shrinks away starts again at its
        first size around the incumbent (its global members explore meanwhile)."""
        region = state.y[state.region_start :]
        before = np.max(region[np.isfinite(region)])
        asked = self.population if state.region_asked is True else int(state.region_asked)  # (older states: a flag)
        new = scores[:asked]
        new = new[np.isfinite(new)]
        improved = new.size > 0 and np.max(new) > before + TRUST_REGION_IMPROVEMENT * abs(before)
        successes = state.region_successes + 1 if improved else 0
        failures = 0 if improved else state.region_failures + 1
        length = state.region_length
        per_batch = max(self._region_share * self.population, 1.0)  # region members per batch, on average
        failure_limit = math.ceil(max(4, len(state.encoding.blocks)) / per_batch)
        if successes >= TRUST_REGION_SUCCESSES:
            length, successes = min(2 * length, TRUST_REGION_LENGTH[2]), 0
        elif failures >= failure_limit:
            length, failures = length / 2, 0
        if length < TRUST_REGION_LENGTH[0]:
            # shrunk away: a hedge starts again around the incumbent (its global members explore
            # meanwhile); a pure trust region is given up for a new one and its own observations
            restart = {} if self._hedge else {"region_start": len(state.y) + len(scores), "region_restart": True}
            return state.replace(region_length=TRUST_REGION_LENGTH[1], region_successes=0, region_failures=0,
                                 region_asked=0, **restart)
        return state.replace(region_length=length, region_successes=successes, region_failures=failures,
                             region_asked=0)

    def _region(self, state: BayesOptState, X: np.ndarray, y: np.ndarray, raw: np.ndarray) -> acquisition.TrustRegion:
        """The box around the best of (X, y), its sides in proportion to the fitted lengthscales
        (geometric mean 1) times the region's length, on the continuous coordinates."""
        enc = state.encoding
        free = enc.free_mask > 0
        center = X[np.argmax(y)]
        lengthscale = np.clip(np.asarray(_constrain(jnp.asarray(raw)).lengthscale), *TRUST_REGION_LENGTHSCALES)
        lower, upper = np.zeros(enc.width), np.ones(enc.width)
        if free.any():
            weights = lengthscale[free] / np.exp(np.mean(np.log(lengthscale[free])))
            half = weights * state.region_length / 2
            lower[free] = np.clip(center[free] - half, 0.0, 1.0)
            upper[free] = np.clip(center[free] + half, 0.0, 1.0)
        perturb = min(1.0, TRUST_REGION_PERTURBED / max(len(enc.blocks), 1))
        return acquisition.TrustRegion(jnp.asarray(center), jnp.asarray(lower), jnp.asarray(upper),
                                       jnp.asarray(perturb, jnp.float64))

    def _design(self, encoding: Encoding, key: jax.Array) -> np.ndarray:
        """The initial design in the encoded cube, (initial_size, D), without repeated points.

        Drawn 4x over and cut to the first initial_size distinct points: in a small discrete space
        several draws land on one value. A space with fewer points than asked gives them all."""
        n, d = self._initial_size, encoding.num_units
        seed = _key_seed(key)
        if self.initial_design == "sobol":
            m = max(0, math.ceil(math.log2(4 * n)))  # a power of two keeps Sobol's balance; take a prefix
            from scipy.stats import qmc  # imported when used: scipy.stats costs a second at import

            U = qmc.Sobol(d, scramble=True, rng=seed).random_base2(m)
        elif self.initial_design == "lhs":
            # One hypercube of n points first (stratified), then others for any repeats.
            from scipy.stats import qmc

            U = np.concatenate([qmc.LatinHypercube(d, rng=seed + i).random(n) for i in range(4)])
        else:
            U = np.random.default_rng(seed).uniform(size=(4 * n, d))
        with jax.enable_x64(True):
            Z = np.asarray(_unit_to_z(encoding, jnp.asarray(U)), np.float64)
        return _first_distinct(Z, n)

    def _top_up(self, state: BayesOptState, Z: np.ndarray, key: jax.Array) -> np.ndarray:
        """Z plus random points, up to a population, repeating neither Z nor an observation."""
        need = self.population - len(Z)
        U = jax.random.uniform(key, (64 * need, state.encoding.num_units), jnp.float32)
        with jax.enable_x64(True):
            extra = np.asarray(_unit_to_z(state.encoding, jnp.asarray(U, jnp.float64)), np.float64)
        known = np.concatenate([state.X, Z])
        fresh = _first_distinct(extra, need, exclude=known)
        if len(fresh) < need:  # the space has run out of new points: repeats can't be avoided
            fresh = np.concatenate([fresh, extra[: need - len(fresh)]])
        out = np.concatenate([Z, fresh])
        _warn_if_repeated(out, state.X)
        return out

    def _asks_per_size(self, padded: int) -> int:
        """At most how many asks of this search find `padded` observations after padding (`bucket`):
        the sizes between it and the next smaller bucket, a population per ask, within the rounds.
        From the size alone, not from where the search stands, so a resumed search prices its
        proposal program as the uninterrupted one did."""
        if padded <= bucket(0):
            smaller = 0
        else:  # buckets are 3/4 and 1 of each power of two
            smaller = 3 * padded // 4 if padded & (padded - 1) == 0 else 2 * padded // 3
        return min(-(-(padded - smaller) // self.population), self.rounds)

    def _fit_and_propose(self, state: BayesOptState, key: jax.Array,
                         region_members: int = 0) -> tuple[np.ndarray, np.ndarray]:
        enc = state.encoding
        D = enc.width
        X_all, y_all = state.X, state.y
        # A trust region is modelled on its own observations (those of regions given up are
        # only kept from being proposed again).
        X_model, y_model = X_all[state.region_start :], y_all[state.region_start :]
        finite = np.isfinite(y_model)
        if self.failed == "worst":
            X, y = X_model, np.where(finite, y_model, np.min(y_model[finite]))
        else:
            X, y = X_model[finite], y_model[finite]
        y = gp.warp_outputs(y, self.output_warping)
        k_sub, k_fit, k_prop = _split_in_three(key)

        # Hyperparameters from at most max_fit_points observations: the best half (where the
        # optimiser works) and a random rest (the global shape).
        n = len(y)
        if n > self.max_fit_points:
            order = np.argsort(-y, kind="stable")
            n_best = self.max_fit_points // 2
            rest = np.asarray(jax.random.permutation(k_sub, order[n_best:]))
            idx = np.concatenate([order[:n_best], rest[: self.max_fit_points - n_best]])
        else:
            idx = np.arange(n)
        m = bucket(len(idx))
        fit_mask = _pad(np.ones(len(idx), bool), m)
        warm = state.gp_raw if state.gp_raw.shape == (D + 2,) else np.asarray(_default_raw(D))
        inits = np.concatenate([warm[None], np.asarray(gp.random_raw_inits(k_fit, D, self.restarts - 1))])
        raw, _ = gp.fit(_pad(X[idx], m), _pad(y[idx], m), fit_mask, inits, lengthscale_prior=self.lengthscale_prior)

        nb, nr = bucket(n), bucket(len(X_all))
        settings = self._settings
        quick = acquisition.quick_proposal(settings, nb, self._asks_per_size(nb))
        Z = (acquisition.propose_batch_quick if quick else acquisition.propose_batch)(
            _constrain(jnp.asarray(raw)),
            _pad(X, nb),
            _pad(y, nb),
            _pad(np.ones(n, bool), nb),
            _pad(X_all, nr),
            _pad(np.ones(len(X_all), bool), nr),
            k_prop,
            self._choice,
            settings=settings,
            encoding=enc,
            count=self.population,
            region=self._region(state, X, y, raw) if self.trust_region else None,
            region_members=region_members,
        )
        return np.asarray(Z, np.float64)[: self.population], np.asarray(raw)
