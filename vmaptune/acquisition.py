"""Acquisition functions and the batch maximiser that turns a fitted GP into P distinct proposals.

Closed forms (all "higher is better", on the standardised scale the GP models):

    EI(x)  = (mu - best - xi) Phi(z) + sigma phi(z),   z = (mu - best - xi) / sigma
    PI(x)  = Phi(z)
    UCB(x) = mu + kappa sigma

Batches. EI / PI / UCB use the kriging believer (Ginsbourger et al., 2010): after choosing a member,
pretend it was observed at the posterior mean, without noise. That leaves the mean unchanged and
takes the variance at the chosen point to zero (shrinking it around), so the next member goes
elsewhere; the update is a rank-P correction, with no refit. (A belief with the fitted noise, often
large after a few observations, barely shrank it: batches of near copies.) Thompson sampling draws one posterior function per member and maximises
each (pathwise samples, `gp.sample_path`).

Maximisation, per member: score a shared pool of candidates (uniform in the space plus Gaussian
steps around the best observations) in one vmapped pass, take the best few as starts, refine them
by projected Adam on the continuous coordinates (vmapped over starts), snap them to the space
(integers to their bins, one-hot choices exact) and keep the best that duplicates neither an
observation nor an earlier member. Members go through a `lax.scan`, since each one sees the ones
before it.

Trust region (TuRBO, Eriksson et al., 2019): with `BatchSettings.trust_region` the pool is drawn
inside a box around the incumbent, changing only some parameters of it, and refinement stays in
the box. In a space of 10-20 parameters a global pool rarely lands near the incumbent; the box
keeps the search local, and the strategy (vt.BayesOpt) grows or shrinks it as batches succeed or
fail. With `BatchSettings.hedge` the pool holds both: a global half and a region half; the first
`region_members` members pick from the region's half and refine in its box, the others from the
global half over the whole cube (a hedge between the two, one program for any split).
"""

from __future__ import annotations

import math

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax
from jax.scipy.linalg import solve_triangular
from jax.scipy.stats import norm

from vmaptune import gp
from vmaptune.compile_cache import QUICK_COMPILER_OPTIONS

Array = jax.Array

ACQUISITIONS = ("ei", "pi", "ucb", "thompson")
DUPLICATE_TOL = 1e-6  # max-abs distance in the encoded cube under which two points are the same


# -- closed forms ----------------------------------------------------------------------------------
def expected_improvement(mean: Array, std: Array, best: Array, xi: float = 0.0) -> Array:
    """E[max(f - best - xi, 0)] for f ~ N(mean, std^2). Elementwise."""
    d = mean - best - xi
    z = d / std
    return d * norm.cdf(z) + std * norm.pdf(z)


def probability_of_improvement(mean: Array, std: Array, best: Array, xi: float = 0.0) -> Array:
    """P(f > best + xi) for f ~ N(mean, std^2). Elementwise."""
    return norm.cdf((mean - best - xi) / std)


_HALF_LOG_2PI = 0.5 * math.log(2.0 * math.pi)
_MILLS_UNTIL = 8.0  # below z = -8 the asymptotic series (error < 1e-6) replaces Mills' ratio


def _log_h(z: Array) -> Array:
    """log(phi(z) + z Phi(z)), finite and smooth for every z (as LogEI, Ament et al., 2023,
    "Unexpected improvements to expected improvement"): where EI underflows to 0 in float32 (z below
    about -13), its log still orders points and has a gradient. For z <= -1, h = phi(z) (1 - |z| R)
    with Mills' ratio R = Phi(z) / phi(z), and below -8 phi(z) / z^2 (1 - 3/z^2 + 15/z^4 - ...). Each branch
    reads only inputs of its own range, so no NaN reaches a gradient through a branch not taken."""
    # (where, not clip: clip halves the gradient at its bounds, where the branch taken needs all of it)
    near = jnp.where(z > -1.0, z, 0.0)
    mid = jnp.where((z <= -1.0) & (z > -_MILLS_UNTIL), z, -2.0)
    tail = jnp.where(z <= -_MILLS_UNTIL, z, -_MILLS_UNTIL)
    direct = jnp.log(norm.pdf(near) + near * norm.cdf(near))
    # Phi / phi as Phi * exp(z^2 / 2) sqrt(2 pi): a quotient's gradient would square phi(-8) to 0
    mills = (-0.5 * mid**2 - _HALF_LOG_2PI
             + jnp.log1p(mid * norm.cdf(mid) * jnp.exp(0.5 * mid**2 + _HALF_LOG_2PI)))
    w = 1.0 / tail**2
    terms = w * (-3.0 + w * (15.0 + w * (-105.0 + w * (945.0 + w * (-10395.0 + w * 135135.0)))))
    series = -0.5 * tail**2 - _HALF_LOG_2PI + jnp.log(w) + jnp.log1p(terms)
    return jnp.where(z > -1.0, direct, jnp.where(z > -_MILLS_UNTIL, mills, series))


