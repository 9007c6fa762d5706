"""Fixtures for the end-to-end tests: the standalone app in a subprocess, headless Chromium through Playwright.

The app is started with ``python -m segfill serve`` on a free 127.0.0.1 port, with a tiny random-weight SAM
saved to a temporary file (``--sam-checkpoint``) and the OpenCV backend. Chromium is Debian's package
(``/usr/bin/chromium``, or ``$SEGFILL_CHROMIUM``); Playwright never downloads a browser here.
Screenshots of every step go to ``artifacts/browser/gradio<major>/`` (gitignored).

``SEGFILL_BROWSER_SERVER_URL=http://127.0.0.1:PORT`` runs the tests against an app that is already running
(it must have been started with the same tiny SAM: ``tests/browser/tiny_assets.py`` writes it).

The app also has tiny random-weight text detectors installed (``$SEGFILL_DETECTORS``: OWL-ViT, and GroundingDINO
where the installed transformers has it) and a stand-in for the Hugging Face hub serving one repository
(``$SEGFILL_TEST_HUB``, see ``fixture_app.py``), for "Select by text".
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("SEGFILL_CHROMIUM", "/usr/bin/chromium")
#: every wait of every browser test: for a state, never a fixed time (a busy CI machine is slow, not wrong)
STEP_TIMEOUT_MS = 90_000


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for_http(url: str, process: subprocess.Popen | None, timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"the app exited with code {process.returncode} before answering")
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"the app did not answer at {url} within {timeout:.0f} s")


@pytest.fixture(scope="session")
def browser_assets(tmp_path_factory):
    from tests.browser.tiny_assets import write_assets

    return write_assets(tmp_path_factory.mktemp("segfill_browser"))


@pytest.fixture(scope="session")
def detector_assets(tmp_path_factory):
    """Tiny detectors installed for the app (``detectors/``) and a fake hub (``hub/<owner>--<name>``): a
    ``DetectorAssets``, or None when transformers is missing."""
    from tests.browser.tiny_assets import write_detector_assets

    return write_detector_assets(tmp_path_factory.mktemp("segfill_detectors"))


def detector_env(assets) -> dict[str, str]:
    if assets is None:
        return {}
    return {"SEGFILL_DETECTORS": str(assets.installed), "SEGFILL_TEST_HUB": str(assets.hub)}


def start_server(command: list, log_path: Path, port: int, env: dict[str, str] | None = None):
    """Start ``command`` (a server on ``port``) from the repository root; a context manager yielding its URL.
    ``env``: more environment variables for it."""
    import contextlib

    @contextlib.contextmanager
    def running():
        full_env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), PYTHONUNBUFFERED="1", GRADIO_ANALYTICS_ENABLED="False",
                        SEGFILL_CACHE=str(log_path.parent / "cache"))  # the exported browser decoder stays out of ~/.cache
        full_env.pop("SEGFILL_MODELS", None)
        full_env.pop("SEGFILL_DETECTORS", None)  # never the user's detectors (nor downloads into their folder)
        full_env.update(env or {})
        with open(log_path, "w") as log:
            process = subprocess.Popen(command, cwd=REPO_ROOT, env=full_env, stdout=log, stderr=subprocess.STDOUT)
        url = f"http://127.0.0.1:{port}"
        try:
            try:
                _wait_for_http(url + "/", process)
            except RuntimeError as exc:
                raise RuntimeError(f"{exc}; server log:\n{log_path.read_text()[-4000:]}") from None
            yield url
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
            artifacts = artifacts_root()
            artifacts.mkdir(parents=True, exist_ok=True)
            shutil.copy(log_path, artifacts / log_path.name)

    return running()


def browser_available() -> None:
    pytest.importorskip("playwright")
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no chromium at {CHROMIUM}")


@pytest.fixture(scope="session")
def app_url(browser_assets, detector_assets, tmp_path_factory):
    browser_available()
    external = os.environ.get("SEGFILL_BROWSER_SERVER_URL")
    if external:
        _wait_for_http(external, None, timeout=30)
        yield external.rstrip("/")
        return
    port = _free_port()
    # the real serve command, with a known segment map and a slow embedding for one image size (fixture_app.py)
    command = [sys.executable, "-m", "tests.browser.fixture_app", "--host", "127.0.0.1", "--port", str(port),
               "--sam-checkpoint", str(browser_assets.sam_path), "--backend", "opencv", "--device", "cpu",
               "--output-dir", str(tmp_path_factory.mktemp("segfill_outputs"))]  # results stay out of the checkout
    with start_server(command, tmp_path_factory.mktemp("segfill_server") / "server.log", port,
                      env=detector_env(detector_assets)) as url:
        yield url


@pytest.fixture(scope="session")
def no_model_app_url(tmp_path_factory):
    """The app with no SAM model installed (an empty models folder)."""
    browser_available()
    port = _free_port()
    empty = tmp_path_factory.mktemp("no_sam_models")
    command = [sys.executable, "-m", "segfill", "serve", "--host", "127.0.0.1", "--port", str(port),
               "--models-dir", str(empty), "--backend", "opencv", "--device", "cpu",
               "--output-dir", str(tmp_path_factory.mktemp("segfill_outputs_empty"))]
    with start_server(command, tmp_path_factory.mktemp("segfill_server_empty") / "server-no-model.log", port) as url:
        yield url


def artifacts_root() -> Path:
    import gradio

    return REPO_ROOT / "artifacts" / "browser" / f"gradio{gradio.__version__.split('.')[0]}"


@pytest.fixture(scope="session")
def chromium():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                             args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
        yield browser
        browser.close()


@pytest.fixture()
def artifacts(request) -> Path:
    folder = artifacts_root() / request.node.name.replace("/", "_")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture()
def open_app(chromium, app_url):
    """``open_app() -> SegFillPage`` in a fresh browser context (own cookies, own gradio session)."""
    from tests.browser.pages import SegFillPage

    contexts = []

    def opener(viewport=(1280, 900), url: str | None = None) -> SegFillPage:
        context = chromium.new_context(viewport={"width": viewport[0], "height": viewport[1]}, accept_downloads=True)
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(STEP_TIMEOUT_MS)
        app = SegFillPage(page, url or app_url)
        app.open()
        return app

    yield opener
    for context in contexts:
        context.close()
