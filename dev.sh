#!/usr/bin/env bash
# SegFill developer entry point: sets up what it needs on first use, then runs.
#   ./dev.sh serve [ARGS]   the standalone app (python -m segfill serve ARGS) on 127.0.0.1, on the standalone
#                           stack (.venv-forge: Forge's pins, gradio 4, transformers 4.46 with GroundingDINO)
#   ./dev.sh test [ARGS]    the whole test suite on the WebUI 1.10 stack (gradio 3, pydantic 1), then
#                           again on Forge's stack (gradio 4, pydantic 2, Pillow 10)
#   ./dev.sh setup          only build the virtualenvs (.venv, .venv-forge)
#   ./dev.sh python ARGS    run the project's Python (the standalone stack, .venv-forge)
#   ./dev.sh which-python   the Python the virtualenvs are made with (3.10 or 3.11; SEGFILL_PYTHON chooses one)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

# torch 2.1.2 (the WebUI 1.10 stack, pinned in requirements-webui.txt) has wheels for CPython 3.8-3.11 only,
# and SegFill needs 3.10: so 3.10 or 3.11. A Python outside that range is refused here, in one line, before a
# virtualenv is made (pip would otherwise fail on torch after minutes of downloads).
SUPPORTED_PYTHONS="3.10 or 3.11"
python_ok() { "$1" -c 'import sys; sys.exit(not (3, 10) <= sys.version_info[:2] <= (3, 11))' >/dev/null 2>&1; }
python_version() { "$1" -c 'import sys; print("is Python %d.%d" % sys.version_info[:2])' 2>/dev/null || echo "cannot be run"; }

find_python() {
  if [ -n "${SEGFILL_PYTHON:-}" ]; then
    if python_ok "$SEGFILL_PYTHON"; then echo "$SEGFILL_PYTHON"; return; fi
    echo "dev.sh: SEGFILL_PYTHON=$SEGFILL_PYTHON $(python_version "$SEGFILL_PYTHON"); SegFill needs Python $SUPPORTED_PYTHONS (torch 2.1.2 has no wheels for 3.12 or later)" >&2
    exit 1
  fi
  local candidate
  for candidate in python3.10 python3.11 "${PYENV_ROOT:-$HOME/.pyenv}"/versions/3.1[01].*/bin/python3 python3; do
    if command -v "$candidate" >/dev/null 2>&1 && python_ok "$candidate"; then echo "$candidate"; return; fi
  done
  echo "dev.sh: no Python $SUPPORTED_PYTHONS found (python3 $(python_version python3)); install one and/or set SEGFILL_PYTHON to it (torch 2.1.2 has no wheels for 3.12 or later)" >&2
  exit 1
}

# make_venv DIR REQUIREMENTS: (re)build DIR when REQUIREMENTS (and what it includes) changed.
make_venv() {
  local dir=$1 req=$2 stamp
  stamp=$(cat "$req" requirements.txt requirements-dev.txt segfill/sam/sam2_install.py | sha256sum | cut -c1-16)
  if [ -f "$dir/.segfill-stamp" ] && [ "$(cat "$dir/.segfill-stamp")" = "$stamp" ]; then return; fi
  if [ -x "$dir/bin/python" ] && ! python_ok "$dir/bin/python"; then
    echo "dev.sh: $dir/bin/python $(python_version "$dir/bin/python"); SegFill needs Python $SUPPORTED_PYTHONS: delete $dir and run again" >&2
    exit 1
  fi
  local python=""
  [ -x "$dir/bin/python" ] || python=$(find_python)
  echo "dev.sh: setting up $dir from $req (about 5.6 GB; the first run takes minutes: torch is large)" >&2
  [ -z "$python" ] || "$python" -m venv "$dir"
  "$dir/bin/python" -m pip install -q --upgrade pip >/dev/null
  "$dir/bin/python" -m pip install -q -r "$req"
  # SAM 2.1: its sdist pins torch>=2.5.1, so it cannot be a plain requirement; CI installs it exactly the way
  # users get it (segfill/sam/sam2_install.py: --no-deps --no-build-isolation, SAM2_BUILD_CUDA=0, light
  # dependencies constrained to the installed torch/torchvision/numpy), so its tests run instead of skipping.
  "$dir/bin/python" -c 'from segfill.sam.sam2_install import install_sam2; print("dev.sh:", install_sam2().message)' >&2
  echo "$stamp" > "$dir/.segfill-stamp"
}

ensure_chromium() {
  command -v chromium >/dev/null 2>&1 && return
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "dev.sh: installing Debian's chromium for the browser tests" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "dev.sh: chromium not found; browser tests will be skipped (apt-get install chromium)" >&2
  fi
}

cmd=${1:-test}
shift || true
case "$cmd" in
  setup)
    make_venv .venv requirements-webui.txt
    make_venv .venv-forge requirements-forge.txt
    .venv-forge/bin/python -m segfill.web_runtime
    ensure_chromium
    ;;
  serve)
    make_venv .venv-forge requirements-forge.txt
    exec .venv-forge/bin/python -m segfill serve "$@"
    ;;
  python)
    make_venv .venv-forge requirements-forge.txt
    exec .venv-forge/bin/python "$@"
    ;;
  test)
    make_venv .venv requirements-webui.txt
    make_venv .venv-forge requirements-forge.txt
    ensure_chromium
    .venv/bin/python -m segfill.web_runtime  # onnxruntime-web's wasm, fetched once (not in the repository)
    echo "== WebUI 1.10 stack: gradio 3.41.2, fastapi 0.94, pydantic 1 ==" >&2
    .venv/bin/python -m pytest "$@"
    echo "== Forge stack: gradio 4.40, fastapi 0.104, pydantic 2, Pillow 10 ==" >&2
    .venv-forge/bin/python -m pytest "$@"
    ;;
  which-python)
    python=$(find_python)
    echo "$python ($(python_version "$python" | sed 's/^is //'))"
    ;;
  *)
    echo "usage: ./dev.sh serve|test|setup|python|which-python [ARGS]" >&2; exit 2
    ;;
esac