def log_expected_improvement(mean: Array, std: Array, best: Array, xi: float = 0.0) -> Array:
    """log E[max(f - best - xi, 0)] for f ~ N(mean, std^2), computed without forming EI (which
    underflows far from the incumbent, leaving every candidate at 0). Elementwise."""
    return jnp.log(std) + _log_h((mean - best - xi) / std)


def log_probability_of_improvement(mean: Array, std: Array, best: Array, xi: float = 0.0) -> Array:
    """log P(f > best + xi) for f ~ N(mean, std^2). Elementwise."""
    return jax.scipy.special.log_ndtr((mean - best - xi) / std)


def upper_confidence_bound(mean: Array, std: Array, kappa: float = 2.0) -> Array:
    """mean + kappa * std. Elementwise."""
    return mean + kappa * std


def acquisition_value(kind: Any, mean: Array, var: Array, best: Array, xi: Any, kappa: Any) -> Array:
    """log EI, log PI or UCB from the posterior mean and variance (EI and PI by their logs: the
    same order of points, and still telling them apart where the values underflow to 0). kind:
    "ei", "pi", "ucb", or its index in ACQUISITIONS as a traced integer (then one compiled program
    serves all three)."""
    std = jnp.sqrt(var)
    branches = (
        lambda: log_expected_improvement(mean, std, best, xi),
        lambda: log_probability_of_improvement(mean, std, best, xi),
        lambda: upper_confidence_bound(mean, std, kappa),
    )
    if isinstance(kind, str):
        if kind not in ACQUISITIONS[:3]:
            raise ValueError(f"acquisition_value: kind must be one of 'ei', 'pi', 'ucb', got {kind!r}.")
        return branches[ACQUISITIONS.index(kind)]()
    return jax.lax.switch(kind, branches)


# -- settings --------------------------------------------------------------------------------------
class BatchSettings(NamedTuple):
    """Static settings of one batch proposal (hashable, so it can be a jit static argument). The
    choice between EI, PI and UCB and their xi / kappa are traced instead: one program for all."""

    thompson: bool  # Thompson sampling, else kriging believer on EI / PI / UCB
    population: int  # member capacity (`population_capacity`); the first `count` are proposed
    num_candidates: int  # pool size per proposal
    num_starts: int  # pool points refined per member
    refine_steps: int
    refine_lr: float
    num_features: int  # random Fourier features per Thompson sample
    trust_region: bool = False  # candidates and refinement inside a `TrustRegion` box
    hedge: bool = False  # with trust_region: a global pool too, for the members past `region_members`


class TrustRegion(NamedTuple):
    """A box around the incumbent that proposals stay in (TuRBO, Eriksson et al., 2019). Traced:
    a new box compiles nothing.

    center: (D,) the incumbent, encoded. lower, upper: (D,) the box on the continuous coordinates
    (0 and 1 on one-hot columns). perturb: () the probability that a candidate changes a given
    parameter; the others keep the incumbent's value (at least one always changes), so in a
    space of many parameters candidates stay near the incumbent along most of them.
    """

    center: Array
    lower: Array
    upper: Array
    perturb: Array


class AcquisitionChoice(NamedTuple):
    """Traced acquisition settings: index into ACQUISITIONS (0 EI, 1 PI, 2 UCB), xi, kappa."""

    index: Array
    xi: Array
    kappa: Array


# -- helpers ---------------------------------------------------------------------------------------
def population_capacity(population: int) -> int:
    """Members a proposal program is compiled for: a power of two, at least 8. Populations of other
    sizes (BOHB's brackets, Hyperband's rungs) share a few programs; the members past `count` are
    skipped, so the first ones come out as they would alone."""
    return max(8, 1 << max(int(population) - 1, 0).bit_length())


