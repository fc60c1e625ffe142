"""The `qa` command: thin wrappers over the indexer and the search service."""

from __future__ import annotations

import dataclasses
import functools
import json
import os
import sys
from pathlib import Path
from typing import Any

import click

from qa.cli.options import setting_option
from qa.config import DEFAULT_CORPUS, ENV_VARS, MODES, Settings, build_precision
from qa.errors import QAError

# `qa index --shards N`: a sanity bound (each shard is a whole index, and a question visits every one).
MAX_SHARDS = 256
# Skipped files `qa index` names one warning line each; past this many the rest are counted (`qa info` lists them),
# so a build folder that skips hundreds of files does not bury its summary.
MAX_SKIP_WARNINGS = 20

# The options several commands share, each made from its setting's definition (qa/cli/options.py).
INDEX_OPTION = setting_option("index_dir", "--index")
MODEL_OPTION = setting_option("model")
ENCODER_OPTION = setting_option("encoder")
PRECISION_OPTION = setting_option("precision")
RERANK_OPTION = setting_option("rerank")
RERANK_DEPTH_OPTION = setting_option("rerank_depth")
# Threads for bulk embedding: every core; a server or one-shot query uses one thread per call.
BUILD_THREADS = os.cpu_count() or 1


def _bulk_encoder(model: str | None, settings: Settings):
    """The model (default: all-MiniLM-L6-v2) on the configured backend, with every core, for indexing."""
    from qa.embed.encoder import DEFAULT_MODEL, load_encoder

    return load_encoder(
        model or DEFAULT_MODEL,
        settings.encoder,
        precision=settings.precision,
        threads=BUILD_THREADS,
        cache_dir=settings.cache_dir,
    )


def _corpus_to_index(settings: Settings) -> Path:
    """The folder `qa index` reads: the one named, else ./seeds (the bundled demo's documents).

    Raises:
        click.UsageError: none named and no ./seeds here, which is how a first run in one's own folder starts.
    """
    if settings.corpus is not None:
        return settings.corpus
    if not DEFAULT_CORPUS.is_dir():
        raise click.UsageError(
            "no folder to index. Name the folder that holds your documents, e.g. `qa index ~/notes` (its .txt, .md, "
            ".rst, .html, .pdf and .docx files go into an index in ./embeddings; add --index DIR to put it elsewhere), "
            f"or set QA_CORPUS. With no folder named, qa index reads ./seeds, and there is none in {Path.cwd()}."
        )
    return DEFAULT_CORPUS


