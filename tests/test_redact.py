"""Redaction: every occurrence of each identifier, every kind the issue names, ordinary words kept; and the preview
shows exactly the bytes the client sends, with the same configuration."""

from __future__ import annotations

import json
import re

import httpx
import pytest

from alliance.llm import LLMClient, Redactor


@pytest.fixture(autouse=True)
def _no_ambient_config(monkeypatch, tmp_path):
    for k in ("BASE_URL", "MODEL", "API_KEY", "CONFIG", "REDACT", "CACHE_DIR", "PROXY"):
        monkeypatch.delenv(f"ALLIANCE_LLM_{k}", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))


RED = Redactor()


def _gone(out: str, *secrets: str) -> None:
    for s in secrets:
        assert s.lower() not in out.lower(), f"{s!r} survived in {out!r}"


def test_a_name_found_once_is_removed_everywhere_with_one_placeholder():
    turns = ["Hi, my name is Siobhan.", "Thank you Siobhan. What brings you here?", "siobhan's mum rang."]
    out = [r.text for r in RED.redact_many(turns)]
    assert out == ["Hi, my name is [NAME_1].", "Thank you [NAME_1]. What brings you here?", "[NAME_1]'s mum rang."]


@pytest.mark.parametrize("text,secrets", [
    ("My blog is https://siobhan-kelly.blogspot.com/about, or facebook.com/siobhan.kelly99.", ["siobhan", "kelly"]),
    ("Dr Featherstone upped my dose, and Mrs Ogunleye next door noticed.", ["Featherstone", "Ogunleye"]),
    ("I grew up in Wolverhampton but live in Tooting now, near Moss Side.", ["Wolverhampton", "Tooting", "Moss"]),
    ("I'm 34 and my son is 7. She was only 15 when it started. He turned forty last year.",
     ["34", "7", "15", "forty"]),
    ("i told tadhg everything and me and grainne broke up", ["tadhg", "grainne"]),
    ("My grandmother 王秀英 raised me; my uncle Дмитрий did not.", ["王秀英", "Дмитрий"]),
    ("My NI number is QQ 12 34 56 C, NHS number 943 476 5919, SSN 123-45-6789, PPS 1234567T.",
     ["QQ 12", "943 476", "123-45", "1234567T"]),
    ("I was born on 19/03/1987. My date of birth is 3 May 1990. I was born in 1979.", ["19/03", "3 May", "1979"]),
    ("I live at Flat 2, 14 Mill Lane, Leeds LS6 2AB. Before that 1600 Elm Street, Tulsa, OK 74103.",
     ["Mill Lane", "Leeds", "LS6", "Elm Street", "Tulsa", "74103"]),
    ("Mail me at jenny.w@example.org or ring 07700 900456 or +44 (0)161 496 0123.",
     ["jenny", "example.org", "900456", "496 0123"]),
])
def test_each_kind_of_identifier_goes(text, secrets):
    _gone(RED(text), *secrets)


def test_ordinary_counselling_talk_is_left_alone():
    for text in ["I'm Not sure, I feel tired.", "Sunday nights are the worst; Mondays too.",
                 "My GP said CBT might help, but the NHS waiting list is long.",
                 "Honestly, Facebook made lockdown worse. Will you be here next week?",
                 "I scored 12 out of 27 on the questionnaire at 3pm.", "Grace period ended, I'm hopeful.",
                 "you're right, i don't know, they've been using it-it's hard. Mm-hmm. my girlfriend's childcare"]:
        assert RED(text) == text


def test_extra_names_and_numbering():
    r = Redactor(extra_names=["Zephyrine"])
    assert r("zephyrine and Zephyrine came.") == "[NAME_1] and [NAME_1] came."
    with pytest.raises(ValueError, match="unknown redaction kind"):
        Redactor(kinds=["nickname"])


def _corpus_file(tmp_path):
    f = tmp_path / "t.jsonl"
    rows = [("client", "Hi, I'm Siobhan Kelly and my brother Zed lives in Tooting."),
            ("counsellor", "Thank you, Siobhan. What brings you here?"),
            ("client", "Just everything, honestly."),
            ("counsellor", "That sounds heavy.")]
    f.write_text("".join(json.dumps({"session_id": "a", "speaker": s, "text": t}) + "\n" for s, t in rows))
    return f


def _run_preview(args, env):
    from typer.testing import CliRunner

    from alliance.cli import app

    return CliRunner().invoke(app, ["redact", "--preview", *args], env={"COLUMNS": "200", **env})