def is_duplicate(points: Array, ref: Array, ref_mask: Array) -> Array:
    """points: (k, D), ref: (r, D), ref_mask: (r,) -> (k,) bool, True where a point equals a ref."""
    dist = jnp.max(jnp.abs(points[:, None, :] - ref[None, :, :]), axis=-1)
    return jnp.any((dist < DUPLICATE_TOL) & ref_mask[None, :], axis=1)


def candidate_pool(key: Array, encoding: Any, X: Array, y: Array, mask: Array, num: int) -> Array:
    """num snapped candidates: half uniform over the space, half Gaussian steps (scale 0.02 or 0.1
    on the continuous coordinates) around the 5 best observations. -> (num, D)."""
    n_local = num // 2
    D = encoding.width
    # one uniform draw for everything random here: each jax.random call adds its own threefry
    # rounds to the program, and their compile was about a fifth of a first model-based ask's
    u = jax.random.uniform(key, (num, encoding.num_units + 2 + D), dtype=X.dtype)
    uniform = encoding.unit_to_z(u[: num - n_local, : encoding.num_units])
    u = u[num - n_local :, encoding.num_units :]  # (n_local, 2 + D): parent, scale, step
    top = jnp.argsort(jnp.where(mask, -y, jnp.inf))[: min(5, X.shape[0])]
    n_top = jnp.clip(jnp.sum(mask), 1, top.shape[0])
    parents = X[top[jnp.minimum((u[:, 0] * n_top).astype(jnp.int32), n_top - 1)]]
    scale = jnp.where(u[:, 1:2] < 0.5, 0.02, 0.1)
    normal = _normal_from_uniform(u[:, 2:])
    local = encoding.snap(jnp.clip(parents + scale * normal * encoding.free_mask, 0.0, 1.0))
    return jnp.concatenate([uniform, local])


def _normal_from_uniform(u: Array) -> Array:
    """Standard normal draws from uniform ones in [0, 1) (the inverse CDF)."""
    eps = jnp.finfo(u.dtype).epsneg  # symmetric tails: u = 0 must not reach further than u -> 1
    return jax.scipy.special.ndtri(jnp.clip(u, eps, 1.0 - eps))


def trust_region_pool(key: Array, encoding: Any, region: TrustRegion, num: int) -> Array:
    """num snapped candidates in the trust region: each parameter drawn uniformly (a continuous
    one inside the box) with probability region.perturb, else kept at the incumbent's value;
    at least one parameter of every candidate is drawn. -> (num, D)."""
    blocks = jnp.asarray(encoding.block_matrix, region.center.dtype)  # (B, D)
    B, units = blocks.shape[0], encoding.num_units
    u = jax.random.uniform(key, (num, units + B + 1), dtype=region.center.dtype)  # one draw, as above
    drawn = encoding.unit_to_z(u[:, :units])
    free = encoding.free_mask
    boxed = jnp.where(free > 0, region.lower + (region.upper - region.lower) * drawn, drawn)
    change = u[:, units : units + B] < region.perturb
    change = change | jax.nn.one_hot(jnp.minimum((u[:, -1] * B).astype(jnp.int32), B - 1), B, dtype=bool)
    columns = (change.astype(blocks.dtype) @ blocks) > 0  # (num, D)
    return encoding.snap(jnp.where(columns, boxed, region.center[None, :]))


def refine(score_fn, starts: Array, free: Array, steps: int, lr: float, lower: Any = 0.0, upper: Any = 1.0) -> Array:
    """Projected Adam ascent on score_fn from each start (vmapped); only `free` coordinates move.
    score_fn: (D,) -> (); starts: (k, D); free: (D,) 0/1; lower, upper: the box, scalars or (D,)
    -> (k, D) in the box."""
    opt = optax.adam(lr)
    grad_fn = jax.vmap(jax.grad(lambda x: -score_fn(x)))

    def step(carry, _):
        x, state = carry
        g = jnp.nan_to_num(grad_fn(x)) * free
        updates, state = opt.update(g, state, x)
        return (jnp.clip(optax.apply_updates(x, updates), lower, upper), state), None

    (x, _), _ = jax.lax.scan(step, (starts, opt.init(starts)), None, length=steps)
    return x


def _pick(options: Array, scores: Array, fallback: Array) -> Array:
    """Best option by score; `fallback` when every option is excluded (-inf)."""
    i = jnp.argmax(scores)
    return jnp.where(jnp.isfinite(scores[i]), options[i], fallback)


