"""What the installation offers (lenses, input formats), read for `alliance lenses` and `alliance formats`.

These must stay fast (issue #15: under 0.2 s, no model, no pandas, no Typer): built-in components' names, versions
and citations are read from their source files' class attributes (``ast``, nothing imported); third-party ones are
imported. Kept outside ``alliance.cli`` so the console script can answer these without loading the command line.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any


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


def formats_table() -> Any:
    """The table `alliance formats` prints: each reader's name and description."""
    from rich.table import Column, Table
    from rich.text import Text

    from alliance.registry import readers

    # cells as plain Text: no markup or emoji parsing (a "[...]" in a description is shown as written, and rich's
    # emoji table, 20 ms to import, is never loaded)
    table = Table(Column(Text("format")), Column(Text("description")))
    for name in readers.names():
        table.add_row(Text(name), Text(str(_attributes(readers, name, ("description",))["description"])))
    return table


def lenses_table() -> Any:
    """The table `alliance lenses` prints: each lens, whether it runs by default, its version and basis."""
    from rich.table import Column, Table
    from rich.text import Text

    from alliance.registry import lenses as registry

    defaults = default_lens_names()
    table = Table(*(Column(Text(h)) for h in ("lens", "default", "version", "basis")))
    for name in registry.names():
        info = _attributes(registry, name, ("version", "citation"))
        table.add_row(*(Text(str(v)) for v in (name, "yes" if name in defaults else "", info["version"],
                                                 info["citation"])))
    return table