def _expected_errors(command):
    """Map QAError to one line on stderr and its exit code: expected failures never show a traceback."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            return command(*args, **kwargs)
        except QAError as exc:
            from qa.cli.render import safe_line

            click.echo(f"error: {safe_line(exc)}", err=True)
            sys.exit(exc.exit_code)

    return wrapper


def _progress_printer(style: str):
    """The progress callback for a long job (see qa.cli.progress): a redrawn line with rate and time left on a
    terminal, a plain line every few seconds elsewhere, JSON lines, or nothing."""
    from qa.cli.progress import Progress

    return Progress(style)


PROGRESS_OPTION = setting_option("progress", envvar=False)  # a bad QA_PROGRESS is named by Settings


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="qa")
def main() -> None:
    """Semantic question answering over your documents, with a citation for every passage."""


@main.command()
@click.argument("corpus", type=click.Path(path_type=Path), required=False, envvar=ENV_VARS["corpus"])
@INDEX_OPTION
@MODEL_OPTION
@setting_option("chunk_size", help="passage size in model tokens")
# Below the chunk size as well, which Settings checks once both are known.
@setting_option("chunk_overlap", "--overlap", type=click.IntRange(min=0))
@setting_option("embed_title", "--embed-title/--no-embed-title", envvar=False)
@ENCODER_OPTION
@PRECISION_OPTION
@click.option("--full", is_flag=True, help="Rebuild everything, even when the previous index could be updated.")
@click.option(
    "--merge",
    is_flag=True,
    help="Write the index as one segment again (nothing is embedded again), instead of adding one.",
)
@setting_option(
    "ray",
    help="read, chunk and embed on a Ray cluster: local (start one on this machine), auto (the one "
    "`ray start` runs here) or ray://host:port; needs pip install 'qa[ray]'",
    shown="all here",
)
@setting_option("ray_workers", help="chunking and embedding actors on the Ray cluster")
@click.option(
    "--shards",
    type=click.IntRange(1, MAX_SHARDS),
    default=None,
    metavar="N",
    help="Build N indexes of disjoint documents (by a hash of each path) under the index directory, to "
    "serve from N machines as one index (docs/distributed.md) [default: one index].",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as one JSON object.")
@click.option("-v", "--verbose", is_flag=True, help="Name every document added, changed and removed.")
@PROGRESS_OPTION
@_expected_errors
def index(
    corpus,
    index_dir,
    model,
    chunk_size,
    chunk_overlap,
    embed_title,
    encoder,
    precision,
    full,
    merge,
    ray,
    ray_workers,
    shards,
    as_json,
    verbose,
    progress,
) -> None:
    """Build or update the index of CORPUS (default: seeds), swapping it in atomically.

    CORPUS's .txt, .md, .rst, .html, .pdf and .docx files are indexed. An existing index built with the same model
    and chunking is updated: new and changed files are written as a segment beside it and only new passage texts
    are embedded. Anything else (or --full) builds from scratch.
    """
    from qa.cli.render import safe_line
    from qa.embed.encoder import DEFAULT_MODEL, model_id_for
    from qa.index.indexer import build_index, recorded_precision, unchanged_index
    from qa.ingest.corpus import walk_corpus

    settings = Settings.from_env(
        index_dir=index_dir,
        corpus=corpus,
        chunk_size=chunk_size,
        chunk_overlap=chunk_overlap,
        embed_title=embed_title,
        encoder=encoder,
        precision=precision,
        ray=ray,
        ray_workers=ray_workers,
        progress=progress,
    )
    # --precision (or QA_PRECISION), else the existing index's own, else the default.
    built_at = build_precision(precision, recorded_precision(settings.index_dir))
    settings = dataclasses.replace(settings, precision=built_at)
    corpus = _corpus_to_index(settings)
    if shards is not None:
        _index_shards(settings, corpus, model, shards, full=full, merge=merge, as_json=as_json)
        return
    # One walk of the corpus, for the stamp check and then for the build's scan (a missing corpus fails here).
    walk = walk_corpus(corpus)
    if not full and not merge:
        unchanged = unchanged_index(
            settings.index_dir,
            corpus,
            model=model or DEFAULT_MODEL,
            chunk_size=settings.chunk_size,
            chunk_overlap=settings.chunk_overlap,
            embed_title=settings.embed_title,
            precision=settings.precision,
            html_content=settings.html_content,
            walk=walk,
        )
        if unchanged is not None:
            _print_unchanged(unchanged, model_id_for(model or DEFAULT_MODEL), as_json)
            return
    if ray_workers is not None and settings.ray is None:
        raise click.UsageError("--ray-workers sets the embedding actors of a build on Ray: give --ray ADDRESS too")
    if settings.ray is not None:
        from qa.distributed.ray_indexing import require_ray

        require_ray()  # before the model is loaded: a missing install fails at once
    encoder = _bulk_encoder(model, settings)
    options = {
        "chunk_size": settings.chunk_size,
        "chunk_overlap": settings.chunk_overlap,
        "embed_title": settings.embed_title,
        "html_content": settings.html_content,
        "progress": _progress_printer(settings.progress),
        "full": full,
        "merge": merge,
    }
    cluster = None
    if settings.ray is not None:
        from qa.distributed.ray_indexing import build_on_cluster

        report, cluster = build_on_cluster(
            corpus,
            settings.index_dir,
            encoder,
            address=settings.ray,
            model=model or DEFAULT_MODEL,
            workers=settings.ray_workers,
            model_cache=settings.cache_dir,
            **options,
        )
    else:
        report = build_index(corpus, settings.index_dir, encoder, walk=walk, **options)
    if not report.rewritten:
        _print_unchanged(report, encoder.model_id, as_json)
        return
    for skipped in report.skipped[:MAX_SKIP_WARNINGS]:
        click.echo(f"warning: skipped {safe_line(skipped.doc_id)}: {safe_line(skipped.reason)}", err=True)
    if len(report.skipped) > MAX_SKIP_WARNINGS:
        more = len(report.skipped) - MAX_SKIP_WARNINGS
        click.echo(
            f"warning: and {more} more skipped files: `qa info --index {safe_line(str(report.index_dir))}` "
            "lists every one with its reason",
            err=True,
        )
    counts = {
        "added": report.added,
        "changed": report.changed,
        "removed": report.removed,
        "unchanged": report.unchanged,
        "passages_embedded": report.passages_embedded,
        "passages_reused": report.passages_reused,
        "duplicates": report.duplicates,
        "files_reused": report.files_reused,
        "segments": report.segments,
    }
    if as_json:
        click.echo(
            json.dumps(
                {
                    "index_dir": str(report.index_dir),
                    "corpus": str(report.corpus),
                    "model": encoder.model_id,
                    "documents": report.documents,
                    "chunks": report.chunks,
                    "skipped": [{"source": s.doc_id, "reason": s.reason} for s in report.skipped],
                    "seconds": round(report.seconds, 3),
                    "mode": "update" if report.update else "full",
                    "full_reason": report.full_reason,
                    **counts,
                    "added_documents": report.added_documents,
                    "changed_documents": report.changed_documents,
                    "removed_documents": report.removed_documents,
                    **({"ray": dataclasses.asdict(cluster)} if cluster is not None else {}),
                }
            )
        )
        return
    if verbose:
        for verb, names in (
            ("added", report.added_documents),
            ("changed", report.changed_documents),
            ("removed", report.removed_documents),
        ):
            for name in names:
                click.echo(f"{verb}: {safe_line(name)}", err=True)
    click.echo(
        f"Indexed {report.documents} documents ({report.chunks} passages) from {safe_line(report.corpus)} into "
        f"{safe_line(report.index_dir)} with {safe_line(encoder.model_id)} in {report.seconds:.1f} s; "
        f"skipped {len(report.skipped)} files"
        + (f"; {report.duplicates} identical files folded into others." if report.duplicates else ".")
    )
    how = "Updated" if report.update else f"Full build ({report.full_reason})"
    click.echo(
        f"{how}: {report.added} added, {report.changed} changed, {report.removed} removed, "
        f"{report.unchanged} unchanged documents; passages embedded {report.passages_embedded}, "
        f"reused {report.passages_reused}."
    )
    if cluster is not None:
        click.echo(
            f"On Ray ({safe_line(settings.ray)}): files read and chunked {cluster.documents_sent} "
            f"(workers {cluster.chunk_workers}); passages embedded {cluster.passages_sent} "
            f"(batches {cluster.batches_sent}, workers {cluster.workers}), "
            f"taken from an interrupted build's cache {cluster.passages_cached}."
        )


def _index_shards(
    settings: Settings, corpus: Path, model: str | None, shards: int, *, full: bool, merge: bool, as_json: bool
) -> None:
    """`qa index --shards N`: build or update the shards, then print one line (or JSON object) per shard."""
    from qa.cli.render import safe_line
    from qa.distributed.shards import build_shards

    if settings.ray is not None:
        from qa.distributed.ray_indexing import require_ray

        require_ray()  # before the model is loaded: a missing install fails at once
    encoder = _bulk_encoder(model, settings)
    # What build_index takes besides the corpus, directory and encoder (build_shards passes them on).
    options: dict[str, Any] = dict(
        chunk_size=settings.chunk_size,
        chunk_overlap=settings.chunk_overlap,
        embed_title=settings.embed_title,
        html_content=settings.html_content,
        full=full,
        merge=merge,
    )
    clusters: list = []  # per shard, what went to the cluster (builds on Ray only)
    if settings.ray is None:
        reports = build_shards(corpus, settings.index_dir, encoder, shards=shards, **options)
    else:
        reports, clusters = _shards_on_cluster(settings, settings.ray, corpus, model, encoder, shards, options)
    for number, report in enumerate(reports):
        if as_json:
            click.echo(
                json.dumps(
                    {
                        "shard": number,
                        "index_dir": str(report.index_dir),
                        "documents": report.documents,
                        "chunks": report.chunks,
                        "rewritten": report.rewritten,
                        "added": report.added,
                        "changed": report.changed,
                        "removed": report.removed,
                        "passages_embedded": report.passages_embedded,
                        **({"ray": dataclasses.asdict(clusters[number])} if clusters else {}),
                    }
                )
            )
        else:
            click.echo(
                f"Shard {number}: {report.documents} documents ({report.chunks} passages) in "
                f"{safe_line(report.index_dir)}; {report.added} added, {report.changed} changed, "
                f"{report.removed} removed; passages embedded {report.passages_embedded}."
            )
    click.echo(
        f"Indexed {safe_line(corpus)} as {shards} shards under {safe_line(settings.index_dir)} "
        f"({sum(r.documents for r in reports)} documents, {sum(r.chunks for r in reports)} passages).",
        err=True,
    )


def _shards_on_cluster(
    settings: Settings, address: str, corpus: Path, model: str | None, encoder, shards: int, options: dict[str, Any]
) -> tuple[list, list]:
    """`qa index --shards N --ray ADDRESS`: each shard built as `qa index --ray` builds an index (its passages
    embedded on the cluster at ``address``, one session for all shards); the corpus is read, split and chunked here.

    Returns:
        Each shard's build report and its ``ClusterStats``, in shard order."""
    clusters = []
    from qa.distributed.ray_indexing import build_on_cluster, ray_session
    from qa.distributed.shards import build_shards
    from qa.embed.encoder import DEFAULT_MODEL

    def on_cluster(corpus, shard_dir, encoder, **shard_options):
        report, stats = build_on_cluster(
            corpus,
            shard_dir,
            encoder,
            address=address,
            model=model or DEFAULT_MODEL,
            workers=settings.ray_workers,
            model_cache=settings.cache_dir,
            **shard_options,
        )
        clusters.append(stats)
        return report

    with ray_session(address):
        reports = build_shards(corpus, settings.index_dir, encoder, shards=shards, build=on_cluster, **options)
    return reports, clusters


