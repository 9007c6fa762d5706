"""The command line as a user runs it: a real process, a real port, a real Ctrl+C (SIGINT).

Ctrl+C ends any command with exit code 130 and one line ("segfill COMMAND: interrupted"), never a
traceback; ``serve`` binds its port before it prints its address or loads anything, and a busy port is one
line; third-party warnings that mean nothing to a user stay off the terminal.
"""

from __future__ import annotations

import http.server
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import pytest

from segfill.cli import main

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(os.name != "posix", reason="sends SIGINT")


def _env(tmp_path: Path) -> dict[str, str]:
    # no SAM model anywhere; one thread (the machine is shared)
    return {**os.environ, "SEGFILL_MODELS": str(tmp_path / "models"), "OMP_NUM_THREADS": "1",
            "PYTHONUNBUFFERED": "1"}


def _as_in_a_terminal() -> None:
    # A job started in the background by a non-interactive shell (CI runners, `cmd &`) inherits SIGINT as
    # ignored, and Python then never raises KeyboardInterrupt; a user's terminal delivers Ctrl+C normally.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def _segfill(tmp_path: Path, *args: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "segfill", *args], cwd=REPO, env=_env(tmp_path),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=_as_in_a_terminal)


def _interrupt(process: subprocess.Popen) -> tuple[str, str]:
    process.send_signal(signal.SIGINT)
    try:
        return process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()


def test_serve_answers_when_it_says_so_and_ctrl_c_exits_130(tmp_path):
    pytest.importorskip("gradio")
    server = _segfill(tmp_path, "serve", "--port", "0")
    try:
        line = server.stdout.readline()  # printed once the server answers, with the port the system chose
        assert line.startswith("SegFill running on http://127.0.0.1:"), (line, server.stderr.read())
        url = line.split()[-1]
        with urllib.request.urlopen(url + "segfill/v1/health", timeout=30) as reply:
            assert reply.status == 200
    except BaseException:
        server.kill()
        raise
    out, err = _interrupt(server)
    assert server.returncode == 130
    assert err.splitlines() == ["segfill serve: interrupted"], err


def test_serve_on_a_busy_port_is_one_line_before_anything_loads(capsys, monkeypatch):
    import segfill.ui.cli

    def build_host(args):
        raise AssertionError("the port must be bound before the host is built")

    monkeypatch.setattr(segfill.ui.cli, "build_host", build_host)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        assert main(["serve", "--port", str(port)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (f"segfill serve: error: Port {port} on 127.0.0.1 is already in use; stop the program "
                            "using it or choose another with --port.\n")
    assert main(["serve", "--host", "no-such-host.invalid", "--port", "0"]) == 2
    assert capsys.readouterr().err.startswith("segfill serve: error: Cannot listen on 'no-such-host.invalid'")


class _Trickle(http.server.BaseHTTPRequestHandler):
    """Promises a large file, sends a little, then waits (a slow mirror)."""

    def do_GET(self):  # noqa: N802 - http.server's name
        self.send_response(200)
        self.send_header("Content-Length", str(50 << 20))
        self.end_headers()
        self.wfile.write(b"\0" * (64 << 10))
        self.wfile.flush()
        self.server.stop.wait(60)

    def log_message(self, *args):
        pass


def test_ctrl_c_during_a_download_exits_130_with_one_line_and_no_part_file(tmp_path):
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Trickle)
    httpd.stop = threading.Event()
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    folder = tmp_path / "to"
    try:
        url = f"http://127.0.0.1:{httpd.server_address[1]}/sam_tiny.pth"
        process = _segfill(tmp_path, "download", url, "--to", str(folder))
        deadline = time.monotonic() + 60
        while not (folder / "sam_tiny.pth.part").exists():  # the download is under way
            assert process.poll() is None and time.monotonic() < deadline, process.communicate()
            time.sleep(0.05)
        out, err = _interrupt(process)
    finally:
        httpd.stop.set()
        httpd.shutdown()
        httpd.server_close()
    assert process.returncode == 130
    lines = err.strip().splitlines()
    assert lines[-1] == "segfill download: interrupted" and "Traceback" not in err, err
    assert list(folder.iterdir()) == []


def test_mask_prints_no_third_party_warnings(tmp_path):
    from PIL import Image

    from tests._sam_fixtures import textured_image
    from tests.tiny_models import save_tiny_sam

    checkpoint = save_tiny_sam(tmp_path / "tiny.pth")
    Image.fromarray(textured_image(64, 48)).save(tmp_path / "photo.png")
    done = subprocess.run([sys.executable, "-m", "segfill", "mask", "--image", str(tmp_path / "photo.png"),
                           "--sam-checkpoint", str(checkpoint), "--point", "30,20", "--output",
                           str(tmp_path / "mask.png")], cwd=REPO, env=_env(tmp_path), capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # torch < 2.4 says "TypedStorage is deprecated" on every load otherwise
    assert (tmp_path / "mask.png").is_file()
