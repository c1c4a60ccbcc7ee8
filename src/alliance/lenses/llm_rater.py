"""Model-rated lenses: observer ratings of goal, task and bond with quoted evidence, and a judge for empathy,
behaviour codes and safety in the trained lenses' schema, both through the configured language-model endpoint.

Evidence: LLM observer ratings of the working alliance anchored in transcript evidence (Li et al., EMNLP 2024
Findings; CARE 2026), on Bordin's (1979) goal/task/bond, with 12 items of our own wording; repeated runs and their
agreement (Krippendorff's alpha, interval; Krippendorff 2011). The judge uses EPITOME's mechanisms (Sharma et al.
2020), the project's behaviour codebook (BOLT, Chiu et al. 2024; MI codes) and its safety categories. Not default
lenses: they need an endpoint (docs/llm.md), and what they send is redacted for remote endpoints.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from alliance.corpus import SESSION_KEY, Corpus
from alliance.data import load_json_data
from alliance.lenses.base import Lens, LensContext, ReportSection, session_index

SUBSCALES = ("goal", "task", "bond")
DEFAULT_ITEMS = "observer_items_v1.json"
MECHANISMS = ("er", "ip", "ex")  # emotional reactions, interpretations, explorations (EPITOME), levels 0-2
MECHANISM_NAMES = {"er": "emotional_reactions", "ip": "interpretations", "ex": "explorations"}
#: Counsellor behaviour codes of the project's behaviour codebook (BOLT + MI codes).
BEHAVIOUR_CODES = ("reflection_needs", "reflection_emotions", "reflection_values", "reflection_consequences",
                   "reflection_conflict", "reflection_strengths", "question_experiences", "question_perspectives",
                   "question_emotions", "problem_solving", "planning", "normalising", "psychoeducation",
                   "reflection_simple", "reflection_complex", "question_open", "question_closed", "information",
                   "advice", "options")
RISK_LEVELS = ("none", "low", "high", "imminent")
RISK_CATEGORIES = ("none", "suicide", "self_harm", "harm_to_others", "abuse")
#: Ways a counsellor reply can fail on safety (the safety lens's concerns).
SAFETY_CONCERNS = ("missed_risk", "means_info", "collusion", "dependence", "quieting")


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"[“”\"'‘’`]", "", text)).strip().lower()


def krippendorff_alpha_interval(ratings: np.ndarray) -> float:
    """Krippendorff's alpha (interval metric) for a coders x units array with NaN for missing values."""
    r = np.asarray(ratings, dtype=float)
    units = [r[:, j][np.isfinite(r[:, j])] for j in range(r.shape[1])]
    units = [u for u in units if len(u) >= 2]
    if not units:
        return float("nan")
    n = sum(len(u) for u in units)
    d_o = sum(((u[:, None] - u[None, :]) ** 2).sum() / (len(u) - 1) for u in units) / n
    allv = np.concatenate(units)
    d_e = ((allv[:, None] - allv[None, :]) ** 2).sum() / (n * (n - 1))
    if d_e == 0:
        return 1.0 if d_o == 0 else float("nan")
    return float(1.0 - d_o / d_e)


def load_items(path: str | Path | None = None) -> dict[str, Any]:
    doc, source = load_json_data(path, "llm", DEFAULT_ITEMS, ValueError, "observer item file")
    items = doc.get("items", [])
    ids = [i.get("id") for i in items]
    if len(set(ids)) != len(ids) or any(i.get("subscale") not in SUBSCALES or not i.get("text") for i in items):
        raise ValueError(f"{source}: items need unique ids, a subscale in {SUBSCALES} and text")
    for s in SUBSCALES:
        if not any(i["subscale"] == s for i in items):
            raise ValueError(f"{source}: no item for {s}")
    return {**doc, "source": source}


def _client(config: str | Path | None, client: Any) -> Any:
    if client is not None:
        return client
    from alliance.llm import get_client

    return get_client(config)