def _print_unchanged(report, model: str, as_json: bool) -> None:
    """Say that `qa index` found nothing to do and left the index (built with ``model``) as it was."""
    from qa.cli.render import safe_line

    if as_json:
        click.echo(
            json.dumps(
                {
                    "index_dir": str(report.index_dir),
                    "corpus": str(report.corpus),
                    "model": model,
                    "documents": report.documents,
                    "chunks": report.chunks,
                    "skipped": [{"source": s.doc_id, "reason": s.reason} for s in report.skipped],
                    "seconds": round(report.seconds, 3),
                    "mode": "unchanged",
                    "full_reason": None,
                    "added": 0,
                    "changed": 0,
                    "removed": 0,
                    "unchanged": report.unchanged,
                    "passages_embedded": 0,
                    "passages_reused": 0,
                    "duplicates": report.duplicates,
                    "files_reused": report.files_reused,
                    "added_documents": [],
                    "changed_documents": [],
                    "removed_documents": [],
                }
            )
        )
        return
    click.echo(
        f"Index {safe_line(report.index_dir)} is up to date with {safe_line(report.corpus)}: {report.documents} "
        f"documents ({report.chunks} passages), nothing changed, so nothing was rebuilt "
        f"({report.seconds:.2f} s). Use --full to rebuild it anyway."
    )


