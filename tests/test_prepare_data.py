"""The recipes' download path (local/prepare_data.sh without --corpus-dir), served from localhost.

The archives have the canonical sources' layout (Mikolov's simple-examples.tgz, Salesforce's
wikitext-2-v1.zip) with toy text inside, so the download, extraction, MD5 check and .done
marker are exercised without the network.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
import tarfile
import threading
import zipfile
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from toy_corpus import write_toy_corpus

REPO = Path(__file__).resolve().parent.parent
PTB_FILES = ["ptb.train.txt", "ptb.valid.txt", "ptb.test.txt"]
WT2_FILES = ["wiki.train.tokens", "wiki.valid.tokens", "wiki.test.tokens"]

pytestmark = pytest.mark.skipif(shutil.which("wget") is None,
                                reason="the recipes download with wget")


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """(base URL, the folder it serves)."""
    root = tmp_path / "www"
    root.mkdir()
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(root))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", root
    httpd.shutdown()
    httpd.server_close()


def ptb_archive(tmp_path: Path, root: Path) -> Path:
    """simple-examples.tgz (toy text in data/ptb.*.txt) in ``root``; the folder of the text."""
    text = write_toy_corpus(tmp_path / "simple-examples" / "data")
    with tarfile.open(root / "simple-examples.tgz", "w:gz") as tar:
        tar.add(tmp_path / "simple-examples", arcname="simple-examples")
    return text


def prepare(recipe: str, out: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["local/prepare_data.sh", *args, str(out)], cwd=REPO / "egs" / recipe,
                          capture_output=True, text=True, timeout=120)


def test_ptb_download_extract_and_rerun(tmp_path: Path, server: tuple[str, Path]) -> None:
    url, root = server
    text = ptb_archive(tmp_path, root)
    out = tmp_path / "data" / "corpus"

    p = prepare("ptb/s5", out, "--url", f"{url}/simple-examples.tgz", "--check-md5", "false")
    assert p.returncode == 0, p.stderr
    for f in PTB_FILES:
        assert (out / f).read_bytes() == (text / f).read_bytes()
    assert (out / ".done").is_file() and not (tmp_path / "data" / "corpus.tmp").exists()
    assert (tmp_path / "data" / "download" / "simple-examples.tgz").is_file()

    (root / "simple-examples.tgz").unlink()  # a rerun needs neither the network nor the archive
    p = prepare("ptb/s5", out, "--url", f"{url}/simple-examples.tgz")
    assert p.returncode == 0 and "nothing to do" in p.stdout


def test_ptb_md5_mismatch_fails_cleanly(tmp_path: Path, server: tuple[str, Path]) -> None:
    url, root = server
    ptb_archive(tmp_path, root)
    out = tmp_path / "data" / "corpus"

    p = prepare("ptb/s5", out, "--url", f"{url}/simple-examples.tgz")  # toy text: wrong sums
    assert p.returncode != 0 and "MD5 check failed" in p.stderr
    assert not out.exists()  # nothing half-written where a later stage would look


def test_wikitext2_download_and_extract(tmp_path: Path, server: tuple[str, Path]) -> None:
    url, root = server
    toy = write_toy_corpus(tmp_path / "toy")
    with zipfile.ZipFile(root / "wikitext-2-v1.zip", "w") as z:
        for ptb, wt2 in zip(PTB_FILES, WT2_FILES):
            z.write(toy / ptb, f"wikitext-2/{wt2}")
    out = tmp_path / "data" / "corpus"

    p = prepare("wikitext2/s5", out, "--url", f"{url}/wikitext-2-v1.zip", "--check-md5", "false")
    assert p.returncode == 0, p.stderr
    for ptb, wt2 in zip(PTB_FILES, WT2_FILES):
        assert (out / wt2).read_bytes() == (toy / ptb).read_bytes()
    assert (out / ".done").is_file()
