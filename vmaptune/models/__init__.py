"""Models: the protocol the engine trains (`base.py`) and the built-in MLP (`mlp.py`)."""

from vmaptune.models.base import BuiltModel, Group, Model
from vmaptune.models.mlp import ACTIVATIONS, INITS, MATMUL_DTYPES, MLP, BuiltMLP, MaskedMLP

__all__ = ["Model", "BuiltModel", "Group", "MLP", "BuiltMLP", "MaskedMLP", "ACTIVATIONS", "INITS", "MATMUL_DTYPES"]
