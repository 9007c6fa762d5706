"""Run by the WebUI at start-up (``python install.py``, cwd = WebUI root): installs only what it lacks.

The WebUI already ships torch, torchvision, numpy, Pillow, scipy, scikit-image and opencv-python; installing
any of them again (or a second OpenCV wheel) would break its pinned stack, so this file never does. A second
start finds everything present and returns after a few module look-ups, without running pip.
Optional extras are opt-in through the SEGFILL_EXTRAS environment variable (comma-separated names below);
a missing optional package never hides the tab: the feature that needs it says what to install.
"""

import os
import sys

import launch

# the WebUI runs this file with its own root as cwd and PYTHONPATH; SegFill's engine lies next to it
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from segfill.sam.registry import FAMILY_PACKAGES, family_requirements  # noqa: E402  (stdlib-only module)

#: import name -> pip requirement, always installed when missing. MobileSAM (vit_t, the model SegFill
#: recommends on a CPU) is a small pure-Python package from PyPI; timm, which it imports, ships with the WebUI.
REQUIRED = {"segment_anything": "segment-anything>=1.0"}
REQUIRED.update({module: requirement for requirement, module in family_requirements("mobile_sam")})

#: extra name (SEGFILL_EXTRAS) -> [(import name, pip requirement)]; the registry says which packages supply
#: each model family's architecture
OPTIONAL = {family: [(module, requirement) for requirement, module in family_requirements(family)]
            for family in FAMILY_PACKAGES if family not in ("sam", "mobile_sam")}


def wanted_extras():
    names = [n.strip() for n in os.environ.get("SEGFILL_EXTRAS", "").split(",") if n.strip()]
    return [n for n in names if n in OPTIONAL]


def missing_requirements():
    missing = [req for module, req in REQUIRED.items() if not launch.is_installed(module)]
    for name in wanted_extras():
        for module, req in OPTIONAL[name]:
            if not launch.is_installed(module) and req not in missing:
                missing.append(req)
    return missing


def ensure_browser_runtime():
    """onnxruntime-web's wasm for the in-page decoder (14 MB, not in the repository): fetched and verified once."""
    from segfill.web_runtime import WebRuntimeError, ensure_web_runtime

    try:
        if ensure_web_runtime():
            print("SegFill: fetched onnxruntime-web for the browser decoder.")
    except (WebRuntimeError, OSError, ValueError) as exc:  # the tab previews clicks through the server instead
        print(f"SegFill: {exc}")


def main():
    ensure_browser_runtime()
    for req in missing_requirements():
        try:
            if req == FAMILY_PACKAGES["sam2"][0]:
                # sam2's sdist pins torch>=2.5.1 and builds a CUDA extension: install it the way that
                # leaves the WebUI's torch alone (segfill/sam/sam2_install.py)
                from segfill.sam.sam2_install import install_sam2

                print(f"SegFill: {install_sam2(log=print).message}")
                continue
            # --no-deps: the requirement's own dependencies (torch, torchvision, numpy) are the WebUI's
            launch.run_pip(f'install --no-deps "{req}"', f"SegFill requirement: {req}")
        except Exception as exc:  # the tab still loads; the feature reports what is missing
            print(f"SegFill: could not install {req}: {exc}")


main()
