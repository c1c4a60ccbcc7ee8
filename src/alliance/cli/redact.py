"""`alliance redact --preview`: the exact requests the model-rated lenses would send for a transcript file.

Nothing is sent. The preview builds each request with the model client's own function (LLMClient.request_body,
the one LLMClient.chat sends) and the same configuration, so what it shows is byte for byte what would leave.
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer

from alliance.cli.app import app
from alliance.cli.common import console, out_console

_PLACEHOLDER = re.compile(r"\[([A-Z]+)_(\d+)\]")


def preview_requests(corpus, client, lens: str = "llm_alliance") -> list[tuple[str, dict, int, str]]:
    """(session, request body, spans replaced, note) for every request ``lens`` would send for ``corpus``.

    Uses the lenses' own message builders and parameters (their first run) and ``client.request_body``.
    """
    from alliance.lenses.llm_rater import LLMAllianceRaterLens, LLMJudgeLens, transcript_text

    out = []
    if lens == "llm_alliance":
        rater = LLMAllianceRaterLens(n_runs=1, client=client)
        for key, turns in corpus.iter_sessions():
            transcript, truncated = transcript_text(turns, rater.max_chars)
            body, n = client.request_body(rater._messages(transcript), scope=turns["text"].astype(str).tolist(),
                                          temperature=rater.temperature, seed=rater.seed, max_tokens=rater.max_tokens)
            note = "transcript longer than max_chars: its middle is left out of the request" if truncated else ""
            out.append(("/".join(map(str, key)), body, n, note))
        return out
    judge = LLMJudgeLens(client=client)
    t = corpus.turns
    prev = corpus.previous_turn_of_other_side().to_numpy()
    for key, turns in corpus.iter_sessions():
        texts = turns["text"].astype(str).tolist()
        for i in turns.index[turns["speaker"] == "counsellor"]:
            pos = t.index.get_loc(i)
            client_text = str(t["text"].iat[prev[pos]]) if prev[pos] >= 0 else "(none)"
            body, n = client.request_body(judge._messages(client_text, str(t["text"].iat[pos])), scope=texts,
                                          temperature=judge.temperature, seed=judge.seed, max_tokens=judge.max_tokens)
            out.append((f"{'/'.join(map(str, key))} turn {int(t['turn_index'].iat[pos])}", body, n, ""))
    return out


@app.command()
def redact(
    file: Annotated[Path, typer.Argument(help="Transcript file (any readable format).", exists=True)],
    preview: Annotated[bool, typer.Option("--preview", help="Show what would be sent (the only action).")] = True,
    fmt: Annotated[str, typer.Option("--format", "-f", help="Input format, or 'auto'.")] = "auto",
    name: Annotated[list[str] | None, typer.Option("--name", help="Extra name to redact, added to the "
                                                   "configuration's extra_names (repeatable).")] = None,
    llm_config: Annotated[Path | None, typer.Option(help="LLM config file (TOML); default: the environment or "
                                                    "~/.config/alliance/llm.toml, as the lenses use.")] = None,
    lens: Annotated[str, typer.Option(help="Whose requests: llm_alliance (one per session) or llm_judge (one "
                                      "per counsellor reply).")] = "llm_alliance",
    as_json: Annotated[bool, typer.Option("--json", help="Print each request body exactly as it would be sent "
                                          "(one JSON document per line, UTF-8).")] = False,
    changed_only: Annotated[bool, typer.Option("--changed-only", help="Hide requests that redaction leaves "
                                               "unchanged (their number is printed).")] = False,
    all_turns: Annotated[bool, typer.Option("--all", hidden=True, help="Kept for old scripts: every turn is "
                                            "always shown now.")] = False,
) -> None:
    """Preview what the model-rated lenses would send for FILE: every request, exactly as it would leave this
    machine under the current configuration (redacted or not). Nothing is sent."""
    from alliance.io import InputError, read
    from alliance.llm import LLMClient, LLMConfig, LLMConfigError, load_config
    from alliance.llm.client import encode_body
    from alliance.llm.config import safe_url

    if lens not in ("llm_alliance", "llm_judge"):
        console.print(f"[red]error:[/red] --lens {lens!r}: choose llm_alliance or llm_judge")
        raise typer.Exit(2)
    try:
        corpus = read([file], format=fmt).corpus
        cfg = load_config(llm_config)
    except (InputError, LLMConfigError) as e:
        console.print(f"[red]error:[/red] {e}")
        raise typer.Exit(2) from None
    configured = cfg is not None
    if cfg is None:  # nothing would be sent at all; show what a remote endpoint would receive
        cfg = LLMConfig("https://remote.endpoint.invalid/v1", "(no model configured)")
    if name:
        cfg = replace(cfg, extra_names=(*cfg.extra_names, *name))
    client = LLMClient(cfg)
    if not configured:
        console.print("[yellow]no endpoint configured[/yellow]: nothing would be sent. Shown: what a remote "
                      "endpoint would receive (redaction on).")
    elif not cfg.redaction_on:
        why = "local endpoint" if cfg.is_local and cfg.redact is None else "turned off in the configuration"
        console.print(f"[bold]no redaction: {why}[/bold] ({safe_url(cfg.base_url)}); the text below is sent as is.")
    else:
        via = f" via proxy {safe_url(cfg.proxy)}" if cfg.proxy else ""
        console.print(f"redaction on: endpoint {safe_url(cfg.base_url)}{via}"
                      + (f"; extra names: {len(cfg.extra_names)}" if cfg.extra_names else ""))
    requests = preview_requests(corpus, client, lens)
    kinds: dict[str, set[str]] = {}
    hidden = 0
    for where, body, n, note in requests:
        data = encode_body(body)
        for m in _PLACEHOLDER.finditer(data.decode("utf-8")):
            kinds.setdefault(m.group(1).lower(), set()).add(m.group(2))
        if changed_only and n == 0:
            hidden += 1
            continue
        if as_json:
            out_console.file.write(data.decode("utf-8") + "\n")
            continue
        out_console.rule(f"{where} · {len(data)} bytes · {n} span(s) replaced")
        if note:
            out_console.print(f"note: {note}", markup=False, highlight=False)
        for msg in body["messages"]:
            out_console.print(f"--- {msg['role']} ---", markup=False, highlight=False)
            out_console.print(msg["content"], markup=False, highlight=False, soft_wrap=True)
    replaced = ", ".join(f"{k} {len(v)}" for k, v in sorted(kinds.items())) or "nothing"
    console.print(f"{len(requests)} request(s) for {len(corpus.turns)} turns; distinct placeholders: {replaced}."
                  + (f" {hidden} request(s) unchanged by redaction hidden (--changed-only)." if hidden else "")
                  + " Redaction is rule-based: read the text above before sending (see docs/llm.md).")