# -- kriging believer (EI, PI, UCB) ----------------------------------------------------------------
def _kb_point_score(post: gp.Posterior, a: AcquisitionChoice, best, pend, pend_mask, Vp, LA):
    """Acquisition of one point x: (D,) given the pending members (their whitened columns Vp and
    the Cholesky LA of their posterior covariance, believed noise-free)."""
    p = post.params

    def score(x):
        xs = x[None, :]
        ks = gp.cross_kernel(post, xs)  # (1, n)
        v = solve_triangular(post.chol, ks.T, lower=True)[:, 0]
        mean = ks[0] @ post.alpha
        var = p.signal - v @ v
        c = gp.matern52(xs, pend, p.lengthscale, p.signal)[0] - v @ Vp
        w = solve_triangular(LA, jnp.where(pend_mask, c, 0.0), lower=True)
        var = jnp.maximum(var - w @ w, 1e-12)
        return acquisition_value(a.index, mean, var, best, a.xi, a.kappa)

    return score


def _propose_believer(post, s: BatchSettings, a: AcquisitionChoice, encoding, pool, pool_dup, observed, obs_mask, best0,
                      count, member_scope):
    p = post.params
    P, D = s.population, pool.shape[1]
    pool_mean, pool_var = gp.predict(post, pool)
    V_pool = gp.whitened(post, pool)  # (n, M), reused by every member
    free = encoding.free_mask
    k = min(s.num_starts, pool.shape[0])

    def member(carry, m):
        pend, pend_mask, pend_mean, Vp = carry
        # Posterior covariance of the pending members, believed noise-free (identity on the empty slots).
        both = pend_mask[:, None] & pend_mask[None, :]
        Kpp = gp.matern52(pend, pend, p.lengthscale, p.signal) - Vp.T @ Vp
        A = jnp.where(both, Kpp, 0.0) + jnp.diag(jnp.where(pend_mask, gp.JITTER, 1.0))
        LA = jnp.linalg.cholesky(A)
        # Believed observations sit at the mean, so the incumbent can only rise to meet them.
        best = jnp.maximum(best0, jnp.max(jnp.where(pend_mask, pend_mean, -jnp.inf)))

        c = gp.matern52(pool, pend, p.lengthscale, p.signal) - V_pool.T @ Vp  # (M, P)
        w = solve_triangular(LA, jnp.where(pend_mask[None, :], c, 0.0).T, lower=True)
        var = jnp.maximum(pool_var - jnp.sum(w**2, axis=0), 1e-12)
        raw = acquisition_value(a.index, pool_mean, var, best, a.xi, a.kappa)
        allowed, box = member_scope(m)
        raw = jnp.where(allowed, raw, -jnp.inf)
        excluded = pool_dup | is_duplicate(pool, pend, pend_mask)
        scores = jnp.where(excluded, -jnp.inf, raw)

        top_scores, top = jax.lax.top_k(scores, k)
        score_fn = _kb_point_score(post, a, best, pend, pend_mask, Vp, LA)
        refined = encoding.snap(refine(score_fn, pool[top], free, s.refine_steps, s.refine_lr, *box))
        ref_excluded = is_duplicate(refined, observed, obs_mask) | is_duplicate(refined, pend, pend_mask)
        # a start from the other half (when this member's half has fewer than k candidates left) is out
        ref_scores = jnp.where(ref_excluded | ~allowed[top], -jnp.inf, jax.vmap(score_fn)(refined))

        options = jnp.concatenate([refined, pool[top]])
        choice = _pick(options, jnp.concatenate([ref_scores, top_scores]), pool[jnp.argmax(raw)])
        pend = pend.at[m].set(choice)
        pend_mask = pend_mask.at[m].set(True)
        mean_c, _ = gp.predict(post, choice[None, :])
        pend_mean = pend_mean.at[m].set(mean_c[0])
        Vp = Vp.at[:, m].set(gp.whitened(post, choice[None, :])[:, 0])
        return pend, pend_mask, pend_mean, Vp

    def member_or_skip(carry, m):  # members past `count` are not asked for: skip their work
        return jax.lax.cond(m < count, member, lambda c, _: c, carry, m), None

    n = post.X.shape[0]
    init = (
        jnp.full((P, D), 0.5, pool.dtype),  # empty slots: masked out everywhere they appear
        jnp.zeros((P,), bool),
        jnp.zeros((P,), pool.dtype),
        jnp.zeros((n, P), pool.dtype),
    )
    (pend, _, _, _), _ = jax.lax.scan(member_or_skip, init, jnp.arange(P))
    return pend


