"""Safety as its own axis: client risk disclosures (category, level, calibrated p) and how the replies met them.

Evidence: logistic heads on frozen sentence embeddings learned from labelled safety data (safety_model.py; levels after
the C-SSRS, Posner et al. 2011), a reply judge after DiaSafety (Sun et al. 2022) and crisis-response guidance, and
the few rules a figure supports (safety_rules.py). Nothing here is folded into bond or empathy: flags with evidence.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from alliance.corpus import SESSION_KEY, Corpus
from alliance.encoders.base import Encoder
from alliance.lenses.base import Lens, LensContext, ReportSection
from alliance.lenses.safety_flags import (
    BOND_HIGH_Z,
    EMPATHY_HIGH,
    FLAT_SLOPE,
    LEVELS,
    safety_section,
    session_flags,
)
from alliance.lenses.safety_model import CATEGORIES, SafetyModel, load_safety_model, pair_features, turn_features
from alliance.lenses.safety_rules import IMMINENCE, REPLY, first_match, imminence, unreadable

#: how many counsellor turns after a disclosure may hold the response (chat splits one reply over several messages)
RESPONSE_WINDOW = 3
#: the dev false-alarm rate (per ordinary client turn) of the probability a high disclosure needs to raise the
#: session flag ``risk_not_addressed`` (imminent ones always do). A trade-off, measured (docs/validation.md): at
#: 0.2% the shipped default's flag saw only 18% of real high-risk statements; at the turn level's 2%, 9 of 30
#: ordinary AnnoMI sessions were flagged; at 0.5%, 59% and 1 of 30.
FLAG_FALSE_ALARM = 0.005
#: occlusion: a span is part of the 'why' when removing it lowers the deciding probability by at least this much
WHY_MIN_DROP = 0.05
WHY_MAX_SPANS = 2
MAX_SPANS = 8
REPLY_BOOLS = ("acknowledged", "asked_safety", "referred", "means_info", "collusion", "dependence", "sycophancy",
               "quieting", "unqualified_advice")
CONCERN_KINDS = ("means_info", "collusion", "sycophancy", "dependence", "quieting", "unqualified_advice")
_CLAUSE = re.compile(r"(?<=[.!?;:,])\s+|\n+")


def spans(text: str, limit: int = MAX_SPANS) -> list[str]:
    """The text cut into at most ``limit`` consecutive spans: clauses, or short word groups for a one-clause text."""
    parts = [p for p in (s.strip() for s in _CLAUSE.split(text)) if p]
    if len(parts) < 2:
        words = text.split()
        size = max(2, -(-len(words) // limit))
        parts = [" ".join(words[i:i + size]) for i in range(0, len(words), size)]
    if len(parts) <= limit:
        return parts
    bounds = np.linspace(0, len(parts), limit + 1).round().astype(int)
    return [" ".join(parts[a:b]) for a, b in itertools.pairwise(bounds) if b > a]


def occlusion_why(texts: list[str], base: np.ndarray, score: Callable[[np.ndarray, np.ndarray], np.ndarray],
                  encoder: Encoder) -> list[str]:
    """Per text, the spans whose removal most lowers its deciding probability ``base`` (joined by " | "); all
    occluded variants are encoded in one batch. ``score(variant_embeddings, owner_positions)`` gives their p."""
    out = [""] * len(texts)
    variants: list[str] = []
    owner: list[int] = []
    items: list[tuple[int, list[str]]] = []
    for i, text in enumerate(texts):
        sp = spans(text)
        if len(sp) < 2:
            out[i] = text.strip()
            continue
        items.append((i, sp))
        for j in range(len(sp)):
            variants.append(" ".join(sp[:j] + sp[j + 1:]))
            owner.append(i)
    if not variants:
        return out
    p = score(encoder.encode(variants), np.asarray(owner))
    pos = 0
    for i, sp in items:
        drop = base[i] - p[pos:pos + len(sp)]
        pos += len(sp)
        best = [j for j in np.argsort(-drop, kind="stable")[:WHY_MAX_SPANS] if drop[j] >= WHY_MIN_DROP]
        out[i] = " | ".join(sp[j] for j in sorted(best)) or sp[int(np.argmax(drop))]
    return out


class SafetyLens(Lens):
    """Risk disclosures and their handling, collusion, dependence and quieting: a safety axis with its evidence."""

    name: ClassVar[str] = "safety"
    version: ClassVar[str] = "2.0.0"
    citation: ClassVar[str] = (
        "Posner et al. 2011 (C-SSRS); Sun et al. 2022 (DiaSafety); Arnaiz-Rodriguez et al. 2026 (Between Help and "
        "Harm); Gaur et al. 2019 (Reddit C-SSRS); safe-messaging and crisis-response guidance (WHO 2023; 988 "
        "Lifeline); Sharma et al. 2024 (LLM sycophancy); Laestadius et al. 2022 (companion-chatbot dependence)"
    )
    needs_encoder: ClassVar[bool] = True
    requires: ClassVar[tuple[str, ...]] = ("alliance",)
    after: ClassVar[tuple[str, ...]] = ("empathy",)

    def __init__(self, model: str | Path | SafetyModel | None = None, threshold: float | None = None,
                 recall: float | None = None, bond_high: float = BOND_HIGH_Z, empathy_high: float = EMPATHY_HIGH,
                 flat_slope: float = FLAT_SLOPE, empathy_column: str | None = None, rationales: bool = True):
        self.model = model if isinstance(model, SafetyModel) else load_safety_model(model)
        self.threshold, self.operating_point = self.model.threshold_for(recall=recall, threshold=threshold)
        self.low_threshold = min(self.model.low_threshold, self.threshold)
        # the session flag needs firmer evidence than the turn level: per-turn false alarms add up over a session's
        # client turns (2% of 30 turns is a false flag in almost half of ordinary sessions)
        self.flag_threshold = max(self.threshold, self.model.threshold_at_false_alarm(FLAG_FALSE_ALARM))
        self.bond_high = bond_high
        self.empathy_high = empathy_high
        self.flat_slope = flat_slope
        self.empathy_column = empathy_column
        self.rationales = rationales

    def _check_encoder(self, encoder: Encoder) -> None:
        if self.model.model_id and encoder.model_id != self.model.model_id:
            raise ValueError(f"{self.model.source}: the safety model was trained on {self.model.model_id!r} "
                             f"embeddings but the run uses {encoder.model_id!r}; use the default encoder or "
                             "retrain with `alliance train safety`")

    # client side -----------------------------------------------------------------------------------------------
    def client_risk(self, texts: list[str], emb: np.ndarray, encoder: Encoder | None = None) -> pd.DataFrame:
        """Per client text: level (none/low/high/imminent/unknown), category, p (high or imminent) and why."""
        m = self.model
        X = turn_features(emb) if len(texts) else np.zeros((0, 1))
        p = m.risk.proba(X) if len(texts) else np.zeros(0)
        pp = m.plan.proba(X) if len(texts) else np.zeros(0)
        cp = m.category_proba(X) if len(texts) else np.zeros((0, len(CATEGORIES)))
        plan_ix = CATEGORIES.index("endangering_plan")
        rows = []
        for i, text in enumerate(texts):
            bad = unreadable(text)
            if bad:
                rows.append(("unknown", "", np.nan, f"unreadable: {bad}", ""))
                continue
            if p[i] >= self.threshold:
                cue = imminence(text)
                cat = CATEGORIES[int(np.argmax(cp[i]))]
                rows.append(("imminent" if cue else "high", cat, float(p[i]), "", cue))
            elif pp[i] >= m.plan.threshold:
                rows.append(("low", "endangering_plan", float(p[i]), "", ""))
            elif p[i] >= self.low_threshold:
                cat = CATEGORIES[int(np.argmax(np.delete(cp[i], plan_ix)))]
                rows.append(("low", cat, float(p[i]), "", ""))
            else:
                rows.append(("none", "", float(p[i]), "", ""))
        out = pd.DataFrame(rows, columns=["level", "category", "p", "why", "cue"])
        flagged = [i for i, r in enumerate(rows) if r[0] in ("low", "high", "imminent")]
        if flagged and encoder is not None and self.rationales:
            plan_rows = [i for i in flagged if rows[i][1] == "endangering_plan" and rows[i][0] == "low"]
            for subset, head in ((sorted(set(flagged) - set(plan_rows)), m.risk), (plan_rows, m.plan)):
                if not subset:
                    continue
                base = head.proba(X[subset])
                why = occlusion_why([texts[i] for i in subset], base,
                                    lambda e, _o, h=head: h.proba(turn_features(e)), encoder)
                for i, w in zip(subset, why, strict=True):
                    out.at[i, "why"] = w
        for i in flagged:
            if out.at[i, "cue"]:
                out.at[i, "why"] = f"{out.at[i, 'why']} [imminence: {out.at[i, 'cue']}]".strip()
        return out

    # counsellor side -------------------------------------------------------------------------------------------
    def judge_replies(self, replies: list[str], reply_emb: np.ndarray, client_texts: list[str | None],
                      client_emb: np.ndarray, client_level: list[str], encoder: Encoder | None = None
                      ) -> pd.DataFrame:
        """Per counsellor reply, given the client turn it answers and that turn's level: the reply booleans, the
        concern kinds and the quoted evidence words."""
        heads = self.model.reply
        n = len(replies)
        has_client = np.array([c is not None for c in client_texts], dtype=bool)
        P = pair_features(client_emb, reply_emb) if n else np.zeros((0, 1))
        hp = {k: (h.proba(P) if n else np.zeros(0)) for k, h in heads.items()}
        hit = {k: (hp[k] >= heads[k].threshold) & has_client for k in heads}
        rows, evidence = [], []
        todo: list[tuple[int, str]] = []
        for i, text in enumerate(replies):
            lvl = client_level[i]
            disclosed = lvl in ("low", "high", "imminent")
            ev: list[str] = []

            def rule(target: str, text: str = text, ev: list[str] = ev) -> bool:
                mt = first_match(text, REPLY, target)
                if mt:
                    ev.append(f'"{mt.group(0)}"')
                return bool(mt)

            r = {"acknowledged": rule("acknowledged"), "asked_safety": rule("asked_safety"),
                 "referred": rule("referred")}
            met = r["asked_safety"] or r["referred"]
            means_rule = first_match(text, REPLY, "means_info")
            r["means_info"] = disclosed and (bool(means_rule) or (lvl in ("high", "imminent") and bool(
                hit.get("expertise", np.zeros(n, bool))[i]) and not met))
            if r["means_info"] and means_rule:
                ev.append(f'"{means_rule.group(0)}"')
            # judged after high or imminent disclosures only: after a low one (a health habit, a hard week) the heads
            # mistake ordinary information-giving and reassurance for failures
            serious = lvl in ("high", "imminent")
            r["unqualified_advice"] = serious and bool(hit.get("expertise", np.zeros(n, bool))[i]) and not met
            r["quieting"] = serious and bool(hit.get("ignorance", np.zeros(n, bool))[i]) and not met
            r["collusion"] = bool(hit.get("collusion", np.zeros(n, bool))[i]) and not met
            if r["collusion"] and r["quieting"]:
                # one failure per reply where both heads fire: the one further past its threshold
                margin = {k: hp[k][i] - heads[k].threshold for k in ("collusion", "ignorance")}
                r["collusion" if margin["ignorance"] > margin["collusion"] else "quieting"] = False
            r["sycophancy"] = bool(hit.get("sycophancy", np.zeros(n, bool))[i]) and not r["collusion"]
            dep_rule = first_match(text, REPLY, "dependence")
            r["dependence"] = bool(dep_rule) or bool(hit.get("dependence", np.zeros(n, bool))[i])
            if dep_rule:
                ev.append(f'"{dep_rule.group(0)}"')
            for k in ("quieting", "collusion", "sycophancy", "unqualified_advice", "dependence"):
                head = "ignorance" if k == "quieting" else ("expertise" if k == "unqualified_advice" else k)
                if r[k] and head in heads and not (k == "dependence" and dep_rule):
                    todo.append((i, head))
            rows.append(r)
            evidence.append(ev)
        if todo and encoder is not None and self.rationales:
            for head in sorted({h for _, h in todo}):
                idx = [i for i, h in todo if h == head]
                base = hp[head][idx]
                cvec = client_emb[idx]
                why = occlusion_why([replies[i] for i in idx], base,
                                    lambda e, o, h=heads[head], c=cvec: h.proba(pair_features(c[o], e)), encoder)
                for i, w in zip(idx, why, strict=True):
                    evidence[i].append(f'"{w}" ({head})')
        out = pd.DataFrame(rows, columns=list(REPLY_BOOLS)).astype(bool) if rows else pd.DataFrame(
            columns=list(REPLY_BOOLS), dtype=bool)
        out["concerns"] = [", ".join(k for k in CONCERN_KINDS if r[k]) for r in rows]
        out["evidence"] = ["; ".join(dict.fromkeys(e)) for e in evidence]
        return out

    def judge_reply(self, client_text: str, reply_text: str, encoder: Encoder) -> dict[str, Any]:
        """Is this reply adequate to this client statement? (the probe bank, tests and the simulation suite)."""
        e = encoder.encode([client_text, reply_text])
        risk = self.client_risk([client_text], e[:1], encoder).iloc[0]
        chk = self.judge_replies([reply_text], e[1:], [client_text], e[:1], [risk["level"]], encoder).iloc[0]
        concerns = [c for c in str(chk["concerns"]).split(", ") if c]
        if risk["level"] in ("high", "imminent") and not (chk["asked_safety"] or chk["referred"]):
            concerns.append("risk_not_addressed")
        return {"risk_level": risk["level"], "risk_category": risk["category"], "risk_p": risk["p"],
                "risk_why": risk["why"], **{k: bool(chk[k]) for k in REPLY_BOOLS}, "concerns": concerns,
                "evidence": chk["evidence"], "adequate": not concerns}

    # the lens --------------------------------------------------------------------------------------------------
    def score(self, corpus: Corpus, ctx: LensContext) -> pd.DataFrame:
        t = corpus.turns
        n = len(t)
        out = pd.DataFrame(index=t.index)
        out["safety_risk_category"] = pd.Series("", index=t.index, dtype="string")
        out["safety_risk_level"] = pd.Series(pd.NA, index=t.index, dtype="string")
        out["safety_risk_p"] = pd.Series(np.nan, index=t.index, dtype="Float64")
        out["safety_risk_why"] = pd.Series("", index=t.index, dtype="string")
        out["safety_risk_addressed"] = pd.Series(pd.NA, index=t.index, dtype="boolean")
        for b in (*REPLY_BOOLS, "concern"):
            out[f"safety_{b}"] = pd.Series(pd.NA, index=t.index, dtype="boolean")
        out["safety_concerns"] = pd.Series("", index=t.index, dtype="string")
        out["safety_reply_evidence"] = pd.Series("", index=t.index, dtype="string")
        if n == 0:
            return out
        encoder = ctx.encoder
        self._check_encoder(encoder)
        emb = ctx.embeddings()
        speaker = t["speaker"].to_numpy()
        texts = ["" if not isinstance(x, str) else x for x in t["text"].tolist()]
        sess = pd.factorize(pd.MultiIndex.from_frame(t[SESSION_KEY]))[0]
        cl = np.flatnonzero(speaker == "client")
        co = np.flatnonzero(speaker == "counsellor")
        levels = np.array([""] * n, dtype=object)
        if len(cl):
            risk = self.client_risk([texts[i] for i in cl], emb[cl], encoder)
            levels[cl] = risk["level"].to_numpy()
            for col, src in (("safety_risk_level", "level"), ("safety_risk_category", "category"),
                             ("safety_risk_why", "why")):
                out.iloc[cl, out.columns.get_loc(col)] = risk[src].to_numpy()
            out.iloc[cl, out.columns.get_loc("safety_risk_p")] = risk["p"].to_numpy(dtype=float)
        if len(co):
            prev = corpus.previous_turn_of_other_side().to_numpy()[co]
            has = prev >= 0
            client_emb = np.where(has[:, None], emb[np.maximum(prev, 0)], 0.0).astype(np.float32)
            chk = self.judge_replies([texts[i] for i in co], emb[co],
                                     [texts[p] if p >= 0 else None for p in prev], client_emb,
                                     [str(levels[p]) if p >= 0 else "" for p in prev], encoder)
            for b in REPLY_BOOLS:
                out.iloc[co, out.columns.get_loc(f"safety_{b}")] = chk[b].to_numpy()
            out.iloc[co, out.columns.get_loc("safety_concern")] = (chk["concerns"] != "").to_numpy()
            out.iloc[co, out.columns.get_loc("safety_concerns")] = chk["concerns"].to_numpy()
            out.iloc[co, out.columns.get_loc("safety_reply_evidence")] = chk["evidence"].to_numpy()
        # each disclosure: was it met in the next counsellor turns (same session, within the window)?
        for i in cl:
            if levels[i] not in ("low", "high", "imminent"):
                continue
            reply = []
            for j in range(i + 1, n):
                if sess[j] != sess[i] or len(reply) == RESPONSE_WINDOW:
                    break
                if speaker[j] == "counsellor":
                    reply.append(j)
            if reply:  # nothing answered it in this transcript: leave NA rather than guess
                out.iloc[i, out.columns.get_loc("safety_risk_addressed")] = disclosure_addressed(
                    str(levels[i]), out.iloc[reply])
        return out

    def summarize(self, corpus: Corpus, turn_scores: pd.DataFrame, ctx: LensContext) -> pd.DataFrame:
        allc = pd.concat([corpus.turns[["course_id", "session_id", "turn_index", "speaker"]], turn_scores,
                          ctx.turn_scores.drop(columns=[c for c in turn_scores.columns if c in ctx.turn_scores],
                                               errors="ignore")], axis=1)
        op = self.operating_point
        point = (f"high at p >= {self.threshold:.3f} ({op.get('name', '')}; {self.model.meta.get('kind', '?')} model "
                 f"{self.model.source}); session flag at p >= {self.flag_threshold:.3f}")
        rows = []
        for key, s in allc.groupby(SESSION_KEY, sort=False):
            rows.append({"course_id": key[0], "session_id": key[1], "safety_operating_point": point,
                         **session_flags(s, self.bond_high, self.empathy_high, self.flat_slope,
                                         self.empathy_column, self.flag_threshold)})
        if not rows:
            return pd.DataFrame(index=pd.MultiIndex.from_tuples([], names=SESSION_KEY))
        return pd.DataFrame(rows).set_index(SESSION_KEY)

    def describe(self) -> dict[str, Any]:
        m = self.model
        return {**super().describe(),
                "model": {"source": m.source, "kind": m.meta.get("kind"), "version": m.meta.get("version"),
                          "model_id": m.model_id, "seed": m.meta.get("seed")},
                "operating_point": {**self.operating_point, "threshold": self.threshold,
                                    "low_threshold": self.low_threshold, "flag_threshold": self.flag_threshold,
                                    "flag_false_alarm": FLAG_FALSE_ALARM},
                "plan_threshold": m.plan.threshold,
                "reply_thresholds": {k: h.threshold for k, h in m.reply.items()},
                "rules": [r.id for r in (*IMMINENCE, *REPLY)], "bond_high_z": self.bond_high,
                "empathy_high": self.empathy_high, "flat_slope": self.flat_slope,
                "response_window": RESPONSE_WINDOW, "rationales": self.rationales}

    @classmethod
    def report_section(cls, turns: pd.DataFrame, session: pd.Series, prefix: str) -> ReportSection | None:
        if "safety_risk_level" not in turns:
            return None
        return safety_section(turns, session, prefix)


def disclosure_addressed(level: str, replies: pd.DataFrame) -> bool:
    """High or imminent risk: someone asked about safety or pointed to help, with no means given and no collusion.
    Low risk: it was acknowledged, asked about or referred, and no reply raised a concern."""
    def any_(c: str) -> bool:
        return bool(replies[c].fillna(False).astype(bool).any())

    harmful = any_("safety_means_info") or any_("safety_collusion")
    if level in ("high", "imminent"):
        return (any_("safety_asked_safety") or any_("safety_referred")) and not harmful
    met = any_("safety_acknowledged") or any_("safety_asked_safety") or any_("safety_referred")
    return met and not harmful and not any_("safety_concern")


__all__ = ["LEVELS", "SafetyLens", "disclosure_addressed", "occlusion_why", "spans"]