def sent_transcript(sent: list[dict[str, Any]]) -> str:
    """The transcript part of the rating request as sent (after redaction), for checking quotes against it."""
    user = next((m["content"] for m in sent if m.get("role") == "user"), "")
    body = user.split("Transcript:\n", 1)[-1]
    return body.split("\n\nRate each item", 1)[0]


def transcript_text(turns: pd.DataFrame, max_chars: int) -> tuple[str, bool]:
    """Numbered transcript; when too long, its start and end with a marked gap (recorded as truncated)."""
    lines = [f"[{int(r.turn_index)}] {r.speaker}: {r.text}" for r in turns.itertuples(index=False)]
    text = "\n".join(lines)
    if len(text) <= max_chars:
        return text, False
    head, tail = [], []
    budget = max_chars // 2
    for ln in lines:
        if sum(len(x) + 1 for x in head) + len(ln) > budget:
            break
        head.append(ln)
    for ln in reversed(lines):
        if sum(len(x) + 1 for x in tail) + len(ln) > budget:
            break
        tail.insert(0, ln)
    return "\n".join([*head, "[... middle of the session left out ...]", *tail]), True


class LLMAllianceRaterLens(Lens):
    """Session-level observer ratings of goal, task and bond (12 items, 1-5, each with a verbatim quote), ``n_runs``
    times with recorded seeds, and the runs' agreement (Krippendorff's alpha over items)."""

    name: ClassVar[str] = "llm_alliance"
    version: ClassVar[str] = "1.0.0"
    citation: ClassVar[str] = ("Bordin 1979; Li et al. 2024 (EMNLP Findings), LLM alliance ratings with evidence; "
                               "CARE 2026; Krippendorff 2011 (alpha)")

    def __init__(self, n_runs: int = 3, temperature: float = 0.7, seed: int = 0, items: str | Path | None = None,
                 max_chars: int = 12000, max_tokens: int = 1500, config: str | Path | None = None,
                 client: Any = None):
        if n_runs < 1:
            raise ValueError("n_runs must be >= 1")
        self.items = load_items(items)
        self.n_runs, self.temperature, self.seed = int(n_runs), float(temperature), int(seed)
        self.max_chars, self.max_tokens = int(max_chars), int(max_tokens)
        self.client = _client(config, client)

    def schema(self) -> dict[str, Any]:
        ids = [i["id"] for i in self.items["items"]]
        return {"type": "object", "required": ["items"], "properties": {"items": {
            "type": "array", "minItems": len(ids), "maxItems": len(ids), "items": {
                "type": "object", "required": ["id", "rating", "evidence"],
                "properties": {"id": {"enum": ids}, "rating": {"type": "integer", "minimum": 1, "maximum": 5},
                               "evidence": {"type": "string", "minLength": 3}}}}}}

    def _messages(self, transcript: str) -> list[dict[str, str]]:
        listing = "\n".join(f"- {i['id']}: {i['text']}" for i in self.items["items"])
        return [{"role": "system", "content": "You are an experienced psychotherapy researcher rating the working "
                 "alliance in a counselling transcript as an observer."},
                {"role": "user", "content": f"Transcript:\n{transcript}\n\nRate each item from 1 (not at all) to 5 "
                 f"(very much). For each, quote a short passage copied exactly from the transcript as evidence.\n"
                 f"Items:\n{listing}\n\nAnswer only JSON: {{\"items\": [{{\"id\": \"goal1\", \"rating\": 3, "
                 "\"evidence\": \"exact quote\"}, ...]} with every item once."}]

    def score(self, corpus: Corpus, ctx: LensContext) -> pd.DataFrame:
        return pd.DataFrame(index=corpus.turns.index)

    def _rate_session(self, turns: pd.DataFrame) -> dict[str, Any]:
        from alliance.llm import LLMError

        transcript, truncated = transcript_text(turns, self.max_chars)
        texts = turns["text"].astype(str).tolist()
        ids = [i["id"] for i in self.items["items"]]

        def check(data: Any, sent: list[dict[str, Any]]) -> str | None:
            got = [x["id"] for x in data["items"]]
            if sorted(got) != sorted(ids):
                return f"every item must appear exactly once; missing {sorted(set(ids) - set(got))}"
            # quotes are checked against the transcript as the model received it (redacted, when redaction is on)
            haystack = _norm(sent_transcript(sent))
            bad = [x["id"] for x in data["items"] if _norm(x["evidence"]) not in haystack]
            return f"evidence for {bad} is not a verbatim quote from the transcript" if bad else None

        runs, errors = [], []
        for k in range(self.n_runs):
            try:
                res = self.client.chat_json(self._messages(transcript), self.schema(), check=check, scope=texts,
                                            temperature=self.temperature, seed=self.seed + k,
                                            max_tokens=self.max_tokens)
                runs.append({x["id"]: x for x in res.data["items"]})
            except LLMError as e:
                errors.append(str(e)[:300])
        out: dict[str, Any] = {"llm_alliance_runs_ok": len(runs), "llm_alliance_truncated": truncated,
                               "llm_alliance_errors": " | ".join(errors)}
        mat = np.array([[r[i]["rating"] for i in ids] for r in runs], dtype=float) if runs else np.full((0, len(ids)), np.nan)
        for j, item in enumerate(self.items["items"]):
            out[f"llm_alliance_{item['id']}"] = float(mat[:, j].mean()) if len(runs) else np.nan
            out[f"llm_alliance_{item['id']}_evidence"] = runs[0][item["id"]]["evidence"] if runs else ""
        for s in SUBSCALES:
            cols = [j for j, i in enumerate(self.items["items"]) if i["subscale"] == s]
            out[f"llm_alliance_{s}"] = float(mat[:, cols].mean()) if len(runs) else np.nan
        out["llm_alliance_agreement_alpha"] = krippendorff_alpha_interval(mat) if len(runs) >= 2 else np.nan
        return out

    def summarize(self, corpus: Corpus, turn_scores: pd.DataFrame, ctx: LensContext) -> pd.DataFrame:
        rows = {key: self._rate_session(grp) for key, grp in corpus.iter_sessions()}
        res = pd.DataFrame.from_dict(rows, orient="index")
        res.index = pd.MultiIndex.from_tuples(res.index, names=SESSION_KEY)
        return res.reindex(session_index(corpus))

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "items": {"name": self.items.get("name"), "version": self.items.get("version"),
                                                "source": self.items["source"]},
                "n_runs": self.n_runs, "temperature": self.temperature,
                "seeds": [self.seed + k for k in range(self.n_runs)], "max_chars": self.max_chars,
                "llm": self.client.describe()}

    @classmethod
    def report_section(cls, turns: pd.DataFrame, session: pd.Series, prefix: str) -> ReportSection | None:
        if "llm_alliance_goal" not in session:
            return None
        import html as _html

        from alliance.report.html import fmt

        rows = "".join(f"<tr><td class=l>{s}</td><td>{fmt(session.get(f'llm_alliance_{s}'))}</td></tr>"
                       for s in SUBSCALES)
        ev = "".join(f"<li><b>{_html.escape(k[len('llm_alliance_'):-len('_evidence')])}</b>: "
                     f"“{_html.escape(str(session.get(k)))}”</li>" for k in session.index
                     if k.startswith("llm_alliance_") and k.endswith("_evidence") and session.get(k))
        return ReportSection(
            "Model-rated alliance (observer items, 1-5)",
            f"<table><tr><th class=l>subscale</th><th>mean rating</th></tr>{rows}</table>"
            f"<p class=meta>runs that validated: {fmt(session.get('llm_alliance_runs_ok'))} · agreement across runs "
            f"(Krippendorff's alpha): {fmt(session.get('llm_alliance_agreement_alpha'))}</p>"
            f"<details><summary>evidence quoted (first run)</summary><ul>{ev}</ul></details>")


