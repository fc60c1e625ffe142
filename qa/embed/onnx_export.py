"""Export a sentence-transformers model to ONNX once, into a cache the ONNX encoder loads without PyTorch.

The export runs `torch.onnx` on the model's transformer (token embeddings out); pooling and normalisation
are done by the ONNX encoder in NumPy, from the settings written beside the graph. An export is keyed by
the model's identity and its files' sizes and dates, written into a temporary directory and renamed into
place, so concurrent processes never see half an export and a changed model is exported again.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, cast

from qa.errors import EncoderUnavailable, ModelError

if TYPE_CHECKING:
    from sentence_transformers.models import Transformer

# Bumped when what an export contains changes, so old exports are not reused.
EXPORT_VERSION = 1
GRAPH_FILE = "model.onnx"
# The int8 graph, quantised from GRAPH_FILE on first use; the recipe's version is in the name, so a changed
# recipe makes a new file instead of reusing an old one.
QUANTIZED_FILE = "model.int8-v1.onnx"
TOKENIZER_FILE = "tokenizer.json"
SETTINGS_FILE = "encoder.json"
# Pooling modes the ONNX encoder reproduces exactly.
POOLING_MODES = ("mean", "cls", "max")
ONNX_OPSET = 17


def default_cache_dir() -> Path:
    """$XDG_CACHE_HOME/qa, else ~/.cache/qa."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "qa"


def export_key(model_id: str, target: str) -> str:
    """A cache key for a model: its identity, plus the size and date of its files when it is a directory."""
    digest = hashlib.sha256(f"v{EXPORT_VERSION}\0{model_id}\0{target}".encode())
    directory = Path(target)
    if directory.is_dir():
        for path in sorted(p for p in directory.rglob("*") if p.is_file()):
            stat = path.stat()
            digest.update(f"\0{path.relative_to(directory)}\0{stat.st_size}\0{stat.st_mtime_ns}".encode())
    return digest.hexdigest()[:24]


def cached_export(model_id: str, target: str, cache_dir: Path | None) -> Path:
    """The directory holding the ONNX export of the model, exporting it first if it is not cached.

    Args:
        model_id: the model's identity in manifests (see ``qa.embed.encoder.model_id_for``).
        target: what sentence-transformers loads: a local directory or a model name.
        cache_dir: where exports live; None for ``default_cache_dir()``.

    Raises:
        ModelError: the model cannot be loaded, has parts the ONNX encoder cannot reproduce, or the cache
            directory cannot be written.
    """
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    destination = root / "onnx" / export_key(model_id, target)
    if (destination / SETTINGS_FILE).is_file():
        return destination
    try:
        destination.parent.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix=".export-", dir=destination.parent))
    except OSError as exc:
        raise ModelError(f"cannot write the ONNX export cache {root}: {exc} (set QA_CACHE_DIR)") from exc
    try:
        _export(model_id, target, scratch)
        try:
            scratch.rename(destination)
        except OSError:
            if not (destination / SETTINGS_FILE).is_file():  # not another process finishing first
                raise
    except OSError as exc:
        raise ModelError(f"cannot write the ONNX export of {model_id!r} into {root}: {exc}") from exc
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return destination


def graph_path(export_dir: Path, precision: str) -> Path:
    """The graph to run at ``precision`` ("fp32" or "int8"), quantising the fp32 graph once for int8.

    int8 is dynamic quantisation of the MatMul weights, per output channel (activations are quantised per call
    by ONNX Runtime). docs/configuration.md ("Precision") and docs/performance.md have what it does to speed and to
    retrieval quality.

    Raises:
        EncoderUnavailable: int8 is asked for, the quantised graph is missing and the onnx package is not installed.
        ModelError: the quantised graph cannot be written.
    """
    export_dir = Path(export_dir)
    if precision == "fp32":
        return export_dir / GRAPH_FILE
    destination = export_dir / QUANTIZED_FILE
    if destination.is_file():
        return destination
    try:
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError as exc:  # onnxruntime's quantisation tools import the onnx package
        raise EncoderUnavailable("quantising the model to int8 needs the onnx package: pip install onnx") from exc
    quiet = _QuantiserAdvice()
    logging.getLogger().addFilter(quiet)  # it logs a pre-processing hint through the root logger
    try:
        with tempfile.TemporaryDirectory(prefix=".quantize-", dir=export_dir) as scratch:
            partial = Path(scratch) / QUANTIZED_FILE
            quantize_dynamic(
                str(export_dir / GRAPH_FILE),
                str(partial),
                weight_type=QuantType.QInt8,
                per_channel=True,
                op_types_to_quantize=["MatMul"],
            )
            os.replace(partial, destination)  # whole or not at all, whoever finishes first
    except OSError as exc:
        raise ModelError(f"cannot write the int8 model into {export_dir}: {exc} (set QA_CACHE_DIR)") from exc
    except Exception as exc:  # the quantiser's own errors, for graphs it cannot handle
        raise EncoderUnavailable(
            f"cannot quantise the model in {export_dir} to int8: {exc}; use --precision fp32"
        ) from exc
    finally:
        logging.getLogger().removeFilter(quiet)
    return destination