@main.command()
@click.argument("question", required=False)
@INDEX_OPTION
@MODEL_OPTION
@setting_option("top_k", "--top-k", "-k")
@setting_option("mode")
@click.option("--source", default=None, help="Only documents whose id matches this glob, e.g. 'reports/*.md'.")
@click.option("--after", default=None, help="Only documents dated on or after this ISO date.")
@click.option("--before", default=None, help="Only documents dated on or before this ISO date.")
@ENCODER_OPTION
@RERANK_OPTION
@RERANK_DEPTH_OPTION
@click.option("--json", "as_json", is_flag=True, help="One JSON object per question per line (the HTTP shape).")
@_expected_errors
def ask(question, index_dir, model, top_k, mode, source, after, before, encoder, rerank, rerank_depth, as_json) -> None:
    """Answer QUESTION, or each line of standard input when QUESTION is omitted."""
    from qa.cli.render import render_answer, safe_line
    from qa.distributed.shard_router import open_service
    from qa.search.filters import SearchFilter

    settings = Settings.from_env(
        index_dir=index_dir, model=model, mode=mode, encoder=encoder, rerank=rerank, rerank_depth=rerank_depth
    )
    search_filter = SearchFilter.of(source=source, after=after, before=before)
    service = open_service(settings)  # a sharded index too (qa.distributed.shard_router)
    color = sys.stdout.isatty()

    def answer_one(text: str):
        return service.search(text, top_k, search_filter=search_filter)

    if question is not None:
        answer = answer_one(question)
        click.echo(json.dumps(answer.as_dict(), ensure_ascii=False) if as_json else render_answer(answer, color=color))
        return
    failed = False
    first = True
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            answer = answer_one(line)
        except QAError as exc:
            # One bad line must not stop a batch: report it in place and carry on.
            failed = True
            click.echo(f"error: {safe_line(exc)}", err=True)
            if as_json:
                click.echo(json.dumps({"question": line.strip(), "error": str(exc)}, ensure_ascii=False))
            continue
        if as_json:
            click.echo(json.dumps(answer.as_dict(), ensure_ascii=False))
        else:
            click.echo(("" if first else "\n") + render_answer(answer, color=color))
            first = False
    if failed:
        sys.exit(1)


