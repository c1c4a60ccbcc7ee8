"""Rupture markers in each side's own words: the client's confrontation and withdrawal, the counsellor's repair.

Evidence: the marker families of the Rupture Resolution Rating System (3RS; Eubanks, Muran & Safran 2015), after
Safran & Muran's (2000) model of alliance ruptures, matched by a turn's similarity to probe statements written for
each family and expressed as a z-score against a neutral background (as the alliance lens does).

Why similarity and session maxima: a rupture is a few turns, not a level, so a session's mean would drown it; the
strongest match in the session and in its last third (where an unrepaired strain shows) are kept per family. A
turn counts as *marked* only when its match is very strong (``MARK_Z``), because sentence similarity reads topic
and tone as well as the speech act: the continuous scores are the measure, the marks are pointers for a reader.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from alliance.corpus import SESSION_KEY, Corpus
from alliance.data import load_json_data
from alliance.encoders.base import Encoder, encode_groups
from alliance.lenses.alliance_probes import background_stats, load_background
from alliance.lenses.base import Lens, LensContext, ReportSection, session_index
from alliance.trajectory import relative_position

DEFAULT_PROBES = "rupture_probes_v1.json"
KINDS: dict[str, str] = {"confrontation": "client", "withdrawal": "client", "repair": "counsellor"}
#: A turn is marked when its best family match is at least this many background SDs above the background mean:
#: about the strongest 0.5% of client turns in KokoroChat (a property of the similarity distribution, set
#: without labels), where most matches read as the marker on inspection.
MARK_Z = 7.0


class RuptureProbeError(ValueError):
    pass


@dataclass(frozen=True)
class MarkerFamily:
    id: str
    side: str
    kind: str
    description: str
    probes: tuple[str, ...]


def load_families(path: str | Path | None = None) -> tuple[list[MarkerFamily], str, str]:
    """``(families, version, source)`` of the shipped rupture probe bank or a user's file of the same shape."""
    doc, source = load_json_data(path, "probes", DEFAULT_PROBES, RuptureProbeError, "rupture probe bank")
    fams = doc.get("families") if isinstance(doc, dict) else None
    if not isinstance(fams, list) or not fams:
        raise RuptureProbeError(f"{source}: no 'families' list")
    out = []
    for i, f in enumerate(fams):
        where = f"{source}: family {i} ({f.get('id', '?') if isinstance(f, dict) else '?'})"
        if not isinstance(f, dict):
            raise RuptureProbeError(f"{where}: not an object")
        fid = f.get("id")
        if not isinstance(fid, str) or not fid.isidentifier():
            raise RuptureProbeError(f"{where}: 'id' must be a name of letters, digits and underscores")
        if f.get("kind") not in KINDS:
            raise RuptureProbeError(f"{where}: 'kind' must be one of {list(KINDS)}")
        if f.get("side") != KINDS[f["kind"]]:
            raise RuptureProbeError(f"{where}: a {f['kind']} family is read on the {KINDS[f['kind']]}'s turns, "
                                    f"not {f.get('side')!r}")
        probes = f.get("probes")
        if not isinstance(probes, list) or not probes or not all(isinstance(p, str) and p.strip() for p in probes):
            raise RuptureProbeError(f"{where}: 'probes' must be a non-empty list of statements")
        out.append(MarkerFamily(fid, f["side"], f["kind"], str(f.get("description", "")),
                                tuple(p.strip() for p in probes)))
    if len({f.id for f in out}) != len(out):
        raise RuptureProbeError(f"{source}: family ids are not unique")
    return out, str(doc.get("version", "0")), source


