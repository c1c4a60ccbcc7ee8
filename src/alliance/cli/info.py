"""`alliance formats`, `alliance lenses` and `alliance version`: what the installation offers.

These must stay fast (target < 0.2 s, no model, no pandas): built-in components' names, versions and citations are
read from their source files' class attributes (``ast``, nothing imported); third-party ones are imported.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

from alliance.cli.app import app
from alliance.cli.common import out_console


def static_attributes(dotted: str | None, names: tuple[str, ...]) -> dict[str, Any] | None:
    """The literal values of ``names`` assigned in the body of the class ``module:Class`` of this package, read
    from its source without importing it; None when any is missing (inherited, computed) or the source is not
    ours, so the caller imports the class instead."""
    if not dotted or not dotted.startswith("alliance."):
        return None
    module, _, cls = dotted.partition(":")
    import alliance

    path = Path(alliance.__file__).parent.joinpath(*module.split(".")[1:]).with_suffix(".py")
    try:
        tree = ast.parse(class_source(path.read_text(encoding="utf-8"), cls))
    except (OSError, SyntaxError):
        return None
    found: dict[str, Any] = {}
    for node in tree.body:
        if isinstance(node, ast.ClassDef) and node.name == cls:
            for stmt in node.body:
                target = stmt.targets[0] if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 else \
                    getattr(stmt, "target", None) if isinstance(stmt, ast.AnnAssign) else None
                if isinstance(target, ast.Name) and target.id in names and stmt.value is not None:
                    try:
                        found[target.id] = ast.literal_eval(stmt.value)
                    except ValueError:
                        return None
    return found if set(found) == set(names) else None


def class_source(text: str, cls: str) -> str:
    """The head of top-level ``class cls``: its lines up to the first method or the class's end (parsing whole
    lens modules would cost more than the command's target; attributes set later fall back to importing)."""
    match = re.search(rf"^class {re.escape(cls)}\b", text, flags=re.MULTILINE)
    if match is None:
        return ""
    lines = text[match.start():].splitlines()
    end = next((k for k in range(1, len(lines)) if lines[k][:1] not in ("", " ", "\t", ")", "#")
                or lines[k].lstrip().startswith(("def ", "async def ", "@"))), len(lines))
    return "\n".join(lines[:end])


def _attributes(registry: Any, name: str, names: tuple[str, ...]) -> dict[str, Any]:
    got = static_attributes(registry.path_of(name), names)
    if got is None:
        obj = registry.get(name)
        got = {n: getattr(obj, n) for n in names}
    return got


def default_lens_names() -> tuple[str, ...]:
    """``alliance.pipeline.DEFAULT_LENSES``, read from the source (importing the pipeline loads pandas)."""
    import alliance

    try:
        tree = ast.parse((Path(alliance.__file__).parent / "pipeline.py").read_text(encoding="utf-8"))
        for node in tree.body:
            target = node.targets[0] if isinstance(node, ast.Assign) and len(node.targets) == 1 else \
                getattr(node, "target", None) if isinstance(node, ast.AnnAssign) else None
            if isinstance(target, ast.Name) and target.id == "DEFAULT_LENSES" and node.value is not None:
                return tuple(ast.literal_eval(node.value))
    except (OSError, SyntaxError, ValueError):
        pass
    from alliance.pipeline import DEFAULT_LENSES

    return tuple(DEFAULT_LENSES)


@app.command()
def formats() -> None:
    """List the input formats that `--format` accepts."""
    from rich.table import Table

    from alliance.registry import readers

    table = Table("format", "description")
    for name in readers.names():
        table.add_row(name, _attributes(readers, name, ("description",))["description"])
    out_console.print(table)


@app.command(name="lenses")
def list_lenses() -> None:
    """List the measures (lenses) and their scientific basis."""
    from rich.table import Table

    from alliance.registry import lenses as registry

    defaults = default_lens_names()
    table = Table("lens", "default", "version", "basis")
    for name in registry.names():
        info = _attributes(registry, name, ("version", "citation"))
        table.add_row(name, "yes" if name in defaults else "", info["version"], info["citation"])
    out_console.print(table)


@app.command()
def version() -> None:
    """Print the version of alliance."""
    from alliance import __version__

    out_console.print(__version__)
