#!/usr/bin/env bash
# Run SegFill's browser tests (and the UI callback tests) under gradio 4.x, the stack Forge uses.
#
# Creates (once) the virtualenv .venv-gradio4 next to the main .venv with Forge's web stack
# (gradio 4.40.0, fastapi 0.104, pydantic 2) plus SegFill's engine dependencies, then runs
# tests/browser and tests/test_ui_*.py there. Extra arguments go to pytest.
#
#   tests/browser/run_gradio4.sh            # create/update the venv if needed, run the tests
#   PYTHON=/path/to/python3.10 tests/browser/run_gradio4.sh -k click
#
# Needs Debian's chromium at /usr/bin/chromium (or SEGFILL_CHROMIUM=path); no browser download.
set -euo pipefail
cd "$(dirname "$0")/../.."
PYTHON="${PYTHON:-/root/.pyenv/versions/3.10.13/bin/python3.10}"
VENV="${SEGFILL_GRADIO4_VENV:-.venv-gradio4}"
STAMP="$VENV/.segfill-requirements"
REQUIREMENTS="gradio==4.40.0 fastapi==0.104.1 pydantic==2.8.2 httpx==0.24.1 huggingface-hub==0.26.2 \
torch==2.1.2 torchvision==0.16.2 numpy==1.26.4 Pillow==10.4.0 opencv-python-headless==4.11.0.86 \
scipy scikit-image segment-anything tqdm pytest hypothesis playwright"

if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
fi
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$REQUIREMENTS" ]; then
    "$VENV/bin/python" -m pip install --quiet --upgrade pip
    # shellcheck disable=SC2086
    "$VENV/bin/python" -m pip install --quiet $REQUIREMENTS
    echo "$REQUIREMENTS" > "$STAMP"
fi
"$VENV/bin/python" -c "import gradio, pydantic; print('gradio', gradio.__version__, 'pydantic', pydantic.VERSION)"
shopt -s nullglob
exec "$VENV/bin/python" -m pytest -p no:cacheprovider tests/browser tests/test_ui_*.py "$@"