@pytest.mark.parametrize("lens", ["llm_alliance", "llm_judge"])
def test_preview_bytes_are_exactly_what_the_client_sends(tmp_path, lens):
    """Same configuration (extra_names from the config file), same function: the bytes must be identical."""
    cfg_file = tmp_path / "llm.toml"
    cfg_file.write_text('base_url = "https://api.example.org/v1"\nmodel = "m"\nextra_names = ["Zed"]\n'
                        f'cache_dir = "{tmp_path / "state"}"\n')
    f = _corpus_file(tmp_path)
    r = _run_preview([str(f), "--json", "--lens", lens, "--llm-config", str(cfg_file)], {})
    assert r.exit_code == 0, r.output
    previewed = [line for line in r.stdout.splitlines() if line.startswith("{")]
    assert previewed and all("Siobhan" not in p and "Zed" not in p and "Tooting" not in p for p in previewed)

    sent: list[str] = []
    from alliance.corpus import Corpus
    from alliance.io import read
    from alliance.lenses.base import LensContext
    from alliance.lenses.llm_rater import LLMAllianceRaterLens, LLMJudgeLens
    from alliance.llm import load_config

    def handler(request):
        sent.append(request.content.decode("utf-8"))
        return httpx.Response(200, json={"choices": [{"message": {"content": "not json"}}]})

    client = LLMClient(load_config(cfg_file), transport=httpx.MockTransport(handler), sleep=lambda s: None)
    corpus: Corpus = read([f]).corpus
    if lens == "llm_alliance":
        lens_obj = LLMAllianceRaterLens(n_runs=1, client=client)
        lens_obj.summarize(corpus, lens_obj.score(corpus, LensContext(corpus)), LensContext(corpus))
        first_requests = sent[:1]  # later tries carry the repair messages
    else:
        LLMJudgeLens(client=client).score(corpus, LensContext(corpus))
        first_requests = sorted({s for s in sent if '"role":"assistant"' not in s})
    assert sorted(previewed) == sorted(first_requests)


def test_preview_says_when_nothing_is_redacted_and_shows_every_turn(tmp_path):
    f = _corpus_file(tmp_path)
    env = {"ALLIANCE_LLM_BASE_URL": "http://127.0.0.1:8080/v1", "ALLIANCE_LLM_MODEL": "m"}
    r = _run_preview([str(f)], env)
    assert r.exit_code == 0, r.output
    assert "no redaction: local endpoint" in r.output
    for text in ("Siobhan Kelly", "Just everything, honestly.", "That sounds heavy."):
        assert text in r.output  # every turn, unchanged
    r = _run_preview([str(f), "--changed-only"], env)
    assert "1 request(s) unchanged by redaction hidden" in r.output and "Siobhan" not in r.stdout


def test_preview_without_configuration_says_nothing_would_be_sent(tmp_path):
    r = _run_preview([str(_corpus_file(tmp_path)), "--name", "Zed"], {})
    assert r.exit_code == 0, r.output
    assert "nothing would be sent" in r.output
    assert "[NAME_1]" in r.stdout and "Siobhan" not in r.stdout and "Zed" not in r.stdout
    assert "distinct placeholders:" in r.output and "place 1" in r.output


def test_the_lenses_own_instructions_pass_unchanged(tmp_path):
    from alliance.lenses.llm_rater import LLMAllianceRaterLens, LLMJudgeLens

    client = LLMClient(__import__("alliance.llm", fromlist=["LLMConfig"]).LLMConfig(
        "https://api.example.org/v1", "m", cache_dir=str(tmp_path)))
    for msgs in (LLMAllianceRaterLens(n_runs=1, client=client)._messages("[0] client: I feel low."),
                 LLMJudgeLens(client=client)._messages("I feel low.", "Tell me more about the low days.")):
        assert client.prepare(msgs) == (msgs, 0)


def test_the_pii_set_stays_covered():
    """A fast slice of benchmarks/validate_redaction.py: a regression guard, not the reported figure."""
    import importlib.util
    import sys
    from pathlib import Path

    bench = Path(__file__).resolve().parents[1] / "benchmarks"
    sys.path.insert(0, str(bench))
    try:
        spec = importlib.util.spec_from_file_location("validate_redaction", bench / "validate_redaction.py")
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        res = mod.evaluate(mod.alliance_engine(), seed=5, per_kind=15)
    finally:
        sys.path.remove(str(bench))
    assert mod._group(res, mod.NAME_KINDS) >= 0.95 and mod._group(res, mod.DIRECT_KINDS) >= 0.98
    assert res["false"] / res["words"] < 0.03


def test_scope_numbers_follow_the_session_so_requests_agree():
    session = ["My name is Siobhan and Tadhg is my brother.", "Thank you, Siobhan."]
    first = RED.redact_many(["Counsellor: ok Siobhan"], context=session)[0].text
    second = RED.redact_many(["Client: Tadhg said hi, Siobhan"], context=session)[0].text
    assert first == "Counsellor: ok [NAME_1]" and second == "Client: [NAME_2] said hi, [NAME_1]"


def test_redaction_never_fails_and_its_spans_are_consistent():
    hypothesis = pytest.importorskip("hypothesis")
    st = hypothesis.strategies

    pieces = st.sampled_from(["Siobhan", "siobhan", "Dr Okafor", "07700 900456", "jo@x.org", "I'm 34",
                              "in Tooting", "王秀英", "QQ 12 34 56 C", "14 Mill Lane", "3 May 1990", "and", ".",
                              "I feel low", "https://a.co/x", "Sunday", " ", "\n", "—", "'s"])

    @hypothesis.settings(max_examples=150, deadline=None)
    @hypothesis.given(st.lists(st.one_of(pieces, st.text(max_size=12)), max_size=12))
    def check(parts):
        text = " ".join(parts)
        res = RED.redact(text)
        last = 0
        for s in res.spans:
            assert last <= s.start < s.end <= len(text) and text[s.start:s.end] == s.text
            last = s.end
        rebuilt, pos = [], 0
        for s in res.spans:
            rebuilt += [text[pos:s.start], "\0"]
            pos = s.end
        rebuilt.append(text[pos:])
        assert re.sub(r"\[[A-Z]+_\d+\]", "\0", res.text) == "".join(rebuilt) or "[" in text

    check()
