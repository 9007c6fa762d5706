"""Hover and click -> overlay in the real tab: the browser decoder and the lean click route vs today's path.

    ./dev.sh python benchmarks/browser_clicks.py [--clicks 20] [--size 1024x768]

Starts ``python -m segfill serve`` with a vit_b-architecture SAM with random weights (official size: decoder and
encoder cost what a real vit_b costs), opens it in headless Chromium (Debian's ``chromium``), uploads an image and
measures on the tab's own canvas, in one run, median / min / p90 of:

- today's path (previews off, ``segfillLive.configure({enabled: false})``): click -> gradio event (decoder,
  refinement, mask PNG, thumbnails) -> the server's overlay drawn (``data-segfill-rendered-at``);
- a click with the browser decoder (``javascript/segfill_live.js`` -> ``segfill_decoder.js``, onnxruntime-web,
  wasm): click -> the preview drawn on the canvas (the canvas' ``preview`` event); the gradio event still follows
  and its mask replaces the preview (its time is printed too);
- the same with the lean click route (``POST /segfill/v1/click``, what SAM 2 / SAM-HQ use);
- hover with either: the pointer comes to rest -> the mask under it drawn. "from the rest" includes the canvas'
  deliberate rest delay (``HOVER_DELAY_MS`` in segfill.js, 40 ms), "from the request" starts when the canvas asks.

Clicks come in groups of five (a user refining), Escape between groups. Times are taken in the page from the
event's timestamp. Prints Markdown for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
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

INSTRUMENT = """() => {
    window.__bench = {up: 0, move: 0, previews: []};
    document.addEventListener('pointerup', (e) => { window.__bench.up = e.timeStamp; }, true);
    document.addEventListener('pointermove', (e) => { window.__bench.move = e.timeStamp; }, true);
    window.segfillCanvas.on('preview', (d) => {
        window.__bench.previews.push({kind: d.kind, at: d.at, up: window.__bench.up, move: window.__bench.move});
    });
}"""
DECODER_READY = ("() => { const s = window.segfillLive.status();"
                 " return !!s && s.decoder === 'ready' && s.embedding === 'ready'; }")


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
        page.evaluate(INSTRUMENT)
        started = time.perf_counter()
        app.upload(image_path)
        results["upload_s"] = time.perf_counter() - started
        started = time.perf_counter()
        page.wait_for_function(DECODER_READY)
        results["prepare_s"] = time.perf_counter() - started
        results["dtype"] = page.evaluate("() => window.segfillLive.status().dtype")

        def rendered_after_up() -> float:
            rendered_at = float(page.get_attribute("#segfill_canvas_root", "data-segfill-rendered-at"))
            return rendered_at - page.evaluate("() => window.__bench.up")

        def clear() -> None:
            if app.payload()["points"]:
                app.press("Escape")
            app.wait_idle()

        def clicks(options: dict) -> tuple[list, list, list]:
            page.evaluate(f"() => window.segfillLive.configure({json.dumps(options)})")
            clear()
            preview, server, sources = [], [], []
            for index, (x, y, label) in enumerate(points):
                if index and index % GROUP == 0:
                    clear()
                seen = page.evaluate("() => window.__bench.previews.length")
                app.click_image(x, y, button="left" if label else "right")
                assert not app.payload()["error"], app.payload()["error"]
                server.append(rendered_after_up())
                if options.get("enabled", True):
                    find = f"() => window.__bench.previews.slice({seen}).find((p) => p.kind === 'click') || null"
                    page.wait_for_function(find)
                    entry = page.evaluate(find)
                    preview.append(entry["at"] - entry["up"])
                    sources.append(page.evaluate("() => window.segfillLive.stats().filter((s) => s.kind === 'click')"
                                                 ".pop().source"))
            return preview, server, sources

        def hovers(options: dict) -> tuple[list, list, list]:
            page.evaluate(f"() => window.segfillLive.configure({json.dumps(options)})")
            clear()
            page.evaluate("() => window.segfillLive.clearStats()")
            from_rest, from_request, sources = [], [], []
            decode = results.setdefault("decode_" + ("lean" if options.get("server") else "browser"), [])
            for x, y, _label in points:
                seen = page.evaluate("() => window.__bench.previews.length")
                target = app.client_point(x, y)
                page.mouse.move(target["x"] - 7, target["y"] + 5)
                page.mouse.move(target["x"], target["y"])
                page.wait_for_function(f"() => window.__bench.previews.length > {seen}")
                entry = page.evaluate("() => window.__bench.previews[window.__bench.previews.length - 1]")
                stat = page.evaluate("() => { const s = window.segfillLive.stats(); return s[s.length - 1]; }")
                from_rest.append(entry["at"] - entry["move"])
                from_request.append(stat["ms"])
                decode.append(stat["decodeMs"])
                sources.append(stat["source"])
                page.wait_for_timeout(150)  # past the hover throttle: every position is a new request
            page.mouse.move(2, 2)
            return from_rest, from_request, sources

        _, results["gradio"], _ = clicks({"enabled": False})
        results["click"], results["click_record"], results["click_sources"] = clicks({"enabled": True, "server": False})
        results["lean"], results["lean_record"], results["lean_sources"] = clicks({"enabled": True, "server": True})
        results["hover_rest"], results["hover"], results["hover_sources"] = hovers({"enabled": True, "server": False})
        results["hover_lean_rest"], results["hover_lean"], results["hover_lean_sources"] = hovers(
            {"enabled": True, "server": True})
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
    print(row("browser decoder: click → preview on the canvas", results["click"]))
    print(row("  … then the gradio event's mask (the record)", results["click_record"]))
    print(row("lean route: click → POST /segfill/v1/click → preview", results["lean"]))
    print(row("  … then the gradio event's mask (the record)", results["lean_record"]))
    print(row("browser decoder: hover, from the request → preview", results["hover"]))
    print(row("browser decoder: hover, from the rest (+40 ms delay) → preview", results["hover_rest"]))
    print(row("lean route: hover, from the request → preview", results["hover_lean"]))
    print(row("lean route: hover, from the rest (+40 ms delay) → preview", results["hover_lean_rest"]))
    print(row("  of which the decoder run in the page (onnxruntime-web)", results["decode_browser"]))
    print(row("  of which the lean route's request", results["decode_lean"]))
    sources = sorted(set(results["click_sources"]) | set(results["hover_sources"]))
    lean = sorted(set(results["lean_sources"]) | set(results["hover_lean_sources"]))
    print(f"\nBrowser decoder ready (decoder file + embedding, {results.get('dtype')}) {results['prepare_s']:.1f} s "
          f"after the upload's render; decoder rows answered by: {', '.join(sources)}; lean rows by: {', '.join(lean)}. "
          f"Upload → first render: {results['upload_s']:.1f} s.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