@main.command()
@click.argument("text", required=False)
@INDEX_OPTION
@MODEL_OPTION
@ENCODER_OPTION
@click.option("--source", default=None, help="The document the text is attributed to (its id), to check the citation.")
@click.option("--start", type=int, default=None, help="The cited span's first character (with --end).")
@click.option("--end", type=int, default=None, help="The cited span's end character, exclusive (with --start).")
@click.option("--page", type=int, default=None, help="The cited page (PDF).")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (the HTTP shape).")
@_expected_errors
def verify(text, index_dir, model, encoder, source, start, end, page, as_json) -> None:
    """Check that TEXT (or standard input) is in the documents: each sentence found, close, supported or not found.

    With --source (and --start/--end or --page), also says whether that citation points at the text, and if not,
    where the text really is. The verdicts are in the output (`--json` for machines); the exit code is 0 whatever
    they are.
    """
    from qa.distributed.shard_router import open_service
    from qa.search.verify import GivenCitation, Verifier, render_verification

    settings = Settings.from_env(index_dir=index_dir, model=model, encoder=encoder)
    if source is None and (start is not None or end is not None or page is not None):
        raise click.UsageError("--start, --end and --page name a place in the document given by --source")
    citation = GivenCitation.of(source, start, end, page) if source is not None else None
    text = sys.stdin.read() if text is None else text
    verification = Verifier(open_service(settings)).verify(text, citation)
    click.echo(json.dumps(verification.as_dict(), ensure_ascii=False) if as_json else render_verification(verification))


@main.command()
@INDEX_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@_expected_errors
def info(index_dir, as_json) -> None:
    """Describe an index: model, build parameters, documents and skipped files."""
    from qa.cli.render import render_info
    from qa.index.info import index_info

    described = index_info(Settings.from_env(index_dir=index_dir).index_dir)
    click.echo(json.dumps(described.as_dict(), ensure_ascii=False) if as_json else render_info(described))


