"""One default for the embedding cache size (issue 8, section 5): defaults.EMBEDDING_CACHE_BYTES, everywhere."""

from __future__ import annotations

import re
from pathlib import Path

from segfill import defaults

REPO = Path(__file__).resolve().parents[1]


def test_every_host_and_entry_point_uses_the_one_default(tmp_path, monkeypatch):
    from segfill.backends import create_backend
    from segfill.cli import build_parser
    from segfill.hosts.standalone import StandaloneHost
    from segfill.hosts.webui.bindings import WebUIBindings
    from segfill.hosts.webui.host import WebUIHost
    from segfill.sam.manager import SamManager
    from segfill.sam.session import DEFAULT_CACHE_BYTES, EmbeddingCache
    from segfill.settings import SETTINGS
    from tests.webui.fakes import FakeImg2Img, FakeOpts, FakeProcessing, FakeState

    expected = defaults.EMBEDDING_CACHE_BYTES
    assert expected == 256 * 1024 * 1024
    assert DEFAULT_CACHE_BYTES == expected and EmbeddingCache().max_bytes == expected
    standalone = StandaloneHost(SamManager([tmp_path], device="cpu"), create_backend("opencv"))
    assert standalone.embeddings.max_bytes == expected
    setting = next(s for s in SETTINGS if s.key == "segfill_embedding_cache_mib")
    assert setting.default << 20 == expected
    state = FakeState()
    webui = WebUIHost(WebUIBindings(process_images=FakeProcessing(state), img2img_class=FakeImg2Img, state=state,
                                    opts=FakeOpts(), get_sd_model=lambda: None, queue_lock=None, list_checkpoints=list,
                                    save_image=None, models_path=str(tmp_path)))
    assert webui.embeddings.max_bytes == expected
    args = build_parser().parse_args(["serve"])
    assert args.embedding_cache_mib << 20 == expected
    monkeypatch.setenv("SEGFILL_MODELS", str(tmp_path))
    from segfill.ui.cli import build_host

    assert build_host(args).embeddings.max_bytes == expected
    assert build_host(build_parser().parse_args(["serve", "--embedding-cache-mib", "8"])).embeddings.max_bytes == 8 << 20


def test_no_other_module_defines_a_cache_size():
    definitions = []
    for path in sorted((REPO / "segfill").rglob("*.py")):
        for line in path.read_text(encoding="utf-8").splitlines():
            if re.match(r"\s*[A-Z_]*CACHE_BYTES\s*(:[^=]+)?=", line):
                definitions.append((path.relative_to(REPO).as_posix(), line.strip()))
    assert definitions == [
        ("segfill/defaults.py", "EMBEDDING_CACHE_BYTES = 256 * 1024 * 1024"),
        ("segfill/sam/session.py", "DEFAULT_CACHE_BYTES = defaults.EMBEDDING_CACHE_BYTES"),
    ], definitions
