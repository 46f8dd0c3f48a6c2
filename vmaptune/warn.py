"""Warnings that point at the user's line, not vmaptune's: the first frame outside the package
(what Python 3.12's warnings.warn(skip_file_prefixes=...) does, by hand for 3.11). A notebook
shows the cell that called vt.tune, a script its own line, under every warning vmaptune gives."""

from __future__ import annotations

import os
import sys
import warnings

_PACKAGE = os.path.dirname(os.path.abspath(__file__)) + os.sep


def warn(message: str | Warning, category: type[Warning] = UserWarning) -> None:
    """warnings.warn(message, category), attributed to the nearest caller outside vmaptune. A
    Warning instance as the message is its own category (one that carries facts for a caller)."""
    frame, level = sys._getframe(1), 2  # stacklevel 2: warn's caller
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level)
