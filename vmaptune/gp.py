"""A Gaussian-process surrogate for Bayesian optimisation: Matern-5/2 ARD kernel, exact posterior,
hyperparameters by maximum marginal likelihood with restarts, and pathwise posterior samples.

Everything but `fit` is a pure function of arrays, so it jits and vmaps. Inputs live in the unit cube
(`X: (n, d)`), outputs are standardised by the caller (`y: (n,)`, mean 0, std 1), and the prior
mean is 0. Call inside `jax.enable_x64(True)`: kernel matrices of close points are ill-conditioned
and a float32 Cholesky fails long before a float64 one does.

Padding: the number of observations grows every round, and each new shape would recompile. So
arrays are padded to a few bucket sizes and carry `mask: (n,) bool`. Padded rows behave as if
absent: their kernel rows and columns are replaced by the identity, their targets by 0, so they
add nothing to the likelihood, the posterior or its gradients (`tests/test_gp.py` checks this).
"""

from __future__ import annotations

import contextlib
import functools
import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy.linalg import cho_solve, solve_triangular

from vmaptune.compile_cache import QUICK_COMPILER_OPTIONS

Array = jax.Array

# Box for the hyperparameters (the unit cube and standardised outputs make one box fit all
# problems). Lengthscales below 0.01 interpolate noise; above 20 a dimension is switched off.
LENGTHSCALE_BOUNDS = (0.01, 20.0)
SIGNAL_BOUNDS = (0.05, 20.0)  # signal variance of the standardised output
NOISE_BOUNDS = (1e-6, 1.0)  # noise variance: from near-exact interpolation to all noise
JITTER = 1e-9


class GPParams(NamedTuple):
    """Kernel hyperparameters: lengthscale (d,), signal variance (), noise variance ()."""

    lengthscale: Array
    signal: Array
    noise: Array


class Posterior(NamedTuple):
    """A GP conditioned on (X, y): everything `predict` needs, factorised once."""

    params: GPParams
    X: Array  # (n, d)
    mask: Array  # (n,) bool
    chol: Array  # (n, n) lower Cholesky factor of K + noise I (identity on padded rows)
    alpha: Array  # (n,) (K + noise I)^-1 y


# -- kernel ----------------------------------------------------------------------------------------
def matern52(x1: Array, x2: Array, lengthscale: Array, signal: Array) -> Array:
    """Matern-5/2 ARD kernel. x1: (n, d), x2: (m, d) -> (n, m)."""
    z1, z2 = x1 / lengthscale, x2 / lengthscale
    r2 = jnp.sum(z1**2, -1)[:, None] + jnp.sum(z2**2, -1)[None, :] - 2.0 * z1 @ z2.T
    # The floor keeps the gradient of sqrt finite at r = 0, where the kernel is smooth anyway.
    r = jnp.sqrt(jnp.maximum(r2, 1e-30))
    s = math.sqrt(5.0) * r
    return signal * (1.0 + s + s**2 / 3.0) * jnp.exp(-s)


# -- log parametrisation ----------------------------------------------------------------------------
def log_bounds(d: int) -> tuple[np.ndarray, np.ndarray]:
    """Box for raw = log(lengthscale (d), signal, noise): two numpy arrays of shape (d + 2,)."""
    lo = [LENGTHSCALE_BOUNDS[0]] * d + [SIGNAL_BOUNDS[0], NOISE_BOUNDS[0]]
    hi = [LENGTHSCALE_BOUNDS[1]] * d + [SIGNAL_BOUNDS[1], NOISE_BOUNDS[1]]
    return np.log(np.asarray(lo)), np.log(np.asarray(hi))


def constrain(raw: Array) -> GPParams:
    """raw: (d + 2,) logs of the hyperparameters -> GPParams, clipped into the box."""
    lo, hi = log_bounds(raw.shape[-1] - 2)
    v = jnp.exp(jnp.clip(raw, lo, hi))
    return GPParams(v[..., :-2], v[..., -2], v[..., -1])


def unconstrain(params: GPParams) -> Array:
    """GPParams -> raw (d + 2,), clipped into the box."""
    v = jnp.concatenate([jnp.atleast_1d(params.lengthscale), jnp.stack([params.signal, params.noise])])
    lo, hi = log_bounds(v.shape[0] - 2)
    return jnp.clip(jnp.log(v), lo, hi)


