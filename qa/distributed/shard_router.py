"""Questions over shards answered as the one index of the whole corpus would answer them.

The ordinary ``qa.search.service.SearchService`` runs over the Sharded* objects here, whose parts are the shards
(qa.distributed.shards.ShardServer: in this process, or Ray Serve deployments through qa.distributed.shard_serving), so
every step after the first stage (fusion, duplicate collapsing, confidence, citations, highlights, quote checks) is the
same code as for one index. What makes the answer equal to the unsharded index's:

- ids: each shard numbers its passages from 1; the router numbers every shard's documents and passages in corpus
  order (path by path, as one build walks the corpus): the ids one build of the whole corpus gives, so ties
  (broken by id) fall the same way;
- BM25: the row count, average row length and each phrase's document frequency are summed over the shards
  first (``qa.index.postings.Collection``), then each shard scores with them, as qa.index.segments does across segments;
- fusion: normalised over the merged candidate lists, which is what ``SearchService`` does with them anyway.

Every call names the build (generation) of each shard the router's view was made from, and all shards are asked
at once. A shard that fails or does not answer fails the whole question (``ShardUnavailable``, naming it): an
answer is never silently partial.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Protocol, Sequence

import numpy as np

from qa.config import Settings
from qa.distributed.shards import ShardServer, corpus_order, first_line, is_sharded, read_layout
from qa.embed.encoder import Encoder, load_encoder, model_id_for
from qa.errors import IndexIncompatible, QAError, ShardChanged, ShardUnavailable
from qa.index.manifest import Manifest
from qa.index.postings import Collection
from qa.index.segments import _best
from qa.index.sentence_vectors import Quantized
from qa.index.store import StoredChunk, StoredDocument
from qa.index.vectors import APPROXIMATE, EXACT
from qa.search.dense import DenseRetriever
from qa.search.filters import SearchFilter
from qa.search.service import SearchService

# A shard's answer to a call made by method name (``ShardServer.call``): its type is that method's return type,
# which the name cannot tell the type checker, so each caller reads it as what it asked for.
Answer = Any


class Pending(Protocol):
    """A call under way to one shard."""

    def result(self) -> Answer:
        """The call's result.

        Raises:
            ShardUnavailable, ShardChanged: the shard failed, did not answer, or no longer has the build.
        """


class ShardClient(Protocol):
    """How the router reaches one shard: in this process or through Ray Serve."""

    name: str

    def describe(self) -> dict:
        """``ShardServer.describe``."""

    def generation(self) -> str:
        """``ShardServer.generation``."""

    def submit(self, generation: str, method: str, args: tuple) -> Pending:
        """Start ``ShardServer.call``; its result is read with ``Pending.result``."""


def unpacked(name: str, reply: tuple) -> Answer:
    """The result of a ``ShardServer.call`` reply, or its error raised as the router's error naming the shard."""
    if reply[0] == "ok":
        return reply[1]
    _, kind, message = reply
    if kind == ShardChanged.__name__:
        raise ShardChanged(message)
    raise ShardUnavailable(f"shard {name} failed: {message}")


@dataclass
class _Done:
    """A call already made (a shard in this process)."""

    name: str
    reply: tuple

    def result(self) -> Answer:
        return unpacked(self.name, self.reply)


class LocalShard:
    """A shard served in this process (a test, a benchmark, or one machine holding every shard)."""

    def __init__(self, server: ShardServer) -> None:
        self.server, self.name = server, server.name

    def describe(self) -> dict:
        """``ShardServer.describe``."""
        return self.server.describe()

    def generation(self) -> str:
        """``ShardServer.generation``."""
        return self.server.generation()

    def submit(self, generation: str, method: str, args: tuple) -> Pending:
        """Make the call now."""
        return _Done(self.name, self.server.call(generation, method, args))


