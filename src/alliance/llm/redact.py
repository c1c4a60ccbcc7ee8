"""Redaction of names, e-mail addresses, phone numbers, street addresses and dates before text leaves the machine.

Evidence: pattern rules only (no named-entity model is available offline). Names are found by a built-in list of
common first names, titles (Dr, Mrs, ...), self-introduction cues ("my name is", "I'm") followed by a capitalised
word, the capitalised word after a found first name (a surname), and names the user supplies. It misses names it
has no cue for (rare names mentioned in passing) and may redact a capitalised common word after a cue: see
docs/llm.md for its limits. Placeholders are numbered per text and per kind, so a reader can still follow who is who.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field


def _words(block: str) -> frozenset[str]:
    return frozenset(block.split())


#: Common given names (English-speaking and international), written for this project. Lower-case.
FIRST_NAMES: frozenset[str] = _words("""
aaron abby abdul abigail adam adrian ahmed aidan aisha alan albert alex alexander alexandra alexis ali alice
alicia alison amanda amber amelia amir amy ana andre andrea andrew andy angela angelo anita ann anna anne annie
anthony antonio arjun arthur ashley audrey ava barbara ben benjamin beth betty bill billy bob bobby brad brandon
brenda brian bridget brittany bruce bryan caleb cameron carl carla carlos carmen carol caroline carolyn catherine
charles charlie charlotte chen chloe chris christian christina christine christopher claire clara colin connor
craig crystal cynthia daisy dan daniel danielle darren dave david dawn dean deborah debbie denise dennis derek
diana diane diego dominic donald donna doris dorothy douglas dylan edward eileen elaine eleanor elena eli elijah
elizabeth ella ellen ellie emily emma eric erica erin ethan eva evelyn farah fatima felix fiona frances francesca
frank fred gabriel gary gavin george georgia gerald gina grace graham greg gregory hannah harold harry hassan
hayley heather helen henry holly howard hugo ian irene isaac isabel isabella isla jack jackie jacob jade james
jamie jan jane janet janice jason javier jay jean jeff jeffrey jennifer jenny jeremy jerry jess jessica jill jim
jimmy joan joanna joe joel john johnny jon jonathan jordan jose joseph josh joshua joy joyce juan judith judy julia
julian julie justin karen kate katherine kathleen kathryn katie kayla keith kelly ken kenneth kevin kim kimberly
kyle laura lauren leah lee leo leon liam lily linda lisa logan lois louis louise lucas lucy luis luke lydia lynn
madison maggie maria marie marilyn mark martha martin mary mason matt matthew maya megan melissa mia michael
michelle mike mohammed molly monica morgan muhammad nancy naomi natalie nathan neil nicholas nick nicole noah
noor olivia oliver omar oscar owen pamela patricia patrick paul paula peter phil philip phoebe priya rachel raj
ralph raymond rebecca richard rick rita rob robert robin roger ronald rose ruby russell ruth ryan sally sam
samantha samuel sandra sara sarah scott sean sharon shirley simon sofia sophia sophie stacy stephanie stephen
steve steven stuart susan suzanne tanya teresa terry theo theresa thomas tim timothy tina todd tom tommy tony
tracy tyler valerie vanessa victor victoria vincent walter wayne wendy william willow yusuf zach zara zoe
""")

TITLES = r"(?:Mr|Mrs|Ms|Miss|Mx|Dr|Doctor|Prof|Professor|Nurse|Father|Sister|Aunt|Uncle|Auntie|Grandma|Grandpa)"
#: Capitalised words that a cue may precede but that are not names ("I'm Not sure", "I'm English").
NOT_NAMES: frozenset[str] = _words("""
i i'm im a an the not so just very really fine okay ok good sorry tired sad scared here there still also never always
sure glad afraid worried happy angry upset trying going feeling done well back english british american irish
scottish welsh muslim christian jewish catholic single married divorced gay straight trans monday tuesday wednesday
thursday friday saturday sunday january february march april may june july august september october november
december christmas easter god mum mom dad mother father
""")

_EMAIL = re.compile(r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b")
_PHONE = re.compile(r"(?<![\w/])(?:\+\d{1,3}[\s.-]?)?(?:\(\d{2,5}\)[\s.-]?)?\d{2,6}(?:[\s.-]\d{2,6}){1,4}(?![\w/])")
_STREET_SUFFIX = (r"(?:Street|St|Road|Rd|Avenue|Ave|Lane|Ln|Drive|Dr|Close|Court|Ct|Crescent|Place|Pl|Square|Sq|"
                  r"Terrace|Way|Boulevard|Blvd|Gardens|Grove|Hill|Park|Row|Walk|Mews)")
# a street, and a US-style town/state/ZIP tail when one follows it
_ADDRESS = re.compile(rf"\b\d{{1,5}}[A-Za-z]?,?\s+(?:[A-Z][a-z]+\s+){{1,3}}{_STREET_SUFFIX}\b\.?"
                      rf"(?:,?\s+(?:[A-Z][a-z]+,?\s+){{0,2}}(?:[A-Z]{{2}}\s+)?\d{{5}}(?:-\d{{4}})?\b)?")
_POSTCODE = re.compile(r"\b[A-Z]{1,2}\d[A-Z\d]?\s*\d[A-Z]{2}\b")  # UK-style; a US ZIP is caught only after a street
_MONTH = (r"(?:Jan(?:uary)?|Feb(?:ruary)?|Mar(?:ch)?|Apr(?:il)?|May|Jun(?:e)?|Jul(?:y)?|Aug(?:ust)?|"
          r"Sep(?:t(?:ember)?)?|Oct(?:ober)?|Nov(?:ember)?|Dec(?:ember)?)")
_DATE = re.compile(
    rf"\b\d{{1,4}}[/.-]\d{{1,2}}[/.-]\d{{1,4}}\b"
    rf"|\b\d{{1,2}}(?:st|nd|rd|th)?\s+(?:of\s+)?{_MONTH}\b(?:,?\s+\d{{4}})?"
    rf"|\b{_MONTH}\s+\d{{1,2}}(?:st|nd|rd|th)?\b(?:,?\s+\d{{4}})?"
    rf"|\b{_MONTH}\s+\d{{4}}\b")
_CAP = r"[A-Z][a-z'’-]+"
_TITLED = re.compile(rf"\b{TITLES}\.?\s+({_CAP}(?:\s+{_CAP})?)")
_CUE = re.compile(rf"\b(?:[Mm]y name is|[Nn]ame's|I'm called|I am called|[Cc]all me|[Tt]his is|I'm|I am|named|"
                  rf"called)\s+({_CAP})")
_CAP_TOKEN = re.compile(rf"\b{_CAP}\b")


@dataclass(frozen=True)
class Span:
    start: int
    end: int
    kind: str
    text: str


@dataclass
class Redacted:
    """A redacted text, the spans it replaced and the placeholder each original got."""

    text: str
    original: str
    spans: list[Span] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.spans)


class Redactor:
    """Replaces personal identifiers with numbered placeholders such as ``[NAME_1]`` or ``[EMAIL_1]``.

    ``extra_names`` are always redacted (case-insensitive whole words): pass the names of clients and staff that a
    service knows about. ``kinds`` picks which identifiers to remove (default: all five).
    """

    KINDS: tuple[str, ...] = ("email", "phone", "address", "date", "name")

    def __init__(self, extra_names: Iterable[str] = (), kinds: Iterable[str] | None = None):
        self.extra_names = tuple(sorted({n.strip() for n in extra_names if n and n.strip()}, key=len, reverse=True))
        self.kinds = tuple(kinds) if kinds is not None else self.KINDS
        unknown = set(self.kinds) - set(self.KINDS)
        if unknown:
            raise ValueError(f"unknown redaction kind(s) {sorted(unknown)}; known: {self.KINDS}")
        self._extra = (re.compile(r"\b(?:" + "|".join(re.escape(n) for n in self.extra_names) + r")\b", re.I)
                       if self.extra_names else None)

    def find(self, text: str) -> list[Span]:
        """Non-overlapping spans to redact, earliest and longest first."""
        found: list[Span] = []
        for kind in self.kinds:
            for start, end in self._matches(kind, text):
                found.append(Span(start, end, kind, text[start:end]))
        found.sort(key=lambda s: (s.start, -(s.end - s.start)))
        out: list[Span] = []
        for s in found:
            if out and s.start < out[-1].end:
                continue
            out.append(s)
        return out

    def _matches(self, kind: str, text: str) -> Iterable[tuple[int, int]]:
        if kind == "email":
            yield from (m.span() for m in _EMAIL.finditer(text))
        elif kind == "phone":
            for m in _PHONE.finditer(text):
                # at least 7 digits: shorter runs are ages, scores, times and counts, not phone numbers
                if sum(ch.isdigit() for ch in m.group()) >= 7:
                    yield m.span()
        elif kind == "address":
            yield from (m.span() for m in _ADDRESS.finditer(text))
            yield from (m.span() for m in _POSTCODE.finditer(text))
        elif kind == "date":
            yield from (m.span() for m in _DATE.finditer(text))
        elif kind == "name":
            yield from self._names(text)

    def _names(self, text: str) -> Iterable[tuple[int, int]]:
        if self._extra is not None:
            yield from (m.span() for m in self._extra.finditer(text))
        for m in _TITLED.finditer(text):
            yield m.span(1)
        for m in _CUE.finditer(text):
            if m.group(1).lower() not in NOT_NAMES:
                yield m.span(1)
        tokens = list(_CAP_TOKEN.finditer(text))
        for i, m in enumerate(tokens):
            word = m.group().lower().rstrip("'’s").rstrip("'’")
            if word in FIRST_NAMES and word not in NOT_NAMES:
                end = m.end()
                # a capitalised word right after a first name is most likely the surname
                if i + 1 < len(tokens) and text[m.end():tokens[i + 1].start()] == " " \
                        and tokens[i + 1].group().lower() not in NOT_NAMES:
                    end = tokens[i + 1].end()
                yield m.start(), end

    def redact(self, text: str) -> Redacted:
        spans = self.find(text)
        if not spans:
            return Redacted(text, text, [])
        numbers: dict[tuple[str, str], int] = {}
        counters: dict[str, int] = {}
        parts, pos = [], 0
        for s in spans:
            key = (s.kind, s.text.lower())
            if key not in numbers:
                counters[s.kind] = counters.get(s.kind, 0) + 1
                numbers[key] = counters[s.kind]
            parts.append(text[pos:s.start])
            parts.append(f"[{s.kind.upper()}_{numbers[key]}]")
            pos = s.end
        parts.append(text[pos:])
        return Redacted("".join(parts), text, spans)

    def __call__(self, text: str) -> str:
        return self.redact(text).text


def redact_messages(messages: list[dict], redactor: Redactor) -> tuple[list[dict], int]:
    """A copy of chat messages with every string ``content`` redacted, and the number of spans replaced."""
    out, n = [], 0
    for msg in messages:
        m = dict(msg)
        if isinstance(m.get("content"), str):
            r = redactor.redact(m["content"])
            m["content"] = r.text
            n += len(r.spans)
        out.append(m)
    return out, n
