"""Chart specs of any length, built fast: per-turn data past a few thousand points is averaged in bins of turns, and
the chart says so; inside the report, Altair charts are built without per-chart JSON-schema validation and with one
schema-class table per process (Altair rebuilds it for every channel).

Evidence: Altair refuses inline data over 5,000 rows (a 1,666-turn session's three subscales), and its schema
validation was a third of the report's CPU time per session page (profiled on the default lenses' charts).
"""

from __future__ import annotations

import contextlib
import json
import math
from collections.abc import Iterator
from typing import Any

import pandas as pd

#: Most data points one chart's dataset carries; longer per-turn series are averaged over bins of turns.
MAX_POINTS = 3000
#: Column added to binned data: how many turns one point stands for (so a tooltip and the note can say so).
BIN_COLUMN = "turns_per_point"
ROWS_COLUMN = "rows_per_point"
#: Text columns with at most this many distinct values keep their series apart when binning (speaker, subscale ...).
MAX_SERIES_VALUES = 24


def turn_column(data: pd.DataFrame) -> str | None:
    """The column that holds turn positions: ``turn_index``, ``turn``, or one named ``*_turn`` / ``turn_*``."""
    names = [c for c in data.columns if isinstance(c, str) and pd.api.types.is_numeric_dtype(data[c])
             and not pd.api.types.is_bool_dtype(data[c])]
    for c in ("turn_index", "turn"):
        if c in names:
            return c
    return next((c for c in names if c.endswith("_turn") or c.startswith("turn_")), None)


