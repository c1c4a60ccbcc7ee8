"""The Typer application object that every command module registers on.

Kept apart from __init__ so command modules can import it without an import cycle.
"""

from __future__ import annotations

import typer

app = typer.Typer(
    name="alliance",
    help="Measure the therapeutic relationship in counselling and therapy-chatbot transcripts. "
    "Runs locally; nothing leaves this machine.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
