"""Lenses: one module per measure, each a :class:`Lens` with ``score`` (per turn) and ``summarize`` (per session).

A new measure is one new file here plus one line in :data:`alliance.registry.lenses`.
"""

from alliance.lenses.base import Lens, LensContext

__all__ = ["Lens", "LensContext"]
