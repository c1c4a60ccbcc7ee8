"""`alliance serve` and `alliance admin`: run the live service, and add users and API keys to it.

The service scores with the same core as `alliance analyze`; see docs/service.md.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from alliance.cli.app import app
from alliance.cli.common import console, out_console

admin_app = typer.Typer(help="Add teams, users and API keys to a service database.", no_args_is_help=True)
app.add_typer(admin_app, name="admin")

DataDir = Annotated[Path | None, typer.Option(help="Data folder (SQLite file, embedding cache); default "
                                                   "~/.local/share/alliance/serve or $ALLIANCE_SERVE_DATA.")]
DbUrl = Annotated[str | None, typer.Option("--db", help="Database URL, e.g. postgresql+psycopg://user@host/db "
                                                        "(default: SQLite in the data folder).")]


def _settings(data_dir: Path | None, db: str | None, **kw):
    from alliance.service.settings import Settings

    return Settings.from_env(**({"data_dir": data_dir} if data_dir else {}), db_url=db, **kw)


def _database(data_dir: Path | None, db: str | None):
    """The service's database, schema upgraded (the data folder created owner-only first)."""
    from alliance.owner_only import private_dir
    from alliance.service.store.db import Database

    settings = _settings(data_dir, db)
    private_dir(settings.data_dir)
    database = Database(settings.database_url)
    database.upgrade()
    return database


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on (loopback by default: put TLS in front for "
                                           "anything else).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port.")] = 8765,
    data_dir: DataDir = None,
    db: DbUrl = None,
    load_sample: Annotated[bool, typer.Option("--load-sample", help="Load the bundled sample (two AnnoMI sessions "
                                                                    "and two demo chatbot sessions) so the "
                                                                    "dashboard is populated.")] = False,
    webhook_url: Annotated[str | None, typer.Option(help="POST each new alert here (signed; retried).")] = None,
    webhook_secret: Annotated[str | None, typer.Option(help="HMAC secret for the webhook signature "
                                                            "(or $ALLIANCE_WEBHOOK_SECRET).")] = None,
    retention_days: Annotated[int, typer.Option(help="Delete transcripts older than this (0 = keep).")] = 0,
    rate_limit: Annotated[int, typer.Option(help="Requests per minute per API key.")] = 600,
    secure_cookies: Annotated[bool, typer.Option(help="Mark cookies Secure (when served over HTTPS).")] = False,
    hide_counsellors: Annotated[bool, typer.Option(help="Hide counsellor identities from administrators.")] = False,
) -> None:
    """Run the service: HTTP API (/docs), OTLP traces (/v1/traces), dashboard (/), alerts and webhooks."""
    import uvicorn

    from alliance.service.admin import bootstrap
    from alliance.service.app import create_app

    settings = _settings(data_dir, db, webhook_url=webhook_url, webhook_secret=webhook_secret,
                         retention_days=retention_days, rate_limit_per_minute=rate_limit,
                         secure_cookies=secure_cookies, hide_counsellors=hide_counsellors)
    application = create_app(settings)
    with application.state.db.session() as s:
        boot = bootstrap(s)
    if boot:
        out_console.print("[bold]First start[/bold]: created organisation 'default', team 'default'.\n"
                          f"  dashboard user: [bold]{boot.admin_user}[/bold]  password: [bold]{boot.admin_password}"
                          f"[/bold]\n  API key: [bold]{boot.api_key}[/bold]\n"
                          "  These are shown once and stored only as hashes; keep them.")
    if load_sample:
        n = load_sample_data(application)
        console.print(f"loaded the bundled sample: {n} conversations (scoring in the background)")
    console.print(f"[green]serving[/green] http://{host}:{port}/  (API docs: /docs; data: {settings.data_dir}"
                  f"{'' if not db else '; database: ' + db.split('@')[-1]})")
    uvicorn.run(application, host=host, port=port, log_level="warning")


def load_sample_data(application) -> int:
    """Ingest the bundled samples into the first team, through the same store the API writes to."""
    from importlib import resources

    from sqlalchemy import select

    from alliance.io import read
    from alliance.service.store.models import Team
    from alliance.service.store.queries import TurnIn, append_turns, create_conversation

    files = [Path(str(resources.files("alliance.data.sample").joinpath(n)))
             for n in ("annomi_sample.jsonl", "chatbot_demo.jsonl")]
    corpus = read(files, format="jsonl").corpus
    metas = {(r.course_id, r.session_id): r.meta for r in corpus.sessions.itertuples(index=False)}
    n = 0
    with application.state.db.session() as s:
        team = s.execute(select(Team).order_by(Team.id)).scalars().first()
        for (course, sid), turns in corpus.turns.groupby(["course_id", "session_id"], sort=False):
            meta = dict(metas.get((course, sid)) or {})
            ai = turns["counsellor_is_ai"].iloc[0]
            conv, _ = create_conversation(s, team.id, str(sid), course_id=str(course),
                                          counsellor_is_ai=None if str(ai) == "<NA>" else bool(ai),
                                          bot_version=meta.get("bot_version"),
                                          counsellor_id=None if meta.get("bot_version") else "sample-counsellor",
                                          meta=meta)
            append_turns(s, conv, [TurnIn(speaker=str(r.speaker), text=str(r.text), turn_id=f"sample:{r.turn_index}")
                                   for r in turns.itertuples(index=False)])
            n += 1
    application.state.scorer.sweep()
    return n


@admin_app.command("user")
def add_user(
    username: Annotated[str, typer.Argument(help="User name.")],
    role: Annotated[str, typer.Option(help="counsellor, supervisor or admin.")] = "supervisor",
    team: Annotated[str, typer.Option(help="Team name (created if new).")] = "default",
    organisation: Annotated[str, typer.Option(help="Organisation name.")] = "default",
    counsellor_id: Annotated[str | None, typer.Option(help="For counsellors: the counsellor id their sessions "
                                                           "carry.")] = None,
    data_dir: DataDir = None,
    db: DbUrl = None,
) -> None:
    """Add a dashboard user; prints a generated password once."""
    import secrets

    from alliance.service.admin import create_user, get_or_create_team

    database = _database(data_dir, db)
    password = secrets.token_urlsafe(12)
    try:
        with database.session() as s:
            create_user(s, get_or_create_team(s, organisation, team), username, password, role, counsellor_id)
    except ValueError as e:
        console.print(f"[red]error:[/red] {e}")
        raise typer.Exit(2) from None
    out_console.print(f"user {username} ({role}, team {team}); password: {password}")


@admin_app.command("key")
def add_key(
    team: Annotated[str, typer.Option(help="Team name (created if new).")] = "default",
    organisation: Annotated[str, typer.Option(help="Organisation name.")] = "default",
    name: Annotated[str, typer.Option(help="A label for the key.")] = "",
    data_dir: DataDir = None,
    db: DbUrl = None,
) -> None:
    """Create an API key for a team; prints it once (only its hash is stored)."""
    from alliance.service.admin import create_api_key, get_or_create_team

    database = _database(data_dir, db)
    with database.session() as s:
        key = create_api_key(s, get_or_create_team(s, organisation, team), name)
    out_console.print(key)
