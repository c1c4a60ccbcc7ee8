"""`alliance redact`: preview what redaction would send to a remote model endpoint.

Nothing is sent; the preview uses the same Redactor the model client uses.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from alliance.cli.app import app
from alliance.cli.common import console, out_console


@app.command()
def redact(
    file: Annotated[Path, typer.Argument(help="Transcript file (any readable format).", exists=True)],
    preview: Annotated[bool, typer.Option("--preview", help="Show what would be sent (the default action).")] = True,
    fmt: Annotated[str, typer.Option("--format", "-f", help="Input format, or 'auto'.")] = "auto",
    name: Annotated[list[str] | None, typer.Option("--name", help="Extra name to redact (repeatable).")] = None,
    all_turns: Annotated[bool, typer.Option("--all", help="Show every turn, not only those that change.")] = False,
) -> None:
    """Preview redaction: each turn as it would leave this machine, with names, e-mails, phones, addresses and
    dates replaced. Nothing is sent."""
    from rich.table import Table

    from alliance.io import InputError, read
    from alliance.llm.redact import Redactor

    try:
        corpus = read([file], format=fmt).corpus
    except InputError as e:
        console.print(f"[red]error:[/red] {e}")
        raise typer.Exit(2) from None
    red = Redactor(name or ())
    table = Table("session", "#", "speaker", "as it would be sent", "replaced")
    counts: dict[str, int] = {}
    changed = 0
    for r in corpus.turns.itertuples(index=False):
        res = red.redact(str(r.text))
        for s in res.spans:
            counts[s.kind] = counts.get(s.kind, 0) + 1
        changed += res.changed
        if res.changed or all_turns:
            table.add_row(str(r.session_id), str(r.turn_index), str(r.speaker), res.text,
                          ", ".join(f"{s.kind}: {s.text}" for s in res.spans))
    out_console.print(table)
    summary = ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "nothing"
    out_console.print(f"{changed} of {len(corpus.turns)} turns change; replaced: {summary}. "
                      "Pattern-based: check the rest by eye (see docs/llm.md).")
