"""Redaction of personal identifiers before text leaves the machine: names, places, e-mails, URLs, phone numbers,
national and record numbers, postal addresses, dates (and dates of birth) and ages, every occurrence of each.

Evidence: patterns (alliance.llm.pii_patterns) and word lists (alliance.llm.pii_lexicon) with a dictionary test
for capitalised and lower-case words that are not ordinary English; measured on a seeded PII set of our own by
benchmarks/validate_redaction.py (docs/llm.md gives the figures and the limits).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from alliance.llm import pii_patterns as P
from alliance.llm.pii_lexicon import (
    ALLOW_CAPS,
    COMMON_WORD_NAMES,
    FIRST_NAMES,
    SURNAMES,
    is_ordinary,
    is_proper_noun,
    near_ordinary,
)

#: Kept for callers of the first version; the lexicon module holds the lists now.
NOT_NAMES = ALLOW_CAPS



def _set(block: str) -> frozenset[str]:
    return frozenset(block.split())


_WORD = re.compile(r"[^\W\d_]+(?:['’-][^\W\d_]+)*")
_POSSESSIVE = re.compile(r"['’]s$")
#: Capitalised words that can stand before "said" or "from work" and are no one's name.
_NOT_PEOPLE = _set("nobody everyone everybody someone somebody anyone anybody people one none another each "
                        "both neither either someone's everyone's no yes well oh so and but then")
#: Capitalised words that begin a place name ("St Helens", "Port Talbot") and belong inside its span.
_PLACE_PREFIX = _set("st st. saint mount mt port fort lake upper lower north south east west new great little "
                          "old king's kings")
#: Lower-case words that often follow a cue ("my sister is", "called in", "thank you so much") and name no one.
_FUNCTION = _set("""
a an the and or but so if is was are were be been am has had have do did does not no yes to of in on at for with
by from up out off over about into than then that this these those there here it its it's he she they we you me him
her them us my your his our their who whom which what when where why how all any some much many very too also just
really still even ever never always again too i'm i've i'd i'll said says say told tells asked asks came come went
goes go got get gets getting made make makes know knows knew think thinks thought feel feels felt left keeps kept
""")


def _is_latin(word: str) -> bool:
    return all(ch.isascii() or not ch.isalpha() or "LATIN" in unicodedata.name(ch, "") for ch in word)


def _sentence_initial(text: str, start: int) -> bool:
    before = text[:start].rstrip(" \t\"'“‘(*-–—")
    return not before or before[-1] in ".!?:;\n…" or before.endswith("]")


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
    service knows about. ``kinds`` picks which identifiers to remove (default: all). :meth:`redact_many` treats
    several texts (the messages of one request, the turns of one session) as one scope: a name found in any of
    them is removed from all of them, and the same identifier gets the same placeholder everywhere.
    """

    KINDS: tuple[str, ...] = ("email", "url", "id", "phone", "address", "date", "age", "place", "name")

    def __init__(self, extra_names: Iterable[str] = (), kinds: Iterable[str] | None = None):
        self.extra_names = tuple(sorted({n.strip() for n in extra_names if n and n.strip()}, key=len, reverse=True))
        self.kinds = tuple(kinds) if kinds is not None else self.KINDS
        unknown = set(self.kinds) - set(self.KINDS)
        if unknown:
            raise ValueError(f"unknown redaction kind(s) {sorted(unknown)}; known: {self.KINDS}")
        self._found: dict[str, list[Span]] = {}  # per-text finds, reused when a session is the scope of many requests
        self._extra = (re.compile(r"(?<!\w)(?:" + "|".join(re.escape(n) for n in self.extra_names) + r")(?!\w)",
                                  re.I) if self.extra_names else None)

    # detection in one text ----------------------------------------------------------------------------------
    def find(self, text: str) -> list[Span]:
        """Non-overlapping spans to redact in ``text`` alone (overlapping finds are merged, never dropped)."""
        found = [Span(s, e, k, text[s:e]) for k in self.kinds for s, e in self._matches(k, text)]
        return _merge(found, text)

    def _find_cached(self, text: str) -> list[Span]:
        hit = self._found.get(text)
        if hit is None:
            if len(self._found) > 20000:
                self._found.clear()
            hit = self._found[text] = self.find(text)
        return hit

    def _matches(self, kind: str, text: str) -> Iterable[tuple[int, int]]:
        if kind == "email":
            yield from (m.span() for m in P.EMAIL.finditer(text))
        elif kind == "url":
            for m in P.URL.finditer(text):
                s, e = m.span()
                while e > s and text[e - 1] in ".,;:!?)]}'\"":  # sentence punctuation after a link
                    e -= 1
                yield s, e
        elif kind == "phone":
            for m in P.PHONE.finditer(text):
                # at least 7 digits: shorter runs are scores, times and counts, not phone numbers
                if sum(ch.isdigit() for ch in m.group()) >= 7:
                    yield m.span()
        elif kind == "id":
            yield from (m.span() for m in P.NATIONAL_ID.finditer(text))
            for m in P.ID_CUE.finditer(text):
                if any(ch.isdigit() for ch in m.group(1)):
                    yield m.span(1)
        elif kind == "address":
            yield from (m.span() for m in P.ADDRESS.finditer(text))
            for m in P.POSTCODE.finditer(text):
                yield m.span(1) if m.group(1) else m.span()
        elif kind == "date":
            yield from (m.span() for m in P.DATE.finditer(text))
            yield from (m.span(1) for m in P.BIRTH.finditer(text))
        elif kind == "age":
            yield from (m.span() for m in P.AGE.finditer(text))
        elif kind in ("name", "place"):
            yield from (s[:2] for s in self._names_and_places(text) if s[2] == kind)

    def _names_and_places(self, text: str) -> list[tuple[int, int, str]]:
        """Names and places by word: cues, titles, lists, other scripts and the dictionary test."""
        out: list[tuple[int, int, str]] = []
        if self._extra is not None:
            out += [(*m.span(), "name") for m in self._extra.finditer(text)]
        words = list(_WORD.finditer(text))
        latin = sum(len(w.group()) for w in words if _is_latin(w.group()))
        mostly_latin = latin * 2 >= sum(len(w.group()) for w in words)
        i = 0
        while i < len(words):
            m = words[i]
            kind = self._classify(text, m, mostly_latin)
            if kind is None:
                i += 1
                continue
            end, j = m.end(), i + 1
            # a following name-like word belongs to the same name ("Siobhan Kelly", "Milton Keynes", "siobhan kelly")
            while j < len(words) and text[end:words[j].start()] in (" ", "-") and self._continues(words[j], m):
                end, j = words[j].end(), j + 1
            start = m.start()
            # a capitalised place prefix or given name just before belongs to it ("St Helens", "Precious Jones")
            if i > 0 and text[words[i - 1].end():start] == " " and self._leads(text, words[i - 1], m):
                start = words[i - 1].start()
            poss = _POSSESSIVE.search(text[start:end])
            out.append((start, end - (len(poss.group()) if poss else 0), kind))
            i = j
        return out

    def _classify(self, text: str, m: re.Match[str], mostly_latin: bool) -> str | None:
        word = _POSSESSIVE.sub("", m.group())
        low = word.lower()
        if not _is_latin(word):
            return "name" if mostly_latin else None  # a word in another script inside English text
        before = text[max(0, m.start() - 60):m.start()]
        place = bool(P.PLACE_CUE.search(before))
        cue = bool(P.NAME_CUE.search(before)) or bool(P.TITLE.search(before))
        capital = word[:1].isupper()
        if len(word) < 2 or low in _FUNCTION:
            return None
        if capital:
            if _allowed(low) or (word.isupper() and len(word) <= 5):  # days, faiths, services, acronyms
                return None
            initial = _sentence_initial(text, m.start())
            nxt = _WORD.match(text, m.end() + 1) if text[m.end():m.end() + 1] == " " else None
            if (not initial and nxt and nxt.group()[:1].isupper() and not nxt.group().isupper()
                    and not _allowed(nxt.group().lower())):
                return "place" if place else "name"  # two capitalised words inside a sentence: "Precious Jones"
            if P.TITLE.search(before) or (cue and not is_ordinary(low)) or ((cue or place) and not initial):
                return "place" if place and not P.TITLE.search(before) else "name"
            if low in FIRST_NAMES and (not initial or low not in COMMON_WORD_NAMES):
                return "name"
            if P.PERSON_AFTER.match(text, m.end()) and low not in _NOT_PEOPLE:
                return "name"
            if low in SURNAMES and not initial and not is_ordinary(low):
                return "name"
            if not is_ordinary(low) or (not initial and is_proper_noun(low)):
                return "place" if place else "name"
            return None
        # lower case: a listed given name that is no everyday word, or an unknown word where a cue wants a name
        if _allowed(low):
            return None
        if low in FIRST_NAMES and low not in COMMON_WORD_NAMES and not is_ordinary(low, True):
            return "name"
        if (cue or place) and not is_ordinary(low, True):
            return "place" if place else "name"
        # any other word in no dictionary: a name, unless it is one typo from a word and the writer capitalises
        # (someone who writes "Sarah" elsewhere rarely writes "sarah"; someone who writes all in lower case might)
        if len(low) >= 3 and not is_ordinary(low, True) and (is_proper_noun(low) or not near_ordinary(low)
                                                       or not any(ch.isupper() for ch in text)):
            return "place" if place else "name"
        return None

    @staticmethod
    def _leads(text: str, prev: re.Match[str], m: re.Match[str]) -> bool:
        w = prev.group()
        if not (w[:1].isupper() and m.group()[:1].isupper()) or P.TITLE.search(text[:m.start()]):
            return False
        low = w.lower()
        return low in _PLACE_PREFIX or (not _allowed(low) and low not in _FUNCTION
                                        and not _sentence_initial(text, prev.start()))

    @staticmethod
    def _continues(nxt: re.Match[str], first: re.Match[str]) -> bool:
        w = _POSSESSIVE.sub("", nxt.group())
        low = w.lower()
        if low in _FUNCTION or _allowed(low):
            return False
        if w[:1].isupper():
            return first.group()[:1].isupper() or not is_ordinary(low)
        return not first.group()[:1].isupper() and (low in SURNAMES or not is_ordinary(low, True))

    # redaction of a scope -----------------------------------------------------------------------------------
    def redact_many(self, texts: Sequence[str], context: Sequence[str] = ()) -> list[Redacted]:
        """Redact ``texts`` as one scope: every occurrence of each name or place found in any of them (or in
        ``context``, e.g. the other turns of the session) goes, and each distinct identifier keeps one numbered
        placeholder; numbers follow ``context`` first, so every request about one session numbers alike."""
        found = [self._find_cached(t) for t in texts]
        context_found = [self._find_cached(t) for t in context]
        pattern = self._propagation(context_found + found)
        numbers: dict[tuple[str, str], int] = {}
        counters: dict[str, int] = {}

        def number(s: Span) -> int:
            key = (s.kind, _POSSESSIVE.sub("", s.text).lower())
            if key not in numbers:
                counters[s.kind] = counters.get(s.kind, 0) + 1
                numbers[key] = counters[s.kind]
            return numbers[key]

        for spans in context_found:
            for s in spans:
                number(s)
        out = []
        for text, spans in zip(texts, found, strict=True):
            if pattern is not None:
                extra = [Span(m.start(), m.end(), self._kind_of(m.group(), found), m.group())
                         for m in pattern.finditer(text) if self._propagates(m.group(), found)]
                spans = _merge([*spans, *extra], text)
            parts, pos = [], 0
            for s in spans:
                parts += [text[pos:s.start], f"[{s.kind.upper()}_{number(s)}]"]
                pos = s.end
            parts.append(text[pos:])
            out.append(Redacted("".join(parts), text, spans))
        return out

    @staticmethod
    def _tokens(found: list[list[Span]]) -> dict[str, str]:
        """Each name or place found, and each of its words, mapped to its kind (lower-case keys)."""
        seen: dict[str, str] = {}
        for spans in found:
            for s in spans:
                if s.kind not in ("name", "place"):
                    continue
                seen.setdefault(_POSSESSIVE.sub("", s.text).lower(), s.kind)
                for w in _WORD.findall(s.text):
                    w = _POSSESSIVE.sub("", w)
                    if len(w) >= 2 and w.lower() not in _FUNCTION and w.lower() not in ALLOW_CAPS:
                        seen.setdefault(w.lower(), s.kind)
        return seen

    def _propagation(self, found: list[list[Span]]) -> re.Pattern[str] | None:
        self._seen = self._tokens(found)
        if not self._seen:
            return None
        alts = sorted(self._seen, key=len, reverse=True)
        return re.compile(r"(?<![\w'’])(?:" + "|".join(re.escape(a) for a in alts) + r")(?![\w])", re.I)

    def _propagates(self, match: str, found: list[list[Span]]) -> bool:
        # everyday words that were a name once ("Rose", "High School") go again only when capitalised
        word = _POSSESSIVE.sub("", match)
        return (word[:1].isupper() or not _is_latin(word)
                or not all(is_ordinary(w, True) for w in _WORD.findall(word)))

    def _kind_of(self, match: str, found: list[list[Span]]) -> str:
        return self._seen.get(_POSSESSIVE.sub("", match).lower(), "name")

    def redact(self, text: str) -> Redacted:
        return self.redact_many([text])[0]

    def __call__(self, text: str) -> str:
        return self.redact(text).text


