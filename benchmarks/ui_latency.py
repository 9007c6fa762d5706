"""Click -> updated overlay in a real browser, next to the SAM decoder time alone.

Starts ``python -m segfill serve`` with a vit_b-architecture SAM with random weights (official size, so the
encoder and decoder cost what a real vit_b costs; the masks themselves are meaningless), opens it in
headless Chromium, uploads an image and clicks N times. Each click is timed inside the page, from the
pointer-up event to the moment the canvas has drawn Python's answer (``data-segfill-rendered-at``). Clicks
come in groups of five points (Esc in between, untimed), like a user refining a selection. The server
reports, with each answer, how long SAM's decoder and the whole event took inside it; the decoder alone is
also timed in this process with ``SamSession.predict`` on the same point sequence, after the browser run.

    .venv/bin/python benchmarks/ui_latency.py [--clicks 20] [--size 1024x768] [--device cpu]

Prints a Markdown table for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np
from PIL import Image

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

CHROMIUM = os.environ.get("SEGFILL_CHROMIUM", "/usr/bin/chromium")
GROUP = 5


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def save_random_vit_b(path: Path) -> Path:
    import torch
    from segment_anything import sam_model_registry

    torch.manual_seed(0)
    torch.save(sam_model_registry["vit_b"]().state_dict(), path)
    return path


def bench_image(width: int, height: int) -> np.ndarray:
    from tests.browser.tiny_assets import sample_image

    return sample_image(width, height)


def click_points(count: int, width: int, height: int) -> list:
    rng = np.random.default_rng(1)
    return [(int(rng.integers(width // 10, width * 9 // 10)), int(rng.integers(height // 10, height * 9 // 10)),
             1 if i % GROUP in (0, 1, 3) else 0) for i in range(count)]


def wait_http(url: str, process: subprocess.Popen, timeout: float = 600) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=5):
                return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError("server did not start")


def browser_latencies(url: str, image_path: Path, points: list) -> tuple:
    from playwright.sync_api import sync_playwright

    from tests.browser.pages import SegFillPage

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.set_default_timeout(600_000)
        app = SegFillPage(page, url)
        app.open()
        page.evaluate("""() => document.addEventListener('pointerup', () => { window.__segfillT0 = performance.now(); }, true)""")
        started = time.perf_counter()
        app.upload(image_path)
        upload_s = time.perf_counter() - started
        latencies, server_sam, server_events = [], [], []
        for index, (x, y, label) in enumerate(points):
            if index and index % GROUP == 0:
                app.press("Escape")
            app.click_image(x, y, button="left" if label else "right")
            payload = app.payload()
            assert not payload["error"], payload["error"]
            rendered_at = float(page.get_attribute("#segfill_canvas_root", "data-segfill-rendered-at"))
            latencies.append(rendered_at - page.evaluate("() => window.__segfillT0"))
            server_sam.append(payload["timings"].get("sam_ms", 0.0))
            server_events.append(payload["timings"].get("server_ms", 0.0))
        browser.close()
    return latencies, upload_s, server_sam, server_events


def decoder_latencies(checkpoint: Path, image: np.ndarray, points: list, device: str) -> tuple:
    from segfill.sam.loading import load_sam
    from segfill.sam.session import SamSession

    loaded = load_sam(checkpoint, device=device)
    session = SamSession(loaded)
    started = time.perf_counter()
    session.set_image(image)
    encoder_s = time.perf_counter() - started
    timings, prompt = [], []
    for index, point in enumerate(points):
        if index % GROUP == 0:
            prompt = []
        prompt.append((point[0] + 0.5, point[1] + 0.5, point[2]))
        started = time.perf_counter()
        session.predict(points=list(prompt))
        timings.append((time.perf_counter() - started) * 1000)
    return timings, encoder_s


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clicks", type=int, default=20)
    parser.add_argument("--size", default="1024x768")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.lower().split("x"))

    import gradio
    import torch

    with tempfile.TemporaryDirectory(prefix="segfill-bench-") as tmp:
        tmp = Path(tmp)
        checkpoint = save_random_vit_b(tmp / "sam_vit_b_random.pth")
        image = bench_image(width, height)
        image_path = tmp / "image.png"
        Image.fromarray(image, "RGB").save(image_path)
        points = click_points(args.clicks, width, height)

        port = free_port()
        env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), GRADIO_ANALYTICS_ENABLED="False")
        process = subprocess.Popen(
            [sys.executable, "-m", "segfill", "serve", "--port", str(port), "--sam-checkpoint", str(checkpoint),
             "--backend", "opencv", "--device", args.device],
            cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            url = f"http://127.0.0.1:{port}"
            wait_http(url + "/", process)
            ui_ms, upload_s, server_sam_ms, server_events_ms = browser_latencies(url, image_path, points)
        finally:
            process.terminate()
            process.wait(timeout=30)
        decoder_ms, encoder_s = decoder_latencies(checkpoint, image, points, args.device)

    def row(name: str, values: list) -> str:
        ordered = sorted(values)
        p90 = ordered[min(len(ordered) - 1, int(round(0.9 * (len(ordered) - 1))))]
        return f"| {name} | {statistics.median(values):.1f} | {min(values):.1f} | {p90:.1f} |"

    print(f"\nSegFill UI latency: {args.clicks} clicks on a {width}×{height} image, SAM vit_b (random weights), "
          f"device {args.device}, gradio {gradio.__version__}, torch {torch.__version__}, "
          f"{platform.processor() or platform.machine()} × {os.cpu_count()} logical CPUs\n")
    print("| measure | median ms | min ms | p90 ms |")
    print("|---|---|---|---|")
    print(row("click → overlay drawn in the browser", ui_ms))
    print(row("  of which, in the server: SAM decoder (same clicks)", server_sam_ms))
    print(row("  of which, in the server: whole event (decoder, refine, mask PNG, thumbnails)", server_events_ms))
    print(row("SAM decoder alone (SamSession.predict, separate process)", decoder_ms))
    print(f"\nImage embedding (encoder, once per image): {encoder_s:.1f} s in-process; "
          f"upload → first render in the browser: {upload_s:.1f} s.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