class ShardMap:
    """Global passage ids and document rows for every shard's own: the ids one build of the whole corpus gives
    (documents in corpus order, each document's passages numbered in a row from 1)."""

    def __init__(self, documents: Sequence[Sequence[tuple[int, str, int, int]]]) -> None:
        """Args:
        documents: per shard, each document with passages as ``(row, doc_id, first chunk id, passage count)``."""
        entries = sorted(
            (
                (corpus_order(doc_id), shard, row, first, count)
                for shard, rows in enumerate(documents)
                for row, doc_id, first, count in rows
            ),
            key=lambda entry: entry[0],
        )
        counts = np.array([entry[4] for entry in entries], dtype=np.int64)
        self._shard = np.array([entry[1] for entry in entries], dtype=np.int64)
        self._local_chunk = np.array([entry[3] for entry in entries], dtype=np.int64)
        self._local_row = np.array([entry[2] for entry in entries], dtype=np.int64)
        self._global_chunk = 1 + np.cumsum(counts) - counts  # each document's first id, in corpus order
        self._global_row = np.arange(1, len(entries) + 1, dtype=np.int64)
        self.shards = len(documents)
        self.chunks = int(counts.sum())
        # Per shard, its documents ordered by their own first chunk id (and row), for local -> global.
        self._by_chunk = [self._ordered(shard, self._local_chunk) for shard in range(self.shards)]
        self._by_row = [self._ordered(shard, self._local_row) for shard in range(self.shards)]

    def _ordered(self, shard: int, local: np.ndarray) -> np.ndarray:
        """The positions of ``shard``'s documents, sorted by ``local`` start."""
        positions = np.flatnonzero(self._shard == shard)
        return positions[np.argsort(local[positions], kind="stable")]

    @staticmethod
    def _shift(values: np.ndarray, starts: np.ndarray, targets: np.ndarray) -> np.ndarray:
        """Each value moved from the range starting at its start in ``starts`` (sorted) to the same place in the
        range starting at the matching ``targets``."""
        at = np.searchsorted(starts, values, side="right") - 1
        return targets[at] + (values - starts[at])

    def to_global(self, shard: int, ids: Sequence[int] | np.ndarray) -> np.ndarray:
        """Global passage ids of ``shard``'s own ``ids``."""
        order = self._by_chunk[shard]
        return self._shift(np.asarray(ids, dtype=np.int64), self._local_chunk[order], self._global_chunk[order])

    def rows_to_global(self, shard: int, rows: Sequence[int] | np.ndarray) -> np.ndarray:
        """Global document rows of ``shard``'s own ``rows``."""
        order = self._by_row[shard]
        return self._shift(np.asarray(rows, dtype=np.int64), self._local_row[order], self._global_row[order])

    def to_local(self, ids: Sequence[int] | np.ndarray) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        """Global passage ids by shard: ``shard -> (positions in ids, the shard's own ids)``."""
        return self._split(np.asarray(ids, dtype=np.int64), self._global_chunk, self._local_chunk)

    def rows_to_local(self, rows: Sequence[int] | np.ndarray) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        """Global document rows by shard: ``shard -> (positions in rows, the shard's own rows)``."""
        return self._split(np.asarray(rows, dtype=np.int64), self._global_row, self._local_row)

    def _split(
        self, values: np.ndarray, starts: np.ndarray, local: np.ndarray
    ) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        """``values`` grouped by the shard owning each, with their local counterparts."""
        at = np.searchsorted(starts, values, side="right") - 1
        owners = self._shard[at]
        found: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        for shard in np.unique(owners).tolist():
            positions = np.flatnonzero(owners == shard)
            found[shard] = (positions, local[at[positions]] + (values[positions] - starts[at[positions]]))
        return found


