"""The README's screenshots: the tab on real photos (scikit-image's coffee and chelsea) at 1024×768.

    ./dev.sh python -m tests.browser.make_screenshots docs/screenshots

Runs the standalone app (OpenCV backend, the tiny test SAM: its masks are meaningless, so the mask here is
painted with the brush, as a user without a SAM model would) in headless Chromium, and saves small PNGs
(scaled to 80 %, 256 colours) so the repository stays light.
"""

from __future__ import annotations

import sys
from pathlib import Path

from PIL import Image

from tests.browser.conftest import CHROMIUM, _free_port, start_server
from tests.browser.pages import SegFillPage
from tests.browser.tiny_assets import write_assets

VIEWPORT = (1024, 768)
SCALE = 0.8


def save_small(page, path: Path) -> None:
    page.wait_for_timeout(800)  # a picture, not a test: let gradio finish its own repaint
    raw = path.with_suffix(".raw.png")
    page.screenshot(path=str(raw))
    image = Image.open(raw).convert("RGB")
    image = image.resize((int(image.width * SCALE), int(image.height * SCALE)), Image.LANCZOS)
    image.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.FLOYDSTEINBERG).save(
        path, optimize=True)
    raw.unlink()
    print(f"{path} ({path.stat().st_size // 1024} KB)")


def brush(app: SegFillPage, points, size: int) -> None:
    app.toolbar("mode", mode="brush")
    app.page.evaluate(f"""() => {{ const r = document.querySelector('#segfill_canvas_root [data-role=brush-size]');
                                   r.value = '{size}'; r.dispatchEvent(new Event('input')); }}""")
    start = app.client_point(*points[0])
    app.page.mouse.move(start["x"], start["y"])
    app.page.mouse.down()
    for point in points[1:]:
        p = app.client_point(*point)
        app.page.mouse.move(p["x"], p["y"], steps=6)
    before = app.render_count()
    app.page.mouse.up()
    app.wait_render_after(before)


def main(out: str = "docs/screenshots") -> int:
    from playwright.sync_api import sync_playwright
    from skimage import data

    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    work = Path("/tmp/segfill-screenshots")
    assets = write_assets(work)
    coffee, chelsea = work / "coffee.png", work / "chelsea.png"
    Image.fromarray(data.coffee()).save(coffee)
    Image.fromarray(data.chelsea()).save(chelsea)
    port = _free_port()
    command = [sys.executable, "-m", "segfill", "serve", "--host", "127.0.0.1", "--port", str(port),
               "--sam-checkpoint", str(assets.sam_path), "--backend", "opencv", "--device", "cpu"]
    with start_server(command, work / "server.log", port) as url, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                             args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
        page = browser.new_page(viewport={"width": VIEWPORT[0], "height": VIEWPORT[1]})
        page.set_default_timeout(120_000)
        app = SegFillPage(page, url)
        app.open()
        # 1. the editor: a mask brushed over the spoon, the "Remove an object" preset chosen
        app.upload(coffee)
        brush(app, [(424, 70), (418, 120), (408, 180), (395, 230), (380, 270), (368, 300)], 40)
        app.tab("Inpaint")
        app.choose("segfill_preset", "Remove an object")
        app.wait_for("p.message.startsWith('Remove an object')")
        cursor = app.client_point(480, 320)
        page.mouse.move(cursor["x"], cursor["y"])
        save_small(page, folder / "editor.png")
        # 2. the result on the canvas, before | after
        page.click("#segfill_inpaint")
        app.wait_for("p.result && s.resultLoaded")
        page.mouse.move(5, 5)
        save_small(page, folder / "compare.png")
        # 3. the outpaint frame with its tile plan, on another photo
        app.upload(chelsea)
        app.tab("Outpaint")
        app.choose("segfill_aspect", "21:9")
        app.wait_for("p.frame_plan && p.frame_plan.tiles.length > 0")
        save_small(page, folder / "outpaint-frame.png")
        browser.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(*sys.argv[1:]))
