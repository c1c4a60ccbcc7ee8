"""What is stored is protected: the model client's cache and audit log and the embedding cache are owner-only, the
audit log keeps hashes and sizes unless asked for text, and the embedding cache is keyed with a per-installation
secret so read access cannot test whether a sentence was in a corpus."""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import stat

import httpx
import numpy as np
import pytest

from alliance.encoders.cache import SECRET_FILE, CachedEncoder, legacy_text_key
from alliance.llm import LLMClient, LLMConfig

pytestmark = pytest.mark.skipif(os.name != "posix", reason="POSIX permissions")


def _mode(p) -> int:
    return stat.S_IMODE(os.stat(p).st_mode)


@pytest.fixture
def open_umask():
    old = os.umask(0o022)  # the usual default, which made everything world-readable before
    yield
    os.umask(old)


def _client(tmp_path, **kw):
    ok = {"choices": [{"message": {"content": "Noted, Siobhan."}}], "usage": {"prompt_tokens": 1}}
    cfg = LLMConfig("https://api.example.org/v1", "m", cache_dir=str(tmp_path / "llm"), **kw)
    return LLMClient(cfg, transport=httpx.MockTransport(lambda r: httpx.Response(200, json=ok)),
                     sleep=lambda s: None)


def test_client_cache_and_audit_log_are_owner_only_and_keep_no_text_by_default(tmp_path, open_umask):
    client = _client(tmp_path, redact=False)
    client.chat([{"role": "user", "content": "My name is Siobhan and I live in Tooting."}])
    state = tmp_path / "llm"
    assert _mode(state) == 0o700
    for f in state.iterdir():
        assert _mode(f) == 0o600, f
    log = (state / "audit.jsonl").read_text()
    assert "Siobhan" not in log and "Tooting" not in log
    request, answer = (json.loads(x) for x in log.splitlines())
    assert set(request["body"]) == {"sha256", "bytes"} and request["body"]["bytes"] > 40
    assert answer["content"] == {"sha256": hashlib.sha256(b"Noted, Siobhan.").hexdigest(), "bytes": 15}


def test_audit_text_on_request_keeps_what_was_sent(tmp_path):
    _client(tmp_path, audit_text=True).chat([{"role": "user", "content": "My name is Siobhan."}])
    log = (tmp_path / "llm" / "audit.jsonl").read_text()
    assert "[NAME_1]" in log and "My name is [NAME_1]." in log and "Noted, Siobhan." in log


class _Counting:
    model_id = "toy"
    dimension = 3

    def __init__(self):
        self.seen: list[str] = []

    def encode(self, texts):
        self.seen += list(texts)
        return np.array([[len(t), 1.0, 0.0] for t in texts], dtype=np.float32)


def test_embedding_cache_is_keyed_with_a_secret_and_owner_only(tmp_path, open_umask):
    folder = tmp_path / "cache"
    enc = CachedEncoder(_Counting(), folder)
    enc.encode(["I was at the clinic on Tuesday.", "hello"])
    enc.close()
    assert _mode(folder) == 0o700 and _mode(folder / SECRET_FILE) == 0o600
    assert _mode(folder / "embeddings.sqlite") == 0o600
    secret = (folder / SECRET_FILE).read_bytes()
    assert len(secret) == 32
    con = sqlite3.connect(folder / "embeddings.sqlite")
    keys = {bytes(k) for (k,) in con.execute("SELECT key FROM emb_keyed")}
    con.close()
    # someone who can read the cache but not guess the secret cannot test a sentence by hashing it
    assert legacy_text_key("I was at the clinic on Tuesday.") not in keys and len(keys) == 2
    # the same installation reads its own vectors back; the secret is made once
    again = CachedEncoder(_Counting(), folder)
    again.encode(["hello"])
    assert again.hits == 1 and again.encoder.seen == [] and (folder / SECRET_FILE).read_bytes() == secret
    # another installation (another secret) shares nothing
    other = tmp_path / "other"
    other.mkdir()
    (other / "embeddings.sqlite").write_bytes((folder / "embeddings.sqlite").read_bytes())
    third = CachedEncoder(_Counting(), other)
    third.encode(["hello"])
    assert third.misses == 1


def test_unkeyed_cache_of_an_older_version_is_migrated_without_recomputing(tmp_path):
    folder = tmp_path / "cache"
    folder.mkdir()
    con = sqlite3.connect(folder / "embeddings.sqlite")
    con.execute("CREATE TABLE emb (model TEXT, key BLOB, dim INTEGER, vec BLOB, PRIMARY KEY(model, key))")
    vec = np.array([9, 9, 9], dtype=np.float32)
    con.executemany("INSERT INTO emb VALUES (?, ?, ?, ?)",
                    [("toy", legacy_text_key(t), 3, vec.tobytes()) for t in ("old one", "old two")])
    con.commit()
    con.close()
    enc = CachedEncoder(_Counting(), folder)
    out = enc.encode(["old one", "new"])
    assert enc.encoder.seen == ["new"] and out[0].tolist() == [9, 9, 9]
    con = sqlite3.connect(folder / "embeddings.sqlite")
    assert con.execute("SELECT count(*) FROM emb").fetchone()[0] == 1  # the migrated row left the unkeyed table
    con.close()
    assert enc.prune_legacy() == 1 and enc.prune_legacy() == 0
