"""Hover and click -> overlay in a real browser: the browser decoder and the lean click route vs today's path.

    .venv/bin/python benchmarks/browser_clicks.py [--clicks 20] [--size 1024x768]

Starts ``python -m segfill serve`` with a vit_b-architecture SAM with random weights (official size: decoder and
encoder cost what a real vit_b costs), opens it in headless Chromium (Debian's ``chromium``), uploads an image and
measures, in one run, median / min / p90 of:

- today's server path: a click on the tab's canvas -> gradio event (decoder, refinement, mask PNG, thumbnails)
  -> overlay drawn (``data-segfill-rendered-at``), as ``benchmarks/ui_latency.py``;
- the lean click route: a pointer-down on a benchmark overlay canvas -> ``POST /segfill/v1/click`` -> mask PNG
  decoded and drawn;
- the browser decoder (``javascript/segfill_decoder.js``, onnxruntime-web, wasm, 1 thread): pointer-move (hover)
  and pointer-down (click, points appended in groups of five like a user refining) -> mask drawn.

Times are taken in the page from the event's timestamp to after the overlay ``drawImage``. The overlay canvas is
this benchmark's own fixture (the tab's canvas is not wired to the decoder yet). Prints Markdown for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(REPO_ROOT / "benchmarks"))

from ui_latency import (  # noqa: E402
    CHROMIUM,
    GROUP,
    bench_image,
    click_points,
    free_port,
    save_random_vit_b,
    wait_http,
)

FIXTURE = """(mode) => {
    let overlay = document.getElementById('segfill_bench_overlay');
    const info = window.segfillLastPayload().sam;
    if (!overlay) {
        overlay = document.createElement('canvas');
        overlay.id = 'segfill_bench_overlay';
        overlay.width = info.display[0];
        overlay.height = info.display[1];
        overlay.style.cssText = 'position:fixed;left:0;top:0;z-index:100000;opacity:0.5;width:' + info.display[0] +
            'px;height:' + info.display[1] + 'px;background:transparent';
        document.body.appendChild(overlay);
        window.__bench = {times: [], sources: [], previous: null, busy: false};
        const scale = window.segfillLastPayload().width / info.display[0];
        const handle = (event, kind) => {
            const mode = window.__benchMode;
            if (kind !== (mode === 'hover' ? 'move' : 'down') || window.__bench.busy) { return; }
            window.__bench.busy = true;
            const t0 = event.timeStamp;
            const point = [event.offsetX * scale, event.offsetY * scale, event.button === 2 ? 0 : 1];
            let points = [point], previous = null;
            if (mode !== 'hover' && window.__bench.group && window.__bench.group.length % 5) {
                points = window.__bench.group.concat([point]);
                previous = window.__bench.previous;
            }
            window.SegFillDecoder.predict(info, points, null, {server: mode === 'lean', previous: previous})
                .then((result) => {
                    const ctx = overlay.getContext('2d');
                    ctx.clearRect(0, 0, overlay.width, overlay.height);
                    ctx.drawImage(window.SegFillDecoder.maskCanvas(result), 0, 0);
                    window.__bench.times.push(performance.now() - t0);
                    window.__bench.sources.push(result.source);
                    if (mode !== 'hover') { window.__bench.group = points; window.__bench.previous = result; }
                    window.__bench.busy = false;
                }, (error) => { window.__bench.error = String(error); window.__bench.busy = false; });
        };
        overlay.addEventListener('pointermove', (e) => handle(e, 'move'));
        overlay.addEventListener('pointerdown', (e) => handle(e, 'down'));
        overlay.addEventListener('contextmenu', (e) => e.preventDefault());
    }
    window.__benchMode = mode;
    window.__bench.group = null;
    window.__bench.previous = null;
    overlay.style.display = 'block';
    return info.decoder_url !== null;
}"""


def run_browser(url: str, image_path: Path, points: list, width: int) -> dict:
    from playwright.sync_api import sync_playwright

    from tests.browser.pages import SegFillPage

    results: dict = {}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(900_000)
        app = SegFillPage(page, url)
        app.open()
        page.evaluate("""() => document.addEventListener('pointerup', () => { window.__segfillT0 = performance.now(); }, true)""")
        started = time.perf_counter()
        app.upload(image_path)
        results["upload_s"] = time.perf_counter() - started

        # today's path: the tab's canvas and the gradio event
        server = []
        for index, (x, y, label) in enumerate(points):
            if index and index % GROUP == 0:
                app.press("Escape")
            app.click_image(x, y, button="left" if label else "right")
            payload = app.payload()
            assert not payload["error"], payload["error"]
            rendered_at = float(page.get_attribute("#segfill_canvas_root", "data-segfill-rendered-at"))
            server.append(rendered_at - page.evaluate("() => window.__segfillT0"))
        results["gradio"] = server

        started = time.perf_counter()
        ready = page.evaluate("async () => window.SegFillDecoder.prepare(window.segfillLastPayload().sam)")
        results["prepare_s"] = time.perf_counter() - started
        results["browser_ready"] = ready
        results["dtype"] = page.evaluate("() => window.SegFillDecoder.status(window.segfillLastPayload().sam).dtype")
        scale = width / page.evaluate("() => window.segfillLastPayload().sam.display[0]")

        def drive(mode: str) -> list:
            page.evaluate(FIXTURE, mode)
            page.evaluate("() => { window.__bench.times = []; window.__bench.sources = []; }")
            for index, (x, y, label) in enumerate(points):
                count = index + 1
                if mode == "hover":
                    page.mouse.move(x / scale + 1, y / scale + 1)  # a move far enough to be a new position
                    page.mouse.move(x / scale, y / scale)
                    page.wait_for_function(f"() => window.__bench.times.length >= {count} || window.__bench.error")
                    page.evaluate("() => { window.__bench.times.length = Math.min(window.__bench.times.length, "
                                  f"{count}); }}")
                else:
                    page.mouse.click(x / scale, y / scale, button="left" if label else "right")
                    page.wait_for_function(f"() => window.__bench.times.length >= {count} || window.__bench.error")
                error = page.evaluate("() => window.__bench.error || null")
                assert error is None, error
            return page.evaluate("() => [window.__bench.times, window.__bench.sources]")

        results["lean"], _ = drive("lean")
        if ready:
            results["hover"], sources = drive("hover")
            results["click"], sources_click = drive("click")
            results["sources"] = sorted(set(sources) | set(sources_click))
        browser.close()
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clicks", type=int, default=20)
    parser.add_argument("--size", default="1024x768")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.lower().split("x"))

    import gradio
    import torch

    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="segfill-bench-") as tmp:
        tmp = Path(tmp)
        checkpoint = save_random_vit_b(tmp / "sam_vit_b_random.pth")
        image_path = tmp / "image.png"
        Image.fromarray(bench_image(width, height), "RGB").save(image_path)
        points = click_points(args.clicks, width, height)
        port = free_port()
        env = dict(os.environ, PYTHONPATH=str(REPO_ROOT), GRADIO_ANALYTICS_ENABLED="False",
                   SEGFILL_CACHE=str(tmp / "cache"))
        process = subprocess.Popen(
            [sys.executable, "-m", "segfill", "serve", "--host", "127.0.0.1", "--port", str(port),
             "--sam-checkpoint", str(checkpoint), "--backend", "opencv", "--device", "cpu"],
            cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            url = f"http://127.0.0.1:{port}"
            wait_http(url + "/", process)
            results = run_browser(url, image_path, points, width)
        finally:
            process.terminate()
            process.wait(timeout=30)
    load_after = os.getloadavg()

    def row(name: str, values: list) -> str:
        ordered = sorted(values)
        p90 = ordered[min(len(ordered) - 1, int(round(0.9 * (len(ordered) - 1))))]
        return f"| {name} | {statistics.median(values):.1f} | {min(values):.1f} | {p90:.1f} |"

    print(f"\nSegFill browser clicks: {args.clicks} events per path on a {width}×{height} image, SAM vit_b (random "
          f"weights), CPU, gradio {gradio.__version__}, torch {torch.__version__}, {platform.machine()} × "
          f"{os.cpu_count()} logical CPUs, load {load_before[0]:.2f} before / {load_after[0]:.2f} after\n")
    print("| path | median ms | min ms | p90 ms |")
    print("|---|---|---|---|")
    print(row("today: click → gradio event → overlay", results["gradio"]))
    print(row("lean route: click → POST /segfill/v1/click → overlay", results["lean"]))
    if results.get("browser_ready"):
        print(row("browser decoder: hover → overlay", results["hover"]))
        print(row("browser decoder: click → overlay", results["click"]))
    print(f"\nBrowser decoder ready (decoder file + embedding, {results.get('dtype')}) in {results['prepare_s']:.1f} s "
          f"after the upload; answered by: {', '.join(results.get('sources', []))}. "
          f"Upload → first render: {results['upload_s']:.1f} s.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
