"""One error hierarchy for everything a user can cause; the CLI and HTTP layers map it in one place."""

from __future__ import annotations


class QAError(Exception):
    """Base class for expected failures: carries an HTTP status and a CLI exit code."""

    status_code: int = 500
    exit_code: int = 1
    # Extra HTTP response headers the error calls for (e.g. WWW-Authenticate on a 401).
    headers: dict[str, str] | None = None

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class InvalidRequest(QAError):
    """The request itself is wrong: empty question, top_k out of range, bad option value."""

    status_code = 422


class ConfigError(QAError):
    """A setting cannot work (for example a chunk size over the model's limit)."""

    status_code = 500


class CorpusError(QAError):
    """The corpus folder is missing, unreadable or holds nothing indexable."""

    status_code = 500


class IndexNotFound(QAError):
    """No index exists at the given directory."""

    status_code = 503


class IndexIncompatible(QAError):
    """The index was built in a way this process cannot use (format, model, dimension)."""

    status_code = 503


class IndexCorrupt(QAError):
    """The index files are present but damaged or inconsistent."""

    status_code = 503


class IndexWriteError(QAError):
    """The index cannot be written where asked: the disk is full, the folder is read-only or is not a folder.

    The previous index, if any, is left as it was: a build writes beside it and swaps only when complete.
    """

    status_code = 500


class ModelError(QAError):
    """The embedding model cannot be found or loaded."""

    status_code = 503


class EncoderUnavailable(ModelError):
    """The model cannot run on the encoder backend asked for (another backend may still run it)."""


class DocumentNotFound(QAError):
    """No document with the requested id is in the index."""

    status_code = 404


class BuildInProgress(QAError):
    """Another process is building the same index."""

    status_code = 409


class Unauthorized(QAError):
    """The service requires an API key and the request did not carry the right one.

    The message is the same whatever was wrong (no header, another scheme, a wrong key), so a caller
    learns nothing from it.
    """

    status_code = 401
    headers = {"WWW-Authenticate": "Bearer"}

    def __init__(self, message: str = "missing or invalid API key") -> None:
        super().__init__(message)


class PayloadTooLarge(QAError):
    """A request body is over the configured limit (``max_body_bytes``)."""

    status_code = 413

    def __init__(self, size: int, limit: int, *, at_least: bool = False) -> None:
        qualifier = "at least " if at_least else ""
        super().__init__(f"request body is {qualifier}{size} bytes; the limit is {limit}")
        self.size = size
        self.limit = limit


class ShardUnavailable(QAError):
    """A shard of a sharded index failed or did not answer, so no complete answer can be given
    (qa.distributed.shard_router)."""

    status_code = 503


class ShardChanged(QAError):
    """A shard was rebuilt twice while a question was being answered from an earlier build of it: ask again."""

    status_code = 503