# -- Thompson sampling -----------------------------------------------------------------------------
def _propose_thompson(post, y, s: BatchSettings, encoding, pool, pool_dup, observed, obs_mask, key, count,
                      member_scope):
    P = s.population
    paths = jax.vmap(lambda kk: gp.sample_path(post, kk, y, s.num_features))(jax.random.split(key, P))
    K_pool = gp.cross_kernel(post, pool)  # (M, n), shared by every sample
    free = encoding.free_mask
    k = min(s.num_starts, pool.shape[0])

    def one_member(path, m):
        prior = gp.rff_features(post.params, path.omega, path.phase, pool) @ path.weights
        allowed, box = member_scope(m)
        raw = jnp.where(allowed, prior + K_pool @ path.beta, -jnp.inf)
        _, top = jax.lax.top_k(jnp.where(pool_dup, -jnp.inf, raw), k)
        score_fn = lambda x: gp.path_value(post, path, x[None, :])[0]
        refined = encoding.snap(refine(score_fn, pool[top], free, s.refine_steps, s.refine_lr, *box))
        ref_excluded = is_duplicate(refined, observed, obs_mask) | ~allowed[top]  # starts of this member's half only
        ref_scores = jnp.where(ref_excluded, -jnp.inf, jax.vmap(score_fn)(refined))
        return refined, ref_scores, raw

    # The samples are independent: maximise them all at once ...
    refined, ref_scores, raw = jax.vmap(one_member)(paths, jnp.arange(P))  # (P, k, D), (P, k), (P, M)
    pool_scores = jnp.where(pool_dup[None, :], -jnp.inf, raw)

    # ... then pick in turn, so that no member repeats an earlier one.
    def member(carry, m):
        pend, pend_mask = carry
        options = jnp.concatenate([refined[m], pool])
        scores = jnp.concatenate([ref_scores[m], pool_scores[m]])
        scores = jnp.where(is_duplicate(options, pend, pend_mask), -jnp.inf, scores)
        choice = _pick(options, scores, pool[jnp.argmax(raw[m])])
        return pend.at[m].set(choice), pend_mask.at[m].set(m < count)

    init = (jnp.full((P, pool.shape[1]), 0.5, pool.dtype), jnp.zeros((P,), bool))
    (pend, _), _ = jax.lax.scan(lambda carry, m: (member(carry, m), None), init, jnp.arange(P))
    return pend


# -- entry point -----------------------------------------------------------------------------------
def _propose_batch(
    params: gp.GPParams,
    X: Array,
    y: Array,
    mask: Array,
    observed: Array,
    obs_mask: Array,
    key: Array,
    choice: AcquisitionChoice,
    settings: BatchSettings,
    encoding: Any,
    count: Array | int | None = None,
    region: TrustRegion | None = None,
    region_members: Array | int | None = None,
) -> Array:
    """P distinct proposals in the encoded cube.

    params: fitted GP hyperparameters; X: (n, D), y: (n,) standardised, mask: (n,) the data the GP
    is conditioned on; observed: (r, D), obs_mask: (r,) every point already evaluated (failed ones
    too), which proposals must not repeat; choice: EI / PI / UCB and xi, kappa (ignored for
    Thompson); encoding: the space's encoding (`unit_to_z`, `snap`, `free_mask`, `num_units`);
    count: members wanted, at most settings.population (traced: any count shares the program).
    region: the trust region (required with settings.trust_region, else ignored): candidates and
    refinement stay in its box. region_members (with settings.hedge; traced): the first this many
    members are proposed in the region, the others over the whole space (default: half).
    Returns (settings.population, D), of which the first `count` rows are the proposals.
    """
    count = jnp.asarray(settings.population if count is None else count, jnp.int32)
    k_pool, k_ts = jax.random.split(key)
    post = gp.posterior(params, X, y, mask)
    if settings.trust_region:
        if region is None:
            raise ValueError("propose_batch: settings.trust_region is on, so give region=TrustRegion(...).")
        pool = trust_region_pool(k_pool, encoding, region, settings.num_candidates)
        member_scope = _everywhere(settings.num_candidates, (region.lower, region.upper))
        if settings.hedge:
            member_scope, pool = _hedged_scope(pool, candidate_pool(jax.random.fold_in(k_pool, 1), encoding, X, y, mask,
                                                      settings.num_candidates), region, region_members, count)
    else:
        pool = candidate_pool(k_pool, encoding, X, y, mask, settings.num_candidates)
        member_scope = _everywhere(settings.num_candidates, (0.0, 1.0))
    pool_dup = is_duplicate(pool, observed, obs_mask)
    if settings.thompson:
        return _propose_thompson(post, y, settings, encoding, pool, pool_dup, observed, obs_mask, k_ts, count,
                                 member_scope)
    mean_obs, _ = gp.predict(post, X)
    # Incumbent: the best posterior mean at an observation (robust to a lucky noisy score).
    best = jnp.max(jnp.where(mask, mean_obs, -jnp.inf))
    return _propose_believer(post, settings, choice, encoding, pool, pool_dup, observed, obs_mask, best, count,
                             member_scope)