@main.command()
@INDEX_OPTION
@MODEL_OPTION
@setting_option(
    "corpus",
    help="corpus to (re)build from when the index is missing or stale",
    shown="the index's own corpus, or seeds for a new index",
)
@setting_option("host")
@setting_option("port")
@setting_option(
    "api_key",
    help="require 'Authorization: Bearer KEY' on every endpoint but GET /health; at least 16 characters (better "
    "the variable: an option shows in the process list)",
)
@click.option("--no-build", is_flag=True, help="Serve the index as it is; never build or rebuild it.")
# The level and format are checked by Settings, whatever their case, with the variable named in the error.
@setting_option("log_level", envvar=False, type=str, metavar="LEVEL")
@setting_option("log_format", envvar=False, type=str, metavar="FORMAT")
@setting_option("workers")
@setting_option(
    "ray",
    help="serve as a Ray Serve deployment on this cluster: local, auto or ray://host:port; every node must "
    "see the index at the same path",
    shown="serve from this machine",
)
@setting_option("ray_workers", "--replicas", help="Ray Serve replicas, one CPU each (with --ray)", shown="1")
@ENCODER_OPTION
@PRECISION_OPTION
@RERANK_OPTION
@RERANK_DEPTH_OPTION
@_expected_errors
def serve(
    index_dir,
    model,
    corpus,
    host,
    port,
    api_key,
    no_build,
    log_level,
    log_format,
    workers,
    ray,
    ray_workers,
    encoder,
    precision,
    rerank,
    rerank_depth,
) -> None:
    """Start the HTTP service, building the index first if it is missing or stale."""
    import ipaddress

    import uvicorn

    from qa.api.app import create_app
    from qa.api.logs import log_config
    from qa.api.server import serve_workers, server_config
    from qa.cli.render import safe_line
    from qa.library import ensure_served_index

    settings = Settings.from_env(
        index_dir=index_dir,
        model=model,
        host=host,
        port=port,
        api_key=api_key,
        encoder=encoder,
        precision=precision,
        log_level=log_level and log_level.lower(),
        log_format=log_format and log_format.lower(),
        rerank=rerank,
        rerank_depth=rerank_depth,
        workers=workers,
        ray=ray,
        ray_workers=ray_workers,
    )
    if ray_workers is not None and settings.ray is None:
        raise click.UsageError("--replicas sets the Ray Serve replicas: give --ray ADDRESS too (or use --workers)")
    if settings.ray is not None and settings.workers > 1:
        raise click.UsageError("--workers and --ray exclude each other: with --ray, --replicas sets the processes")
    if settings.ray is not None:
        from qa.distributed.ray_indexing import require_ray

        require_ray()  # before a build: a missing install fails at once
    if settings.rerank:
        from qa.search.rerank import load_reranker

        load_reranker(settings.rerank)  # a wrong path fails now, not after a build; the loaded model is kept
    try:
        loopback = settings.host == "localhost" or ipaddress.ip_address(settings.host).is_loopback
    except ValueError:
        loopback = False
    if not loopback and settings.api_key is None:
        click.echo(
            f"warning: listening on {settings.host} without an API key: anyone who can reach it can read "
            "every indexed document (set QA_API_KEY)",
            err=True,
        )
    from qa.distributed.shards import is_sharded

    sharded = is_sharded(settings.index_dir)
    if not no_build and not sharded:  # shards are built with `qa index --shards N`, never by `qa serve`
        report, reason = ensure_served_index(
            settings,
            corpus=corpus,
            precision=precision,
            # Set only when asked for: an index built with the whole pages keeps them otherwise.
            html_content=settings.html_content if os.environ.get(ENV_VARS["html_content"]) else None,
            progress=_progress_printer(settings.progress),
        )
        if report is not None:
            how = "Updated" if report.update else "Rebuilt"
            click.echo(
                f"{how} index ({safe_line(reason)}): {report.documents} documents, {report.chunks} passages "
                f"in {report.seconds:.1f} s ({report.added} added, {report.changed} changed, "
                f"{report.removed} removed, {report.unchanged} unchanged; "
                f"{report.passages_embedded} passages embedded)",
                err=True,
            )
    access = "API key required" if settings.api_key is not None else "no API key"
    where = f"{safe_line(settings.index_dir.absolute())} on http://{settings.host}:{settings.port} ({access})"
    # Logs: one line per request comes from the app (qa/api/telemetry.py), so uvicorn's access log is off; its
    # own messages (start, stop, errors) use the same format.
    logging = dict(log_config=log_config(settings), log_level=settings.log_level, access_log=False)
    if settings.ray is not None and sharded:
        from qa.distributed.shard_serving import serve_sharded_on_ray

        replicas = settings.ray_workers or 1
        click.echo(
            f"Serving {where} as one Ray Serve deployment per shard ({replicas} replicas each) and a router "
            f"on {safe_line(settings.ray)}",
            err=True,
        )
        serve_sharded_on_ray(settings, address=settings.ray, replicas=replicas)
        return
    if settings.ray is not None:
        from qa.distributed.replicas import serve_on_ray

        # Each replica opens the index itself; Serve's proxy listens on the host and port.
        replicas = settings.ray_workers or 1
        click.echo(f"Serving {where} as {replicas} Ray Serve replicas on {safe_line(settings.ray)}", err=True)
        serve_on_ray(settings, address=settings.ray, replicas=replicas)
        return
    if settings.workers > 1:
        # Each worker opens the index itself; this process only supervises them.
        click.echo(f"Serving {where} with {settings.workers} worker processes", err=True)
        serve_workers(settings, **logging)
        return
    # A missing or damaged index does not stop the service: /health says why, searches answer 503, and the
    # reload watcher serves a good index as soon as one appears.
    app = create_app(settings)
    live = app.state.live
    service = live.current()
    if service is None:
        click.echo(f"warning: no index can be served yet: {safe_line(live.last_error)}", err=True)
        click.echo(
            f"Serving no index yet from {where}: searches answer 503 until one can be opened "
            f"(looked for every {settings.reload_interval:g} s; see GET /health)",
            err=True,
        )
    else:
        click.echo(f"Serving {service.manifest.counts['chunks']} passages from {where}", err=True)
    uvicorn.Server(server_config(app, settings, **logging)).run()


