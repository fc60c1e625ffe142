"""What re-ranking adds to query latency, by depth and backend, with a tiny random cross-encoder made here.

    python benchmarks/rerank_latency.py --index embeddings [--shape tiny|minilm] [--rounds 3] [--depths 10 30 100]

No real cross-encoder ships or can be downloaded here, so this measures cost only: a BERT sequence classifier
with random weights and the packaged all-MiniLM-L6-v2 tokenizer, either the tests' tiny one (2 layers, hidden
32) or one shaped like ms-marco-MiniLM-L-6-v2 (6 layers, hidden 384, 12 heads), which costs what that model
would. Its order says nothing about quality. Pass ``--model DIR`` to time your own instead. Prints the median
search time per question (top 5, with supporting sentences) without re-ranking and at each depth, per backend.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import tempfile
import time
import warnings
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from qa.config import Settings  # noqa: E402
from qa.search.service import SearchService  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
_TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json")
# BERT sizes: (layers, hidden, attention heads, intermediate size).
SHAPES = {"tiny": (2, 32, 2, 64), "minilm": (6, 384, 12, 1536)}


def build_tiny_cross_encoder(directory: Path, *, num_labels: int = 1, shape: str = "tiny", seed: int = 0) -> Path:
    """Save a randomly initialised BERT cross-encoder with the packaged model's tokenizer into ``directory``.

    The wide initialisation spreads its scores, so orders are decided by clear margins, not rounding.
    """
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    from qa.embed.encoder import packaged_model_path, quiet_transformers

    quiet_transformers()
    tokenizer = AutoTokenizer.from_pretrained(str(packaged_model_path()))
    torch.manual_seed(seed)
    layers, hidden, heads, intermediate = SHAPES[shape]
    config = BertConfig(
        vocab_size=tokenizer.vocab_size,
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=intermediate,
        max_position_embeddings=512,
        num_labels=num_labels,
        initializer_range=0.5,
    )
    BertForSequenceClassification(config).eval().save_pretrained(str(directory))
    tokenizer.save_pretrained(str(directory))
    return Path(directory)


def export_onnx(model_dir: Path, out_dir: Path) -> Path:
    """Export a saved sequence classifier to ``out_dir/model.onnx`` (logits out) beside its tokenizer and config."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    model = AutoModelForSequenceClassification.from_pretrained(str(model_dir)).eval()
    tokenizer = AutoTokenizer.from_pretrained(str(model_dir))
    names = ["input_ids", "attention_mask", "token_type_ids"]

    class Logits(torch.nn.Module):
        """The classifier by keyword, returning its logits only."""

        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
            return self.inner(**dict(zip(names, inputs))).logits

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    sample = tokenizer(
        ["a question", "another one"], ["a passage", "a longer passage"], padding=True, return_tensors="pt"
    )
    dynamic = {**{name: {0: "batch", 1: "tokens"} for name in names}, "logits": {0: "batch"}}
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tracer's advisories about frozen Python conditions
        torch.onnx.export(
            Logits(model),
            tuple(sample[n] for n in names),
            str(out_dir / "model.onnx"),
            input_names=names,
            output_names=["logits"],
            dynamic_axes=dynamic,
            opset_version=17,
            dynamo=False,
        )
    for name in (*_TOKENIZER_FILES, "config.json"):
        if (Path(model_dir) / name).is_file():
            shutil.copy(Path(model_dir) / name, out_dir / name)
    return out_dir


def median_ms(service: SearchService, questions: list[str], rounds: int, top_k: int = 5) -> float:
    """Median milliseconds per search over every question and round (after one warm-up search)."""
    service.search(questions[0], top_k)
    timings = []
    for _ in range(rounds):
        for question in questions:
            started = time.perf_counter()
            service.search(question, top_k)
            timings.append((time.perf_counter() - started) * 1000)
    return statistics.median(timings)


def measure(index: Path, models: dict[str, Path], depths: list[int], questions: list[str], rounds: int) -> list[tuple]:
    """``(backend, depth, median ms)`` rows; depth 0 is the first stage alone. Services share one loaded encoder."""
    base = SearchService.open(Settings(index_dir=index))
    rows = [("none", 0, median_ms(base, questions, rounds))]
    for backend, model in models.items():
        for depth in depths:
            settings = replace(base.settings, rerank=str(model), rerank_depth=depth)
            service = SearchService.open(settings, encoder=base.dense.encoder)
            rows.append((backend, depth, median_ms(service, questions, rounds)))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index", type=Path, default=ROOT / "embeddings")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--depths", type=int, nargs="+", default=[10, 30, 100])
    parser.add_argument("--shape", choices=sorted(SHAPES), default="tiny")
    parser.add_argument("--model", type=Path, default=None, help="time this cross-encoder instead of a tiny one")
    args = parser.parse_args()
    questions = [json.loads(line)["question"] for line in (ROOT / "tests/data/seeds_questions.jsonl").open()]
    with tempfile.TemporaryDirectory(prefix="rerank-bench-") as scratch:
        if args.model is not None:
            models = {"given": args.model}
        else:
            torch_dir = build_tiny_cross_encoder(Path(scratch) / "torch", shape=args.shape)
            models = {"torch": torch_dir, "onnx": export_onnx(torch_dir, Path(scratch) / "onnx")}
        rows = measure(args.index, models, args.depths, questions, args.rounds)
    layers, hidden, heads, _ = SHAPES[args.shape]
    shape = f"random BERT, {layers} layers, hidden {hidden}, {heads} heads"
    print(f"questions: {len(questions)} x {args.rounds} rounds, top 5; model: {args.model or shape}")
    baseline = rows[0][2]
    print(f"{'backend':8} {'depth':>5} {'median ms':>10} {'added ms':>9}")
    for backend, depth, median in rows:
        print(f"{backend:8} {depth:>5} {median:>10.2f} {median - baseline:>9.2f}")


if __name__ == "__main__":
    main()
