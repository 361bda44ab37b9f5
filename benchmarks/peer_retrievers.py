"""The peer retrievers of ``peers_retrieval.py``: bm25s, LangChain and LlamaIndex, fed cached e5 vectors.

Each adapter is built once per corpus and answers ``search(query, k) -> [doc id, ...]`` best first.
Hybrid peers ask each side for ``max(k, candidates)`` hits - the 50 per side Dossier's own hybrid
search uses - and cut the fused list to ``k``, so candidate depth does not differ between systems.
Needs the ``bench`` extra; imported only by ``peers_retrieval.py``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import bm25s
import jieba
import numpy as np
import Stemmer
from langchain_classic.retrievers import EnsembleRetriever
from langchain_community.retrievers import BM25Retriever as LCBM25Retriever
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.vectorstores import InMemoryVectorStore
from llama_index.core import Settings, VectorStoreIndex
from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.llms import MockLLM
from llama_index.core.retrievers import QueryFusionRetriever
from llama_index.core.schema import TextNode
from llama_index.retrievers.bm25 import BM25Retriever as LIBM25Retriever
from pydantic import PrivateAttr

from tools.text.language import CJK_CHAR_CLASS

# Nothing may reach a network: no LLM (QueryFusionRetriever with num_queries=1 never calls it) and
# no default OpenAI embedder (every index gets the e5 wrapper explicitly).
Settings.llm = MockLLM()
jieba.setLogLevel(60)

_CJK_RUN = re.compile(f"([{CJK_CHAR_CLASS}]+)")
_WORD = re.compile(r"(?u)\b\w\w+\b")  # bm25s' own default token pattern
# LlamaIndex's BM25Retriever only takes a token regex (its tokenizer argument is deprecated and
# ignored), so for Chinese corpora it gets single CJK characters plus its default words.
_LI_CJK_PATTERN = rf"(?u)[{CJK_CHAR_CLASS}]|\b\w\w+\b"
_STOP = frozenset(bm25s.stopwords.STOPWORDS_EN)


@lru_cache(maxsize=1)
def _stemmer() -> Stemmer.Stemmer:
    return Stemmer.Stemmer("english")


def bm25_tokens(text: str) -> list[str]:
    """Lower case; Chinese runs segmented by jieba (as Dossier's index); other words stop-listed
    and Snowball-stemmed (as bm25s' English defaults). Used for bm25s and LangChain's BM25."""
    out: list[str] = []
    for i, part in enumerate(_CJK_RUN.split(text.lower())):
        if i % 2:
            out += [w for w in jieba.lcut(part) if w.strip()]
        else:
            out += _stemmer().stemWords([w for w in _WORD.findall(part) if w not in _STOP])
    return out


class VectorLookup:
    """Cached e5-small vectors: passages by text, queries by text (e5 prefixes already applied)."""

    def __init__(self, cache: Any) -> None:
        self.cache = cache

    def passage(self, text: str) -> np.ndarray:
        return self.cache.get("passage", text)

    def query(self, text: str) -> np.ndarray:
        return self.cache.get("query", text)


# -- bm25s ----------------------------------------------------------------------------------

class Bm25sRetriever:
    name = "bm25s"

    def __init__(self, ids: Sequence[str], bm25_texts: Sequence[str]) -> None:
        self.ids = list(ids)
        self.index = bm25s.BM25()  # Lucene variant, k1=1.5, b=0.75
        self.index.index([bm25_tokens(t) for t in bm25_texts], show_progress=False)

    def search(self, query: str, k: int) -> list[str]:
        tokens = [t for t in bm25_tokens(query) if t in self.index.vocab_dict]
        if not tokens:
            return []
        scores = self.index.get_scores(tokens)
        top = np.argsort(-scores, kind="stable")[:k]
        return [self.ids[i] for i in top if scores[i] > 0]  # unmatched documents are not hits


# -- LangChain ------------------------------------------------------------------------------

class LangChainE5(Embeddings):
    """LangChain ``Embeddings`` over the cached e5-small vectors."""

    def __init__(self, lookup: VectorLookup) -> None:
        self.lookup = lookup

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self.lookup.passage(t).tolist() for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return self.lookup.query(text).tolist()


class LangChainEnsemble:
    """``EnsembleRetriever([BM25Retriever, InMemoryVectorStore retriever], weights=[0.5, 0.5])``."""

    name = "LangChain Ensemble"

    def __init__(self, ids: Sequence[str], texts: Sequence[str], bm25_texts: Sequence[str],
                 lookup: VectorLookup, candidates: int) -> None:
        self.candidates = candidates
        self.bm25 = LCBM25Retriever.from_documents(
            [Document(page_content=t, metadata={"id": i}) for i, t in zip(ids, bm25_texts, strict=True)],
            preprocess_func=bm25_tokens)
        self.store = InMemoryVectorStore(LangChainE5(lookup))
        documents = [Document(page_content=t, metadata={"id": i}) for i, t in zip(ids, texts, strict=True)]
        self.store.add_documents(documents, ids=list(ids))
        self.vector = self.store.as_retriever(search_kwargs={"k": candidates})
        # id_key: the two sides hold different page_content (title only on the BM25 side)
        self.ensemble = EnsembleRetriever(retrievers=[self.bm25, self.vector], weights=[0.5, 0.5], id_key="id")

    def search(self, query: str, k: int) -> list[str]:
        depth = max(k, self.candidates)
        self.bm25.k = depth
        self.vector.search_kwargs = {"k": depth}
        return [d.metadata["id"] for d in self.ensemble.invoke(query)][:k]


# -- LlamaIndex -----------------------------------------------------------------------------

class LlamaIndexE5(BaseEmbedding):
    """LlamaIndex ``BaseEmbedding`` over the cached e5-small vectors."""

    _lookup: VectorLookup = PrivateAttr()

    def __init__(self, lookup: VectorLookup, **kwargs: Any) -> None:
        super().__init__(model_name="e5-small", **kwargs)
        self._lookup = lookup

    def _get_query_embedding(self, query: str) -> list[float]:
        return self._lookup.query(query).tolist()

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return self._get_query_embedding(query)

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._lookup.passage(text).tolist()


def llama_nodes(ids: Sequence[str], texts: Sequence[str], titles: Sequence[str], *,
                embed_title: bool) -> list[TextNode]:
    """One node per document; a title sits in metadata, kept out of the embedded text (as in
    Dossier) but read by BM25. Both node sets hash alike, so fusion merges their hits."""
    nodes = []
    for doc_id, text, title in zip(ids, texts, titles, strict=True):
        meta = {"title": title} if title else {}
        nodes.append(TextNode(id_=doc_id, text=text, metadata=meta,
                              excluded_embed_metadata_keys=[] if embed_title else list(meta)))
    return nodes


class LlamaIndexRetrievers:
    """``VectorStoreIndex`` (default in-memory store) and ``QueryFusionRetriever`` of it and
    ``BM25Retriever``, reciprocal rerank, one query (no LLM)."""

    def __init__(self, ids: Sequence[str], texts: Sequence[str], titles: Sequence[str],
                 lookup: VectorLookup, candidates: int, *, chinese: bool) -> None:
        self.candidates = candidates
        embed = LlamaIndexE5(lookup)
        self.index = VectorStoreIndex(llama_nodes(ids, texts, titles, embed_title=False), embed_model=embed)
        pattern = {"token_pattern": _LI_CJK_PATTERN} if chinese else {}
        self.bm25 = LIBM25Retriever.from_defaults(nodes=llama_nodes(ids, texts, titles, embed_title=True),
                                                  similarity_top_k=candidates, **pattern)
        self.vector = self.index.as_retriever(similarity_top_k=candidates)
        self.fusion = QueryFusionRetriever([self.vector, self.bm25], llm=MockLLM(), mode="reciprocal_rerank",
                                           similarity_top_k=candidates, num_queries=1, use_async=False)

    def _depth(self, k: int) -> int:
        depth = max(k, self.candidates)
        self.vector.similarity_top_k = depth
        self.bm25.similarity_top_k = min(depth, int(self.bm25.bm25.scores["num_docs"]))
        self.fusion.similarity_top_k = depth
        return depth

    def search_vector(self, query: str, k: int) -> list[str]:
        self._depth(k)
        return [n.node.node_id for n in self.vector.retrieve(query)][:k]

    def search_fusion(self, query: str, k: int) -> list[str]:
        self._depth(k)
        return [n.node.node_id for n in self.fusion.retrieve(query)][:k]


class Bound:
    """A named search function, so every system looks alike to the evaluation loop."""

    def __init__(self, name: str, search: Any) -> None:
        self.name, self.search = name, search


def build_peers(ids: Sequence[str], texts: Sequence[str], titles: Sequence[str], lookup: VectorLookup,
                *, candidates: int, chinese: bool) -> list[Any]:
    """Every peer system over one corpus (``texts`` embedded; BM25 reads title + text)."""
    bm25_texts = [f"{t}\n{x}" if t else x for t, x in zip(titles, texts, strict=True)]
    li = LlamaIndexRetrievers(ids, texts, titles, lookup, candidates, chinese=chinese)
    return [
        Bm25sRetriever(ids, bm25_texts),
        LangChainEnsemble(ids, texts, bm25_texts, lookup, candidates),
        Bound("LlamaIndex vector", li.search_vector),
        Bound("LlamaIndex fusion", li.search_fusion),
    ]
