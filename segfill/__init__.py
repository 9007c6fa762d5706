"""SegFill engine: click-to-mask with Segment Anything, mask tools, outpainting and tiled inpainting.

Importable and testable without the Stable Diffusion WebUI; the WebUI glue lives in ``scripts/``.
"""

__version__ = "0.1.0"