def default_params(d: int) -> GPParams:
    """A middle-of-the-box starting point: lengthscale 0.5, signal 1, noise 1e-3."""
    return GPParams(jnp.full((d,), 0.5), jnp.asarray(1.0), jnp.asarray(1e-3))


@functools.partial(jax.jit, static_argnums=(1, 2), compiler_options=QUICK_COMPILER_OPTIONS)
def random_raw_inits(key: Array, d: int, n: int) -> Array:
    """n starting points for the fit, log-uniform over plausible values -> (n, d + 2).
    Lengthscale 0.1..2, signal 0.3..3, noise 1e-5..0.1."""
    lo = jnp.log(jnp.asarray([0.1] * d + [0.3, 1e-5]))
    hi = jnp.log(jnp.asarray([2.0] * d + [3.0, 0.1]))
    return lo + (hi - lo) * jax.random.uniform(key, (n, d + 2), dtype=lo.dtype)


# -- likelihood and posterior ----------------------------------------------------------------------
def _gram(params: GPParams, X: Array, mask: Array) -> Array:
    K = matern52(X, X, params.lengthscale, params.signal)
    both = mask[:, None] & mask[None, :]
    diag = jnp.where(mask, params.noise + JITTER, 1.0)
    return jnp.where(both, K, 0.0) + jnp.diag(diag)


def neg_log_marginal_likelihood(params: GPParams, X: Array, y: Array, mask: Array) -> Array:
    """-log p(y | X, params) over the unmasked points. X: (n, d), y: (n,), mask: (n,) -> ()."""
    L = jnp.linalg.cholesky(_gram(params, X, mask))
    y = jnp.where(mask, y, 0.0)
    a = solve_triangular(L, y, lower=True)
    n = jnp.sum(mask)
    # Padded rows have L_ii = 1: log 1 = 0, so they drop out of the log determinant.
    return 0.5 * a @ a + jnp.sum(jnp.log(jnp.diag(L))) + 0.5 * n * math.log(2 * math.pi)


def posterior(params: GPParams, X: Array, y: Array, mask: Array) -> Posterior:
    """Condition on the data. X: (n, d), y: (n,), mask: (n,) -> Posterior."""
    L = jnp.linalg.cholesky(_gram(params, X, mask))
    alpha = cho_solve((L, True), jnp.where(mask, y, 0.0))
    return Posterior(params, X, mask, L, alpha)


def cross_kernel(post: Posterior, Xs: Array) -> Array:
    """k(Xs, X) with padded columns zeroed. Xs: (m, d) -> (m, n)."""
    p = post.params
    return jnp.where(post.mask[None, :], matern52(Xs, post.X, p.lengthscale, p.signal), 0.0)


def whitened(post: Posterior, Xs: Array) -> Array:
    """v = L^-1 k(X, Xs), (n, m): the posterior covariance is k(a, b) - v_a . v_b."""
    return solve_triangular(post.chol, cross_kernel(post, Xs).T, lower=True)


def predict(post: Posterior, Xs: Array) -> tuple[Array, Array]:
    """Latent mean and variance at Xs: (m, d) -> ((m,), (m,)). The variance excludes noise."""
    Ks = cross_kernel(post, Xs)
    v = solve_triangular(post.chol, Ks.T, lower=True)
    mean = Ks @ post.alpha
    var = post.params.signal - jnp.sum(v**2, axis=0)
    return mean, jnp.maximum(var, 1e-12)


def posterior_covariance(post: Posterior, Xa: Array, Xb: Array) -> Array:
    """Latent posterior covariance between Xa: (m, d) and Xb: (k, d) -> (m, k)."""
    p = post.params
    return matern52(Xa, Xb, p.lengthscale, p.signal) - whitened(post, Xa).T @ whitened(post, Xb)