propose_batch = jax.jit(_propose_batch, static_argnames=("settings", "encoding"))
# The same program compiled quick (compile_cache.QUICK_COMPILER_OPTIONS), for a search that asks
# only a few times at its size (`quick_proposal`): a first model-based ask's compile was most of
# its time.
propose_batch_quick = jax.jit(_propose_batch, static_argnames=("settings", "encoding"),
                              compiler_options=QUICK_COMPILER_OPTIONS)

#: Compiled quick, the proposal program compiles in about a quarter of the time and runs 1.1-1.4x
#: slower (bench/proposal_compile.py, 2-core CPU: EI and Thompson, 8 and 64 members, 128 to 1536
#: observations; compile 2.6-3.1 s against 0.6-0.7 s at 128).
PROPOSAL_QUICK_SAVES = 2.0
PROPOSAL_QUICK_SLOWDOWN = 1.4
#: The maximiser's work per ask in BayesOpt's defaults (num_starts 4, refine_steps 20)
_DEFAULT_REFINEMENT = 4 * 20


def proposal_seconds(settings: BatchSettings, n: int) -> float:
    """Rough seconds of one proposal compiled with XLA's defaults, for n (padded) observations, on
    the 2-core CPU of bench/RESULTS.md: per member, the pool and the refinement (EI / PI / UCB
    solve against the n x n Cholesky factor at every step; a Thompson sample evaluates its random
    features and n kernel columns), in proportion to the refinement's work."""
    per_member = 2.7e-2 + 1.5e-5 * n if settings.thompson else 2e-3 + 2.8e-8 * n**2
    refinement = max(settings.num_starts * settings.refine_steps, 1) / _DEFAULT_REFINEMENT
    return settings.population * per_member * refinement


def quick_proposal(settings: BatchSettings, n: int, asks: int) -> bool:
    """True when a CPU proposal program for n (padded) observations that will serve `asks` asks
    should compile quick (propose_batch_quick): the asks, slowed down, lose less than the compile
    saves. Priced from the settings alone, never from measured times: the choice changes
    proposals in their last bits, so a search must make it the same way in every process (same
    seed, same result; a resumed run as an uninterrupted one)."""
    if jax.default_backend() != "cpu":
        return False
    return asks * proposal_seconds(settings, n) * (PROPOSAL_QUICK_SLOWDOWN - 1) < PROPOSAL_QUICK_SAVES


def _everywhere(size: int, box: tuple) -> Any:
    """member_scope(m) -> (allowed (size,), box) for every member alike: the whole pool, one box."""
    allowed = jnp.ones(size, bool)
    return lambda m: (allowed, box)


def _hedged_scope(region_pool: Array, global_pool: Array, region: TrustRegion, region_members,
                  count) -> tuple[Any, Array]:
    """(member_scope, pool): members below region_members pick from the region's half of the pool and
    refine in its box; the others from the global half, over the whole cube."""
    region_members = jnp.asarray(count // 2 if region_members is None else region_members, jnp.int32)
    in_region = jnp.arange(global_pool.shape[0] + region_pool.shape[0]) >= global_pool.shape[0]

    def member_scope(m):
        inside = m < region_members
        return in_region == inside, (jnp.where(inside, region.lower, 0.0), jnp.where(inside, region.upper, 1.0))

    return member_scope, jnp.concatenate([global_pool, region_pool])
