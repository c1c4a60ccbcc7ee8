"""Where the relationship is going within a session: level, slope, reliable change, ruptures and repairs, gap trend.

Evidence: reliable change (Jacobson & Truax 1991) from split-half reliabilities stored with each measure; ruptures
and repairs after Safran & Muran's (2000) model (a drop in the client's bond against their own baseline, or
withdrawal: minimal replies, shrinking turns, slow replies), whose repair predicts outcome (Eubanks et al. 2018).

Measures are whatever earlier lenses give: the alliance lens's goal, task and bond per side, a per-reply empathy
score, and always the client's words per turn (log). Each measure's reliability and SD come from a versioned file
estimated on a corpus (``data/trajectory/reliability_v1.json``; see ``estimate_reliability``), never from the run
at hand, so a session's class does not depend on which other sessions were analysed with it.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from alliance.corpus import Corpus, session_codes, word_counts
from alliance.data import load_json_data
from alliance.lenses.base import Lens, LensContext, ReportSection, session_index
from alliance.trajectory import (
    RCI_CRITICAL,
    change_class,
    relative_position,
    reliable_change,
    slope_with_se,
    split_half_reliability,
)

DEFAULT_RELIABILITY = "reliability_v1.json"
SUBSCALES = ("goal", "task", "bond")
#: measure name -> (turn column, side whose turns carry it). Missing columns are skipped.
MEASURES: dict[str, tuple[str, str]] = {
    **{f"client_{s}": (f"alliance_{s}", "client") for s in SUBSCALES},
    **{f"counsellor_{s}": (f"alliance_{s}", "counsellor") for s in SUBSCALES},
    "empathy": ("empathy_total", "counsellor"),
    "client_words": ("_client_log_words", "client"),
}
#: Rolling baseline: the client's previous this-many turns (at least MIN_BASELINE of them).
BASELINE_TURNS = 5
MIN_BASELINE = 3
#: A bond drop is a rupture when it falls this many within-session SDs below the rolling baseline.
DROP_SDS = 1.5
#: Withdrawal: a reply of at most MINIMAL_WORDS words after a baseline of at least ENGAGED_WORDS (median), or a
#: reply taking LATENCY_FACTOR times the baseline's median latency and at least MIN_LATENCY_S seconds.
MINIMAL_WORDS = 3
ENGAGED_WORDS = 8
LATENCY_FACTOR = 3.0
MIN_LATENCY_S = 60.0
#: A rupture is repaired if the client is back at or above the baseline within this many client turns.
REPAIR_TURNS = 4
#: Kinds of marked client turns (ruptures lens, ``ruptures_kind``) that count as ruptures.
MARKER_RUPTURES = ("confrontation", "withdrawal")
#: Columns the markers lens may provide; used instead of the fallbacks when present.
MARKER_MINIMAL = ("markers_minimal_response", "markers_minimal")
MARKER_LATENCY = ("markers_latency_s", "markers_latency")


def load_reliability(path: str | Path | None = None) -> dict[str, Any]:
    doc, source = load_json_data(path, "trajectory", DEFAULT_RELIABILITY, ValueError, "reliability file")
    if not isinstance(doc.get("measures"), dict):
        raise ValueError(f"{source}: field 'measures' missing or not an object")
    return {**doc, "source": source}


def measure_series(turns: pd.DataFrame) -> pd.DataFrame:
    """Each measure as a column aligned to ``turns`` (NaN on the other side's turns)."""
    t = turns
    extra = pd.DataFrame({"_client_log_words": np.log1p(word_counts(t["text"]))},
                         index=t.index)
    out = {}
    for name, (col, side) in MEASURES.items():
        src = extra[col] if col in extra else t.get(col)
        if src is None:
            continue
        out[name] = pd.to_numeric(src, errors="coerce").where(t["speaker"] == side)
    return pd.DataFrame(out, index=t.index)


def _thirds(pos: np.ndarray) -> np.ndarray:
    return np.where(pos <= 1 / 3, 0, np.where(pos >= 2 / 3, 2, 1))


def estimate_reliability(turns: pd.DataFrame, corpus_name: str) -> dict[str, Any]:
    """Per measure: split-half reliability and between-session SD of (a) a third-of-session mean and (b) a whole
    session mean, plus the within-session SD of single turns. Write the result with ``json.dump`` to make a
    reliability file for this lens."""
    series = measure_series(turns)
    sess = session_codes(turns)[0]
    pos = relative_position(turns["turn_index"], sess).to_numpy()
    part = sess * 3 + _thirds(pos)
    out = {}
    for name in series.columns:
        v = series[name]
        p = split_half_reliability(v, part)
        s = split_half_reliability(v, sess)
        within = v.groupby(sess).std().median()
        out[name] = {"part_reliability": p["reliability"], "part_sd": p["sd"], "session_reliability": s["reliability"],
                     "session_sd": s["sd"], "turn_sd_within_session": float(within), "n_sessions": s["n_groups"]}
    return {"name": "trajectory-reliability", "version": "1", "corpus": corpus_name,
            "method": "split-half (odd/even turns) within session or session third, Spearman-Brown corrected",
            "measures": out}


class TrajectoryLens(Lens):
    """Per session and measure: level, slope with a 95% interval, reliable change first-to-last third; ruptures
    and repairs with their turns; client-vs-counsellor gap trend per subscale."""

    name: ClassVar[str] = "trajectory"
    version: ClassVar[str] = "1.1.0"
    after: ClassVar[tuple[str, ...]] = ("alliance", "empathy", "markers", "ruptures")
    citation: ClassVar[str] = ("Jacobson & Truax 1991 (reliable change index); Safran & Muran 2000 (rupture and "
                               "repair); Eubanks, Muran & Safran 2018 (rupture-repair meta-analysis)")

    def __init__(self, reliability: str | Path | None = None, repair_turns: int = REPAIR_TURNS,
                 drop_sds: float = DROP_SDS):
        self.reliability = load_reliability(reliability)
        self.repair_turns = int(repair_turns)
        self.drop_sds = float(drop_sds)

    # per turn: ruptures and repairs ------------------------------------------------------------------------
    def score(self, corpus: Corpus, ctx: LensContext) -> pd.DataFrame:
        t = corpus.turns
        cols = pd.concat([t, ctx.turn_scores], axis=1)
        words = word_counts(t["text"])
        minimal = next((cols[c].astype(float).to_numpy() > 0 for c in MARKER_MINIMAL if c in cols), words <= MINIMAL_WORDS)
        latency_col = next((c for c in MARKER_LATENCY if c in cols), None)
        if latency_col is not None:
            latency = pd.to_numeric(cols[latency_col], errors="coerce").to_numpy(dtype=float)
        else:
            ts = pd.to_datetime(t["timestamp"], utc=True)
            same = (t["session_id"] == t["session_id"].shift()) & (t["course_id"] == t["course_id"].shift())
            latency = ts.diff().dt.total_seconds().where(same).to_numpy(dtype=float)
        bond = pd.to_numeric(cols["alliance_bond"], errors="coerce").to_numpy(dtype=float) if "alliance_bond" in cols \
            else np.full(len(t), np.nan)
        bond_sd = self.reliability["measures"].get("client_bond", {}).get("turn_sd_within_session", np.nan)
        # a strong confrontation or withdrawal marker in the client's words (ruptures lens) is a rupture too
        marker = (cols["ruptures_kind"].astype(str).to_numpy() if "ruptures_kind" in cols
                  else np.array([""] * len(t), dtype=object))
        kind = np.array([""] * len(t), dtype=object)
        repaired_at = np.full(len(t), np.nan)
        baseline_bond = np.full(len(t), np.nan)
        is_client = (t["speaker"] == "client").to_numpy()
        tidx = t["turn_index"].to_numpy()
        codes = session_codes(t)[0]
        # every client turn's baseline (its session's previous BASELINE_TURNS client turns) for all sessions at once:
        # client rows by session, in turn order, and a window of the rows before each (NaN-padded at the start)
        rows = np.flatnonzero(is_client)
        rows = rows[np.argsort(codes[rows], kind="stable")]
        rc = codes[rows]
        j = pd.Series(rc).groupby(rc, sort=False).cumcount().to_numpy()
        back = np.arange(BASELINE_TURNS, 0, -1)
        window = np.arange(len(rows))[:, None] - back[None, :]
        in_window = back[None, :] <= j[:, None]
        window = np.where(in_window, window, 0)

        def windowed(values: np.ndarray) -> np.ndarray:
            v = values[rows][window] if len(rows) else np.empty((0, BASELINE_TURNS))
            return np.where(in_window, v, np.nan)

        based = j >= MIN_BASELINE
        with warnings.catch_warnings():  # windows without a finite value give NaN, as meant
            warnings.simplefilter("ignore", RuntimeWarning)
            base_bonds = np.where(based, np.nanmean(windowed(bond), axis=1), np.nan)
            base_words = np.where(based, np.nanmedian(windowed(words.astype(float)), axis=1), np.nan)
            base_lats = np.where(based, np.nanmedian(windowed(latency), axis=1), np.nan)
        # where each client row's session starts and ends among ``rows``
        start = np.flatnonzero(np.r_[True, rc[1:] != rc[:-1]]) if len(rc) else np.array([], dtype=int)
        # no client turn yet (a live session's first counsellor turn): no session bounds either
        end = np.r_[start[1:], len(rc)] if len(rc) else np.array([], dtype=int)
        start, end = np.repeat(start, end - start), np.repeat(end, end - start)
        sds: dict[int, float] = {}
        for k, r in enumerate(rows):
            marked = marker[r] in MARKER_RUPTURES
            if not based[k] and not marked:  # a marker needs no baseline; a drop does
                continue
            if start[k] not in sds:
                own = rows[start[k]:end[k]]
                sds[start[k]] = bond_sd if np.isfinite(bond_sd) else (
                    np.nanstd(bond[own]) if np.isfinite(bond[own]).sum() > 1 else np.nan)
            sd = sds[start[k]]
            base_b, base_w, base_l = base_bonds[k], base_words[k], base_lats[k]
            baseline_bond[r] = base_b
            why = []
            if np.isfinite(base_b) and np.isfinite(bond[r]) and sd > 0 and bond[r] < base_b - self.drop_sds * sd:
                why.append("bond drop")
            if minimal[r] and base_w >= ENGAGED_WORDS:
                why.append("minimal reply")
            if (np.isfinite(base_l) and np.isfinite(latency[r]) and latency[r] >= MIN_LATENCY_S
                    and latency[r] > LATENCY_FACTOR * max(base_l, 1.0)):
                why.append("slow reply")
            if marked:
                why.append(f"{marker[r]} marker")
            if not why:
                continue
            kind[r] = "+".join(why)
            for r2 in rows[k + 1:min(k + 1 + self.repair_turns, end[k])]:
                back_bond = "bond drop" not in why or (np.isfinite(bond[r2]) and bond[r2] >= base_b)
                back_words = "minimal reply" not in why or (not minimal[r2] and words[r2] >= 0.5 * base_w)
                back_fast = "slow reply" not in why or not (np.isfinite(latency[r2])
                                                             and latency[r2] > LATENCY_FACTOR * max(base_l, 1.0))
                back_marker = not marked or marker[r2] not in MARKER_RUPTURES
                if back_bond and back_words and back_fast and back_marker:
                    repaired_at[r] = tidx[r2]
                    break
        return pd.DataFrame({"trajectory_rupture": kind != "", "trajectory_rupture_kind": kind.astype(str),
                             "trajectory_repaired_at": repaired_at, "trajectory_client_bond_baseline": baseline_bond},
                            index=t.index)

    # per session ----------------------------------------------------------------------------------------
    def summarize(self, corpus: Corpus, turn_scores: pd.DataFrame, ctx: LensContext) -> pd.DataFrame:
        t = pd.concat([corpus.turns, ctx.turn_scores.drop(columns=turn_scores.columns, errors="ignore"), turn_scores],
                      axis=1)
        series = measure_series(t)
        codes = session_codes(t)[0]
        pos = relative_position(t["turn_index"], codes).to_numpy()
        third = _thirds(pos)
        stats = self.reliability["measures"]
        rows = []
        for code in range(codes.max() + 1 if len(codes) else 0):
            m = codes == code
            row: dict[str, Any] = {}
            for name in series.columns:
                y = series[name].to_numpy(dtype=float)[m]
                ok = np.isfinite(y)
                b, se = slope_with_se(pos[m], y)
                first = y[ok & (third[m] == 0)]
                last = y[ok & (third[m] == 2)]
                diff = float(last.mean() - first.mean()) if len(first) and len(last) else np.nan
                st = stats.get(name, {})
                rci = float(reliable_change(diff, st.get("part_sd", np.nan), st.get("part_reliability", np.nan)))
                row.update({f"trajectory_{name}_level": float(y[ok].mean()) if ok.any() else np.nan,
                            f"trajectory_{name}_slope": b, f"trajectory_{name}_slope_lo": b - 1.96 * se,
                            f"trajectory_{name}_slope_hi": b + 1.96 * se, f"trajectory_{name}_first": (
                                float(first.mean()) if len(first) else np.nan),
                            f"trajectory_{name}_last": float(last.mean()) if len(last) else np.nan,
                            f"trajectory_{name}_change": diff, f"trajectory_{name}_rci": rci,
                            f"trajectory_{name}_class": str(change_class(rci))})
            row.update(self._gap_trends(row, stats))
            rup = turn_scores["trajectory_rupture"].to_numpy()[m]
            rep = turn_scores["trajectory_repaired_at"].to_numpy(dtype=float)[m]
            ti = t["turn_index"].to_numpy()[m]
            row["trajectory_n_ruptures"] = int(rup.sum())
            row["trajectory_n_repaired"] = int((rup & np.isfinite(rep)).sum())
            row["trajectory_repair_share"] = row["trajectory_n_repaired"] / rup.sum() if rup.sum() else np.nan
            row["trajectory_rupture_turns"] = ",".join(str(int(x)) for x in ti[rup])
            row["trajectory_unrepaired_turns"] = ",".join(str(int(x)) for x in ti[rup & ~np.isfinite(rep)])
            row["trajectory_flags"] = "; ".join(self._flags(row))
            rows.append(row)
        res = pd.DataFrame(rows, index=session_index(corpus)[: len(rows)])
        return res

    @staticmethod
    def _gap_trends(row: dict[str, Any], stats: dict[str, Any]) -> dict[str, Any]:
        """Client-minus-counsellor gap per subscale, first vs last third; narrowing or widening only when the
        change in |gap| exceeds what the two sides' measurement error allows (RCI on a difference score)."""
        out: dict[str, Any] = {}
        for s in SUBSCALES:
            c, k = f"client_{s}", f"counsellor_{s}"
            if f"trajectory_{c}_first" not in row or f"trajectory_{k}_first" not in row:
                continue
            g0 = row[f"trajectory_{c}_first"] - row[f"trajectory_{k}_first"]
            g1 = row[f"trajectory_{c}_last"] - row[f"trajectory_{k}_last"]
            sc, sk = stats.get(c, {}), stats.get(k, {})
            err = (sc.get("part_sd", np.nan) ** 2 * (1 - sc.get("part_reliability", np.nan))
                   + sk.get("part_sd", np.nan) ** 2 * (1 - sk.get("part_reliability", np.nan)))
            z = (abs(g1) - abs(g0)) / (np.sqrt(2 * err) if err > 0 else np.nan)
            out[f"trajectory_gap_{s}_first"], out[f"trajectory_gap_{s}_last"], out[f"trajectory_gap_{s}_z"] = g0, g1, z
            out[f"trajectory_gap_{s}_trend"] = ("unknown" if not np.isfinite(z) else "narrowing" if z <= -RCI_CRITICAL
                                                else "widening" if z >= RCI_CRITICAL else "stable")
        return out

    @staticmethod
    def _flags(row: dict[str, Any]) -> list[str]:
        flags = []
        for name in ("client_bond", "client_task", "client_goal", "empathy"):
            if row.get(f"trajectory_{name}_class") == "declining":
                flags.append(f"{name.replace('_', ' ')} declining (RCI {row[f'trajectory_{name}_rci']:.1f})")
        if row.get("trajectory_client_words_class") == "declining":
            flags.append("client replies shrinking")
        if row.get("trajectory_unrepaired_turns"):
            flags.append(f"unrepaired rupture at turn(s) {row['trajectory_unrepaired_turns']}")
        for s in SUBSCALES:
            if row.get(f"trajectory_gap_{s}_trend") == "widening":
                flags.append(f"{s} perception gap widening")
        return flags

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "reliability": {k: self.reliability.get(k) for k in ("source", "version",
                                                                                            "corpus", "method")},
                "rci_critical": RCI_CRITICAL, "baseline_turns": BASELINE_TURNS, "drop_sds": self.drop_sds,
                "minimal_words": MINIMAL_WORDS, "engaged_words": ENGAGED_WORDS, "latency_factor": LATENCY_FACTOR,
                "repair_turns": self.repair_turns}

    @classmethod
    def report_section(cls, turns: pd.DataFrame, session: pd.Series, prefix: str) -> ReportSection | None:
        if "trajectory_rupture" not in turns:
            return None
        from alliance.report import charts
        from alliance.report.html import fmt

        names = [n for n in MEASURES if f"trajectory_{n}_class" in session.index and pd.notna(
            session.get(f"trajectory_{n}_level"))]
        head = ("<tr><th class=l>measure</th><th>level</th><th>slope [95% CI]</th><th>first third</th>"
                "<th>last third</th><th>RCI</th><th class=l>change</th></tr>")
        body = "".join(
            f"<tr><td class=l>{n.replace('_', ' ')}</td><td>{fmt(session.get(f'trajectory_{n}_level'))}</td>"
            f"<td>{fmt(session.get(f'trajectory_{n}_slope'))} [{fmt(session.get(f'trajectory_{n}_slope_lo'))}, "
            f"{fmt(session.get(f'trajectory_{n}_slope_hi'))}]</td><td>{fmt(session.get(f'trajectory_{n}_first'))}</td>"
            f"<td>{fmt(session.get(f'trajectory_{n}_last'))}</td><td>{fmt(session.get(f'trajectory_{n}_rci'))}</td>"
            f"<td class=l><span class='tag {session.get(f'trajectory_{n}_class')}'>"
            f"{fmt(session.get(f'trajectory_{n}_class'))}</span></td></tr>" for n in names)
        gaps = " · ".join(f"{s}: {fmt(session.get(f'trajectory_gap_{s}_first'))} → "
                          f"{fmt(session.get(f'trajectory_gap_{s}_last'))} <span class=tag>"
                          f"{fmt(session.get(f'trajectory_gap_{s}_trend'))}</span>"
                          for s in SUBSCALES if f"trajectory_gap_{s}_trend" in session.index)
        ruptures = turns[turns["trajectory_rupture"].astype(bool)]
        items = "".join(
            f"<li>turn {int(r.turn_index)}: {fmt(r.trajectory_rupture_kind)} — "
            + (f"repaired at turn {int(r.trajectory_repaired_at)}" if np.isfinite(r.trajectory_repaired_at)
               else "<b>not repaired</b>") + "</li>" for r in ruptures.itertuples())
        flags = session.get("trajectory_flags")
        specs = {f"{prefix}-timeline": charts.rupture_timeline(turns)}
        html = (f"<div data-spec='{prefix}-timeline'></div>"
                + (f"<p><b>Flags:</b> {fmt(flags)}</p>" if isinstance(flags, str) and flags else "")
                + f"<table>{head}{body}</table>"
                + (f"<p>Perception gap (client − counsellor), first → last third: {gaps}</p>" if gaps else "")
                + (f"<p>Ruptures and repairs:</p><ul>{items}</ul>" if items else "<p>No ruptures detected.</p>"))
        return ReportSection("Trajectory: reliable change, ruptures and repairs, gap trend", html, specs)