class RuptureMarkersLens(Lens):
    """Per turn: the strongest confrontation, withdrawal (client) or repair (counsellor) match and any strong
    marker. Per session and family: the strongest match overall and in the last third; marked turns per kind."""

    name: ClassVar[str] = "ruptures"
    version: ClassVar[str] = "1.0.0"
    citation: ClassVar[str] = ("Eubanks, Muran & Safran 2015 (Rupture Resolution Rating System, 3RS); Safran & "
                               "Muran 2000 (confrontation and withdrawal ruptures); Eubanks, Muran & Safran 2018 "
                               "(rupture repair and outcome)")
    needs_encoder: ClassVar[bool] = True

    def __init__(self, probes: str | Path | None = None, background: str | Path | None = None,
                 mark_z: float = MARK_Z):
        self.families, self.probes_version, self.probes_source = load_families(probes)
        self.background = load_background(background)
        self.mark_z = float(mark_z)
        self._stats: dict[str, list[tuple[np.ndarray, np.ndarray, np.ndarray]]] = {}

    def _family_stats(self, encoder: Encoder) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Per family: probe vectors and their similarity mean and SD over the neutral background."""
        mid = encoder.model_id
        if mid not in self._stats:
            vecs = encode_groups(encoder, {"background": list(self.background),
                                           **{i: list(f.probes) for i, f in enumerate(self.families)}})
            bg = vecs["background"]
            stats = []
            for i in range(len(self.families)):
                pv = vecs[i]
                stats.append((pv, *background_stats(bg, pv)))
            self._stats[mid] = stats
        return self._stats[mid]

    def score(self, corpus: Corpus, ctx: LensContext) -> pd.DataFrame:
        t = corpus.turns
        emb = ctx.embeddings()
        speaker = t["speaker"].to_numpy()
        fam_z = np.full((len(t), len(self.families)), np.nan)
        for j, (f, (pv, mu, sd)) in enumerate(zip(self.families, self._family_stats(ctx.encoder), strict=True)):
            rows = np.flatnonzero(speaker == f.side)
            if len(rows):
                fam_z[rows, j] = ((emb[rows] @ pv.T - mu) / sd).max(axis=1)
        out = pd.DataFrame(index=t.index)
        for kind in KINDS:
            cols = [j for j, f in enumerate(self.families) if f.kind == kind]
            # fmax skips NaN (the other side's turns) without warning on all-NaN rows
            out[f"ruptures_{kind}"] = np.fmax.reduce(fam_z[:, cols], axis=1) if cols else np.nan
        best = np.where(np.isfinite(fam_z), fam_z, -np.inf)
        top = best.argmax(axis=1) if len(self.families) else np.zeros(len(t), dtype=int)
        strong = best.max(axis=1, initial=-np.inf) >= self.mark_z
        names = np.array([f.id for f in self.families], dtype=object)
        kinds = np.array([f.kind for f in self.families], dtype=object)
        out["ruptures_marker"] = np.where(strong, names[top] if len(names) else "", "").astype(str)
        out["ruptures_kind"] = np.where(strong, kinds[top] if len(kinds) else "", "").astype(str)
        for j, f in enumerate(self.families):
            out[f"ruptures_z_{f.id}"] = fam_z[:, j]
        return out

    def summarize(self, corpus: Corpus, turn_scores: pd.DataFrame, ctx: LensContext) -> pd.DataFrame:
        t = corpus.turns
        codes = pd.factorize(pd.MultiIndex.from_frame(t[SESSION_KEY]))[0]
        pos = relative_position(t["turn_index"], codes).to_numpy()
        kind_of = {f.id: f.kind for f in self.families}
        marker = turn_scores["ruptures_marker"].to_numpy()
        tidx = t["turn_index"].to_numpy()
        fam_z = {f.id: turn_scores[f"ruptures_z_{f.id}"].to_numpy(dtype=float) for f in self.families}
        rows = []
        for code in range(codes.max() + 1 if len(codes) else 0):
            m = codes == code
            last = m & (pos >= 2 / 3)
            row: dict[str, Any] = {}
            for f in self.families:
                zm, zl = fam_z[f.id][m], fam_z[f.id][last]
                row[f"ruptures_{f.id}_max"] = float(np.nanmax(zm)) if np.isfinite(zm).any() else np.nan
                row[f"ruptures_{f.id}_last"] = float(np.nanmax(zl)) if np.isfinite(zl).any() else np.nan
            marked = [(int(i), str(k)) for i, k in zip(tidx[m], marker[m], strict=True) if k]
            for kind in KINDS:
                row[f"ruptures_n_{kind}"] = sum(kind_of[k] == kind for _, k in marked)
            row["ruptures_marked_turns"] = ", ".join(f"{i}:{k}" for i, k in marked)
            rows.append(row)
        return pd.DataFrame(rows, index=session_index(corpus)[: len(rows)])

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "probes": {"version": self.probes_version, "source": self.probes_source,
                                                 "families": {f.id: f.kind for f in self.families}},
                "background_turns": len(self.background), "mark_z": self.mark_z}

    @classmethod
    def report_section(cls, turns: pd.DataFrame, session: pd.Series, prefix: str) -> ReportSection | None:
        if "ruptures_marker" not in turns:
            return None
        import html as _html

        from alliance.report.html import fmt

        fams = sorted(c[len("ruptures_"):-len("_max")] for c in session.index
                      if c.startswith("ruptures_") and c.endswith("_max"))
        body = "".join(f"<tr><td class=l>{f.replace('_', ' ')}</td><td>{fmt(session.get(f'ruptures_{f}_max'))}</td>"
                       f"<td>{fmt(session.get(f'ruptures_{f}_last'))}</td></tr>" for f in fams)
        table = ("<table><tr><th class=l>marker family</th><th>strongest match (z)</th><th>in the last third</th>"
                 f"</tr>{body}</table>")
        marked = turns[turns["ruptures_marker"].astype(str) != ""]
        items = "".join(f"<li>turn {int(r.turn_index)} ({_html.escape(str(r.speaker))}, "
                        f"{_html.escape(str(r.ruptures_marker).replace('_', ' '))}): "
                        f"{_html.escape(str(r.text)[:160])}</li>" for r in marked.itertuples())
        lst = f"<p>Strongly marked turns:</p><ul>{items}</ul>" if items else "<p>No strongly marked turns.</p>"
        return ReportSection("Rupture markers (3RS confrontation and withdrawal; counsellor repair)", table + lst)
