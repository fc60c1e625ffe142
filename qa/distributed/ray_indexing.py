"""Indexing on a Ray cluster: reading and chunking, then embedding, as Ray Data stages in actor pools.

`qa index --ray ADDRESS` walks the corpus here, in the driver, and reads and hashes the files whose size, times or
inode changed (that is how a build knows what is new); their bytes go to the cluster, where a first Ray Data stage
extracts each document and chunks it (each actor loads the model's tokenizer once), and the driver writes the
documents and passages it gets back into the store, as a local build does. Then the passage inputs no previous index
had go to the cluster in the very batches a local build would embed, and the index is written here. Each finished
batch is kept in an embedding cache beside the index (keyed by passage-input hash, one file per batch, written whole
or not at all), so a build that is killed and run again sends only what was not finished; the cache is removed once
the new index has been swapped in. Ray is imported only here, and only when a distributed build is asked for:
``pip install 'qa[ray]'``.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import pickle
import shutil
import tempfile
import time
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from qa.config import valid_ray_address
from qa.errors import ConfigError, QAError
from qa.index.indexer import (
    EmbeddedBatch,
    Progress,
    chunk_document,
    chunking_parameters,
    embed_batch,
    previous_index,
    reusable_files,
)
from qa.index.store import PendingText
from qa.ingest.corpus import Document, RawFile, Skipped, extract_file, scan_corpus
from qa.text.chunking import Chunk

LOCAL = "local"  # the address that starts a Ray cluster on this machine for one command
# Files of the embedding cache: one per finished batch; a file being written has the temporary suffix.
_BATCH_SUFFIX = ".npz"
_PARTIAL_SUFFIX = ".partial"
# Bytes of files in one Ray Data block of the reading and chunking stage: blocks far below Arrow's 2 GB column
# limit, small enough to spread over the actors (a block goes to one actor at a time).
_BLOCK_BYTES = 64 * 1024 * 1024

log = logging.getLogger(__name__)


class ClusterError(QAError):
    """Ray is missing, the cluster cannot be reached, or it failed while embedding."""


def check_address(address: str) -> str:
    """The Ray address as given, once it is one `--ray` takes.

    Raises:
        ConfigError: not ``local``, ``auto`` or ``ray://host:port``.
    """
    if valid_ray_address(address):
        return address
    raise ConfigError(f"a Ray address is local, auto or ray://host:port, got {address!r}")


def require_ray():
    """Ray and Ray Data, or a one-line error saying how to install them.

    Raises:
        ClusterError: Ray is not installed.
    """
    try:
        import ray
        import ray.data
    except ImportError as exc:
        raise ClusterError(f"--ray needs Ray, which is not installed: pip install 'qa[ray]' ({exc})") from exc
    return ray


@contextmanager
def ray_session(address: str, *, num_cpus: int | None = None) -> Iterator[object]:
    """Connect to the Ray cluster at ``address`` for the ``with`` block (``local`` starts one on this machine with
    ``num_cpus`` CPUs) and disconnect afterwards; a session this process already holds is used as it is.

    Raises:
        ConfigError: an address `--ray` does not take.
        ClusterError: Ray is not installed or the cluster cannot be reached.
    """
    check_address(address)
    ray = require_ray()
    if ray.is_initialized():
        yield ray
        return
    options = {"include_dashboard": False, "logging_level": logging.WARNING, "configure_logging": True}
    try:
        if address == LOCAL:
            ray.init(num_cpus=num_cpus, **options)
        else:
            ray.init(address=address, **options)
    except Exception as exc:  # Ray raises ConnectionError, RuntimeError or its own errors here
        raise ClusterError(f"cannot reach the Ray cluster at {address}: {exc}") from exc
    try:
        yield ray
    finally:
        ray.shutdown()


def cache_dir_for(index_dir: Path) -> Path:
    """Where a distributed build of ``index_dir`` keeps finished embeddings: a hidden folder beside it."""
    index_dir = Path(index_dir).absolute()
    return index_dir.parent / f".{index_dir.name}.embed-cache"


class EmbeddingCache:
    """Finished batches of one encoder's vectors, by passage-input hash, in files that are whole or absent.

    Each batch is written to a temporary file, flushed to disk and renamed into place, so a build killed at any
    moment leaves only complete batches (and perhaps a temporary file, which is ignored and removed). Vectors
    of another model, backend or precision are kept apart: the folder holds one subfolder per encoder.
    """

    def __init__(self, root: Path, identity: dict) -> None:
        digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode("utf-8")).hexdigest()[:16]
        self.root = Path(root)
        self.directory = self.root / digest
        self.identity = identity

    def load(self) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        """Every cached input's passage vector and sentence vectors, by hash; unreadable files are dropped."""
        found: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        if not self.directory.is_dir():
            return found
        for path in sorted(self.directory.iterdir()):
            if path.name.endswith(_PARTIAL_SUFFIX):
                path.unlink(missing_ok=True)  # a batch whose writing was cut short
                continue
            try:
                found.update(_read_batch(path))
            except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:  # torn or foreign
                log.warning("dropping unreadable embedding cache file %s: %s", path, exc)
                path.unlink(missing_ok=True)
        return found

    def save(self, hashes: list[str], vectors: np.ndarray, sentence_vectors: list[np.ndarray]) -> None:
        """Keep one finished batch (its file appears whole, or not at all)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        name = hashlib.sha256("\n".join(hashes).encode("ascii")).hexdigest()[:32]
        counts = np.array([len(s) for s in sentence_vectors], dtype=np.int64)
        dimension = vectors.shape[1]
        sentences = (
            np.concatenate(sentence_vectors).astype(np.float32, copy=False)
            if len(sentence_vectors) and counts.sum()
            else np.zeros((0, dimension), dtype=np.float32)
        )
        handle, temporary = tempfile.mkstemp(dir=self.directory, suffix=_PARTIAL_SUFFIX)
        try:
            with os.fdopen(handle, "wb") as out:
                np.savez(
                    out,
                    hashes=np.array(hashes, dtype="U64"),
                    vectors=np.asarray(vectors, dtype=np.float32),
                    counts=counts,
                    sentences=sentences,
                )
                out.flush()
                os.fsync(out.fileno())
            os.replace(temporary, self.directory / f"{name}{_BATCH_SUFFIX}")
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    def remove(self) -> None:
        """Delete the whole cache (every encoder's), once the index it was for has been swapped in."""
        shutil.rmtree(self.root, ignore_errors=True)


def _read_batch(path: Path) -> list[tuple[str, tuple[np.ndarray, np.ndarray]]]:
    """``(hash, (vector, sentence vectors))`` for each input of one cached batch file (no pickles are loaded)."""
    with np.load(path, allow_pickle=False) as data:
        hashes, vectors, counts, sentences = data["hashes"], data["vectors"], data["counts"], data["sentences"]
    if len(hashes) != len(vectors) or len(counts) != len(hashes) or int(counts.sum()) != len(sentences):
        raise ValueError("its arrays do not agree in length")
    ends = np.cumsum(counts)
    starts = ends - counts
    return [(str(key), (vectors[i], sentences[starts[i] : ends[i]])) for i, key in enumerate(hashes.tolist())]


class _EmbedActor:
    """One Ray actor: the encoder loaded once, then each row (one build batch, as JSON) embedded."""

    def __init__(self, model: str, backend: str, precision: str, threads: int, model_cache: str | None) -> None:
        from qa.embed.encoder import load_encoder

        self.encoder = load_encoder(
            model, backend, precision=precision, threads=threads, cache_dir=Path(model_cache) if model_cache else None
        )

    def __call__(self, rows: dict) -> dict:
        out: dict[str, list[str | bytes]] = {"hashes": [], "vectors": [], "counts": [], "sentences": []}
        for encoded in rows["batch"]:
            batch = [(key, PendingText(text, offset, passage)) for key, text, offset, passage in json.loads(encoded)]
            hashes, vectors, sentence_vectors = embed_batch(self.encoder, batch)
            out["hashes"].append(json.dumps(hashes))
            out["vectors"].append(np.asarray(vectors, dtype=np.float32).tobytes())
            out["counts"].append(np.array([len(s) for s in sentence_vectors], dtype=np.int64).tobytes())
            out["sentences"].append(b"".join(np.asarray(s, dtype=np.float32).tobytes() for s in sentence_vectors))
        return {key: np.array(values, dtype=object) for key, values in out.items()}


def _decode(row: dict, dimension: int) -> EmbeddedBatch:
    """One actor output row back into hashes, passage vectors and per-input sentence vectors."""
    hashes = json.loads(row["hashes"])
    vectors = np.frombuffer(row["vectors"], dtype=np.float32).reshape(len(hashes), dimension)
    counts = np.frombuffer(row["counts"], dtype=np.int64)
    sentences = np.frombuffer(row["sentences"], dtype=np.float32).reshape(-1, dimension)
    ends = np.cumsum(counts)
    return hashes, vectors, [sentences[end - count : end] for count, end in zip(counts, ends, strict=True)]


@dataclass
class ClusterStats:
    """What a distributed build sent to the cluster: files to read and chunk, and passages to embed (batches, and
    what was taken from the cache instead)."""

    batches_sent: int = 0
    passages_sent: int = 0
    passages_cached: int = 0
    workers: int = 0
    # Files whose bytes went to the cluster to be extracted and chunked (one per set of identical files).
    documents_sent: int = 0
    # Documents the driver chunked after all, because the cluster had not (see ``RayChunker``); 0 normally.
    documents_chunked_here: int = 0
    chunk_workers: int = 0
    # The process ids of the actors that extracted and chunked (never the driver's).
    chunk_processes: list[int] = field(default_factory=list)


class _ChunkActor:
    """One Ray actor: the model's tokenizer loaded once, then each row (one file's bytes) extracted and chunked."""

    def __init__(self, model: str, backend: str, precision: str, model_cache: str | None, chunking: dict) -> None:
        from qa.embed.encoder import load_encoder

        # The whole encoder is loaded for its tokenizer (``count_tokens``, ``max_tokens``): the same code that
        # counts tokens in a local build, so the passages are the same.
        self.encoder = load_encoder(
            model, backend, precision=precision, threads=1, cache_dir=Path(model_cache) if model_cache else None
        )
        self.chunking = chunking

    def __call__(self, rows: dict) -> dict:
        out: dict[str, list[int | bytes]] = {"position": [], "result": [], "process": []}
        for position, doc_id, raw, digest, suffix, modified in zip(
            rows["position"],
            rows["doc_id"],
            rows["raw"],
            rows["digest"],
            rows["suffix"],
            rows["modified"],
            strict=True,
        ):
            file = RawFile(str(doc_id), bytes(raw), str(digest), str(suffix), float(modified))
            out["position"].append(int(position))
            out["result"].append(pickle.dumps(self._chunked(file)))
            out["process"].append(os.getpid())
        return {key: np.array(values, dtype=object) for key, values in out.items()}

    def _chunked(self, file: RawFile) -> tuple[Document | None, Skipped | None, list[tuple], str]:
        """A file's document (or why it was skipped), its passages without their text, and their embed inputs'
        common prefix (the title line, or nothing): the driver cuts both texts from the document's again."""
        document, skipped = extract_file(file, main_content=self.chunking["html_content"] == "main")
        if document is None:
            return None, skipped, [], ""
        chunks, inputs = chunk_document(
            document, self.encoder, self.chunking["size"], self.chunking["overlap"], self.chunking["embed_title"]
        )
        prefix = inputs[0][: len(inputs[0]) - len(chunks[0].text)] if chunks else ""
        for chunk, embedded in zip(chunks, inputs, strict=True):
            if chunk.text != document.text[chunk.start : chunk.end] or embedded != prefix + chunk.text:
                raise ValueError(f"passage {chunk.index} of {file.doc_id} is not the span it names")
        rows = [(c.index, c.start, c.end, c.line_start, c.line_end, c.n_tokens, c.section, c.anchor) for c in chunks]
        return document, None, rows, prefix


def _passages(document: Document, rows: list[tuple], prefix: str) -> tuple[list[Chunk], list[str]]:
    """A document's passages and embed inputs from the cluster's rows (texts cut from the document's text)."""
    chunks = [
        Chunk(index, start, end, line_start, line_end, document.text[start:end], n_tokens, section, anchor)
        for index, start, end, line_start, line_end, n_tokens, section, anchor in rows
    ]
    return chunks, [prefix + chunk.text for chunk in chunks]


class RayChunker:
    """Reading and chunking on the cluster, through a build's two seams: as a scan's ``extract_files``
    (``qa.ingest.corpus.FileExtractor``) it sends the bytes of the files read to a Ray Data ``map_batches`` stage whose
    actors extract each document and chunk it, and keeps the passages; as a build's ``chunk_documents``
    (``qa.index.indexer.DocumentChunker``) it hands each document's passages over.

    A document the cluster did not chunk (one the scan took from the previous index when the build then could not
    reuse that index, which only a build racing this one causes) is chunked here with ``encoder``, and counted.

    Args:
        encoder: the driver's encoder (its backend and precision go to the actors; it chunks only what the cluster
            did not).
        model: the model name or path the actors load for its tokenizer (every node must be able to load it).
        chunking: ``qa.index.indexer.chunking_parameters`` of the build.
        stats: where the counts go (shared with the build's ``RayEmbedder``).
        workers: actors in the pool; None for one per CPU of the cluster.
        model_cache: where each node keeps the model's ONNX export (None: its default cache).
        progress: told ``("reading", files done, files)`` as the cluster's results come in.
    """

    def __init__(
        self,
        *,
        encoder,
        model: str,
        chunking: dict,
        stats: ClusterStats,
        workers: int | None = None,
        model_cache: Path | None = None,
        progress: Progress | None = None,
    ) -> None:
        self.encoder, self.model, self.chunking, self.stats = encoder, model, chunking, stats
        self.workers = workers
        self.model_cache = str(model_cache) if model_cache else None
        self.progress = progress or (lambda stage, done, total: None)
        self._passages: dict[tuple[str, str], tuple[Document, list[tuple], str]] = {}

    def extract_files(self, files: list[RawFile]) -> Iterator[tuple[Document | None, Skipped | None]]:
        """Extract and chunk ``files`` on the cluster; yield each one's document or reason to skip, in order.

        Raises:
            ClusterError: the cluster failed (an actor could not load the model, a node died past retries).
        """
        if not files:
            return
        results: dict[int, tuple[Document | None, Skipped | None, list[tuple], str]] = {}
        processes: set[int] = set()
        self.progress("reading", 0, len(files))
        for row in self._on_cluster(files):
            results[int(row["position"])] = pickle.loads(row["result"])
            processes.add(int(row["process"]))
            self.progress("reading", len(results), len(files))
        self.stats.chunk_processes = sorted(processes)
        for position in range(len(files)):
            document, skipped, rows, prefix = results[position]
            if document is not None:
                self._passages[(document.doc_id, document.content_hash)] = (document, rows, prefix)
            yield document, skipped

    def __call__(self, documents: list[Document]) -> Iterator[tuple[Document, list[Chunk], list[str]]]:
        """Each of ``documents`` with its passages and their embed inputs, in order (as the cluster cut them)."""
        for document in documents:
            found = self._passages.pop((document.doc_id, document.content_hash), None)
            if found is not None and found[0].text == document.text:
                yield document, *_passages(document, found[1], found[2])
                continue
            self.stats.documents_chunked_here += 1
            size, overlap, titled = self.chunking["size"], self.chunking["overlap"], self.chunking["embed_title"]
            yield document, *chunk_document(document, self.encoder, size, overlap, titled)

    def _on_cluster(self, files: list[RawFile]) -> Iterator[dict]:
        """The actors' output rows for ``files`` (in any order).

        Raises:
            ClusterError: the cluster failed.
        """
        ray = _quiet_ray_data()
        workers = self.workers or max(1, int(ray.cluster_resources().get("CPU", 1)))
        workers = min(workers, len(files))
        self.stats.chunk_workers = workers
        self.stats.documents_sent += len(files)
        rows = [
            {
                "position": position,
                "doc_id": f.doc_id,
                "raw": f.raw,
                "digest": f.digest,
                "suffix": f.suffix,
                "modified": f.modified,
            }
            for position, f in enumerate(files)
        ]
        blocks = min(len(files), max(4 * workers, -(-sum(len(f.raw) for f in files) // _BLOCK_BYTES)))
        dataset = ray.data.from_items(rows, override_num_blocks=blocks).map_batches(
            _ChunkActor,
            batch_size=1,
            batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=workers),
            num_cpus=1,
            fn_constructor_kwargs={
                "model": self.model,
                "backend": self.encoder.backend,
                "precision": self.encoder.precision,
                "model_cache": self.model_cache,
                "chunking": self.chunking,
            },
        )
        try:
            yield from dataset.iter_rows()
        except QAError:
            raise
        except Exception as exc:  # Ray wraps a worker's failure in its own exception types
            raise ClusterError(f"the Ray cluster failed while reading and chunking: {_first_line(exc)}") from exc


def _quiet_ray_data():
    """Ray, with Ray Data's progress bars and per-dataset lines off (the build reports its own progress)."""
    ray = require_ray()
    context = ray.data.DataContext.get_current()
    context.enable_progress_bars = False
    logging.getLogger("ray.data").setLevel(logging.WARNING)
    return ray


class RayEmbedder:
    """The ``embed_batches`` a build takes (``qa.index.indexer.BatchEmbedder``): cached batches first, the rest embedded
    by a pool of Ray actors as a Ray Data ``map_batches`` stage, each batch saved to the cache as it arrives.

    Args:
        model: the model name or path the actors load (every node must be able to load it).
        backend, precision: the driver's encoder's, so the cluster computes the vectors a local build would.
        dimension: the model's vector dimension.
        cache: where finished batches are kept between runs.
        workers: actors in the pool; None for one per CPU of the cluster (``threads`` each).
        threads: CPUs each actor takes and texts it embeds at once.
        model_cache: where each node keeps the model's ONNX export (None: its default cache).
    """

    def __init__(
        self,
        *,
        model: str,
        backend: str,
        precision: str,
        dimension: int,
        cache: EmbeddingCache,
        workers: int | None = None,
        threads: int = 1,
        model_cache: Path | None = None,
    ) -> None:
        self.model, self.backend, self.precision, self.dimension = model, backend, precision, dimension
        self.cache, self.workers, self.threads = cache, workers, max(1, int(threads))
        self.model_cache = str(model_cache) if model_cache else None
        self.stats = ClusterStats()

    def __call__(self, batches: list[list[tuple[str, PendingText]]]) -> Iterator[EmbeddedBatch]:
        """Yield every batch embedded: first what the cache holds, then the cluster's batches as they finish."""
        cached = self.cache.load()
        todo: list[tuple[str, PendingText]] = []
        for batch in batches:
            found = [key for key, _ in batch if key in cached]
            if found:
                self.stats.passages_cached += len(found)
                yield found, np.stack([cached[key][0] for key in found]), [cached[key][1] for key in found]
            todo.extend(item for item in batch if item[0] not in cached)
        if not todo:
            return
        # Re-cut in the build's own order and size, so with nothing cached the cluster embeds the very batches a
        # local build would (the ONNX encoder runs each text alone anyway; PyTorch pads within a batch).
        size = max(len(batch) for batch in batches)
        remaining = [todo[first : first + size] for first in range(0, len(todo), size)]
        for hashes, vectors, sentence_vectors in self._on_cluster(remaining):
            self.cache.save(hashes, vectors, sentence_vectors)
            yield hashes, vectors, sentence_vectors

    def _on_cluster(self, batches: list[list[tuple[str, PendingText]]]) -> Iterator[EmbeddedBatch]:
        """Embed ``batches`` in the actor pool, yielding each as it finishes.

        Raises:
            ClusterError: the cluster failed (an actor could not load the model, a node died past retries).
        """
        ray = _quiet_ray_data()
        workers = self.workers or max(1, int(ray.cluster_resources().get("CPU", 1)) // self.threads)
        workers = min(workers, len(batches))
        self.stats.workers = workers
        self.stats.batches_sent += len(batches)
        self.stats.passages_sent += sum(len(batch) for batch in batches)
        rows = [
            {"batch": json.dumps([(k, p.embed_input, p.passage_offset, p.passage) for k, p in batch])}
            for batch in batches
        ]
        dataset = ray.data.from_items(rows, override_num_blocks=len(rows)).map_batches(
            _EmbedActor,
            batch_size=1,
            batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=workers),
            num_cpus=self.threads,
            fn_constructor_kwargs={
                "model": self.model,
                "backend": self.backend,
                "precision": self.precision,
                "threads": self.threads,
                "model_cache": self.model_cache,
            },
        )
        try:
            for row in dataset.iter_rows():
                yield _decode(row, self.dimension)
        except QAError:
            raise
        except Exception as exc:  # Ray wraps a worker's failure in its own exception types
            raise ClusterError(f"the Ray cluster failed while embedding: {_first_line(exc)}") from exc


def _first_line(exc: BaseException) -> str:
    """The first non-empty line of an exception's message (Ray's carry whole remote tracebacks)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


def build_on_cluster(
    corpus: Path,
    index_dir: Path,
    encoder,
    *,
    address: str,
    model: str,
    workers: int | None = None,
    model_cache: Path | None = None,
    num_cpus: int | None = None,
    **build_options,
):
    """``qa.index.indexer.build_index`` with reading and chunking, and the embedding, done on the Ray cluster at
    ``address``.

    The corpus walk and change detection (stat lines, then the hashes of the files read) are made here; the bytes of
    the files read go to the cluster, which extracts and chunks them; the store, the keyword postings and the vector
    files are written here, as a local build writes them. Only the passage inputs no previous index had are sent to
    the cluster to embed. The embedding cache beside the index is removed once the new index is in place (or found
    unchanged).

    Args:
        build_options: ``build_index``'s keyword arguments (``chunk_size`` and ``chunk_overlap`` among them).

    Returns:
        ``(report, stats)``: the build's report and what was sent to the cluster or taken from the cache.

    Raises:
        ClusterError: Ray is missing, the cluster is unreachable, or it failed while chunking or embedding.
        ConfigError: an address `--ray` does not take.
    """
    from qa.index.indexer import build_index

    cache = EmbeddingCache(
        cache_dir_for(index_dir),
        {
            "model": encoder.model_id,
            "backend": encoder.backend,
            "precision": encoder.precision,
            "dimension": encoder.dimension,
        },
    )
    embedder = RayEmbedder(
        model=model,
        backend=encoder.backend,
        precision=encoder.precision,
        dimension=encoder.dimension,
        cache=cache,
        workers=workers,
        model_cache=model_cache,
    )
    chunking = chunking_parameters(
        build_options["chunk_size"],
        build_options["chunk_overlap"],
        build_options.get("embed_title", False),
        build_options.get("html_content", "main"),
    )
    chunker = RayChunker(
        encoder=encoder,
        model=model,
        chunking=chunking,
        stats=embedder.stats,
        workers=workers,
        model_cache=model_cache,
        progress=build_options.get("progress"),
    )
    with ray_session(address, num_cpus=num_cpus):
        started = time.perf_counter()
        if build_options.get("scan") is None and chunking["size"] <= encoder.max_tokens:  # else build_index refuses
            build_options["scan"] = _scan_on_cluster(corpus, index_dir, encoder, chunking, chunker, build_options)
        scanned = time.perf_counter() - started
        report = build_index(
            corpus, index_dir, encoder, embed_batches=embedder, chunk_documents=chunker, **build_options
        )
        report.seconds += scanned  # a local build's time counts its scan too
    cache.remove()
    return report, embedder.stats


def _scan_on_cluster(corpus: Path, index_dir: Path, encoder, chunking: dict, chunker: RayChunker, build_options: dict):
    """The scan of ``corpus`` a build of ``index_dir`` takes, its files extracted and chunked by ``chunker``.

    Files are taken from the previous index without being read (as a local build takes them) only when that index
    will seed this build, so that every document the build chunks was read, and so chunked, on the cluster.
    """
    html_content = chunking["html_content"]
    reuse = {}
    if not build_options.get("full", False):
        previous, _ = previous_index(
            Path(index_dir).absolute(),
            encoder.model_id,
            encoder.dimension,
            encoder.max_tokens,
            chunking,
            encoder.precision,
        )
        reuse = reusable_files(previous, html_content) if previous is not None else {}
    return scan_corpus(corpus, main_content=html_content == "main", reuse=reuse, extract_files=chunker.extract_files)
