"""bf16 autocast of SAM's image encoder: chosen per family, only with native bf16, fp32 features afterwards."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from segfill.errors import InputError
from segfill.sam import precision
from segfill.sam.session import EmbeddingCache, SamSession
from tests._sam_fixtures import load_tiny, single_torch_thread, textured_image

needs_native_bf16 = pytest.mark.skipif(not precision.native_bf16("cpu"), reason="this CPU has no native bf16")


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    yield from single_torch_thread()


def test_auto_follows_the_family_table_and_the_hardware(monkeypatch):
    monkeypatch.setattr(precision, "native_bf16", lambda device_type: device_type == "cpu")
    assert precision.resolve_precision("auto", "sam", "cpu") == "bf16"
    assert precision.resolve_precision("auto", "mobile_sam", "cpu") == "fp32"  # measured: outside the tolerance
    assert precision.resolve_precision("bf16", "mobile_sam", "cpu") == "bf16"  # asked for explicitly
    assert precision.resolve_precision("fp32", "sam", "cpu") == "fp32"
    assert precision.resolve_precision("auto", "sam", "mps") == "fp32"  # no native bf16 there: never emulated
    monkeypatch.setattr(precision, "native_bf16", lambda device_type: False)
    assert precision.resolve_precision("bf16", "sam", "cpu") == "fp32"
    with pytest.raises(InputError, match="Unknown SAM precision 'fp8'"):
        precision.resolve_precision("fp8", "sam", "cpu")


@needs_native_bf16
def test_bf16_encoder_matches_fp32_within_the_tolerance_and_keeps_fp32_features(tmp_path):
    fp32 = load_tiny(tmp_path / "a.pth", precision="fp32")
    bf16 = load_tiny(tmp_path / "b.pth", precision="bf16")
    image = textured_image()
    cache = EmbeddingCache()
    sessions = {}
    for name, loaded in (("fp32", fp32), ("bf16", bf16)):
        session = SamSession(loaded, cache)
        session.set_image(image)
        sessions[name] = session
    a, b = sessions["fp32"].predictor.features, sessions["bf16"].predictor.features
    assert b.dtype == torch.float32  # decoder, cache and browser decoder see fp32
    difference = float((a - b).norm() / a.norm())
    assert 0 < difference <= precision.BF16_TOLERANCE  # bf16 really ran, and stayed close
    assert sessions["bf16"].image_key[0] == bf16.model_key + "@bf16" != sessions["fp32"].image_key[0]
    assert len(cache) == 2  # bf16 and fp32 embeddings of one image are different cache entries
    pa = sessions["fp32"].predict(points=[(90, 60, 1)])
    pb = sessions["bf16"].predict(points=[(90, 60, 1)])
    iou = np.logical_and(pa.best_mask, pb.best_mask).sum() / max(np.logical_or(pa.best_mask, pb.best_mask).sum(), 1)
    assert iou > 0.98


def test_the_manager_hands_its_precision_to_the_model(tmp_path):
    from segfill.sam.manager import SamManager
    from tests.tiny_models import save_tiny_sam

    save_tiny_sam(tmp_path / "tiny.pth")
    assert SamManager([tmp_path], device="cpu", precision="fp32").get("tiny.pth").precision == "fp32"
    assert SamManager([tmp_path], device="cpu").get("tiny.pth").precision == "auto"
    with pytest.raises(InputError):
        SamManager([tmp_path], device="cpu", precision="half")


def test_the_precision_is_a_setting_in_the_webui_and_a_serve_flag(tmp_path, monkeypatch):
    from segfill.cli import build_parser
    from segfill.hosts.webui.bindings import WebUIBindings
    from segfill.hosts.webui.host import WebUIHost
    from segfill.settings import SETTINGS
    from segfill.ui.cli import build_host
    from tests.webui.fakes import FakeImg2Img, FakeOpts, FakeProcessing, FakeState

    setting = next(s for s in SETTINGS if s.key == "segfill_sam_precision")
    assert setting.default == "auto" and setting.component_args["choices"] == list(precision.PRECISIONS)
    state = FakeState()
    opts = FakeOpts()
    opts.segfill_sam_precision = "bf16"
    webui = WebUIHost(WebUIBindings(process_images=FakeProcessing(state), img2img_class=FakeImg2Img, state=state,
                                    opts=opts, get_sd_model=lambda: None, queue_lock=None, list_checkpoints=list,
                                    save_image=None, models_path=str(tmp_path)))
    assert webui.sam.precision == "bf16"
    monkeypatch.setenv("SEGFILL_MODELS", str(tmp_path))
    assert build_host(build_parser().parse_args(["serve"])).sam.precision == "auto"
    assert build_host(build_parser().parse_args(["serve", "--sam-precision", "bf16"])).sam.precision == "bf16"