def downsample(data: pd.DataFrame, max_points: int = MAX_POINTS, x: str | None = None) -> pd.DataFrame:
    """``data`` unchanged when it has at most ``max_points`` rows; otherwise one row per bin of consecutive turns
    (``x``, by default :func:`turn_column`) and series (the mean of numeric columns, the first value of free text),
    with :data:`BIN_COLUMN` saying how many turns a point stands for. Without a turn column: one row in every k,
    with :data:`ROWS_COLUMN`. Deterministic."""
    if len(data) <= max_points:
        return data
    x = x or turn_column(data)
    if x is not None and x in data:
        numeric = [c for c in data.columns if c != x and pd.api.types.is_numeric_dtype(data[c])
                   and not pd.api.types.is_bool_dtype(data[c])]
        rest = [c for c in data.columns if c != x and c not in numeric]
        keys = [c for c in rest if data[c].nunique(dropna=False) <= MAX_SERIES_VALUES]
        free = [c for c in rest if c not in keys]
        n_series = data.groupby(keys, dropna=False, sort=False).ngroups if keys else 1
        bins = max(1, max_points // max(1, n_series))
        xs = pd.to_numeric(data[x], errors="coerce")
        lo, hi = xs.min(), xs.max()
        width = max(1, math.ceil((hi - lo + 1) / bins))
        b = ((xs - lo) // width).rename("_bin")
        agg = {x: "mean", **{c: "mean" for c in numeric}, **{c: "first" for c in free}}
        out = data.groupby([*(data[k] for k in keys), b], dropna=False, sort=True).agg(agg)
        out = out.reset_index(level=list(range(len(keys)))).reset_index(drop=True)
        out = out[[c for c in data.columns if c in out]]
        return out.assign(**{BIN_COLUMN: width})
    step = math.ceil(len(data) / max_points)
    return data.iloc[::step].assign(**{ROWS_COLUMN: step})


def _note(per_point: int, binned: bool) -> str:
    return (f"long session: each point is the mean of {per_point} consecutive turns" if binned
            else f"long series: one row in every {per_point} is drawn")


def mark_downsampled(spec: dict[str, Any]) -> dict[str, Any]:
    """Say on the chart (its subtitle) when any of its data was binned by :func:`downsample`."""
    per_point, binned = 0, False
    datasets = list((spec.get("datasets") or {}).values())

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            values = node.get("values") if isinstance(node.get("values"), list) else None
            if values is not None:
                datasets.append(values)
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk({k: v for k, v in spec.items() if k != "datasets"})
    for values in datasets:
        if values and isinstance(values[0], dict):
            if BIN_COLUMN in values[0]:
                per_point, binned = max(per_point, int(values[0][BIN_COLUMN])), True
            elif ROWS_COLUMN in values[0] and not binned:
                per_point = max(per_point, int(values[0][ROWS_COLUMN]))
    if not per_point:
        return spec
    note = _note(per_point, binned)
    title = spec.get("title")
    if note in json.dumps(title, default=str):  # already said (a chart marked where it was built)
        return spec
    if isinstance(title, dict):
        subtitle = title.get("subtitle")
        spec["title"] = {**title, "subtitle": [*([subtitle] if isinstance(subtitle, str) else subtitle or []), note]}
    elif isinstance(title, str | list):
        spec["title"] = {"text": title, "subtitle": note}
    else:
        spec["title"] = {"text": note, "fontSize": 11, "fontWeight": "normal", "color": "#8a4b00", "anchor": "start"}
    return spec


def _transformer(data: Any = None, max_points: int = MAX_POINTS) -> Any:
    """An Altair data transformer: :func:`downsample`, then inline values (no row limit left to trip over)."""
    from altair.utils.data import to_values

    def pipe(d: Any) -> Any:
        if isinstance(d, pd.DataFrame):
            d = downsample(d, max_points)
        return to_values(d)

    return pipe if data is None else pipe(data)


_CONVERTERS: dict[type, Any] = {}


def _from_dict(cls: Any, dct: Any, validate: bool = True) -> Any:
    """``SchemaBase.from_dict`` with its converter built once per wrapper-class family: Altair builds a new one, a
    hash of every schema class's JSON, for each channel of each chart (a third of a session page's CPU time)."""
    from altair.utils import schemapi

    if validate:
        cls.validate(dct)
    owner = next(c for c in cls.__mro__ if "_default_wrapper_classes" in c.__dict__)
    if owner not in _CONVERTERS:
        _CONVERTERS[owner] = schemapi._FromDict(cls._default_wrapper_classes())
    return _CONVERTERS[owner].from_dict(dct, cls)


@contextlib.contextmanager
def fast_charts(max_points: int = MAX_POINTS) -> Iterator[None]:
    """Inside this block Altair charts (the lenses' report sections build theirs with Altair) carry at most
    ``max_points`` rows per dataset and are turned into specs without JSON-schema validation; the previous
    settings come back on leaving. Validation is a development aid: the specs are the same with it off."""
    import altair as alt
    from altair.utils import schemapi

    name = "alliance-report"
    if name not in alt.data_transformers.names():
        alt.data_transformers.register(name, _transformer)
    previous = alt.data_transformers.active
    # Chart.to_dict and TopLevelMixin.to_dict default to validate=True and the lenses call them without arguments;
    # changing that default (restored below) is the only switch Altair offers for a whole block of code.
    methods = [alt.Chart.to_dict, alt.TopLevelMixin.to_dict]
    defaults = [m.__defaults__ for m in methods]
    # from_dict as Altair's own, with its converter kept (only if Altair still builds it the way we replace)
    patch = hasattr(schemapi, "_FromDict") and "from_dict" in schemapi.SchemaBase.__dict__
    original = schemapi.SchemaBase.__dict__.get("from_dict")
    alt.data_transformers.enable(name, max_points=max_points)
    try:
        for m in methods:
            m.__defaults__ = (False,)
        if patch:
            schemapi.SchemaBase.from_dict = classmethod(_from_dict)  # type: ignore[method-assign,assignment]
        with schemapi.debug_mode(False):
            yield
    finally:
        for m, d in zip(methods, defaults, strict=True):
            m.__defaults__ = d
        if patch:
            schemapi.SchemaBase.from_dict = original  # type: ignore[method-assign,assignment]
        alt.data_transformers.enable(previous)
