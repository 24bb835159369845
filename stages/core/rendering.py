"""Figures, tables and self-contained HTML: Markdown for reading in a repo browser, HTML with
every image inlined and no external CSS/JS, so it opens offline from a file. Shared by the
validation, evaluation, comparison and summary pages; the task reports' text is reporting.py."""

from __future__ import annotations

import base64
import html
import mimetypes
import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402

STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1100px;
margin:2em auto;padding:0 1em;color:#222;line-height:1.45}
h1{border-bottom:2px solid #ddd;padding-bottom:.3em}
h2{margin-top:1.6em;border-bottom:1px solid #eee}
table{border-collapse:collapse;margin:1em 0;font-size:.92em}
th,td{border:1px solid #ccc;padding:.3em .6em;text-align:right}th{background:#f4f4f4}
td:first-child,th:first-child{text-align:left}
img{max-width:100%;height:auto;border:1px solid #eee;margin:.5em 0}
code{background:#f4f4f4;padding:0 .25em;border-radius:3px}
.figs{display:flex;flex-wrap:wrap;gap:1em;align-items:flex-start}.figs img{max-width:48%}
"""


def markdown_table(frame: pd.DataFrame, floatfmt: str = ".4f", index: bool = False) -> str:
    return frame.to_markdown(index=index, floatfmt=floatfmt)


def save_figure(fig: plt.Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def render_html(title: str, markdown_text: str, base_dir: Path | None = None) -> str:
    """Markdown -> one HTML page; images under base_dir are embedded as data URIs."""
    import markdown

    body = markdown.markdown(
        markdown_text, extensions=["tables", "fenced_code", "sane_lists", "md_in_html"]
    )
    if base_dir is not None:
        body = re.sub(
            r'src="([^":]+)"', lambda m: f'src="{_data_uri(base_dir / m.group(1))}"', body
        )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head>\n"
        f"<body>\n{body}\n</body></html>\n"
    )


def _data_uri(path: Path) -> str:
    if not path.is_file():
        return path.name
    mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode()}"
