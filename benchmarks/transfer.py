"""Transfer learning vs from scratch on real photos: the Simpsons task on ~1,600 imbalanced
Fashion-MNIST product photos (Debian's dataset-fashion-mnist, in the Kaggle layout), once from
torchvision's ImageNet MobileNetV2 file (IMAGENET1K_V1, `make weights`) and once from scratch,
with the same data, split and params.yaml budget otherwise. Writes
benchmarks/results/transfer.{json,md}.

    .venv/bin/python benchmarks/transfer.py [--largest 500 --smallest 20]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from common import REPO, fresh_clone, project_env

sys.path.insert(0, str(REPO))
from tests.simpsons.real_photos import write_fashion_photos  # noqa: E402

STEPS = ("download", "validate", "preprocess", "train", "evaluate", "report")
STARTS = {"from scratch": False, "ImageNet IMAGENET1K_V1": "IMAGENET1K_V1"}


def run_task(clone: Path, photos: Path, pretrained: bool | str) -> dict:
    path = clone / "params.yaml"
    params = yaml.safe_load(path.read_text())
    for task in params.pop("tasks"):
        if task != "simpsons":
            params.pop(task)
    params["tasks"] = ["simpsons"]
    params["simpsons"]["source"] = {"kind": "path", "path": str(photos)}
    params["simpsons"]["train"]["pretrained"] = pretrained
    path.write_text(yaml.safe_dump(params, sort_keys=False))
    seconds = {}
    for step in STEPS:
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "stages", step, "simpsons"],
            cwd=clone,
            env=project_env(),
            check=True,
            stdout=subprocess.DEVNULL,
        )
        seconds[step] = round(time.perf_counter() - started, 1)
    metrics = json.loads((clone / "reports/simpsons/metrics.json").read_text())
    train = params["simpsons"]["train"]
    return {
        "f1_macro": round(metrics["test"]["f1_macro"], 4),
        "f1_micro": round(metrics["test"]["f1_micro"], 4),
        "test_images": metrics["test_images"],
        "train_s": seconds["train"],
        "budget": {k: train[k] for k in ("epochs", "min_steps", "batch_size", "learning_rate")},
    }


def markdown(results: dict) -> str:
    lines = [
        f"Simpsons task on {results['images']} Fashion-MNIST photos ({results['classes']}), "
        f"{results['machine']}",
        "",
        "| start | test macro-F1 | test micro-F1 | train s |",
        "|---|---|---|---|",
    ]
    for name, row in results["runs"].items():
        lines.append(f"| {name} | {row['f1_macro']} | {row['f1_micro']} | {row['train_s']} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--largest", type=int, default=500, help="images of the head class")
    parser.add_argument("--smallest", type=int, default=20, help="images of the rarest class")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="bench-transfer-"))
    sizes = write_fashion_photos(workdir / "photos", args.largest, args.smallest)
    results = {
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "images": sum(sizes.values()),
        "classes": ", ".join(f"{name} {count}" for name, count in sizes.items()),
        "runs": {},
    }
    for name, pretrained in STARTS.items():
        clone = fresh_clone(workdir / name.split()[0].lower())
        results["runs"][name] = run_task(clone, workdir / "photos", pretrained)
        print(name, results["runs"][name], flush=True)
    out = REPO / "benchmarks" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "transfer.json").write_text(json.dumps(results, indent=2) + "\n")
    (out / "transfer.md").write_text(markdown(results))
    print(markdown(results))


if __name__ == "__main__":
    main()
