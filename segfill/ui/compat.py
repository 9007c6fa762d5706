"""The few places where gradio 3.41 (WebUI 1.10) and gradio 4.x (Forge) differ, in one module.

SegFill uses only public, stable API: Blocks, Row/Column/Accordion, Image(type="pil"), Textbox, Slider,
Checkbox, Radio, Dropdown, Button, HTML, State, event listeners with a front-end function. The differences:
the front-end function keyword (``_js`` in 3, ``js`` in 4) and the queue's concurrency keyword.
"""

from __future__ import annotations

from typing import Any

import gradio as gr

GRADIO_MAJOR = int(str(gr.__version__).split(".")[0])
GRADIO4 = GRADIO_MAJOR >= 4


def js_kwargs(js: str | None) -> dict[str, Any]:
    """Keyword for an event listener's front-end function: ``_js=`` on gradio 3, ``js=`` on gradio 4."""
    if not js:
        return {}
    return {"js": js} if GRADIO4 else {"_js": js}


def queue_kwargs(concurrency: int) -> dict[str, Any]:
    return {"default_concurrency_limit": concurrency} if GRADIO4 else {"concurrency_count": concurrency}


def blocks_kwargs(css: str | None = None, head: str | None = None, title: str | None = None) -> dict[str, Any]:
    """``gr.Blocks`` keywords; ``head=`` exists only on gradio 4 (gradio 3 gets the script another way)."""
    kwargs: dict[str, Any] = {"analytics_enabled": False}
    if css:
        kwargs["css"] = css
    if title:
        kwargs["title"] = title
    if head and GRADIO4:
        kwargs["head"] = head
    return kwargs


def file_kwargs() -> dict[str, Any]:
    """``gr.File`` keywords for one file handed over as a path (gradio 4: ``filepath``; 3.41: a temp-file object)."""
    return {"type": "filepath", "file_count": "single"} if GRADIO4 else {"type": "file", "file_count": "single"}


def no_change() -> Any:
    return gr.update()