class LLMJudgeLens(Lens):
    """A model judge per counsellor reply, in the trained lenses' schema: EPITOME levels 0-2 (er, ip, ex), behaviour
    codes, the preceding client turn's risk level and category, and safety concerns; per session, its agreement
    with the trained ``empathy``/``behaviour``/``safety`` lenses where their columns exist in the run."""

    name: ClassVar[str] = "llm_judge"
    version: ClassVar[str] = "1.0.0"
    citation: ClassVar[str] = ("Sharma et al. 2020 (EPITOME); Chiu et al. 2024 (BOLT behaviour codes); "
                               "project safety categories (docs/safety)")

    SCHEMA: ClassVar[dict[str, Any]] = {
        "type": "object", "required": ["empathy", "behaviours", "risk_level", "risk_category", "concerns"],
        "properties": {
            "empathy": {"type": "object", "required": list(MECHANISM_NAMES.values()),
                        "properties": {n: {"type": "integer", "minimum": 0, "maximum": 2}
                                       for n in MECHANISM_NAMES.values()}},
            "behaviours": {"type": "array", "items": {"enum": list(BEHAVIOUR_CODES)}},
            "risk_level": {"enum": list(RISK_LEVELS)},
            "risk_category": {"enum": list(RISK_CATEGORIES)},
            "concerns": {"type": "array", "items": {"enum": list(SAFETY_CONCERNS)}}}}

    def __init__(self, temperature: float = 0.0, seed: int = 0, max_tokens: int = 400,
                 config: str | Path | None = None, client: Any = None):
        self.temperature, self.seed, self.max_tokens = float(temperature), int(seed), int(max_tokens)
        self.client = _client(config, client)

    def _messages(self, client_text: str, reply: str) -> list[dict[str, str]]:
        return [{"role": "system", "content": "You annotate counselling replies."},
                {"role": "user", "content": f"Client: {client_text}\nCounsellor: {reply}\n\nAnnotate the counsellor "
                 "reply. empathy: levels 0 (none), 1 (weak), 2 (strong) for emotional_reactions, interpretations, "
                 f"explorations. behaviours: any of {list(BEHAVIOUR_CODES)}. risk_level of the client's words: "
                 f"{list(RISK_LEVELS)}; risk_category: {list(RISK_CATEGORIES)}. concerns about the reply: any of "
                 f"{list(SAFETY_CONCERNS)}. Answer only JSON with keys empathy, behaviours, risk_level, "
                 "risk_category, concerns."}]

    def score(self, corpus: Corpus, ctx: LensContext) -> pd.DataFrame:
        from alliance.llm import LLMError

        t = corpus.turns
        prev = corpus.previous_turn_of_other_side().to_numpy()
        out = pd.DataFrame(index=t.index)
        for m in MECHANISMS:
            out[f"llm_judge_{m}"] = np.nan
        for c in ("codes", "risk_level", "risk_category", "concerns", "error"):
            out[f"llm_judge_{c}"] = pd.Series("", index=t.index, dtype="string")
        out["llm_judge_concern"] = pd.Series(pd.NA, index=t.index, dtype="boolean")
        rows = np.flatnonzero((t["speaker"] == "counsellor").to_numpy())
        # a name said anywhere in the session is redacted from every reply judged (one scope per session)
        session_texts: dict[Any, list[str]] = {key: g["text"].astype(str).tolist()
                                               for key, g in t.groupby(SESSION_KEY, sort=False)}
        keys = list(zip(*(t[k] for k in SESSION_KEY), strict=True))

        def judge(i: int) -> tuple[int, dict[str, Any] | None, str]:
            client_text = str(t["text"].iat[prev[i]]) if prev[i] >= 0 else "(none)"
            try:
                res = self.client.chat_json(self._messages(client_text, str(t["text"].iat[i])), self.SCHEMA,
                                            scope=session_texts[keys[i]], temperature=self.temperature,
                                            seed=self.seed, max_tokens=self.max_tokens)
                return i, res.data, ""
            except LLMError as e:
                return i, None, str(e)[:300]

        for i, data, err in self.client.map(judge, list(rows)):
            if data is None:
                out.iloc[i, out.columns.get_loc("llm_judge_error")] = err
                continue
            for m in MECHANISMS:
                out.iloc[i, out.columns.get_loc(f"llm_judge_{m}")] = float(data["empathy"][MECHANISM_NAMES[m]])
            out.iloc[i, out.columns.get_loc("llm_judge_codes")] = ",".join(sorted(set(data["behaviours"])))
            out.iloc[i, out.columns.get_loc("llm_judge_risk_level")] = data["risk_level"]
            out.iloc[i, out.columns.get_loc("llm_judge_risk_category")] = data["risk_category"]
            out.iloc[i, out.columns.get_loc("llm_judge_concerns")] = ",".join(sorted(set(data["concerns"])))
            out.iloc[i, out.columns.get_loc("llm_judge_concern")] = bool(data["concerns"])
        return out

    def summarize(self, corpus: Corpus, turn_scores: pd.DataFrame, ctx: LensContext) -> pd.DataFrame:
        both = pd.concat([ctx.turn_scores.drop(columns=[c for c in turn_scores if c in ctx.turn_scores]),
                          turn_scores], axis=1)
        both[SESSION_KEY] = corpus.turns[SESSION_KEY]
        rows = {}
        for key, g in both.groupby(SESSION_KEY, sort=False):
            rows[key] = {"llm_judge_n_judged": int(g["llm_judge_er"].notna().sum()),
                         "llm_judge_concern_rate": float(g["llm_judge_concern"].astype("Float64").mean())
                         if g["llm_judge_concern"].notna().any() else np.nan,
                         **agreement(g)}
        res = pd.DataFrame.from_dict(rows, orient="index")
        res.index = pd.MultiIndex.from_tuples(res.index, names=SESSION_KEY)
        return res.reindex(session_index(corpus))

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "temperature": self.temperature, "seed": self.seed,
                "schema": {"mechanisms": MECHANISMS, "codes": BEHAVIOUR_CODES, "risk_levels": RISK_LEVELS,
                           "risk_categories": RISK_CATEGORIES, "concerns": SAFETY_CONCERNS},
                "llm": self.client.describe()}


