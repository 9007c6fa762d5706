"""A small page object for the SegFill app: every helper waits until the canvas has drawn Python's answer."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

ROOT = "#segfill_canvas_root"


class SegFillPage:
    def __init__(self, page: Any, url: str) -> None:
        self.page = page
        self.url = url
        self.step = 0

    # -- basics ------------------------------------------------------------------------------------------
    def open(self) -> None:
        self.page.goto(self.url + "/")
        self.page.wait_for_selector(f"{ROOT}[data-segfill-ready='1']", state="attached")

    def render_count(self) -> int:
        return int(self.page.get_attribute(ROOT, "data-segfill-render-count") or 0)

    def wait_idle(self) -> None:
        """Wait until no event is queued or in flight."""
        self.page.wait_for_function("() => { const s = window.segfillDebugState(); return !s.inFlight && !s.queue; }")

    def wait_render_after(self, count: int) -> None:
        self.page.wait_for_function(
            f"() => Number(document.querySelector('{ROOT}').dataset.segfillRenderCount || 0) > {count}")
        self.wait_idle()

    def payload(self) -> dict[str, Any]:
        return self.page.evaluate("() => window.segfillLastPayload()")

    def wait_for(self, js_condition: str) -> None:
        """Wait for a condition on ``p`` (the last payload), e.g. ``p.mask_area > 0``."""
        self.page.wait_for_function(f"() => {{ const p = window.segfillLastPayload(); return !!({js_condition}); }}")

    def screenshot(self, folder: Path, name: str) -> Path:
        self.step += 1
        path = Path(folder) / f"{self.step:02d}-{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    # -- actions -----------------------------------------------------------------------------------------
    def upload(self, image_path: Path) -> None:
        before = self.render_count()
        self.page.set_input_files("#segfill_image input[type=file]", str(image_path))
        self.wait_render_after(before)
        self.wait_for("p.width > 0")

    def client_point(self, x: float, y: float) -> dict[str, float]:
        """Page coordinates of image pixel (x, y) under the current zoom and letterboxing (the canvas is
        scrolled into view first: mouse events only reach what is on screen)."""
        self.page.locator(f"{ROOT} canvas").scroll_into_view_if_needed()
        return self.page.evaluate(f"() => window.segfillImageToClient({x}, {y})")

    def click_image(self, x: float, y: float, button: str = "left") -> None:
        point = self.client_point(x + 0.5, y + 0.5)
        before = self.render_count()
        self.page.mouse.click(point["x"], point["y"], button=button)
        self.wait_render_after(before)

    def drag_image(self, start: tuple, end: tuple, steps: int = 8) -> None:
        a = self.client_point(*start)
        b = self.client_point(*end)
        before = self.render_count()
        self.page.mouse.move(a["x"], a["y"])
        self.page.mouse.down()
        self.page.mouse.move(b["x"], b["y"], steps=steps)
        self.page.mouse.up()
        self.wait_render_after(before)

    def toolbar(self, action: str, **data: str) -> None:
        selector = f"{ROOT} button[data-action='{action}']" + "".join(f"[data-{k}='{v}']" for k, v in data.items())
        self.page.click(selector)

    def press(self, keys: str) -> None:
        """A keyboard shortcut with the pointer over the canvas (shortcuts act only there)."""
        box = self.page.locator(f"{ROOT} canvas").bounding_box()
        self.page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        before = self.render_count()
        self.page.keyboard.press(keys)
        self.wait_render_after(before)

    def choose_candidate(self, index: int) -> None:
        before = self.render_count()
        self.page.click(f"{ROOT} .segfill-candidate[data-index='{index}']")
        self.wait_render_after(before)

    def set_number(self, elem_id: str, value: float) -> None:
        field = self.page.locator(f"#{elem_id} input[type=number]")
        field.fill(str(value))
        field.press("Enter")
        field.blur()

    def download(self, what: str) -> Image.Image:
        with self.page.expect_download() as info:
            self.toolbar("download", what=what)
        path = info.value.path()
        self.wait_idle()
        return Image.open(io.BytesIO(Path(path).read_bytes()))

    def canvas_pixel(self, x: float, y: float, dx: float = 0, dy: float = 0) -> list:
        """RGBA of the canvas where image pixel (x, y) is drawn, optionally (dx, dy) screen px away."""
        return self.page.evaluate(
            f"""() => {{
                const c = document.querySelector('{ROOT} canvas');
                const q = window.segfillImageToClient({x} + 0.5, {y} + 0.5);
                const p = {{x: q.x + {dx}, y: q.y + {dy}}};
                const r = c.getBoundingClientRect();
                const k = c.width / r.width;
                return Array.from(c.getContext('2d').getImageData(Math.floor((p.x - r.left) * k),
                                  Math.floor((p.y - r.top) * k), 1, 1).data);
            }}""")

    def status(self) -> str:
        return self.page.inner_text(f"{ROOT} [data-role='status']")


def mask_array(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("L")) > 127


def optional(value: Any | None, default: Any) -> Any:
    return default if value is None else value