# -- fitting -----------------------------------------------------------------------------------------
# Both objectives below return the negative log marginal likelihood per point (so the optimiser's
# tolerances mean the same at every data size) and its exact gradient, written out rather than
# differentiated through the Cholesky factorisation: with W = G^-1 - alpha alpha^T and G the noisy
# Gram matrix, d nll / d theta = tr(W dG/d theta) / 2, and for Matern-5/2
# dk / d log l_i = signal 5/3 (1 + s) exp(-s) (x_i - x'_i)^2 / l_i^2, s = sqrt(5) r, so that
# sum_jk A_jk (x_ji - x_ki)^2 = 2 (sum_j x_ji^2 rowsum(A)_j - x_i^T A x_i) costs O(n^2 d).
# `neg_log_marginal_likelihood` is the reference both are tested against.
#
# Two implementations, because scipy's optimiser calls the objective from Python about a hundred
# times per fit: on small data (the usual case, up to NUMPY_FIT_ROWS) an evaluation is microseconds
# of LAPACK and numpy, unpadded, with no dispatch; on large data XLA's fused, multithreaded
# elementwise work wins (at 512 rows, 28 ms against numpy's 55 ms and autodiff's 50 ms).
NUMPY_FIT_ROWS = 256


def nll_and_grad(raw: np.ndarray, X: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """numpy objective: raw (d + 2,) log(lengthscale, signal, noise), X: (n, d), y: (n,) unpadded
    -> (value, gradient (d + 2,)); value is inf where the factorisation fails.

    LAPACK directly (potrf, potrs, potri): scipy.linalg's wrappers (checks, an identity matrix to
    solve against) cost as much as the factorisations at these sizes; potri gives the inverse from
    the Cholesky factor in one call."""
    from scipy.linalg import lapack

    n, d = X.shape
    v = np.exp(raw)
    ls, signal, noise = v[:d], v[d], v[d + 1]
    Z = X / ls
    sq = np.einsum("ij,ij->i", Z, Z)
    s = np.sqrt(5.0 * np.maximum(sq[:, None] + sq[None, :] - 2.0 * (Z @ Z.T), 0.0))
    e = np.exp(-s)
    de = (1.0 + s) * e  # the lengthscale derivative's factor; K = signal (de + s^2 e / 3)
    K = signal * (de + (s * s / 3.0) * e)
    Kn = K.copy()
    Kn.flat[:: n + 1] += noise + JITTER
    L, info = lapack.dpotrf(Kn, lower=1, clean=0, overwrite_a=1)
    if info != 0:
        return math.inf, np.zeros_like(raw)
    alpha, _ = lapack.dpotrs(L, y, lower=1)
    K_inv, info = lapack.dpotri(L, lower=1)  # the lower triangle only
    if info != 0:
        return math.inf, np.zeros_like(raw)
    K_inv = np.tril(K_inv) + np.tril(K_inv, -1).T
    value = 0.5 * (y @ alpha) + np.sum(np.log(np.diagonal(L))) + 0.5 * n * math.log(2 * math.pi)
    W = K_inv - np.outer(alpha, alpha)
    A = W * de
    grad_ls = (5.0 / 3.0) * signal * (Z * Z * A.sum(axis=1)[:, None] - Z * (A @ Z)).sum(axis=0)
    grad = np.concatenate([grad_ls, [0.5 * np.sum(W * K), 0.5 * noise * np.trace(W)]])
    return float(value) / n, grad / n


@jax.jit
def padded_nll_and_grad(raw: Array, X: Array, y: Array, mask: Array) -> tuple[Array, Array]:
    """JAX objective on padded data (one program per padded size): X: (n, d), y: (n,), mask: (n,)
    -> (value (), gradient (d + 2,)); NaN where the factorisation fails."""
    n, d = X.shape
    v = jnp.exp(raw)
    ls, signal, noise = v[:d], v[d], v[d + 1]
    Z = X / ls
    sq = jnp.sum(Z**2, axis=1)
    s = math.sqrt(5.0) * jnp.sqrt(jnp.maximum(sq[:, None] + sq[None, :] - 2.0 * Z @ Z.T, 0.0))
    e = jnp.exp(-s)
    both = mask[:, None] & mask[None, :]
    K = jnp.where(both, signal * (1.0 + s + s**2 / 3.0) * e, 0.0)
    L = jnp.linalg.cholesky(K + jnp.diag(jnp.where(mask, noise + JITTER, 1.0)))
    y = jnp.where(mask, y, 0.0)
    alpha = cho_solve((L, True), y)
    count = jnp.sum(mask)
    # Padded rows have L_ii = 1 and alpha_i = 0: they add nothing to any term.
    value = 0.5 * y @ alpha + jnp.sum(jnp.log(jnp.diag(L))) + 0.5 * count * math.log(2 * math.pi)
    W = cho_solve((L, True), jnp.eye(n, dtype=X.dtype)) - jnp.outer(alpha, alpha)
    A = jnp.where(both, W * ((1.0 + s) * e), 0.0)
    grad_ls = (5.0 / 3.0) * signal * jnp.sum(Z**2 * A.sum(axis=1)[:, None] - Z * (A @ Z), axis=0)
    grad_noise = 0.5 * noise * jnp.sum(jnp.where(mask, jnp.diag(W), 0.0))
    grad = jnp.concatenate([grad_ls, jnp.stack([0.5 * jnp.sum(W * K), grad_noise])])
    return value / count, grad / count


def lengthscale_penalty(raw: np.ndarray, prior: tuple[float, float]) -> tuple[float, np.ndarray]:
    """Negative log density (up to a constant) of a log-normal prior (median, sigma) on each
    lengthscale, as a function of raw (d + 2,) = log(lengthscale, signal, noise): (value, gradient
    (d + 2,), zero for signal and noise)."""
    median, sigma = prior
    d = len(raw) - 2
    z = (np.asarray(raw[:d], np.float64) - math.log(median)) / sigma
    return 0.5 * float(z @ z), np.concatenate([z / sigma, np.zeros(2)])


def fit(X, y, mask, raw_inits, max_iter: int = 60, lengthscale_prior: tuple[float, float] | None = None
        ) -> tuple[np.ndarray, float]:
    """Maximise the marginal likelihood by L-BFGS-B (scipy) from each start in turn; keep the best.

    X: (n, d), y: (n,), mask: (n,) real rows (padding is dropped or masked), raw_inits:
    (restarts, d + 2) log-hyperparameters. lengthscale_prior: (median, sigma) of a log-normal prior
    on every lengthscale (a maximum a posteriori fit), or None (maximum likelihood). Returns the best
    raw (d + 2,) and the value minimised there: the negative log marginal likelihood, plus
    `lengthscale_penalty` with a prior. Call it inside `jax.enable_x64(True)` (large data goes
    through JAX).

    Why not one vmapped optimiser over the restarts: a batched Cholesky runs many times slower on
    CPU than the same factorisations one after another, and an in-graph line search costs more
    evaluations (and compile time) than scipy's L-BFGS-B, which also takes the box natively.
    """
    mask = np.asarray(mask, bool)
    n = int(mask.sum())
    threads = contextlib.nullcontext  # entered around the starts below
    if n <= NUMPY_FIT_ROWS:
        Xn, yn = np.asarray(X, np.float64)[mask], np.asarray(y, np.float64)[mask]
        objective = lambda r: nll_and_grad(r, Xn, yn)
        threads = one_blas_thread
    else:
        Xj, yj, mj = jnp.asarray(X), jnp.asarray(y), jnp.asarray(mask)

        def objective(r):
            value, grad = padded_nll_and_grad(jnp.asarray(r, Xj.dtype), Xj, yj, mj)
            return float(value), np.asarray(grad, np.float64)

    d = np.shape(X)[1]
    lo, hi = log_bounds(d)

    def fun(r):
        value, grad = objective(r)
        if not (np.isfinite(value) and np.all(np.isfinite(grad))):
            return 1e10, np.zeros_like(r)  # a failed factorisation: reject the step, don't crash
        if lengthscale_prior is not None:  # per row, as the objectives are
            penalty, slope = lengthscale_penalty(r, lengthscale_prior)
            value, grad = value + penalty / n, grad + slope / n
        return value, grad

    best_raw, best_value = None, np.inf
    with threads():
        for r0 in np.asarray(raw_inits, np.float64):
            r0 = np.clip(r0, lo, hi)
            res = scipy_optimize().minimize(
                fun, r0, jac=True, method="L-BFGS-B", bounds=list(zip(lo, hi)), options={"maxiter": max_iter}
            )
            if np.isfinite(res.fun) and res.fun < best_value:
                best_raw, best_value = np.asarray(res.x), float(res.fun)
    if best_raw is None:  # every start failed: fall back to the first start rather than crash
        best_raw, best_value = np.clip(np.asarray(raw_inits[0], np.float64), lo, hi), np.inf
    return best_raw, best_value * n


# -- output warping -----------------------------------------------------------------------------------
OUTPUT_WARPINGS = ("none", "copula", "power")
POWER_LAMBDA_BOUNDS = (-2.0, 4.0)  # Yeo-Johnson exponents beyond these only chase a single outlier


def standardise(y: np.ndarray) -> np.ndarray:
    """(y - mean) / std; a constant y (to float64's rounding, relative to its size) becomes zeros."""
    y = np.asarray(y, np.float64)
    if len(y) == 0:
        return y
    std = np.std(y)
    return (y - np.mean(y)) / (std if std > 1e-12 * np.max(np.abs(y)) else 1.0)  # (scores of 1e-14 too)


def copula_transform(y: np.ndarray) -> np.ndarray:
    """Rank-based Gaussian copula: y -> Phi^-1((rank - 1/2) / n), tied scores share their mean rank.
    Depends on the order of the scores only, so one huge (or hugely bad) score weighs like any other."""
    from scipy.special import ndtri
    from scipy.stats import rankdata

    y = np.asarray(y, np.float64)
    if len(y) == 0:
        return y
    return ndtri((rankdata(y) - 0.5) / len(y))


def yeo_johnson(z: np.ndarray, lmbda: float) -> np.ndarray:
    """The Yeo-Johnson transform of z (n,) with exponent lmbda: (n,), increasing in z."""
    z = np.asarray(z, np.float64)
    pos = z >= 0
    out = np.empty_like(z)
    up, down = np.log1p(z[pos]), np.log1p(-z[~pos])
    out[pos] = up if abs(lmbda) < 1e-12 else np.expm1(lmbda * up) / lmbda
    out[~pos] = -down if abs(lmbda - 2.0) < 1e-12 else -np.expm1((2.0 - lmbda) * down) / (2.0 - lmbda)
    return out


def yeo_johnson_exponent(z: np.ndarray, bounds: tuple[float, float] = POWER_LAMBDA_BOUNDS) -> float:
    """The exponent in `bounds` that maximises the Gaussian log-likelihood of yeo_johnson(z, .)
    (scipy.stats.yeojohnson_normmax's objective, clipped to the bounds).

    Its own bounded search over a vectorised likelihood: scipy's routine searches the whole float
    range through a per-call wrapper, about 6 ms per ask against a few hundred microseconds here."""
    z = np.asarray(z, np.float64)
    n = len(z)
    jacobian = np.sum(np.sign(z) * np.log1p(np.abs(z)))

    def negative_log_likelihood(lmbda):
        with np.errstate(all="ignore"):
            var = np.var(yeo_johnson(z, lmbda))
        if not (np.isfinite(var) and var > 0):
            return np.inf
        return 0.5 * n * math.log(var) - (lmbda - 1.0) * jacobian

    return float(scipy_optimize().fminbound(negative_log_likelihood, *bounds, xtol=1e-6))


def power_transform(y: np.ndarray) -> np.ndarray:
    """Yeo-Johnson power transform of the standardised scores, its exponent by maximum likelihood
    within POWER_LAMBDA_BOUNDS: makes skewed scores, a long tail of bad ones, look Gaussian.

    A tail of hugely bad but finite scores (a diverged network's loss of 1e16) leaves the good
    scores within 1e-8 of each other once standardised, which no bounded exponent spreads out
    again: the model would see the good region as flat. Where the warped scores still squeeze
    the better quarter together (`squeezed`), the copula's ranks are used instead."""
    z = standardise(y)
    if len(z) < 3 or np.ptp(z) < 1e-12:
        return z
    with np.errstate(all="ignore"):
        w = yeo_johnson(z, yeo_johnson_exponent(z, POWER_LAMBDA_BOUNDS))
    w = w if np.all(np.isfinite(w)) else z
    return copula_transform(y) if squeezed(y, w) else w


#: Standardised warped scores whose better quarter spans less than this (in standard deviations of
#: all of them) are squeezed: differences the GP's noise term reads as one value. A tail of
#: diverged losses leaves ~1e-8; so may a search whose best quarter agrees to 1e-3 of the scores'
#: range, which the ranks then tell apart too (on the BBOB suite: no worse, bench/RESULTS.md).
SQUEEZED_SPAN = 1e-2


def squeezed(y: np.ndarray, warped: np.ndarray) -> bool:
    """Whether `warped` (n,) leaves the better quarter of the scores y (n,; at least 3 of them),
    which differ, within SQUEEZED_SPAN standard deviations: a tail of far worse scores dominates."""
    y, warped = np.asarray(y, np.float64), np.asarray(warped, np.float64)
    better = np.argsort(-y, kind="stable")[:max(3, len(y) // 4)]
    if np.ptp(y[better]) <= 0 or np.std(warped) <= 0:  # tied best scores are equal, not squeezed
        return False
    return np.ptp(warped[better]) < SQUEEZED_SPAN * np.std(warped)


def warp_outputs(y: np.ndarray, kind: str) -> np.ndarray:
    """The scores as the GP models them: warped (a strictly increasing map: "none", "copula" or
    "power"), then standardised to mean 0 and std 1. Invariant to a positive affine change of y."""
    if kind not in OUTPUT_WARPINGS:
        raise ValueError(f"warp_outputs: kind must be one of {OUTPUT_WARPINGS}, got {kind!r}.")
    y = np.asarray(y, np.float64)
    if kind == "copula":
        y = copula_transform(y)
    elif kind == "power":
        y = power_transform(y)
    return standardise(y)


# -- pathwise posterior samples (Thompson sampling) --------------------------------------------------
class SamplePath(NamedTuple):
    """One posterior function draw, f(x) = phi(x) . w + k(x, X) . beta (Wilson et al., 2020)."""

    omega: Array  # (F, d) random frequencies
    phase: Array  # (F,)
    weights: Array  # (F,) prior weights
    beta: Array  # (n,) pathwise update


def rff_features(params: GPParams, omega: Array, phase: Array, X: Array) -> Array:
    """Random Fourier features whose inner products approximate the kernel. X: (m, d) -> (m, F)."""
    F = omega.shape[0]
    return jnp.sqrt(2.0 * params.signal / F) * jnp.cos(X @ omega.T + phase)


def sample_path(post: Posterior, key: Array, y: Array, num_features: int = 1024) -> SamplePath:
    """Draw one posterior function. The prior part is a random Fourier feature expansion of the
    Matern-5/2 kernel (frequencies: multivariate Student-t, 5 degrees of freedom, scaled by
    1 / lengthscale); the data part corrects it exactly at the observations."""
    p = post.params
    n, d = post.X.shape
    k_z, k_g, k_b, k_w, k_e = jax.random.split(key, 5)
    z = jax.random.normal(k_z, (num_features, d))
    # chi-square with 5 degrees of freedom as a sum of 5 squared normals (jax's gamma sampler is
    # a rejection loop: slow to compile and to run).
    chi2 = jnp.sum(jax.random.normal(k_g, (num_features, 5)) ** 2, axis=1, keepdims=True)
    omega = z * jnp.sqrt(5.0 / chi2) / p.lengthscale
    phase = jax.random.uniform(k_b, (num_features,), maxval=2 * math.pi)
    w = jax.random.normal(k_w, (num_features,))
    prior_at_X = rff_features(p, omega, phase, post.X) @ w
    eps = jnp.sqrt(p.noise) * jax.random.normal(k_e, (n,))
    resid = jnp.where(post.mask, y - prior_at_X - eps, 0.0)
    beta = cho_solve((post.chol, True), resid)
    return SamplePath(omega, phase, w, beta)


def path_value(post: Posterior, path: SamplePath, Xs: Array) -> Array:
    """Evaluate a drawn function at Xs: (m, d) -> (m,)."""
    prior = rff_features(post.params, path.omega, path.phase, Xs) @ path.weights
    return prior + cross_kernel(post, Xs) @ path.beta


_BLAS_THREADS = None  # threadpoolctl's controller of the BLAS libraries loaded, made at first use


def one_blas_thread():
    """A context in which numpy's and scipy's BLAS run on one thread. The numpy fit's matrices are
    small (up to NUMPY_FIT_ROWS): a second thread saves nothing there, and while other work keeps
    the cores busy OpenBLAS's waiting threads turned a 0.04 s fit into up to 3 s (bench/RESULTS.md)."""
    global _BLAS_THREADS
    if _BLAS_THREADS is None:
        import scipy.linalg  # noqa: F401  (its own OpenBLAS, loaded before the controller looks)
        from threadpoolctl import ThreadpoolController

        _BLAS_THREADS = ThreadpoolController()
    return _BLAS_THREADS.limit(limits=1, user_api="blas")


def scipy_optimize():
    """scipy.optimize, imported on first use (about 1 s: `import vmaptune` does not pay it)."""
    import scipy.optimize

    return scipy.optimize
