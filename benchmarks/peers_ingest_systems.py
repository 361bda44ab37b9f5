"""The systems peers_ingest.py compares, each run in its own child process on one folder.

``CountingE5`` is the one embedder they all get (e5-small, no cache), counting what it embeds.
Every runner takes ``(folder, store, e5)`` and returns ``docs`` and ``chunks``; the parent times it.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

CHUNK_TOKENS, CHUNK_OVERLAP, BATCH = 256, 32, 32  # Dossier's defaults, given to the peers too


# -- the shared embedder ---------------------------------------------------------------------

class CountingE5:
    """The default e5-small embedder, recording the texts it embeds (counted after the clock)."""

    def __init__(self) -> None:
        from tools.embeddings import E5SmallEmbedder

        self.inner = E5SmallEmbedder()
        self.name, self.dim = self.inner.name, self.inner.dim
        self.texts: list[str] = []
        self.calls = 0
        self.inner.embed_passages(["warm up"])  # model load, outside the clock
        self.overhead = self.inner.count_tokens("")  # also loads the token counter's own handle

    def embed_passages(self, texts):
        self.texts.extend(texts)
        self.calls += 1
        return self.inner.embed_passages(texts)

    def embed_query(self, text):
        return self.inner.embed_query(text)

    def count_tokens(self, text):
        return self.inner.count_tokens(text)

    def net_tokens(self, text: str) -> int:
        """Tokens of the text itself: count_tokens adds the fixed ones every passage gets (the
        "passage: " prefix, [CLS], [SEP]), which a splitter must not pay for every piece it weighs."""
        return max(0, self.inner.count_tokens(text) - self.overhead)

    def batched(self, texts: list[str]) -> list[list[float]]:
        out: list[list[float]] = []
        for i in range(0, len(texts), BATCH):
            out.extend(self.embed_passages(texts[i : i + BATCH]).tolist())
        return out


# -- one system in one child process ---------------------------------------------------------

def run_dossier(folder: Path, store: Path, e5: CountingE5) -> dict:
    from tools.knowledge_base import KnowledgeBase

    async def go() -> dict:
        kb = await KnowledgeBase.open(store / "kb", embedder=e5)
        summary = await kb.ingest([folder])
        await kb.close()
        return {"docs": summary.new + summary.changed + summary.unchanged, "chunks": summary.chunks_added,
                "unchanged_files": summary.unchanged, "skipped": len(summary.skipped)}

    return asyncio.run(go())


def run_embedder_alone(folder: Path, store: Path, e5: CountingE5) -> dict:
    """Dossier's stored chunk texts (read before the clock would be fairer, but reading is ~ms)."""
    import lancedb

    table = lancedb.connect(str(store / "kb" / "lancedb")).open_table("chunks")
    rows = sorted(table.to_arrow().select(["source", "char_start", "text"]).to_pylist(),
                  key=lambda r: (r["source"], r["char_start"]))
    e5.batched([r["text"] for r in rows])
    return {"docs": len({r["source"] for r in rows}), "chunks": len(rows)}


def _llama_readers() -> dict:
    """What llama-index-readers-file's PDFReader (pypdf, a document per page) and an HTML text
    reader do; that package is not in the bench extra, and without them .pdf/.html are read as text."""
    from bs4 import BeautifulSoup
    from llama_index.core import Document
    from llama_index.core.readers.base import BaseReader
    from pypdf import PdfReader

    class PdfPages(BaseReader):
        def load_data(self, file, extra_info=None, **_):
            pages = PdfReader(str(file)).pages
            return [Document(text=p.extract_text() or "", metadata={**(extra_info or {}), "page_label": str(i + 1)})
                    for i, p in enumerate(pages)]

    class HtmlText(BaseReader):
        def load_data(self, file, extra_info=None, **_):
            soup = BeautifulSoup(Path(file).read_bytes(), "lxml")
            return [Document(text=soup.get_text("\n", strip=True), metadata=extra_info or {})]

    return {".pdf": PdfPages(), ".html": HtmlText()}


