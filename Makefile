# Two entry points, both from a fresh clone: `make demo` and `make test` (see README).
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip install --disable-pip-version-check -q -c constraints.txt
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
# torch: a CPU build (about 200 MB), never PyPI's default CUDA build (several GB). A wheel already on the machine
# (pip's find-links, e.g. a CI image's) is used first, without touching any index; otherwise PyTorch's CPU index.
TORCH_INDEX ?= https://download.pytorch.org/whl/cpu
# llama.cpp for the llm tests: only what the OpenAI-compatible server needs. LLAVA_BUILD=OFF skips the multimodal
# library (51 of llama-cpp-python 0.3.36's 168 compile units), GGML_LLAMAFILE=OFF the template-heavy sgemm kernels.
# GGML_NATIVE=OFF with AVX2: a portable build. A native build on a CPU with AMX compiled ggml's AMX matmul, which
# crashed the server (SIGSEGV in ggml_backend_amx_mul_mat) on its first completion; a native wheel in pip's cache
# would also carry one machine's instruction set to the next.
LLAMA_CMAKE_ARGS ?= -DLLAVA_BUILD=OFF -DGGML_LLAMAFILE=OFF -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON \
	-DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON
NPROC := $(shell nproc 2>/dev/null || sysctl -n hw.ncpu 2>/dev/null || echo 2)

.PHONY: demo test test-quick lint clean

$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PIP) --no-index --no-deps torch 2>/dev/null && $(PIP) torch || $(PIP) --index-url $(TORCH_INDEX) torch
	@command -v chromium >/dev/null || command -v chromium-browser >/dev/null || { \
	  echo "installing Chromium (Debian package) for the dashboard's browser test"; \
	  apt-get update -qq && apt-get install -y -qq chromium >/dev/null; } || \
	  echo "note: could not install chromium; the browser test will say how"
	$(PIP) -e '.[test]'
	touch $@

demo: $(VENV)/.installed
	$(VENV)/bin/alliance demo

test: $(VENV)/.installed $(VENV)/.llm-installed
	$(VENV)/bin/ruff check src tests benchmarks
	$(PY) -m pytest

# The llm tests need the local model server: llama-cpp-python compiles llama.cpp from source, once per venv (the
# longest step of `make test`: see DEVELOPERS.md; pip caches the built wheel, so a new venv reuses it).
$(VENV)/.llm-installed: $(VENV)/.installed
	@echo "one-time set-up: compiling llama.cpp (llama-cpp-python) for the local model server the llm tests start;"
	@echo "  about half an hour on 2 cores; \`make test-quick\` skips those tests and this step"
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS) $(CMAKE_ARGS)" CMAKE_BUILD_PARALLEL_LEVEL=$(NPROC) $(PIP) -e '.[test,llm]'
	touch $@

# Skips the tests that need the local language-model server.
test-quick: $(VENV)/.installed
	$(PY) -m pytest -m "not llm"

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check src tests benchmarks

clean:
	rm -rf $(VENV) alliance-demo alliance-out .pytest_cache .ruff_cache