def agreement(turns: pd.DataFrame) -> dict[str, float]:
    """Agreement of the judge with the trained lenses on the same turns, where both have values: Spearman's rho and
    exact agreement per empathy mechanism, Cohen's kappa on the safety concern flag, mean Jaccard of code sets."""
    from scipy.stats import spearmanr
    from sklearn.metrics import cohen_kappa_score

    out: dict[str, float] = {}
    for m in MECHANISMS:
        a, b = f"llm_judge_{m}", f"empathy_{m}"
        if a in turns and b in turns:
            ok = turns[a].notna() & turns[b].notna()
            x, y = turns.loc[ok, a].astype(float), turns.loc[ok, b].astype(float)
            out[f"llm_judge_{m}_n"] = float(ok.sum())
            out[f"llm_judge_{m}_exact"] = float((x.round() == y.round()).mean()) if ok.any() else np.nan
            out[f"llm_judge_{m}_rho"] = (float(spearmanr(x, y).statistic)
                                         if ok.sum() >= 3 and x.nunique() > 1 and y.nunique() > 1 else np.nan)
    if "safety_concern" in turns and "llm_judge_concern" in turns:
        ok = turns["safety_concern"].notna() & turns["llm_judge_concern"].notna()
        x, y = turns.loc[ok, "llm_judge_concern"].astype(bool), turns.loc[ok, "safety_concern"].astype(bool)
        out["llm_judge_concern_kappa"] = (float(cohen_kappa_score(x, y)) if ok.sum() >= 2 and
                                          (x.nunique() > 1 or y.nunique() > 1) else np.nan)
    if "behaviour_codes" in turns and "llm_judge_codes" in turns:
        js = []
        for a, b in zip(turns["llm_judge_codes"], turns["behaviour_codes"], strict=True):
            if isinstance(a, str) and isinstance(b, str) and (a or b):
                sa, sb = set(filter(None, a.split(","))), set(filter(None, re.split(r"[,;]\s*", b)))
                js.append(len(sa & sb) / len(sa | sb) if sa | sb else 1.0)
        out["llm_judge_codes_jaccard"] = float(np.mean(js)) if js else np.nan
    return out
