"""``python -m alliance.cli``."""

from alliance.cli import app

app()
