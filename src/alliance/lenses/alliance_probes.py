"""Working-alliance probe similarity per turn (goal, task, bond) for each side, from that side's own words.

Evidence: semantic similarity of each turn to statements in the speaker's own voice, after COMPASS (Li et al.,
2024), which scores turns against Working Alliance Inventory items (Horvath & Greenberg 1989; Bordin 1979).

What this is, honestly: *similarity to alliance probes*, a zero-shot proxy. On KokoroChat the naive method barely
relates to what clients said (see docs/validation.md), so reports show these figures beside their validation and
never call them the client's alliance. Improvements over COMPASS's raw cosine sums:

* calibration: each probe's cosine is expressed as a z-score against a neutral background of ordinary
  conversation turns, so scores compare across encoders and questionnaire-sounding speakers do not win;
* keyed items: each subscale is mean(z of positive probes) - mean(z of rupture-like probes);
* context: optionally a turn is read together with its preceding k turns (decaying weights);
* per session and side: mean, slope, first vs last third; and the client-minus-counsellor perception gap.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from alliance.corpus import ROLES, SESSION_KEY, Corpus
from alliance.data import load_json_data, read_data_text
from alliance.encoders.base import Encoder, normalise_rows
from alliance.lenses.base import Lens, LensContext, ReportSection
from alliance.trajectory import relative_position, summarise_series

SUBSCALES: tuple[str, ...] = ("goal", "task", "bond")
DEFAULT_PROBES = "alliance_probes_v1.json"
DEFAULT_BACKGROUND = "background_v1.txt"
#: |gap| must shrink or grow by more than this (in calibrated z units) to count as narrowing or widening.
GAP_TREND_MARGIN = 0.1


class ProbeSetError(ValueError):
    pass


@dataclass(frozen=True)
class Probe:
    id: str
    subscale: str
    side: str
    key: str
    text: str


@dataclass(frozen=True)
class ProbeSet:
    """A versioned set of alliance probes (the project's own, or a licensed inventory in the same shape)."""

    name: str
    version: str
    probes: tuple[Probe, ...]
    source: str

    @classmethod
    def load(cls, path: str | Path | None = None) -> ProbeSet:
        doc, source = load_json_data(path, "probes", DEFAULT_PROBES, ProbeSetError, "probe set")
        probes = []
        for i, p in enumerate(doc.get("probes", [])):
            for f in ("id", "subscale", "side", "key", "text"):
                if not isinstance(p.get(f), str) or not p[f].strip():
                    raise ProbeSetError(f"{source}: probe {i}: field {f!r} missing or empty")
            if p["subscale"] not in SUBSCALES:
                raise ProbeSetError(f"{source}: probe {p['id']}: subscale must be one of {SUBSCALES}")
            if p["side"] not in ROLES:
                raise ProbeSetError(f"{source}: probe {p['id']}: side must be one of {ROLES}")
            if p["key"] not in ("+", "-"):
                raise ProbeSetError(f"{source}: probe {p['id']}: key must be '+' or '-'")
            probes.append(Probe(p["id"], p["subscale"], p["side"], p["key"], p["text"].strip()))
        for side in ROLES:
            for sub in SUBSCALES:
                if not any(p.side == side and p.subscale == sub and p.key == "+" for p in probes):
                    raise ProbeSetError(f"{source}: no positive probe for {sub}/{side}")
        if len({p.id for p in probes}) != len(probes):
            raise ProbeSetError(f"{source}: probe ids are not unique")
        return cls(str(doc.get("name", "probes")), str(doc.get("version", "0")), tuple(probes), source)

    def for_side(self, side: str) -> list[Probe]:
        return [p for p in self.probes if p.side == side]


def load_background(path: str | Path | None = None) -> list[str]:
    text, _ = read_data_text(path, "probes", DEFAULT_BACKGROUND, ProbeSetError, "calibration background")
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    if len(lines) < 20:
        raise ProbeSetError("the calibration background needs at least 20 turns")
    return lines


def background_stats(background: np.ndarray, probes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and SD of each probe's cosine over the neutral background turns (unit vectors): a turn's similarity
    to a probe is read as ``(cosine - mean) / sd``. The SD is floored so a probe the background never varies on
    cannot blow the scale up."""
    sims = background @ probes.T
    return sims.mean(axis=0), np.maximum(sims.std(axis=0), 1e-3)


def context_vectors(emb: np.ndarray, session_codes: np.ndarray, k: int, decay: float = 0.5) -> np.ndarray:
    """Each turn's vector plus its preceding ``k`` turns in the same session, weighted ``decay**distance``."""
    if k <= 0:
        return emb
    out = emb.astype(np.float64).copy()
    for d in range(1, k + 1):
        prev = np.zeros_like(out)
        prev[d:] = emb[:-d]
        same = np.zeros(len(emb), dtype=bool)
        same[d:] = session_codes[d:] == session_codes[:-d]
        out += (decay**d) * prev * same[:, None]
    return normalise_rows(out)


class AllianceLens(Lens):
    """Calibrated similarity of every turn to the goal, task and bond probes of its speaker's side."""

    name: ClassVar[str] = "alliance"
    version: ClassVar[str] = "1.0.0"
    citation: ClassVar[str] = (
        "Bordin 1979 (goal, task, bond); Horvath & Greenberg 1989 (WAI); Li et al. 2024, COMPASS "
        "(probe similarity on therapy transcripts)"
    )
    needs_encoder: ClassVar[bool] = True

    def __init__(self, probes: str | Path | None = None, background: str | Path | None = None,
                 context: int = 0, calibrate: bool = True):
        self.probe_set = ProbeSet.load(probes)
        self.background = load_background(background)
        self.context = int(context)
        self.calibrate = calibrate
        self._probe_cache: dict[str, tuple[dict[str, np.ndarray], dict[str, np.ndarray], dict[str, np.ndarray]]] = {}

    # probe vectors and their background statistics, per encoder ------------------------------------------
    def _probe_stats(self, encoder: Encoder) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], dict[str, np.ndarray]]:
        mid = encoder.model_id
        if mid not in self._probe_cache:
            bg = encoder.encode(self.background)
            vecs, mu, sd = {}, {}, {}
            for side in ROLES:
                pv = encoder.encode([p.text for p in self.probe_set.for_side(side)])
                vecs[side] = pv
                mu[side], sd[side] = (background_stats(bg, pv) if self.calibrate
                                      else (np.zeros(pv.shape[0]), np.ones(pv.shape[0])))
            self._probe_cache[mid] = (vecs, mu, sd)
        return self._probe_cache[mid]

    def slot_names(self, side: str) -> list[str]:
        """Column names for the per-probe similarities, by slot (subscale, key, rank) shared by both sides."""
        names, counters = [], {}
        for p in self.probe_set.for_side(side):
            k = (p.subscale, p.key)
            counters[k] = counters.get(k, 0) + 1
            names.append(f"alliance_sim_{p.subscale}_{'p' if p.key == '+' else 'r'}{counters[k]:02d}")
        return names

    def score(self, corpus: Corpus, ctx: LensContext) -> pd.DataFrame:
        t = corpus.turns
        emb = ctx.embeddings()
        codes = pd.factorize(pd.MultiIndex.from_frame(t[SESSION_KEY]))[0]
        emb = context_vectors(emb, codes, self.context)
        vecs, mu, sd = self._probe_stats(ctx.encoder)
        out = pd.DataFrame(index=t.index)
        for side in ROLES:
            rows = np.flatnonzero((t["speaker"] == side).to_numpy())
            if len(rows) == 0:
                continue
            z = (emb[rows] @ vecs[side].T - mu[side]) / sd[side]
            for j, col in enumerate(self.slot_names(side)):
                if col not in out:
                    out[col] = np.nan
                out.iloc[rows, out.columns.get_loc(col)] = z[:, j]
            probes = self.probe_set.for_side(side)
            for sub in SUBSCALES:
                pos = [j for j, p in enumerate(probes) if p.subscale == sub and p.key == "+"]
                rev = [j for j, p in enumerate(probes) if p.subscale == sub and p.key == "-"]
                val = z[:, pos].mean(axis=1) - (z[:, rev].mean(axis=1) if rev else 0.0)
                col = f"alliance_{sub}"
                if col not in out:
                    out[col] = np.nan
                out.iloc[rows, out.columns.get_loc(col)] = val
        lead = [f"alliance_{s}" for s in SUBSCALES if f"alliance_{s}" in out]
        return out[lead + [c for c in out.columns if c not in lead]]

    def summarize(self, corpus: Corpus, turn_scores: pd.DataFrame, ctx: LensContext) -> pd.DataFrame:
        t = corpus.turns
        pos = relative_position(t["turn_index"], pd.factorize(pd.MultiIndex.from_frame(t[SESSION_KEY]))[0])
        parts = []
        for side in ROLES:
            vals = pd.DataFrame({f"alliance_{side}_{s}": turn_scores[f"alliance_{s}"].where(t["speaker"] == side)
                                 for s in SUBSCALES if f"alliance_{s}" in turn_scores})
            parts.append(summarise_series(vals, pos, t[SESSION_KEY]))
        res = pd.concat(parts, axis=1)
        for s in SUBSCALES:
            for suffix in ("mean", "first", "last"):
                res[f"alliance_gap_{s}_{suffix}"] = (res[f"alliance_client_{s}_{suffix}"]
                                                     - res[f"alliance_counsellor_{s}_{suffix}"])
            change = res[f"alliance_gap_{s}_last"].abs() - res[f"alliance_gap_{s}_first"].abs()
            res[f"alliance_gap_{s}_trend"] = np.select(
                [change < -GAP_TREND_MARGIN, change > GAP_TREND_MARGIN, change.notna()],
                ["narrowing", "widening", "stable"], default="unknown")
        return res

    @classmethod
    def report_section(cls, turns: pd.DataFrame, session: pd.Series, prefix: str) -> ReportSection | None:
        if "alliance_goal" not in turns:
            return None
        from alliance.report import charts

        specs = {f"{prefix}-timeline": charts.alliance_timeline(turns), f"{prefix}-gap": charts.gap_bars(session)}
        body = (f"<div class=row><div data-spec='{prefix}-timeline'></div><div data-spec='{prefix}-gap'></div></div>"
                + _alliance_table(session))
        return ReportSection("Alliance probe similarity (goal, task, bond) per side, and the gap", body, specs)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "probe_set": {"name": self.probe_set.name, "version": self.probe_set.version,
                                                    "source": self.probe_set.source,
                                                    "n_probes": len(self.probe_set.probes)},
                "background_turns": len(self.background), "context": self.context, "calibrate": self.calibrate,
                "gap_trend_margin": GAP_TREND_MARGIN}


def _alliance_table(row: pd.Series) -> str:
    from alliance.report.html import fmt

    head = "<tr><th class=l>side</th>" + "".join(
        f"<th>{s}: mean</th><th>slope</th><th>first</th><th>last</th>" for s in ("goal", "task", "bond")) + "</tr>"
    body = ""
    for side in ("client", "counsellor"):
        cells = "".join(
            f"<td>{fmt(row.get(f'alliance_{side}_{s}_{x}'))}</td>"
            for s in ("goal", "task", "bond") for x in ("mean", "slope", "first", "last"))
        body += f"<tr><td class=l>{side}</td>{cells}</tr>"
    gap = "".join(
        f"<td>{fmt(row.get(f'alliance_gap_{s}_mean'))}</td><td class=l colspan=3>"
        f"{fmt(row.get(f'alliance_gap_{s}_first'))} → {fmt(row.get(f'alliance_gap_{s}_last'))} "
        f"<span class=tag>{fmt(row.get(f'alliance_gap_{s}_trend'))}</span></td>" for s in ("goal", "task", "bond"))
    body += f"<tr><td class=l>gap (client − counsellor)</td>{gap}</tr>"
    return f"<table>{head}{body}</table>"
