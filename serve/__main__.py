"""`python -m serve [--root DIR] [--host H] [--port P]`: the web app over the registered models
of the repository's store (the embedded mlflow.db, or MLFLOW_TRACKING_URI's server)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m serve", description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=Path.cwd(), help="repository root")
    parser.add_argument("--host", default="127.0.0.1", help="0.0.0.0 to serve other machines")
    parser.add_argument("--port", type=int, default=7860)
    args = parser.parse_args(argv)
    from serve.app import launch

    launch(args.root.resolve(), args.host, args.port)
    return 0


if __name__ == "__main__":
    sys.exit(main())
