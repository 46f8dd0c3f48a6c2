"""What wrote a saved model or run: the package versions, kept with it so that a model loaded
elsewhere (another machine, a later vmaptune) can say what it came from."""

from __future__ import annotations

import platform
from importlib import metadata


def written_by() -> dict[str, str]:
    """{'vmaptune': '0.1.0', 'jax': ..., 'jaxlib': ..., 'flax': ..., 'optax': ..., 'python': ...}:
    the versions in this process (a package not installed is left out)."""
    from vmaptune import __version__

    versions = {"vmaptune": __version__}
    for package in ("jax", "jaxlib", "flax", "optax", "numpy"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            pass
    versions["python"] = platform.python_version()
    return versions
