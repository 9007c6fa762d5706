"""Downloads that cannot be verified are never kept (issue 8, section 2).

A local HTTP server on 127.0.0.1 plays every bad server: half a checkpoint without Content-Length, a server
dying mid-transfer, an HTML sign-in page, a chunked response cut short, a file of another model. Each time
the ``.part`` is removed and one line says why; ``--sha256`` is checked before anything is downloaded, and an
existing file with other content is never reported as success (``--force`` replaces it).
"""

from __future__ import annotations

import hashlib
import http.server
import io
import threading
from pathlib import Path

import pytest
import torch

from segfill.errors import DownloadError
from segfill.sam import download, registry
from tests.checkpoint_attacks import one_sentence
from tests.tiny_models import build_tiny_sam


def _checkpoint_bytes(seed: int = 0) -> bytes:
    buffer = io.BytesIO()
    torch.save(build_tiny_sam(seed=seed).state_dict(), buffer)
    return buffer.getvalue()


GOOD = _checkpoint_bytes()
OTHER = _checkpoint_bytes(seed=5)
HTML = b"<!DOCTYPE html><html><head><title>Sign in</title></head><body>Please sign in to continue.</body></html>"


class BadServer:
    """``routes[path] = (behaviour, payload)``; behaviours: ok, no_length_half, die_midway, chunked_cut, html."""

    def __init__(self) -> None:
        self.routes: dict[str, tuple[str, bytes]] = {}
        self.requests: list[str] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):  # noqa: N802 - http.server's name
                outer.requests.append(self.path)
                behaviour, payload = outer.routes.get(self.path, ("missing", b""))
                if behaviour == "missing":
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/html" if behaviour == "html" else "application/octet-stream")
                if behaviour == "chunked_cut":
                    self.send_header("Transfer-Encoding", "chunked")
                    self.end_headers()
                    for start in range(0, 30_000, 10_000):  # three whole chunks, then the connection drops
                        block = payload[start:start + 10_000]
                        self.wfile.write(f"{len(block):x}\r\n".encode() + block + b"\r\n")
                    self.wfile.flush()
                    self.close_connection = True
                    return
                if behaviour == "no_length_half":
                    self.send_header("Connection", "close")
                    self.end_headers()
                    self.wfile.write(payload[: len(payload) // 2])
                    self.close_connection = True
                    return
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if behaviour == "die_midway":
                    self.wfile.write(payload[: len(payload) // 3])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(payload)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> BadServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture()
def server():
    with BadServer() as running:
        yield running


def _refused(server, tmp_path, path: str, behaviour: str, payload: bytes, **kwargs) -> str:
    server.routes[path] = (behaviour, payload)
    folder = tmp_path / "models"
    with pytest.raises(DownloadError) as caught:
        download.download_model(server.base + path, folder, **kwargs)
    assert not folder.exists() or list(folder.iterdir()) == [], "nothing may be kept"
    message = str(caught.value)
    assert one_sentence(message, Path(path).name), message
    return message


def test_a_good_checkpoint_without_a_known_hash_is_kept(server, tmp_path):
    server.routes["/tiny.pth"] = ("ok", GOOD)
    out = download.download_model(server.base + "/tiny.pth", tmp_path)
    assert out.read_bytes() == GOOD and registry.cached_sha256(out) == hashlib.sha256(GOOD).hexdigest()
    assert registry.identify_checkpoint(out).family == "sam"


def test_half_a_checkpoint_without_content_length_is_not_kept(server, tmp_path):
    message = _refused(server, tmp_path, "/half.pth", "no_length_half", GOOD)
    assert "truncated or corrupt" in message and "not kept" in message


def test_a_server_dying_mid_transfer_is_reported_with_the_real_count(server, tmp_path):
    message = _refused(server, tmp_path, "/died.pth", "die_midway", GOOD)
    assert f"got {len(GOOD) // 3} of the {len(GOOD)} bytes" in message


def test_an_html_sign_in_page_is_not_kept(server, tmp_path):
    message = _refused(server, tmp_path, "/gated.pth", "html", HTML)
    assert "HTML page" in message


def test_a_chunked_response_cut_short_is_one_line_with_the_real_count(server, tmp_path, capsys):
    message = _refused(server, tmp_path, "/chunked.pth", "chunked_cut", GOOD)
    assert "interrupted after 30000 bytes" in message, message
    from segfill.cli import main

    assert main(["download", server.base + "/chunked.pth", "--to", str(tmp_path / "cli")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("segfill download: error: Downloading chunked.pth was interrupted after 30000 bytes")
    assert not any("Traceback" in line for line in err)


def test_a_file_of_no_known_family_is_not_kept(server, tmp_path):
    buffer = io.BytesIO()
    torch.save(torch.nn.Linear(4, 2).state_dict(), buffer)
    message = _refused(server, tmp_path, "/classifier.pth", "ok", buffer.getvalue())
    assert "not a Segment Anything checkpoint" in message


def test_a_registry_model_must_be_the_listed_architecture(server, tmp_path, monkeypatch):
    spec = registry.ModelSpec("test_vit_b", "sam", "vit_b", "test_vit_b.pth", server.base + "/test_vit_b.pth",
                              None, hashlib.sha256(GOOD).hexdigest(), "segment-anything", "SAM ViT-B (test)")
    server.routes["/test_vit_b.pth"] = ("ok", GOOD)
    with pytest.raises(DownloadError, match=r"holds a SAM vit_custom model, not SAM ViT-B \(test\)"):
        download.download_model(spec, tmp_path)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("bad", ["abc", "0" * 63, "g" * 64, "0" * 65, " "])
def test_sha256_is_validated_before_anything_is_downloaded(server, tmp_path, capsys, bad):
    from segfill.cli import main

    server.routes["/tiny.pth"] = ("ok", GOOD)
    if bad.strip():
        with pytest.raises(DownloadError, match="64 hexadecimal digits"):
            download.download_model(server.base + "/tiny.pth", tmp_path, sha256=bad)
        assert main(["download", server.base + "/tiny.pth", "--to", str(tmp_path), "--sha256", bad]) == 2
        assert "64 hexadecimal digits" in capsys.readouterr().err
        assert server.requests == []
    else:  # an empty value means "not given"
        assert download.download_model(server.base + "/tiny.pth", tmp_path, sha256=bad).read_bytes() == GOOD
    upper = hashlib.sha256(GOOD).hexdigest().upper()
    assert download.download_model(server.base + "/tiny.pth", tmp_path / "u", sha256=upper).read_bytes() == GOOD


def test_an_existing_file_with_other_content_is_not_kept_silently(server, tmp_path, capsys):
    from segfill.cli import main

    server.routes["/model.pth"] = ("ok", GOOD)
    (tmp_path / "model.pth").write_bytes(OTHER)
    with pytest.raises(DownloadError, match="already exists with other content.*--force") as caught:
        download.download_model(server.base + "/model.pth", tmp_path)
    assert one_sentence(str(caught.value), "model.pth")
    assert (tmp_path / "model.pth").read_bytes() == OTHER and sorted(p.name for p in tmp_path.iterdir()) == ["model.pth"]
    assert main(["download", server.base + "/model.pth", "--to", str(tmp_path)]) == 2
    assert "already exists" in capsys.readouterr().err
    # with a known hash the existing file is checked without downloading
    requests = len(server.requests)
    with pytest.raises(DownloadError, match="already exists but its SHA-256"):
        download.download_model(server.base + "/model.pth", tmp_path, sha256=hashlib.sha256(GOOD).hexdigest())
    assert len(server.requests) == requests
    # --force replaces it, after the new file passed every check
    assert main(["download", server.base + "/model.pth", "--to", str(tmp_path), "--force"]) == 0
    assert (tmp_path / "model.pth").read_bytes() == GOOD
    # the same bytes already there: kept, reported as the file
    assert download.download_model(server.base + "/model.pth", tmp_path) == tmp_path / "model.pth"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pth"]


def test_force_never_replaces_a_good_file_with_a_bad_download(server, tmp_path):
    (tmp_path / "model.pth").write_bytes(OTHER)
    server.routes["/model.pth"] = ("html", HTML)
    with pytest.raises(DownloadError, match="HTML page"):
        download.download_model(server.base + "/model.pth", tmp_path, force=True)
    assert (tmp_path / "model.pth").read_bytes() == OTHER
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pth"]