class _QuantiserAdvice(logging.Filter):
    """Drops the quantiser's log line suggesting graph pre-processing, which would land on the CLI's output."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "onnxruntime" not in record.pathname or "quantization" not in record.pathname


def _export(model_id: str, target: str, out: Path) -> None:
    """Write graph, tokenizer and encoder settings for the model into ``out``."""
    try:
        import torch
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:  # pragma: no cover - depends on the installation
        raise EncoderUnavailable(
            "exporting a model to ONNX needs PyTorch and sentence-transformers: "
            "pip install 'torch==2.13.0' sentence-transformers onnx"
        ) from exc
    if importlib.util.find_spec("onnx") is None:  # torch.onnx writes the graph through it
        raise EncoderUnavailable("exporting a model to ONNX needs the onnx package: pip install onnx")
    from qa.embed.encoder import quiet_transformers

    quiet_transformers()
    try:
        model = SentenceTransformer(target, device="cpu")
    except Exception as exc:  # the library raises many kinds (OSError, ValueError, HF errors)
        raise ModelError(f"cannot load embedding model {model_id!r} for ONNX export: {exc}") from exc
    settings = _pipeline_settings(model, model_id)
    # The pipeline's first module, a Transformer (_pipeline_settings refused any other pipeline); torch's stubs give
    # a module's submodules as Module | Tensor.
    transformer = cast("Transformer", model[0])
    tokenizer = transformer.tokenizer
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if tokenizer is None or backend is None:
        raise EncoderUnavailable(
            f"model {model_id!r} has no fast tokenizer, which the ONNX encoder needs: use --encoder torch"
        )

    names = [n for n in ("input_ids", "attention_mask", "token_type_ids") if n in tokenizer.model_input_names]
    if names[:2] != ["input_ids", "attention_mask"]:
        raise EncoderUnavailable(f"model {model_id!r} takes inputs {tokenizer.model_input_names}: use --encoder torch")

    class TokenEmbeddings(torch.nn.Module):
        """The transformer alone, by keyword, returning its last hidden state."""

        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
            return self.inner(**dict(zip(names, inputs))).last_hidden_state

    sample = tokenizer(["an example", "a second, longer example"], padding=True, return_tensors="pt")
    axes = {"batch": 0, "tokens": 1}
    dynamic = {name: {v: k for k, v in axes.items()} for name in [*names, "token_embeddings"]}
    module = TokenEmbeddings(transformer.auto_model).eval()
    try:
        # The tracer warns about Python conditions it freezes; for an encoder they hold for every input, and
        # tests/test_onnx_encoder.py checks the result against the PyTorch model.
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                module,
                tuple(sample[n] for n in names),
                str(out / GRAPH_FILE),
                input_names=names,
                output_names=["token_embeddings"],
                dynamic_axes=dynamic,
                opset_version=ONNX_OPSET,
                dynamo=False,
            )
    except Exception as exc:  # torch.onnx raises a variety of errors for graphs it cannot trace
        raise EncoderUnavailable(f"cannot export model {model_id!r} to ONNX: {exc}; use --encoder torch") from exc
    backend.save(str(out / TOKENIZER_FILE))
    settings.update(
        inputs=names,
        pad_id=int(tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0),
        special_tokens=len(tokenizer("")["input_ids"]),
        torch=torch.__version__,
    )
    (out / SETTINGS_FILE).write_text(json.dumps(settings, indent=2) + "\n", encoding="utf-8")


def _pipeline_settings(model, model_id: str) -> dict:
    """Pooling, normalisation and limits of a Transformer → Pooling → [Normalize] pipeline; refuse others."""
    kinds = [type(module).__name__ for module in model]
    if kinds not in (["Transformer", "Pooling"], ["Transformer", "Pooling", "Normalize"]):
        raise EncoderUnavailable(
            f"model {model_id!r} is a {' → '.join(kinds)} pipeline; the ONNX encoder reproduces Transformer → "
            "Pooling [→ Normalize] only: use --encoder torch"
        )
    config = model[1].get_config_dict()
    mode = config.get("pooling_mode")
    if mode is None:  # older sentence-transformers keep one flag per mode
        flags = [
            m
            for m in POOLING_MODES
            if config.get(f"pooling_mode_{m}_tokens" if m != "cls" else "pooling_mode_cls_token")
        ]
        mode = flags[0] if len(flags) == 1 else None
    if mode not in POOLING_MODES:
        raise EncoderUnavailable(
            f"model {model_id!r} pools with {mode!r}; the ONNX encoder supports {POOLING_MODES}: use --encoder torch"
        )
    return {
        "export_version": EXPORT_VERSION,
        "model_id": model_id,
        "pooling": mode,
        "normalize": len(kinds) == 3,
        "max_seq_length": int(model.max_seq_length),
        "dimension": int(config.get("embedding_dimension") or config.get("word_embedding_dimension")),
    }