@main.command()
@INDEX_OPTION
@MODEL_OPTION
@ENCODER_OPTION
@_expected_errors
def mcp(index_dir, model, encoder) -> None:
    """Serve the index to an AI assistant over MCP (Model Context Protocol) on standard input and output.

    The assistant's MCP client starts this command itself; docs/mcp.md has the JSON to register it. Tools:
    search (passages with citations) and get_document (the exact text a citation points into). `qa serve`
    offers the same tools over HTTP at /mcp. An index rebuilt meanwhile is picked up, as `qa serve` does.
    """
    import contextlib
    import logging

    from qa.mcp.server import serve_stdio
    from qa.search.reload import LiveService
    from qa.search.service import SearchService

    settings = Settings.from_env(index_dir=index_dir, model=model, encoder=encoder)
    # Standard output carries the protocol from here on: anything a library prints while loading goes to stderr.
    with contextlib.redirect_stdout(sys.stderr):
        live = LiveService(settings, SearchService.open(settings))
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)

    live.start(settings.reload_interval)
    try:
        serve_stdio(live.loaded)
    finally:
        live.stop()


@main.command(name="eval")
@click.argument("dataset", type=click.Path(path_type=Path))
@click.option("--split", default="test", show_default=True, help="BEIR qrels split to score.")
# --corpus and --index name the dataset's own corpus and index, not the settings QA_CORPUS and QA_INDEX_DIR: plain
# options, with no variable, so a configured index is never taken for a dataset's.
@click.option(
    "--corpus",
    type=click.Path(path_type=Path),
    default=None,
    help="Corpus folder the questions refer to (question files only).",
)
@click.option(
    "--index",
    "index_dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Keep the dataset's index here and reuse it while it matches (default: a temporary index).",
)
@click.option(
    "--mode",
    "modes",
    multiple=True,
    type=click.Choice(MODES + ("all",)),
    help="Retrieval mode(s) to score; repeat, or 'all' [default: the configured mode].",
)
@MODEL_OPTION
@setting_option("chunk_size", help="passage size in model tokens for the dataset's index")
@setting_option("chunk_overlap", "--overlap", type=click.IntRange(min=0))
@setting_option("embed_title", "--embed-title/--no-embed-title", envvar=False)
@ENCODER_OPTION
@PRECISION_OPTION
@RERANK_OPTION
@RERANK_DEPTH_OPTION
@click.option("--json", "as_json", is_flag=True, help="One JSON object per mode, one per line.")
@PROGRESS_OPTION
@_expected_errors
def evaluate(
    dataset,
    split,
    corpus,
    index_dir,
    modes,
    model,
    chunk_size,
    chunk_overlap,
    embed_title,
    encoder,
    precision,
    rerank,
    rerank_depth,
    as_json,
    progress,
) -> None:
    """Score retrieval on DATASET: a BEIR folder or a phrase-labelled questions .jsonl."""
    from qa.cli.render import render_eval_table
    from qa.eval.datasets import load_dataset
    from qa.eval.evaluate import evaluate as run_evaluation

    settings = Settings.from_env(
        chunk_size=chunk_size,
        chunk_overlap=chunk_overlap,
        embed_title=embed_title,
        encoder=encoder,
        precision=precision,
        rerank=rerank,
        rerank_depth=rerank_depth,
        progress=progress,
    )
    if settings.rerank:
        from qa.search.rerank import load_reranker

        load_reranker(settings.rerank)  # a wrong path fails before the dataset is indexed
    labelled = load_dataset(dataset, split=split, corpus=corpus)
    chosen = list(MODES) if "all" in modes else list(dict.fromkeys(modes or [settings.mode]))
    encoder = _bulk_encoder(model, settings)
    reports = run_evaluation(
        labelled,
        settings,
        encoder,
        chosen,
        index_dir=index_dir,
        progress=_progress_printer(settings.progress),
        log=lambda message: click.echo(message, err=True),
    )
    if settings.rerank:
        # Each row says it was re-ranked, so it is never mistaken for the first stage alone.
        tag = f"+rerank@{settings.rerank_depth}"
        reports = [dataclasses.replace(report, mode=report.mode + tag) for report in reports]
    if as_json:
        for report in reports:
            click.echo(json.dumps(report.as_dict()))
        return
    click.echo(render_eval_table(reports, split=split if labelled.kind == "beir" else None))


