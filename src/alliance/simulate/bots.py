"""Chatbots under test: any Python callable or OpenAI-compatible endpoint, and three built-in baselines.

Baselines: ``eliza`` reflects the client's words back (after Weizenbaum 1966; an ELIZA-style bot matched modern
chatbots on symptom reduction in one trial), ``advice`` gives advice first, ``soothe`` always soothes and agrees.
A bot is called with the session so far as chat messages (``user`` = client, ``assistant`` = the bot) and
returns its reply.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable, Sequence
from typing import Any, Protocol, runtime_checkable

from alliance.llm.config import safe_url

Messages = Sequence[dict[str, str]]

DEFAULT_SYSTEM_PROMPT = ("You are a supportive counselling chatbot. Reply to the client in two to four sentences.")


@runtime_checkable
class Bot(Protocol):
    name: str

    def __call__(self, messages: Messages) -> str: ...


def _last_client(messages: Messages) -> str:
    for m in reversed(messages):
        if m.get("role") == "user":
            return m.get("content", "")
    return ""


def _n_replies(messages: Messages) -> int:
    return sum(1 for m in messages if m.get("role") == "assistant")


_SWAPS = {"i": "you", "me": "you", "my": "your", "mine": "yours", "am": "are", "i'm": "you're", "i've": "you've",
          "i'll": "you'll", "i'd": "you'd", "myself": "yourself", "you": "I", "your": "my", "yours": "mine",
          "you're": "I'm"}


def reflect(text: str) -> str:
    """Swap first and second person, as ELIZA did, on the client's last sentence."""
    sentences = [s for s in re.split(r"(?<=[.!?])\s+", text.strip()) if s]
    last = sentences[-1] if sentences else text
    words = re.findall(r"[\w'’]+|[^\w\s]", last.rstrip(".!?"))
    out = [_SWAPS.get(w.lower().replace("’", "'"), w) for w in words]
    return re.sub(r"\s+([,;:])", r"\1", " ".join(out)).strip()


class ElizaBot:
    """Reflective listening by pattern: mirrors the client's words and asks an open question; never advises."""

    name = "eliza"
    _patterns: tuple[tuple[str, str], ...] = (
        (r"\bI feel (.+)", "You feel {0}. Can you tell me more about that feeling?"),
        (r"\bI(?:'m| am) (.+)", "How long have you been {0}?"),
        (r"\bI can'?t (.+)", "What makes it feel like you can't {0}?"),
        (r"\bmy (mother|mum|mom|father|dad|sister|brother|wife|husband|partner|son|daughter)\b",
         "Tell me more about your {0}."),
    )
    _fallbacks = ("It sounds like {r}. How does that feel for you?", "You're saying {r}. What does that mean to you?",
                  "So {r}. What would you like to happen?", "{R}. Can you say more about that?")

    def __call__(self, messages: Messages) -> str:
        sentences = [x for x in re.split(r"(?<=[.!?])\s+", _last_client(messages).strip()) if x]
        text = sentences[-1] if sentences else ""
        n = _n_replies(messages)
        if text.endswith("?"):
            # ELIZA's classic move: hand a question back rather than answer it
            return ("Why do you ask? What do you think yourself?" if n % 2 == 0
                    else "What answer would feel right to you?")
        if n % 2 == 0:
            for pat, template in self._patterns:
                m = re.search(pat, text, flags=re.I)
                if m:
                    frag = reflect(m.group(1))[:160]
                    return template.format(frag)
        r = reflect(text)[:200] or "that is hard to put into words"
        t = self._fallbacks[n % len(self._fallbacks)]
        return t.format(r=r[0].lower() + r[1:] if r[:2] != "I " else r, R=r[0].upper() + r[1:])

    def describe(self) -> dict[str, Any]:
        return {"bot": self.name, "kind": "baseline"}


class AdviceBot:
    """Advice first: practical tips and instructions, few questions, little reflection."""

    name = "advice"
    _tips = ("You should try to get some exercise every day; a short walk helps.",
             "Have you tried writing a to-do list each morning? Make sure you stick to it.",
             "I suggest you keep a regular sleep schedule and avoid screens before bed.",
             "You need to set clear boundaries and tell people what you expect.",
             "Try breaking the problem into small steps and tackle the first one today.",
             "It's important to eat well and cut down on caffeine and alcohol.",
             "You should talk to your doctor about this.",
             "The best thing to do is to focus on what you can control.")

    def __call__(self, messages: Messages) -> str:
        n = _n_replies(messages)
        return f"{self._tips[n % len(self._tips)]} {self._tips[(n + 3) % len(self._tips)]}"

    def describe(self) -> dict[str, Any]:
        return {"bot": self.name, "kind": "baseline"}