class ShardView:
    """The shards as the router sees one build of each: clients, their generations, the id map and the summed
    statistics; every call names the generation the view was made from."""

    def __init__(self, clients: Sequence[ShardClient], described: Sequence[dict]) -> None:
        self.clients = list(clients)
        self.generations = tuple(d["generation"] for d in described)
        self.names = [client.name for client in self.clients]
        self.manifest = merged_manifest(self.names, [d["manifest"] for d in described])
        self.map = ShardMap([d["documents"] for d in described])
        self.keyword_rows = sum(d["keyword_rows"] for d in described)
        self.keyword_tokens = sum(d["keyword_tokens"] for d in described)
        self.vectors = sum(d["vectors"] for d in described)
        self.kind = APPROXIMATE if any(d["kind"] == APPROXIMATE for d in described) else EXACT
        self.sentence_bytes = sum(d["sentence_bytes"] for d in described)
        self.described = list(described)

    @classmethod
    def open(cls, clients: Sequence[ShardClient]) -> "ShardView":
        """The view of every shard's current build.

        Raises:
            ShardUnavailable: a shard does not answer. IndexIncompatible: the shards were built differently.
        """
        return cls(clients, [_described(client) for client in clients])

    def ask(self, requests: dict[int, tuple[str, tuple]]) -> dict[int, Answer]:
        """Each shard's answer to its ``(method, args)``, asked of all of them at once.

        Raises:
            ShardUnavailable, ShardChanged: a shard failed (the first such shard is named).
        """
        pending = {
            shard: self.clients[shard].submit(self.generations[shard], method, args)
            for shard, (method, args) in requests.items()
        }
        return {shard: call.result() for shard, call in pending.items()}

    def ask_all(self, method: str, *args: object) -> list[Answer]:
        """Every shard's answer to the same call, in shard order."""
        found = self.ask({shard: (method, args) for shard in range(len(self.clients))})
        return [found[shard] for shard in range(len(self.clients))]


def _described(client: ShardClient) -> dict:
    """A client's ``describe``, its failures named after it."""
    try:
        return client.describe()
    except QAError:
        raise
    except Exception as exc:  # a remote failure: Ray's errors and timeouts
        raise ShardUnavailable(f"shard {client.name} is not answering: {first_line(exc)}") from exc


def merged_manifest(names: Sequence[str], manifests: Sequence[Manifest]) -> Manifest:
    """The manifest of the shards as one index: the first shard's, with every count summed.

    Raises:
        IndexIncompatible: a shard was built with another model, precision, dimension or chunking.
    """
    first = manifests[0]
    for name, manifest in zip(names[1:], manifests[1:]):
        for field in ("model", "dimension", "chunking", "precision"):
            if getattr(manifest, field) != getattr(first, field):
                raise IndexIncompatible(
                    f"shard {name} was built with {field} {getattr(manifest, field)!r} but shard {names[0]} with "
                    f"{getattr(first, field)!r}: rebuild the shards together with `qa index --shards`"
                )
    counts = {
        key: sum(int(m.counts.get(key) or 0) for m in manifests)
        for key, value in first.counts.items()
        if isinstance(value, int)
    }
    created = max(manifest.created for manifest in manifests)
    return dataclasses.replace(first, counts=counts, created=created, segments=[], checksums={})


class ShardedPostings:
    """Every shard's keyword postings ranked as one index (BM25 statistics summed over the shards first)."""

    def __init__(self, view: ShardView) -> None:
        self.view = view
        self.n_rows = view.keyword_rows
        self.total_tokens = view.keyword_tokens
        self.avgdl = self.total_tokens / self.n_rows if self.n_rows else 1.0

    def rank(
        self,
        phrases: Sequence[Sequence[str]],
        k: int,
        *,
        weights: tuple[float, float] = (1.0, 1.0),
        allowed: np.ndarray | None = None,
    ) -> list[tuple[int, float]]:
        """As ``SegmentedPostings.rank``: the best ``k`` ``(global id, score)``, best first, ties by id."""
        if k < 1 or not self.n_rows:
            return []
        phrases = [tuple(tokens) for tokens in phrases]
        counts = self.view.ask_all("frequencies", phrases)
        collection = Collection(self.n_rows, self.avgdl, tuple(int(sum(column)) for column in zip(*counts)))
        requests = {
            shard: ("keyword_search", (phrases, k, weights, local, collection))
            for shard, local in _allowed_by_shard(self.view, allowed).items()
        }
        found: list[tuple[int, float]] = []
        for shard, ranked in self.view.ask(requests).items():
            if ranked:
                ids = self.view.map.to_global(shard, [chunk_id for chunk_id, _ in ranked]).tolist()
                found += zip(ids, [score for _, score in ranked])
        found.sort(key=lambda pair: (-pair[1], pair[0]))
        return found[:k]


