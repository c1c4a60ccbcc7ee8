"""alliance: measure the therapeutic relationship in counselling and therapy-chatbot conversations.

Per-reply empathy, working alliance per turn and session from each side's own words, relational markers,
behaviours and safety, kept apart and followed over time. Heavy libraries load lazily.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = ["Corpus", "__version__", "analyze", "read"]

if TYPE_CHECKING:
    from alliance.corpus import Corpus
    from alliance.io import read
    from alliance.pipeline import analyze


def __getattr__(name: str) -> Any:
    if name == "Corpus":
        from alliance.corpus import Corpus

        return Corpus
    if name == "read":
        from alliance.io import read

        return read
    if name == "analyze":
        from alliance.pipeline import analyze

        return analyze
    raise AttributeError(name)
