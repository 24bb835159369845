"""Sources against real archives served over HTTP on 127.0.0.1."""

from __future__ import annotations

import hashlib
import io
import os
import socket
import tarfile
import zipfile
from pathlib import Path

import pytest

from stages.core.context import TaskPaths
from stages.core.errors import TransientError, UserError
from stages.core.sources import (
    SourceParams,
    check_source,
    download,
    fetch_source,
    fetch_task_source,
    unpack,
    write_source_check,
)


def make_zip(path: Path, files: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return path


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def previous_output(dest: Path) -> Path:
    dest.mkdir(parents=True)
    (dest / "train.csv").write_text("what the user already had\n")
    return dest


def never_builtin(_dest: Path) -> None:
    raise AssertionError("builtin must not run")


def test_url_source_downloads_verifies_and_extracts(server, tmp_path):
    root, base, _ = server
    archive = make_zip(root / "churn.zip", {"kaggle/train.csv": b"a,b\n1,2\n"})
    dest = tmp_path / "raw"
    source = SourceParams(kind="url", url=f"{base}/churn.zip", sha256=sha(archive))
    fetch_source(source, dest, never_builtin, tmp_path / "downloads")
    assert (dest / "kaggle" / "train.csv").read_bytes() == b"a,b\n1,2\n"
    cached = tmp_path / "downloads" / sha(archive) / "churn.zip"
    assert cached.is_file()


def test_download_is_cached_by_checksum(server, tmp_path):
    root, base, httpd = server
    archive = make_zip(root / "data.zip", {"x.csv": b"1"})
    download(f"{base}/data.zip", sha(archive), tmp_path)
    download(f"{base}/data.zip", sha(archive), tmp_path)
    assert len(httpd.requests) == 1


def test_download_resumes_a_partial_file(server, tmp_path):
    root, base, httpd = server
    payload = bytes(range(256)) * 4096
    (root / "big.bin").write_bytes(payload)
    digest = hashlib.sha256(payload).hexdigest()
    part = tmp_path / digest / "big.bin.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(payload[:100_000])
    result = download(f"{base}/big.bin", digest, tmp_path)
    assert result.read_bytes() == payload
    assert httpd.requests == ["bytes=100000-"]


def test_wrong_checksum_fails_and_keeps_nothing(server, tmp_path):
    root, base, _ = server
    make_zip(root / "churn.zip", {"train.csv": b"tampered"})
    dest = previous_output(tmp_path / "raw")
    source = SourceParams(kind="url", url=f"{base}/churn.zip", sha256="0" * 64)
    with pytest.raises(UserError, match="checksum mismatch") as caught:
        fetch_source(source, dest, never_builtin, tmp_path / "downloads")
    assert f"{base}/churn.zip" in str(caught.value)
    assert (dest / "train.csv").read_text() == "what the user already had\n"
    assert not any(p.is_file() for p in (tmp_path / "downloads").rglob("*"))


def test_http_error_is_one_clear_line(server, tmp_path):
    _, base, _ = server
    with pytest.raises(UserError, match=r"source.url: .*/missing.zip: HTTP 404"):
        download(f"{base}/missing.zip", "0" * 64, tmp_path)


def test_server_errors_and_lost_connections_are_transient_and_resume(server, tmp_path):
    root, base, httpd = server
    payload = bytes(range(256)) * 1000
    (root / "big.bin").write_bytes(payload)
    digest = hashlib.sha256(payload).hexdigest()
    httpd.fail_next = [503]
    with pytest.raises(TransientError, match=r"source.url: .*/big.bin: HTTP 503"):
        download(f"{base}/big.bin", digest, tmp_path)
    httpd.cut_next_after = 50_000
    with pytest.raises(TransientError, match="connection lost after 50000 bytes"):
        download(f"{base}/big.bin", digest, tmp_path)
    assert download(f"{base}/big.bin", digest, tmp_path).read_bytes() == payload
    assert httpd.requests[-1] == "bytes=50000-"


def test_an_unreachable_server_is_transient(tmp_path):
    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(TransientError, match="cannot connect"):
        download(f"http://127.0.0.1:{port}/x.zip", "0" * 64, tmp_path)


def test_zip_slip_is_rejected_and_previous_output_kept(tmp_path):
    archive = make_zip(tmp_path / "evil.zip", {"ok.csv": b"1", "../../escaped.txt": b"x"})
    dest = previous_output(tmp_path / "raw")
    with pytest.raises(UserError, match=r"entry '../../escaped.txt' escapes the extraction folder"):
        fetch_source(SourceParams(kind="path", path=str(archive)), dest, never_builtin, tmp_path)
    assert not (tmp_path / "escaped.txt").exists()
    assert (dest / "train.csv").read_text() == "what the user already had\n"
    assert sorted(p.name for p in dest.parent.iterdir()) == ["evil.zip", "raw"]


def test_absolute_zip_entry_is_rejected(tmp_path):
    archive = make_zip(tmp_path / "abs.zip", {"/etc/evil": b"x"})
    with pytest.raises(UserError, match="escapes the extraction folder"):
        unpack(archive, tmp_path / "out")


def tar_with(path: Path, *members: tarfile.TarInfo) -> Path:
    with tarfile.open(path, "w:gz") as tf:
        for member in members:
            tf.addfile(member, io.BytesIO(b"x" * member.size) if member.isfile() else None)
    return path


def test_tar_entries_and_links_escaping_are_rejected(tmp_path):
    dotdot = tarfile.TarInfo("../escaped.txt")
    dotdot.size = 1
    link = tarfile.TarInfo("data/link")
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    for i, member in enumerate((dotdot, link)):
        out = tmp_path / f"out{i}"
        out.mkdir()
        with pytest.raises(UserError, match="escapes the extraction folder"):
            unpack(tar_with(tmp_path / f"evil{i}.tar.gz", member), out)
    assert not (tmp_path / "escaped.txt").exists()


def test_tar_gz_extracts(tmp_path):
    good = tarfile.TarInfo("kaggle/train.csv")
    good.size = 3
    out = tmp_path / "out"
    out.mkdir()
    unpack(tar_with(tmp_path / "good.tar.gz", good), out)
    assert (out / "kaggle" / "train.csv").read_bytes() == b"xxx"


def test_corrupt_archive_is_one_clear_line_and_previous_output_kept(tmp_path):
    archive = tmp_path / "churn.zip"
    archive.write_bytes(b"PK\x03\x04 this is not really a zip")
    dest = previous_output(tmp_path / "raw")
    with pytest.raises(UserError, match=r"churn.zip: not a valid archive"):
        fetch_source(SourceParams(kind="path", path=str(archive)), dest, never_builtin, tmp_path)
    assert (dest / "train.csv").read_text() == "what the user already had\n"


def test_truncated_zip_is_rejected(tmp_path):
    good = make_zip(tmp_path / "good.zip", {"train.csv": b"a,b\n" * 1000})
    broken = tmp_path / "broken.zip"
    broken.write_bytes(good.read_bytes()[:-30])
    with pytest.raises(UserError, match="not a valid"):
        unpack(broken, tmp_path)


def test_path_source_accepts_a_folder_or_a_single_file(tmp_path):
    folder = tmp_path / "downloaded"
    folder.mkdir()
    (folder / "train.csv").write_text("a\n1\n")
    fetch_source(
        SourceParams(kind="path", path=str(folder)), tmp_path / "a", never_builtin, tmp_path
    )
    assert (tmp_path / "a" / "train.csv").read_text() == "a\n1\n"
    fetch_source(
        SourceParams(kind="path", path=str(folder / "train.csv")),
        tmp_path / "b",
        never_builtin,
        tmp_path,
    )
    assert (tmp_path / "b" / "train.csv").read_text() == "a\n1\n"


def test_missing_path_is_one_clear_line(tmp_path):
    with pytest.raises(UserError, match=r"source.path: .*nope.zip: no such file or folder"):
        fetch_source(
            SourceParams(kind="path", path=str(tmp_path / "nope.zip")),
            tmp_path / "x",
            never_builtin,
            tmp_path,
        )


def test_failing_builtin_leaves_previous_output(tmp_path):
    dest = previous_output(tmp_path / "raw")

    def broken(out: Path) -> None:
        (out / "half.csv").write_text("half")
        raise RuntimeError("generator crashed")

    with pytest.raises(RuntimeError):
        fetch_source(SourceParams(), dest, broken, tmp_path)
    assert sorted(p.name for p in dest.iterdir()) == ["train.csv"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["raw"]


def test_a_rar_archive_without_an_extractor_says_what_to_install(tmp_path, monkeypatch):
    archive = tmp_path / "PH2Dataset.rar"
    archive.write_bytes(b"Rar!\x1a\x07\x00" + b"\x00" * 64)
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))  # no bsdtar, unrar or unar
    with pytest.raises(UserError, match=r"PH2Dataset.rar: a RAR archive needs a system extractor"):
        unpack(archive, tmp_path / "out")