def _allowed(low: str) -> bool:
    """A capitalised word that identifies no one, plurals and possessives included ("Mondays", "Christmas's")."""
    return low in ALLOW_CAPS or (low.endswith("s") and low[:-1] in ALLOW_CAPS)


def _merge(spans: list[Span], text: str) -> list[Span]:
    """Overlapping spans become one covering span (kind of the longest), so no part of an identifier survives."""
    spans = sorted(spans, key=lambda s: (s.start, -(s.end - s.start)))
    out: list[Span] = []
    for s in spans:
        if s.end <= s.start:
            continue
        if out and s.start < out[-1].end:
            last = out[-1]
            if s.end > last.end:
                kind = last.kind if (last.end - last.start) >= (s.end - s.start) else s.kind
                out[-1] = Span(last.start, s.end, kind, text[last.start:s.end])
            continue
        out.append(s)
    return out


def redact_messages(messages: list[dict], redactor: Redactor) -> tuple[list[dict], int]:
    """A copy of chat messages with every string ``content`` redacted as one scope, and the spans replaced."""
    idx = [i for i, m in enumerate(messages) if isinstance(m.get("content"), str)]
    done = redactor.redact_many([messages[i]["content"] for i in idx])
    out = [dict(m) for m in messages]
    for i, r in zip(idx, done, strict=True):
        out[i]["content"] = r.text
    return out, sum(len(r.spans) for r in done)