def _allowed_by_shard(view: ShardView, allowed: np.ndarray | None) -> dict[int, np.ndarray | None]:
    """Each shard's own allowed ids (sorted), leaving out shards a filter lets nothing through; every shard with
    None when there is no filter."""
    if allowed is None:
        return {shard: None for shard in range(len(view.clients))}
    return {shard: np.sort(local) for shard, (_, local) in view.map.to_local(allowed).items()}


class ShardedVectors:
    """Every shard's vectors searched as one index (qa.index.interfaces.VectorStore), in global ids."""

    def __init__(self, view: ShardView) -> None:
        self.view = view
        self.kind = view.kind
        self._dimension = view.manifest.dimension

    @property
    def dimension(self) -> int:
        """Length of each vector."""
        return self._dimension

    def __len__(self) -> int:
        return self.view.vectors

    def search(self, queries: np.ndarray, k: int, allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top ``k`` ``(scores, ids)`` per query row over every shard, merged by score (ties by id)."""
        k = max(1, k)
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        requests = {
            shard: ("vector_search", (queries, k, local))
            for shard, local in _allowed_by_shard(self.view, allowed).items()
        }
        found_scores, found_ids = [], []
        for shard, (scores, ids) in self.view.ask(requests).items():
            ids = np.asarray(ids, dtype=np.int64).copy()
            real = ids >= 0
            ids[real] = self.view.map.to_global(shard, ids[real])
            found_scores.append(np.asarray(scores, dtype=np.float32))
            found_ids.append(ids)
        if not found_scores:
            return np.full((len(queries), k), -np.inf, np.float32), np.full((len(queries), k), -1, np.int64)
        return _best(np.concatenate(found_scores, axis=1), np.concatenate(found_ids, axis=1), k)

    def reconstruct(self, ids: list[int]) -> np.ndarray:
        """The stored vectors of the given global ids, one row each."""
        rows = np.empty((len(ids), self._dimension), dtype=np.float32)
        grouped = self.view.map.to_local(ids)
        answers = self.view.ask({shard: ("reconstruct", (local.tolist(),)) for shard, (_, local) in grouped.items()})
        for shard, (positions, _) in grouped.items():
            rows[positions] = answers[shard]
        return rows


class ShardedStore:
    """Every shard's documents as one store (qa.index.interfaces.DocumentStore, plus the sentence vectors the service
    reads), in global passage ids and document rows."""

    def __init__(self, view: ShardView) -> None:
        self.view = view
        self.path = Path(view.names[0])
        self.keywords = ShardedPostings(view)

    def close(self) -> None:
        """Nothing to let go here: each shard holds its own files."""

    def _by_shard(self, method: str, ids: Sequence[int], *, rows: bool = False) -> dict[int, Answer]:
        """``method(own ids)`` asked of each shard holding some of ``ids``: ``shard -> its answer``."""
        grouped = (self.view.map.rows_to_local if rows else self.view.map.to_local)(ids)
        return self.view.ask({shard: (method, (local.tolist(),)) for shard, (_, local) in grouped.items()})

    def _keyed_globally(self, answers: dict[int, dict[int, Any]], *, rows: bool = False) -> dict[int, Any]:
        """Shards' answers keyed by their own ids, merged and keyed by global ones."""
        found: dict[int, Any] = {}
        for shard, by_local in answers.items():
            if by_local:
                to_global = self.view.map.rows_to_global if rows else self.view.map.to_global
                found.update(zip(to_global(shard, list(by_local)).tolist(), by_local.values()))
        return found

    def chunks(self, ids: Sequence[int]) -> dict[int, StoredChunk]:
        """Passages by global id, with global ids and document rows."""
        found: dict[int, StoredChunk] = {}
        for shard, by_local in self._by_shard("chunks", ids).items():
            if not by_local:
                continue
            chunks = list(by_local.values())
            ids_now = self.view.map.to_global(shard, [c.id for c in chunks]).tolist()
            rows_now = self.view.map.rows_to_global(shard, [c.document_row for c in chunks]).tolist()
            for chunk, chunk_id, row in zip(chunks, ids_now, rows_now):
                found[chunk_id] = dataclasses.replace(chunk, id=chunk_id, document_row=row)
        return found

    def section_leads(self, ids: Sequence[int]) -> set[int]:
        """Which of the global ids open a headed section (a document's passages all live in one shard)."""
        found: set[int] = set()
        for shard, local in self._by_shard("section_leads", ids).items():
            if local:
                found.update(self.view.map.to_global(shard, local).tolist())
        return found

    def sentence_vectors_of(self, ids: Sequence[int], dimension: int) -> dict[int, Quantized]:
        """Stored sentence vectors of passages, by global id."""
        return self._keyed_globally(self._by_shard("sentence_vectors", ids))

    def all_sentence_vectors(self, dimension: int) -> dict[int, Quantized]:
        """Stored sentence vectors of every passage, by global id."""
        return self._keyed_globally(dict(enumerate(self.view.ask_all("all_sentence_vectors"))))

    def sentence_vector_bytes(self) -> int:
        """Total stored size of every shard's sentence vectors."""
        return self.view.sentence_bytes

    def aliases_of(self, document_rows: Sequence[int]) -> dict[int, tuple[str, ...]]:
        """The other paths of documents, by global row."""
        return self._keyed_globally(self._by_shard("aliases_of", document_rows, rows=True), rows=True)

    def allowed_chunks(self, search_filter: SearchFilter) -> np.ndarray:
        """Global ids of the passages the filter lets through, sorted."""
        parts = [
            self.view.map.to_global(shard, local) if len(local) else np.empty(0, dtype=np.int64)
            for shard, local in enumerate(self.view.ask_all("allowed_chunks", search_filter))
        ]
        return np.sort(np.concatenate(parts))

    def count_undated(self, search_filter: SearchFilter) -> int:
        """Documents a date filter leaves out for want of a date, over every shard."""
        return sum(self.view.ask_all("count_undated", search_filter))

    def document(self, doc_id: str) -> StoredDocument | None:
        """A document by id or alias (from the one shard holding it), or None."""
        return next((found for found in self.view.ask_all("document", doc_id) if found is not None), None)

    def documents(self) -> list:
        """``(doc_id, metadata, passage count)`` of every document, by id."""
        return sorted((row for rows in self.view.ask_all("documents") for row in rows), key=lambda row: row[0])


