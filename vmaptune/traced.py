"""What JAX raises when user code treats a member's traced hyperparameter as a Python value.

Inside the compiled program each member's values are traced arrays, so that a new value never
recompiles. A user's loss, model or optimizer factory that calls float(), int() or bool() on one,
branches on it in an `if`, or hands it to numpy (np.asarray, np.log) fails while tracing; vmaptune
catches these to name the value and the fix (jnp, jnp.where, a structural field)."""

from __future__ import annotations

import jax

#: ConcretizationTypeError covers float(), int(), bool() and `if`; numpy's conversion
#: (np.asarray(hp["k"]), np.log(...)) raises TracerArrayConversionError, which is not one of them.
USED_AS_PYTHON_VALUE = (jax.errors.ConcretizationTypeError, jax.errors.TracerArrayConversionError)
