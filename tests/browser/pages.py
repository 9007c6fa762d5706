"""A small page object for the SegFill app: every helper waits for a state (the canvas drew Python's answer,
nothing is queued or in flight, nothing is busy), never for a fixed time."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

ROOT = "#segfill_canvas_root"
IDLE_JS = ("() => { const s = window.segfillDebugState(); const p = window.segfillLastPayload();"
           " const drawn = document.querySelector('#segfill_canvas_root').dataset.segfillRendered === String(p.rev);"
           " return drawn && !s.inFlight && !s.queue && !s.busy.length && !p.busy; }")


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
        """Wait until no event is queued or in flight and nothing is busy (embedding, a job)."""
        self.page.wait_for_function(IDLE_JS)

    def wait_render_after(self, count: int) -> None:
        self.page.wait_for_function(
            f"() => Number(document.querySelector('{ROOT}').dataset.segfillRenderCount || 0) > {count}")
        self.wait_idle()

    def payload(self) -> dict[str, Any]:
        return self.page.evaluate("() => window.segfillLastPayload()")

    def debug(self) -> dict[str, Any]:
        return self.page.evaluate("() => window.segfillDebugState()")

    def wait_for(self, js_condition: str) -> None:
        """Wait for a condition on ``p`` (the last payload) and ``s`` (the canvas' debug state), then for idle."""
        self.page.wait_for_function(
            f"() => {{ const p = window.segfillLastPayload(); const s = window.segfillDebugState(); return !!({js_condition}); }}")
        self.wait_idle()

    def screenshot(self, folder: Path, name: str, full_page: bool = True) -> Path:
        self.step += 1
        path = Path(folder) / f"{self.step:02d}-{name}.png"
        self.page.screenshot(path=str(path), full_page=full_page)
        return path

    # -- actions -----------------------------------------------------------------------------------------
    def open_file(self, image_path: Path) -> None:
        """Hand a file to the canvas the way its Open button / drop does (the hidden gr.File's input)."""
        self.page.set_input_files("#segfill_file input[type=file]", str(image_path))

    def upload(self, image_path: Path) -> None:
        before = self.payload().get("image_rev")
        self.open_file(image_path)
        self.wait_for(f"p.width > 0 && p.image_rev !== {before if before is not None else 'undefined'} && !p.busy")

    def client_point(self, x: float, y: float) -> dict[str, float]:
        """Page coordinates of image pixel (x, y) under the current zoom and letterboxing."""
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
        self.page.locator(selector).first.click()

    def menu(self, action: str, **data: str) -> None:
        """An entry of the canvas' ⋯ menu (selection and downloads)."""
        self.toolbar("menu")
        self.toolbar(action, **data)

    def press(self, keys: str, until: str | None = None) -> None:
        """A keyboard shortcut with the pointer over the canvas (shortcuts act only there); waits for ``until``
        (a condition on p and s) or, without one, for the next drawn answer."""
        box = self.page.locator(f"{ROOT} canvas").bounding_box()
        self.page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
        before = self.render_count()
        self.page.keyboard.press(keys)
        if until:
            self.wait_for(until)
        else:
            self.wait_render_after(before)

    def choose_candidate(self, index: int) -> None:
        before = self.render_count()
        self.page.click(f"{ROOT} .segfill-candidate[data-index='{index}']")
        self.wait_render_after(before)

    def tab(self, name: str) -> None:
        """A tab of the panel beside the canvas (Mask, Inpaint, Outpaint, Model)."""
        self.page.locator("#segfill_tabs .tab-nav button").filter(has_text=re.compile(rf"^\s*{name}\s*$")).click()

    def choose(self, elem_id: str, option: str) -> None:
        """Pick ``option`` in the gr.Dropdown ``elem_id`` (gradio 3.41 and 4)."""
        self.page.locator(f"#{elem_id} input").first.click()
        self.page.locator(f"#{elem_id} ul li[aria-label={json.dumps(option)}]").first.click()

    def reveal(self, elem_id: str, accordion: str) -> None:
        """Open the panel's accordion ``accordion`` if ``elem_id`` inside it is folded away."""
        if not self.page.is_visible(f"#{elem_id}"):
            self.page.locator(f"#{accordion} .label-wrap").first.click()
            self.page.wait_for_selector(f"#{elem_id}", state="visible")

    def set_number(self, elem_id: str, value: float) -> None:
        field = self.page.locator(f"#{elem_id} input[type=number]")
        field.fill(str(value))
        field.press("Enter")
        field.blur()

    def number(self, elem_id: str) -> float:
        return float(self.page.input_value(f"#{elem_id} input[type=number]") or 0)

    def download(self, what: str) -> Image.Image:
        with self.page.expect_download() as info:
            if what == "result":
                self.toolbar("download-result")
            else:
                self.menu("download", what=what)
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

    def screen_pixel(self, sx: float, sy: float) -> list:
        """RGBA of the canvas at page coordinates (sx, sy)."""
        return self.page.evaluate(
            f"""() => {{
                const c = document.querySelector('{ROOT} canvas');
                const r = c.getBoundingClientRect();
                const k = c.width / r.width;
                return Array.from(c.getContext('2d').getImageData(Math.floor(({sx} - r.left) * k),
                                  Math.floor(({sy} - r.top) * k), 1, 1).data);
            }}""")

    def status(self) -> str:
        return self.page.inner_text(f"{ROOT} [data-role='status']")

    def visible_in_viewport(self, selector: str) -> bool:
        """The element is shown and lies entirely inside the window, without scrolling."""
        return self.page.evaluate(
            f"""() => {{
                const el = document.querySelector({selector!r});
                if (!el || el.offsetParent === null) {{ return false; }}
                const r = el.getBoundingClientRect();
                return window.scrollY === 0 && r.top >= 0 && r.left >= 0 && r.bottom <= window.innerHeight
                    && r.right <= window.innerWidth && r.width > 0 && r.height > 0;
            }}""")


def mask_array(image: Image.Image) -> np.ndarray:
    return np.asarray(image.convert("L")) > 127


def optional(value: Any | None, default: Any) -> Any:
    return default if value is None else value