class ShardedService(SearchService):
    """The search service over shards: ``SearchService`` itself, reading through the Sharded* objects.

    A search raises ``ShardUnavailable`` (naming the shard) when a shard fails or does not answer, so no answer is
    ever partial, and ``ShardChanged`` when a shard was rebuilt twice since this view was made."""

    def __init__(self, settings: Settings, view: ShardView, encoder: Encoder, reranker=None) -> None:
        _check_encoder(view, encoder)
        store = ShardedStore(view)
        super().__init__(settings, view.manifest, store, DenseRetriever(encoder, ShardedVectors(view)), reranker)
        self.view = view
        self.identity = view.generations

    def info(self) -> dict:
        """``SearchService.info`` for the whole index, plus each shard's name, build and counts."""
        found = super().info()
        found["shards"] = [
            {
                "name": name,
                "generation": d["generation"],
                "documents": d["manifest"].counts.get("documents"),
                "chunks": d["manifest"].counts.get("chunks"),
            }
            for name, d in zip(self.view.names, self.view.described)
        ]
        return found


def _check_encoder(view: ShardView, encoder: Encoder) -> None:
    """Refuse a model other than the one the shards were embedded with.

    Raises:
        IndexIncompatible: another model, precision or dimension.
    """
    manifest = view.manifest
    if (encoder.model_id, encoder.precision, encoder.dimension) != (
        manifest.model,
        manifest.precision,
        manifest.dimension,
    ):
        raise IndexIncompatible(
            f"the shards were embedded with {manifest.model!r} at {manifest.precision} ({manifest.dimension} dims), "
            f"but the encoder is {encoder.model_id!r} at {encoder.precision} ({encoder.dimension} dims)"
        )


