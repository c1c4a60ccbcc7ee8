"""`alliance lenses` / `alliance formats`: the same facts as the classes, read without importing them."""

from __future__ import annotations

import subprocess
import sys

from alliance.cli.info import default_lens_names, static_attributes
from alliance.registry import lenses, readers


def test_static_attributes_equal_the_imported_classes():
    for name in lenses.names():
        got = static_attributes(lenses.path_of(name), ("version", "citation"))
        cls = lenses.get(name)
        assert got == {"version": cls.version, "citation": cls.citation}, name
    for name in readers.names():
        got = static_attributes(readers.path_of(name), ("description",))
        assert got == {"description": readers.get(name).description}, name
    from alliance.pipeline import DEFAULT_LENSES

    assert default_lens_names() == tuple(DEFAULT_LENSES)


def test_missing_or_inherited_attributes_fall_back_to_import():
    assert static_attributes("alliance.lenses.empathy:EmpathyLens", ("needs_encoder", "requires")) is None
    assert static_attributes("alliance.lenses.empathy:NoSuchClass", ("version",)) is None
    assert static_attributes("thirdparty.mod:Lens", ("version",)) is None


def test_lenses_and_formats_import_no_lens_reader_or_pandas():
    code = ("import sys\nfrom alliance.cli import app\n"
            "for cmd in (['lenses'], ['formats']):\n"
            "    try:\n        app(cmd)\n    except SystemExit:\n        pass\n"
            "heavy = [m for m in ('pandas', 'numpy', 'torch', 'alliance.lenses.empathy', 'alliance.io.jsonl') "
            "if m in sys.modules]\n"
            "print('HEAVY', heavy)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "HEAVY []" in out
    assert "coordination" in out and "kokorochat" in out and "1.1.0" in out  # empathy's version, from its source


def test_path_of_survives_get_but_not_a_replacement():
    from alliance.registry import Registry

    r = Registry("lenses", {"x": "alliance.lenses.markers:MarkersLens"})
    r.get("x")  # cached import of the registered path: still readable from source
    assert r.path_of("x") == "alliance.lenses.markers:MarkersLens"
    r.register("x", dict)  # replaced by another object: the source no longer describes it
    assert r.path_of("x") is None


def test_console_script_answers_lenses_formats_version_without_the_command_line():
    """The installed `alliance` script (pyproject's [project.scripts]) prints these three without importing Typer,
    pydantic, pandas or torch (issue #15: under 0.2 s), and prints what the Typer commands print."""
    import tomllib
    from pathlib import Path

    script = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text())["project"][
        "scripts"]["alliance"]
    module, _, attr = script.partition(":")
    for cmd in ("lenses", "formats", "version"):
        code = (f"import sys\nfrom {module} import {attr}\nrc = {attr}([{cmd!r}])\n"
                "heavy = [m for m in ('typer', 'pydantic', 'pandas', 'numpy', 'torch', 'alliance.cli') "
                "if m in sys.modules]\nprint('HEAVY', heavy, rc)\n")
        fast = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
        assert "HEAVY [] 0" in fast, fast
        typer_code = f"from alliance.cli import app\ntry:\n    app([{cmd!r}])\nexcept SystemExit:\n    pass\n"
        slow = subprocess.run([sys.executable, "-c", typer_code], capture_output=True, text=True, check=True).stdout
        assert fast.rsplit("HEAVY", 1)[0] == slow, cmd


def test_console_script_passes_everything_else_to_typer():
    code = ("import sys\nfrom alliance.entry import app\ntry:\n    app(['lenses', '--help'])\n"
            "except SystemExit as e:\n    print('EXIT', e.code)\nprint('typer' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "List the measures" in out and "EXIT 0" in out and out.strip().endswith("True")
