"""Models: the protocol the engine trains (`base.py`), the built-in MLP (`mlp.py`), and your own flax
modules (`linen.py`, `nnx.py`, sharing `fields.py`)."""

from vmaptune.models.base import BuiltModel, Group, Model
from vmaptune.models.linen import BuiltLinen, Linen
from vmaptune.models.mlp import ACTIVATIONS, INITS, MATMUL_DTYPES, MLP, BuiltMLP, MaskedMLP
from vmaptune.models.nnx import BuiltNnx, Nnx

__all__ = ["Model", "BuiltModel", "Group", "MLP", "BuiltMLP", "MaskedMLP", "ACTIVATIONS", "INITS", "MATMUL_DTYPES",
           "Linen", "BuiltLinen", "Nnx", "BuiltNnx"]
