import numpy as np
import pytest

from alliance.encoders import CachedEncoder, load_encoder
from alliance.encoders.sentence import SentenceTransformerEncoder
from tests.helpers import TableEncoder


def test_cache_returns_stored_vectors_without_recomputing(tmp_path):
    inner = TableEncoder({"a": [1, 0, 0], "b": [0, 1, 0]}, fallback=[0, 0, 1])
    enc = CachedEncoder(inner, tmp_path)
    first = enc.encode(["a", "b", "a", "c"])
    assert inner.texts_encoded == 3  # the repeated "a" is encoded once
    again = CachedEncoder(inner, tmp_path).encode(["c", "b", "a"])  # a new process would see the same file
    assert inner.texts_encoded == 3
    np.testing.assert_allclose(again, first[[3, 1, 0]])
    assert enc.misses == 3 and enc.hits == 0


def test_cache_is_keyed_by_model(tmp_path):
    a = CachedEncoder(TableEncoder({"x": [1, 0]}, model_id="m1"), tmp_path)
    b_inner = TableEncoder({"x": [0, 1]}, fallback=[0, 1], model_id="m2")
    b = CachedEncoder(b_inner, tmp_path)
    np.testing.assert_allclose(a.encode(["x"]), [[1, 0]])
    np.testing.assert_allclose(b.encode(["x"]), [[0, 1]])
    assert b_inner.texts_encoded == 1


def test_empty_input_gives_empty_matrix(tmp_path):
    enc = CachedEncoder(TableEncoder({"x": [1, 0]}), tmp_path)
    assert enc.encode([]).shape == (0, 2)


def test_unknown_model_offline_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(FileNotFoundError, match="not a local folder and network access is off"):
        SentenceTransformerEncoder("no-such-org/no-such-model").encode(["hello"])


@pytest.mark.slow
def test_default_encoder_is_local_and_normalised(tmp_path):
    enc = load_encoder(cache_dir=tmp_path)
    v = enc.encode(["I feel heard.", "The bus was late."])
    assert v.shape == (2, 384) and v.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    assert enc.model_id == "sentence-transformers/all-MiniLM-L6-v2"
    # meaning, not noise: paraphrases are closer than unrelated sentences
    p = enc.encode(["I feel like you understand me.", "You really get me.", "The bus was late."])
    assert p[0] @ p[1] > p[0] @ p[2]


def test_dimension_window_and_tokenizer_come_from_config_files_without_torch():
    """A warm run asks the encoder for its dimension and window; that must not load torch or the transformer."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from alliance.encoders import load_encoder\n"
        "from alliance.lenses.empathy import encoder_window, split_windows\n"
        "e = load_encoder(use_cache=False)\n"
        "tok, limit = encoder_window(e)\n"
        "long = 'I hear you. ' * 200\n"
        "print(e.dimension, limit, len(split_windows([long, 'short'], (tok, limit))[0]), 'torch' in sys.modules, e.loaded)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    dim, limit, n_windows, torch_loaded, loaded = out.stdout.split()
    assert (int(dim), int(limit)) == (384, 254)  # MiniLM: 384 dimensions, 256 pieces less [CLS] and [SEP]
    assert int(n_windows) >= 3  # 600 word pieces counted in full: the file's stored truncation at 128 is off
    assert (torch_loaded, loaded) == ("False", "False")


@pytest.mark.slow
def test_config_answers_equal_the_loaded_model():
    from alliance.encoders.sentence import FastTokenizer

    enc = SentenceTransformerEncoder()
    fast = enc.tokenizer
    assert isinstance(fast, FastTokenizer)
    cfg = (enc.dimension, enc.max_seq_length)
    model = SentenceTransformerEncoder().model
    assert cfg == (model.get_sentence_embedding_dimension(), model.max_seq_length)
    texts = ["Don't worry, I'm here.", "naïve café “quotes” 😀", "word " * 300, ""]
    assert fast(texts, add_special_tokens=False)["input_ids"] == \
        model.tokenizer(texts, add_special_tokens=False, verbose=False)["input_ids"]


def test_encode_groups_is_one_call_split_back_by_group():
    from alliance.encoders.base import encode_groups

    enc = TableEncoder({"a": [1, 0], "b": [0, 1]})
    got = encode_groups(enc, {"bg": ["a", "b", "a"], 0: ["b"], 1: []})
    assert enc.calls == 1
    np.testing.assert_allclose(got["bg"], [[1, 0], [0, 1], [1, 0]])
    np.testing.assert_allclose(got[0], [[0, 1]])
    assert got[1].shape == (0, 2)


def test_onnx_backend_without_an_export_says_how_to_make_one(tmp_path):
    from alliance.encoders.onnx import OnnxEncoder

    with pytest.raises(FileNotFoundError, match="export_onnx"):
        OnnxEncoder(tmp_path / "nothing-here")
    with pytest.raises(ValueError, match="backend"):
        load_encoder(backend="tensorflow")


@pytest.mark.slow
def test_onnx_export_gives_the_torch_vectors(tmp_path):
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from alliance.encoders.onnx import OnnxEncoder, export_onnx

    folder = export_onnx(path=tmp_path / "onnx")
    texts = ["I feel heard.", "The bus was late.", "word " * 400, ""]  # 400 words: truncated like torch's
    onnx = load_encoder(str(folder), backend="onnx", use_cache=False)
    assert isinstance(onnx, OnnxEncoder) and onnx.model_id == "sentence-transformers/all-MiniLM-L6-v2"
    got, want = onnx.encode(texts), SentenceTransformerEncoder().encode(texts)
    assert got.shape == want.shape == (4, 384)
    assert ((got * want).sum(axis=1) > 0.99999).all()