def test_a_failing_rar_extractor_is_one_line(tmp_path, monkeypatch):
    """A stand-in `unrar` on PATH that fails like the real one on a damaged archive."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    tool = bin_dir / "unrar"
    tool.write_text("#!/bin/sh\necho 'PH2Dataset.rar: checksum error' >&2\nexit 3\n")
    tool.chmod(0o755)
    archive = tmp_path / "PH2Dataset.rar"
    archive.write_bytes(b"Rar!\x1a\x07\x01\x00" + b"\x00" * 64)
    monkeypatch.setenv("PATH", str(bin_dir))
    (tmp_path / "out").mkdir()
    with pytest.raises(UserError, match=r"unrar could not extract it \(PH2Dataset.rar: checksum"):
        unpack(archive, tmp_path / "out")


def test_the_source_check_follows_the_bytes_of_a_folder(tmp_path):
    folder = tmp_path / "kaggle"
    folder.mkdir()
    (folder / "train.csv").write_text("a\n1\n")
    source = SourceParams(kind="path", path=str(folder))
    first = check_source(source, tmp_path / "downloads")
    assert first["files"] == 1 and first["bytes"] == 4
    os.utime(folder / "train.csv", (0, 0))  # touched, same bytes: the same version
    assert check_source(source, tmp_path / "downloads") == first
    (folder / "train.csv").write_text("a\n2\n")
    assert check_source(source, tmp_path / "downloads")["sha256"] != first["sha256"]
    (folder / "extra.csv").write_text("")
    assert check_source(source, tmp_path / "downloads")["files"] == 2


def test_an_unpinned_url_is_fetched_by_the_check_once_and_followed(tmp_path, server):
    served, base, httpd = server
    (served / "sales.csv").write_text("date,sales\n2017-01-01,1\n")
    source = SourceParams(kind="url", url=f"{base}/sales.csv")
    paths = TaskPaths(tmp_path, "demo")
    checked = write_source_check(source, paths.downloads, paths.source_check)
    assert checked["sha256"] == hashlib.sha256((served / "sales.csv").read_bytes()).hexdigest()
    fetch_task_source(source, paths, never_builtin)
    assert len(httpd.requests) == 1  # download took the file the check had fetched
    assert (paths.raw / "sales.csv").read_text().endswith("2017-01-01,1\n")

    (served / "sales.csv").write_text("date,sales\n2017-01-01,1\n2017-01-02,5\n")
    assert (
        write_source_check(source, paths.downloads, paths.source_check)["sha256"]
        != (checked["sha256"])
    )
    fetch_task_source(source, paths, never_builtin)
    assert (paths.raw / "sales.csv").read_text().endswith("2017-01-02,5\n")


def test_a_pinned_url_and_builtin_are_checked_without_the_network(tmp_path):
    pinned = SourceParams(kind="url", url="http://127.0.0.1:9/x.zip", sha256="A" * 64)
    assert check_source(pinned, tmp_path) == {
        "kind": "url",
        "url": "http://127.0.0.1:9/x.zip",
        "sha256": "a" * 64,
    }
    assert check_source(SourceParams(), tmp_path) == {"kind": "builtin"}