# Every command's --help ends with examples; kept here, apart from the commands, so each stays short to read.
EXAMPLES = {
    None: """\b
Start here:
  qa index ~/notes                       index a folder of documents into ./embeddings
  qa ask "how do I rotate the logs?"     the passages that answer it, with citations
  qa serve                               the same over HTTP, with a web page at http://127.0.0.1:8000
""",
    "index": """\b
Examples:
  qa index ~/notes                       index ~/notes into ./embeddings (updated in place next time)
  qa index ~/notes --index ~/notes-index keep the index elsewhere
  qa index ~/notes --full --json         rebuild from scratch; the report as one JSON object
  qa index ~/corpus --ray local          read, chunk and embed on a Ray cluster here (pip install 'qa[ray]')
  qa index ~/corpus --index ~/shards --shards 4 --ray auto    4 shards, embedded on the running cluster
""",
    "ask": """\b
Examples:
  qa ask "how do I rotate the logs?"
  qa ask "backup policy" --source 'ops/*' --after 2024 -k 3
  qa ask --index ~/notes-index --json < questions.txt    one JSON answer per line
""",
    "info": """\b
Examples:
  qa info
  qa info --index ~/notes-index --json
""",
    "serve": """\b
Examples:
  qa serve --index ~/notes-index --corpus ~/notes      build if needed, then serve on 127.0.0.1:8000
  QA_API_KEY=$(openssl rand -hex 16) qa serve --host 0.0.0.0 --no-build
  qa serve --index ~/notes-index --no-build --workers 2    two processes: searches on both cores
  qa serve --index /srv/index --no-build --ray auto --replicas 4   four Ray Serve replicas (docs/distributed.md)
""",
    "mcp": """\b
Example (the command an MCP client such as Claude Desktop runs; see docs/mcp.md):
  qa mcp --index ~/notes-index
""",
    "verify": """\b
Examples:
  qa verify "Rotate the logs every night with logrotate."      found, close, supported or not found, and where
  qa verify --source ops/logs.md --start 120 --end 180 "..."   also: does that citation point at it?
  qa verify --json < answer.txt                                 each sentence of a paragraph, as JSON
""",
    "eval": """\b
Examples:
  qa eval questions.jsonl --corpus ~/notes             phrase-labelled questions over a folder
  qa eval path/to/beir/scifact --mode all --json       a BEIR dataset, every retrieval mode
""",
}
for _name, _examples in EXAMPLES.items():
    (main if _name is None else main.commands[_name]).epilog = _examples
