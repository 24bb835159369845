"""Latency of the web app per tab and its memory with every champion loaded: `python -m serve`
over a repository whose pipeline has run, N requests per tab from C concurrent gradio_client
clients, on inputs taken from the test splits. Writes JSON and a Markdown table.

    .venv/bin/python benchmarks/serve_latency.py --root . [--requests 50] [--clients 4]
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import psutil
import torch
from PIL import Image

from benchmarks.common import project_env


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def png(tensor: torch.Tensor, path: Path) -> str:
    Image.fromarray(tensor.permute(1, 2, 0).numpy()).save(path)
    return str(path)


def requests_per_tab(root: Path, scratch: Path, distinct: int = 10) -> dict[str, list[tuple]]:
    """(api_name, several argument tuples) for each task the repository has trained: distinct
    inputs, as from different users."""
    from gradio_client import handle_file

    from stages.churn.schema import FEATURES, NUMERIC

    found = {}
    processed = root / "data" / "processed"

    def images(task: str) -> list:
        test = torch.load(processed / task / "test.pt")["images"][:distinct]
        return [handle_file(png(t, scratch / f"{task}-{i}.png")) for i, t in enumerate(test)]

    if (processed / "simpsons" / "test.pt").is_file():
        found["simpsons"] = [([image], 5, None) for image in images("simpsons")]
    if (processed / "detection" / "test.pt").is_file():
        found["detection"] = [(image, None, 50, 0.5, None) for image in images("detection")]
    if (processed / "segmentation" / "test.pt").is_file():
        found["segmentation"] = [(image, 0.5, 0.5, None) for image in images("segmentation")]
    if (processed / "nmt" / "test.pt").is_file():
        from stages.nmt.preprocess import load_split

        sentences = load_split(processed / "nmt", "test").source[:distinct]
        found["nmt"] = [(sentence, 4, 1, None) for sentence in sentences]
    if (processed / "churn" / "holdout.parquet").is_file():
        rows = pd.read_parquet(processed / "churn" / "holdout.parquet").head(distinct)
        found["churn"] = [
            (*[float(row[c]) if c in NUMERIC else str(row[c]) for c in FEATURES], None)
            for _, row in rows.iterrows()
        ]
    if (processed / "timeseries" / "future.parquet").is_file():
        future = pd.read_parquet(processed / "timeseries" / "future.parquet")
        series = future[["store_nbr", "family"]].drop_duplicates().head(distinct)
        found["timeseries"] = [(int(s), str(f), None) for s, f in series.itertuples(index=False)]
    return found


def measure(url: str, api: str, arguments: list[tuple], requests: int, clients: int) -> dict:
    from gradio_client import Client

    pool = [Client(url, verbose=False) for _ in range(clients)]
    pool[0].predict(*arguments[0], api_name=f"/{api}")  # loads the champion once

    def one(index: int) -> float:
        started = time.perf_counter()
        pool[index % clients].predict(*arguments[index % len(arguments)], api_name=f"/{api}")
        return time.perf_counter() - started

    with ThreadPoolExecutor(clients) as workers:
        seconds = np.array(list(workers.map(one, range(requests))))
    return {
        "p50_ms": round(float(np.percentile(seconds, 50)) * 1000, 1),
        "p95_ms": round(float(np.percentile(seconds, 95)) * 1000, 1),
        "requests": requests,
        "clients": clients,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path.cwd())
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/serve_latency"))
    args = parser.parse_args()
    root = args.root.resolve()
    port = free_port()
    env = {**project_env(), "GRADIO_ANALYTICS_ENABLED": "False", "HF_HUB_OFFLINE": "1"}
    app = subprocess.Popen(
        [sys.executable, "-m", "serve", "--root", str(root), "--port", str(port)],
        cwd=root,
        env=env,
        stdout=(Path(tempfile.gettempdir()) / "serve_latency.log").open("w"),
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}/"
    try:
        while True:
            try:
                httpx.get(url, timeout=2)
                break
            except httpx.HTTPError:
                time.sleep(0.5)
        with tempfile.TemporaryDirectory() as scratch:
            tabs = requests_per_tab(root, Path(scratch))
            results = {
                api: measure(url, api, arguments, args.requests, args.clients)
                for api, arguments in tabs.items()
            }
        rss = psutil.Process(app.pid).memory_info().rss
    finally:
        app.terminate()
        app.wait()
    summary = {"tabs": results, "app_rss_mb_all_champions_loaded": round(rss / 2**20)}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(summary, indent=2) + "\n")
    lines = ["| tab | p50 ms | p95 ms |", "|---|---|---|"]
    lines += [f"| {api} | {r['p50_ms']} | {r['p95_ms']} |" for api, r in results.items()]
    lines.append(
        f"\napp memory with every champion loaded: {summary['app_rss_mb_all_champions_loaded']} MB"
    )
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