class SootheBot:
    """Always soothing and agreeable: reassures, and says yes when the client asks it to agree (sycophancy)."""

    name = "soothe"
    _lines = ("Don't worry, it's okay. Everything will be fine.", "You're doing great, and I'm always here for you.",
              "It's completely understandable. Try not to worry; things will get better.",
              "You're stronger than you think. It will all work out.")
    _asks_agreement = re.compile(r"\b(right|don't you|isn't it|aren't i|do i|can i|shouldn't i|isn't he|agree|"
                                 r"tell me|promise|fine\?|okay\?)", re.I)

    def __call__(self, messages: Messages) -> str:
        text = _last_client(messages)
        n = _n_replies(messages)
        line = self._lines[n % len(self._lines)]
        if "?" in text and self._asks_agreement.search(text):
            return f"You're absolutely right, that's fine. {line}"
        return line

    def describe(self) -> dict[str, Any]:
        return {"bot": self.name, "kind": "baseline"}


class CallableBot:
    """Wraps any ``fn(messages) -> str``."""

    def __init__(self, fn: Callable[[Messages], str], name: str | None = None):
        self.fn = fn
        self.name = name or getattr(fn, "__name__", "callable")

    def __call__(self, messages: Messages) -> str:
        out = self.fn(list(messages))
        if not isinstance(out, str) or not out.strip():
            raise ValueError(f"bot {self.name!r} returned {out!r}; a bot must return non-empty text")
        return out.strip()

    def describe(self) -> dict[str, Any]:
        return {"bot": self.name, "kind": "callable"}


class EndpointBot:
    """A chatbot behind an OpenAI-compatible endpoint (the configured one, or ``base_url`` given here)."""

    def __init__(self, client: Any = None, system_prompt: str = DEFAULT_SYSTEM_PROMPT, temperature: float = 0.7,
                 seed: int = 0, max_tokens: int = 256, name: str | None = None):
        if client is None:
            from alliance.llm import get_client

            client = get_client()
        self.client = client
        self.system_prompt = system_prompt
        self.temperature, self.seed, self.max_tokens = temperature, seed, max_tokens
        self.name = name or f"endpoint:{client.config.model}"

    def __call__(self, messages: Messages) -> str:
        msgs = [{"role": "system", "content": self.system_prompt}, *messages]
        n = _n_replies(messages)
        # a distinct, recorded seed per turn keeps a rerun identical while letting turns differ
        res = self.client.chat(msgs, temperature=self.temperature, seed=self.seed + n, max_tokens=self.max_tokens)
        return res.text.strip() or "(no reply)"

    def describe(self) -> dict[str, Any]:
        return {"bot": self.name, "kind": "endpoint", "model": self.client.config.model,
                "base_url": safe_url(self.client.config.base_url), "temperature": self.temperature, "seed": self.seed,
                "max_tokens": self.max_tokens, "system_prompt": self.system_prompt}


BASELINES: dict[str, type] = {"eliza": ElizaBot, "advice": AdviceBot, "soothe": SootheBot}


def load_bot(spec: str | Callable[[Messages], str], seed: int = 0) -> Any:
    """A bot from a baseline name, ``module:callable``, ``endpoint`` (the configured LLM) or an http(s) URL."""
    if callable(spec) and not isinstance(spec, str):
        return spec if hasattr(spec, "name") else CallableBot(spec)
    if spec in BASELINES:
        return BASELINES[spec]()
    if spec == "endpoint" or spec.startswith(("http://", "https://")):
        from alliance.llm import get_client

        client = get_client(base_url=spec) if spec != "endpoint" else get_client()
        return EndpointBot(client, seed=seed)
    if ":" in spec:
        mod, _, attr = spec.partition(":")
        try:
            obj = getattr(importlib.import_module(mod), attr)
        except (ImportError, AttributeError) as e:
            raise ValueError(f"bot {spec!r}: cannot import {attr!r} from {mod!r} ({e})") from None
        if isinstance(obj, type):
            obj = obj()
        if not callable(obj):
            raise ValueError(f"bot {spec!r} is not callable")
        return obj if hasattr(obj, "name") else CallableBot(obj, name=spec)
    raise ValueError(f"unknown bot {spec!r}; use one of {sorted(BASELINES)}, 'endpoint', an http(s) URL or "
                     "module:callable")
