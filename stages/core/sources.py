"""Where a task's raw data comes from: `builtin` (offline, deterministic), `url` (sha256 checked,
resumable, cached by checksum) or `path` (a local archive, folder or file). The parser after
the download step never knows which kind produced the files.

The `source` step runs on every `dvc repro` (`always_changed`) and writes what the source holds
now to data/sources/<task>.json: the bytes' sha256 for a path or an unpinned url, the pinned
checksum for a url with `sha256`, the params for builtin. `download` depends on that file, so DVC
re-runs it (and, if data/raw changed, everything after it) only when the bytes changed.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import shutil
import subprocess
import sys
import tarfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Literal

from pydantic import Field, model_validator
from tqdm import tqdm

from stages.core.errors import TransientError, UserError
from stages.core.fsio import atomic_dir
from stages.core.params import StrictModel

CHUNK = 1 << 20


class SourceParams(StrictModel):
    kind: Literal["builtin", "url", "path"] = "builtin"
    url: str | None = None
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-fA-F]{64}$")
    path: str | None = None

    @model_validator(mode="after")
    def _kind_has_its_fields(self) -> SourceParams:
        if self.kind == "url" and not self.url:
            raise ValueError("kind 'url' needs 'url' (and 'sha256' to pin its bytes)")
        if self.kind == "path" and not self.path:
            raise ValueError("kind 'path' needs 'path'")
        return self


def check_source(source: SourceParams, downloads: Path) -> dict:
    """What the source holds now, cheaply enough to run on every repro. An unpinned url is
    fetched (into the checksum-keyed downloads, so `download` does not fetch it again)."""
    if source.kind == "builtin":
        return {"kind": "builtin", **source.model_dump(exclude={"kind", "url", "sha256", "path"})}
    if source.kind == "url":
        sha256 = source.sha256 or fetch_unpinned(source.url, downloads)
        return {"kind": "url", "url": source.url, "sha256": sha256.lower()}
    origin = existing_path(source)
    files = [origin] if origin.is_file() else sorted(p for p in origin.rglob("*") if p.is_file())
    digest = hashlib.sha256()
    for path in files:
        digest.update(path.relative_to(origin).as_posix().encode() + b"\0")
        digest.update(sha256_of(path).encode())
    return {
        "kind": "path",
        "path": str(origin),
        "sha256": digest.hexdigest(),
        "files": len(files),
        "bytes": sum(p.stat().st_size for p in files),
    }


def write_source_check(source: SourceParams, downloads: Path, out: Path) -> dict:
    checked = check_source(source, downloads)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(checked, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    tmp.replace(out)
    return checked


def existing_path(source: SourceParams) -> Path:
    origin = Path(source.path).expanduser()
    if not origin.exists():
        raise UserError(f"source.path: {origin}: no such file or folder")
    return origin


def fetch_task_source(source: SourceParams, paths, builtin: Callable[[Path], None]) -> None:
    """A task's download step: data/raw/<task> from its source, an unpinned url at the checksum
    the `source` step saw (data/sources/<task>.json)."""
    if source.kind == "url" and not source.sha256:
        checked = json.loads(paths.source_check.read_text()) if paths.source_check.is_file() else {}
        if checked.get("url") == source.url:
            source = source.model_copy(update={"sha256": checked["sha256"]})
    fetch_source(source, paths.raw, builtin, paths.downloads)


def fetch_source(
    source: SourceParams, dest: Path, builtin: Callable[[Path], None], downloads: Path
) -> None:
    """Fill `dest` from the source; `dest` is replaced only when everything succeeded."""
    if source.kind == "path":
        origin = existing_path(source)
    elif source.kind == "url":
        origin = (
            download(source.url, source.sha256, downloads)
            if source.sha256
            else downloads / fetch_unpinned(source.url, downloads) / url_name(source.url)
        )
    with atomic_dir(dest) as tmp:
        if source.kind == "builtin":
            builtin(tmp)
        elif origin.is_dir():
            shutil.copytree(origin, tmp, dirs_exist_ok=True)
        else:
            unpack(origin, tmp)


def find_file(raw_dir: Path, name: str) -> Path | None:
    """Archives nest files at different depths: take the shallowest match."""
    matches = sorted(raw_dir.rglob(name), key=lambda p: (len(p.parts), str(p)))
    return matches[0] if matches else None


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def download(url: str, sha256: str, downloads: Path) -> Path:
    """Fetch `url` into downloads/<sha256>/<name>; resume a partial file; verify the checksum.

    A wrong checksum deletes what was fetched and fails: nothing unverified is ever kept.
    """
    sha256 = sha256.lower()
    target = downloads / sha256 / url_name(url)
    if target.is_file():
        if sha256_of(target) == sha256:
            return target
        target.unlink()
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + ".part")
    _fetch(url, part)
    actual = sha256_of(part)
    if actual != sha256:
        part.unlink()
        raise UserError(
            f"source.sha256: {url}: checksum mismatch (expected {sha256}, got {actual}); "
            "the download was deleted"
        )
    part.rename(target)
    return target


def url_name(url: str) -> str:
    return PurePosixPath(urllib.request.urlparse(url).path).name or "download"


def fetch_unpinned(url: str, downloads: Path) -> str:
    """Fetch a url whose bytes may change (a nightly export) and keep it under its sha256;
    returns the sha256."""
    part = downloads / f".unpinned-{os.getpid()}" / (url_name(url) + ".part")
    part.parent.mkdir(parents=True, exist_ok=True)
    try:
        part.unlink(missing_ok=True)
        _fetch(url, part)
        sha256 = sha256_of(part)
        target = downloads / sha256 / url_name(url)
        target.parent.mkdir(parents=True, exist_ok=True)
        part.replace(target)
    finally:
        shutil.rmtree(part.parent, ignore_errors=True)
    return sha256


def _fetch(url: str, part: Path) -> None:
    offset = part.stat().st_size if part.exists() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={offset}-"} if offset else {})
    try:
        response = urllib.request.urlopen(request, timeout=60)
    except urllib.error.HTTPError as exc:
        if exc.code == 416 and offset:  # the part file is already complete
            return
        error = TransientError if exc.code == 429 or exc.code >= 500 else UserError
        raise error(f"source.url: {url}: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise TransientError(f"source.url: {url}: cannot connect ({exc})") from None
    with response:
        resumed = response.status == 206
        total = response.length
        mode = "ab" if resumed else "wb"
        with (
            part.open(mode) as fh,
            tqdm(
                total=(total or 0) + (offset if resumed else 0) or None,
                initial=offset if resumed else 0,
                unit="B",
                unit_scale=True,
                desc=part.stem,
                disable=not sys.stderr.isatty(),
            ) as bar,
        ):
            received, lost = 0, None
            try:
                while chunk := response.read(CHUNK):
                    fh.write(chunk)
                    received += len(chunk)
                    bar.update(len(chunk))
            except (OSError, http.client.HTTPException) as exc:
                lost = repr(exc)
            # urllib returns a short body without raising when the server closes early
            if lost is None and total is not None and received < total:
                lost = f"{total - received} bytes missing"
            if lost:
                raise TransientError(
                    f"source.url: {url}: connection lost after {fh.tell()} bytes ({lost}); "
                    "the next run resumes from there"
                )


# Python reads no RAR; these system tools do (the first one on PATH is used).
RAR_EXTRACTORS = {
    "bsdtar": ["bsdtar", "-xf", "{archive}", "-C", "{dest}"],
    "unrar": ["unrar", "x", "-o+", "-idq", "{archive}", "{dest}/"],
    "unar": ["unar", "-quiet", "-force-overwrite", "-output-directory", "{dest}", "{archive}"],
}


def unpack(archive: Path, dest: Path) -> None:
    """Extract a zip, tar(.gz/.bz2/.xz) or rar into dest, refusing entries that would land
    outside it. A plain file that is no archive (a CSV, say) is copied as it is.
    """
    name = archive.name.lower()
    if zipfile.is_zipfile(archive):
        _unzip(archive, dest)
    elif name.endswith((".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz")) or _is_tar(archive):
        _untar(archive, dest)
    elif _is_rar(archive):
        _unrar(archive, dest)
    elif name.endswith((".zip", ".gz", ".tgz", ".bz2", ".xz", ".rar", ".7z")):
        raise UserError(f"{archive}: not a valid archive (corrupt or truncated {archive.suffix})")
    else:
        shutil.copy2(archive, dest / archive.name)


def _is_tar(path: Path) -> bool:
    try:
        return tarfile.is_tarfile(path)
    except OSError:
        return False


def _is_rar(path: Path) -> bool:
    with path.open("rb") as fh:
        return fh.read(7) in (b"Rar!\x1a\x07\x00", b"Rar!\x1a\x07\x01")


def _unrar(archive: Path, dest: Path) -> None:
    tool = next((t for t in RAR_EXTRACTORS if shutil.which(t)), None)
    if tool is None:
        raise UserError(
            f"{archive}: a RAR archive needs a system extractor; install bsdtar "
            "(apt install libarchive-tools), unrar or unar, or unpack it and use a path source"
        )
    command = [arg.format(archive=archive, dest=dest) for arg in RAR_EXTRACTORS[tool]]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        last = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no message"]
        raise UserError(f"{archive}: {tool} could not extract it ({last[0]})")
    root = dest.resolve()
    for path in dest.rglob("*"):
        if path.is_symlink() or not path.resolve().is_relative_to(root):
            raise UserError(f"{archive}: entry {path.name!r} is a link or escapes the folder")


def _unzip(archive: Path, dest: Path) -> None:
    root = dest.resolve()
    try:
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                target = (root / info.filename).resolve()
                if info.filename.startswith(("/", "\\")) or not target.is_relative_to(root):
                    raise UserError(
                        f"{archive}: entry {info.filename!r} escapes the extraction folder"
                    )
            bad = zf.testzip()
            if bad is not None:
                raise UserError(f"{archive}: entry {bad!r} is corrupt (CRC mismatch)")
            zf.extractall(root)
    except zipfile.BadZipFile as exc:
        raise UserError(f"{archive}: not a valid zip archive ({exc})") from None


def _untar(archive: Path, dest: Path) -> None:
    try:
        with tarfile.open(archive) as tf:
            tf.extractall(dest, filter="data")
    except tarfile.FilterError as exc:
        raise UserError(f"{archive}: entry escapes the extraction folder ({exc})") from None
    except (tarfile.TarError, EOFError, OSError) as exc:
        raise UserError(f"{archive}: not a valid tar archive ({exc})") from None