def open_sharded(
    settings: Settings, encoder: Encoder | None = None, clients: Sequence[ShardClient] | None = None
) -> ShardedService:
    """The search service over the sharded index at ``settings.index_dir`` (each shard opened in this process),
    or over ``clients`` (shards served elsewhere, e.g. Ray Serve deployments).

    Args:
        encoder: an already loaded model (it must be the shards').

    Raises:
        IndexNotFound, IndexCorrupt, IndexIncompatible: the shards cannot be opened or do not fit together.
        ShardUnavailable: a shard does not answer.
        ModelError: the model cannot be loaded.
    """
    if clients is None:
        clients = local_shards(settings.index_dir)
    view = ShardView.open(clients)
    manifest = view.manifest
    if settings.model is not None and model_id_for(settings.model) != manifest.model:
        raise IndexIncompatible(
            f"the shards at {settings.index_dir} were built with model {manifest.model!r}, not {settings.model!r}"
        )
    if encoder is None:
        encoder = load_encoder(
            manifest.model, settings.encoder, precision=manifest.precision, cache_dir=settings.cache_dir
        )
    from qa.search.rerank import load_reranker

    reranker = load_reranker(settings.rerank) if settings.rerank else None
    return ShardedService(settings, view, encoder, reranker)


def open_service(settings: Settings, encoder: Encoder | None = None) -> SearchService:
    """The search service over ``settings.index_dir``: through its shards (in this process) when it is sharded,
    else ``SearchService.open``.

    Raises:
        What ``open_sharded`` or ``SearchService.open`` raises.
    """
    if is_sharded(settings.index_dir):
        return open_sharded(settings, encoder)
    return SearchService.open(settings, encoder=encoder)


def local_shards(index_dir: Path) -> list[LocalShard]:
    """Every shard of the sharded index at ``index_dir``, opened in this process.

    Raises:
        IndexNotFound, IndexCorrupt, IndexIncompatible: the layout or a shard cannot be opened.
    """
    layout = read_layout(index_dir)
    return [LocalShard(ShardServer(path, name)) for path, name in zip(layout.dirs, layout.names)]


def live_functions(
    clients: Sequence[ShardClient] | None, index_dir: Path | None = None
) -> tuple[Callable[[Settings, Encoder | None], ShardedService], Callable[[], tuple | None]]:
    """What ``qa.search.reload.LiveService`` needs to serve shards and notice a rebuilt one: an opener of the service
    over ``clients`` (None: the shards of ``index_dir``, opened in this process when first needed) and the
    identity of their builds now (None while a shard does not answer)."""
    held: list[ShardClient] | None = list(clients) if clients is not None else None

    def current() -> list[ShardClient]:
        nonlocal held
        if held is None:
            if index_dir is None:
                raise ValueError("live_functions needs the shards' clients or the sharded index's directory")
            held = list(local_shards(index_dir))
        return held

    def opener(settings: Settings, encoder: Encoder | None) -> ShardedService:
        return open_sharded(settings, encoder, current())

    def identify() -> tuple | None:
        try:
            return tuple(client.generation() for client in current())
        except Exception:  # a shard that does not answer now: look again next time
            return None

    return opener, identify
