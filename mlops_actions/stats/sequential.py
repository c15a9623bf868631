"""Always-valid p-values and confidence intervals: the mSPRT with a normal mixture.

The mixture sequential probability ratio test (Johari et al. 2017, as Optimizely and Eppo
use it) for an asymptotically normal estimate with variance ``V``, mixing over the effect
with ``N(0, tau^2)``, has the likelihood ratio::

    Lambda = sqrt(V / (V + tau^2)) * exp(z^2 / 2 * tau^2 / (V + tau^2)),   z = estimate / sqrt(V)

and ``p = min(1, 1 / Lambda)`` stays below ``alpha`` at *any* look with probability at most
``alpha`` under no difference (Ville's inequality), however often one looks. The mixing
variance follows GrowthBook (Waudby-Smith et al. 2023, eq. 161): ``tau^2 = rho^2 * N * V``
with ``rho^2 = (-2 ln alpha + ln(1 - 2 ln alpha)) / tuning`` and ``tuning = 5000``, which
makes the interval narrowest near ``N = 5000`` rows in all; with ``k = rho^2 * N`` both
the p-value and the interval's half-width (in standard errors) depend on ``z``, ``N`` and
``alpha`` only, so GrowthBook's ``SequentialTwoSidedTTest`` and this module agree to
rounding. Functions broadcast over numpy arrays.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from mlops_actions.errors import ConfigError

__all__ = ["DEFAULT_TUNING", "always_valid_p", "critical_z"]

DEFAULT_TUNING = 5000.0

ArrayLike = npt.ArrayLike
FloatArray = npt.NDArray[np.float64]


def _k(n_total: ArrayLike, alpha: float, tuning: float) -> FloatArray:
    if not 0 < alpha < 1:
        raise ConfigError(f"alpha {alpha} is not in (0, 1)", hint="use e.g. 0.05")
    if tuning <= 0:
        raise ConfigError(f"sequential tuning {tuning} is not positive", hint="use e.g. 5000")
    rho2 = (-2 * np.log(alpha) + np.log(1 - 2 * np.log(alpha))) / tuning
    out: FloatArray = rho2 * np.asarray(n_total, dtype=float)
    return out


def always_valid_p(z: ArrayLike, n_total: ArrayLike, alpha: float,
                   tuning: float = DEFAULT_TUNING) -> FloatArray:
    """The mSPRT p-value ``min(1, 1/Lambda)`` of a z-statistic after ``n_total`` rows (both arms)."""
    k = _k(n_total, alpha, tuning)
    z2 = np.square(np.asarray(z, dtype=float))
    log_lambda = z2 / 2 * k / (1 + k) - 0.5 * np.log1p(k)
    return np.asarray(np.minimum(1.0, np.exp(-log_lambda)), dtype=float)


def critical_z(n_total: ArrayLike, alpha: float, tuning: float = DEFAULT_TUNING) -> FloatArray:
    """Half-width of the always-valid ``1 - alpha`` interval in standard errors: the
    ``|z|`` above which :func:`always_valid_p` falls below ``alpha`` (it replaces 1.96)."""
    k = _k(n_total, alpha, tuning)
    return np.asarray(np.sqrt((1 + k) / k * (-2 * np.log(alpha) + np.log1p(k))), dtype=float)