def run_llamaindex(folder: Path, store: Path, e5: CountingE5) -> dict:
    from llama_index.core import Settings, SimpleDirectoryReader
    from llama_index.core.embeddings import BaseEmbedding
    from llama_index.core.ingestion import IngestionCache, IngestionPipeline
    from llama_index.core.node_parser import SentenceSplitter
    from llama_index.core.storage.docstore import SimpleDocumentStore
    from llama_index.vector_stores.lancedb import LanceDBVectorStore
    from pydantic import PrivateAttr

    class E5Embedding(BaseEmbedding):
        _e5: Any = PrivateAttr()

        def __init__(self, inner: CountingE5) -> None:
            super().__init__(model_name="e5-small", embed_batch_size=BATCH)
            self._e5 = inner

        def _get_text_embeddings(self, texts):
            return self._e5.embed_passages(texts).tolist()

        def _get_text_embedding(self, text):
            return self._get_text_embeddings([text])[0]

        def _get_query_embedding(self, query):
            return self._e5.embed_query(query).tolist()

        async def _aget_query_embedding(self, query):
            return self._get_query_embedding(query)

    Settings.llm = None
    embed = E5Embedding(e5)
    Settings.embed_model = embed
    # Lengths in e5 tokens, as Dossier counts them (the default would fetch tiktoken files).
    splitter = SentenceSplitter(chunk_size=CHUNK_TOKENS, chunk_overlap=CHUNK_OVERLAP,
                                tokenizer=lambda text: range(e5.net_tokens(text)))
    persist = store / "pipeline"
    # "append" on re-runs: "overwrite" would wipe the table whenever one changed document is re-added.
    mode = "append" if persist.exists() else "create"
    pipeline = IngestionPipeline(
        transformations=[splitter, embed], docstore=SimpleDocumentStore(), cache=IngestionCache(),
        vector_store=LanceDBVectorStore(uri=str(store / "lancedb"), table_name="chunks", mode=mode),
    )
    if persist.exists():
        pipeline.load(str(persist))  # a re-run: the docstore knows every document's hash
    docs = SimpleDirectoryReader(
        str(folder), filename_as_id=True, exclude_hidden=False, file_extractor=_llama_readers()).load_data()
    nodes = pipeline.run(documents=docs)
    pipeline.persist(str(persist))
    return {"docs": len({d.metadata.get("file_path") for d in docs}), "loaded_documents": len(docs),
            "chunks": len(nodes)}


def run_langchain(folder: Path, store: Path, e5: CountingE5) -> dict:
    from langchain_community.document_loaders import BSHTMLLoader, PyPDFLoader, TextLoader
    from langchain_community.vectorstores import LanceDB
    from langchain_core.embeddings import Embeddings
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    class E5Embeddings(Embeddings):
        def embed_documents(self, texts):
            return e5.batched(list(texts))

        def embed_query(self, text):
            return e5.embed_query(text).tolist()

    loaders = {".md": lambda p: TextLoader(p, encoding="utf-8"), ".txt": lambda p: TextLoader(p, encoding="utf-8"),
               ".html": BSHTMLLoader, ".pdf": PyPDFLoader}
    docs = [d for p in sorted(folder.iterdir()) for d in loaders[p.suffix](str(p)).load()]
    splitter = RecursiveCharacterTextSplitter(chunk_size=CHUNK_TOKENS, chunk_overlap=CHUNK_OVERLAP,
                                              length_function=e5.net_tokens)
    chunks = splitter.split_documents(docs)
    LanceDB(uri=str(store / "lancedb"), embedding=E5Embeddings(), table_name="chunks",
            mode="overwrite").add_documents(chunks)
    return {"docs": len({d.metadata.get("source") for d in docs}), "loaded_documents": len(docs),
            "chunks": len(chunks)}


RUNNERS = {"dossier": run_dossier, "llamaindex": run_llamaindex, "langchain": run_langchain,
           "embedder": run_embedder_alone}


def preimport(system: str) -> None:
    """Library imports (seconds for LlamaIndex and LangChain) are not ingestion: do them first."""
    if system == "llamaindex":
        import llama_index.core
        import llama_index.vector_stores.lancedb  # noqa: F401
    elif system == "langchain":
        import langchain_community.document_loaders
        import langchain_community.vectorstores  # noqa: F401
    elif system == "dossier":
        import tools.knowledge_base  # noqa: F401
