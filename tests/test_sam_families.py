"""MobileSAM, SAM-HQ and SAM 2.1 through SegFill's real loader and session, with random weights.

CI installs their packages (requirements-dev.txt; sam2 through ``segfill.sam.sam2_install`` in dev.sh), so these
run there; a machine without them skips with the reason. Random weights make meaningless but deterministic
masks: each test compares SegFill's answer with the family's own predictor on the same model.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

from segfill.errors import MissingDependencyError
from segfill.sam import loading, registry
from segfill.sam.session import EmbeddingCache, SamSession
from tests._sam_fixtures import single_torch_thread, textured_image


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    yield from single_torch_thread()


def _importable(module: str) -> bool:
    try:
        __import__(module)
    except Exception:
        return False
    return True


needs_mobile_sam = pytest.mark.skipif(not _importable("mobile_sam"), reason="mobilesam-mirror (mobile_sam) is not installed")
needs_sam_hq = pytest.mark.skipif(not _importable("segment_anything_hq"), reason="segment-anything-hq is not installed")


def test_mobile_sam_comes_from_pypi_not_a_git_url():
    requirement, module = registry.FAMILY_PACKAGES["mobile_sam"]
    assert (requirement, module) == ("mobilesam-mirror", "mobile_sam")
    assert registry.KNOWN_MODELS["mobile_sam"].package == "mobilesam-mirror"
    assert registry.family_requirements("mobile_sam") == (("mobilesam-mirror", "mobile_sam"), ("timm", "timm"))
    for family in registry.FAMILIES:
        assert "git+" not in registry.family_install_hint(family)


def test_missing_mobile_sam_names_the_pypi_packages(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "mobile_sam", None)  # import fails like a missing package
    state = {"image_encoder.layers.0.blocks.0.weight": torch.zeros(2), "mask_decoder.iou_token.weight": torch.zeros(1, 256)}
    path = tmp_path / "mobile.pt"
    torch.save(state, path)
    with pytest.raises(MissingDependencyError, match=r"'mobilesam-mirror'.*pip install mobilesam-mirror timm"):
        loading.load_sam(path)


def _random_file(model, path):
    torch.save(model.state_dict(), path)
    return path


@pytest.fixture(scope="module")
def mobile_sam_file(tmp_path_factory):
    if not _importable("mobile_sam"):
        pytest.skip("mobilesam-mirror (mobile_sam) is not installed")
    from mobile_sam import sam_model_registry

    torch.manual_seed(0)
    return _random_file(sam_model_registry["vit_t"]().eval(), tmp_path_factory.mktemp("mobile") / "renamed.pt")


@needs_mobile_sam
@pytest.mark.slow
def test_mobile_sam_loads_and_predicts_like_its_own_predictor(mobile_sam_file):
    from mobile_sam import SamPredictor

    loaded = loading.load_sam(mobile_sam_file, precision="fp32")  # compared bit for bit with its own predictor
    assert (loaded.family, loaded.arch, loaded.image_size, loaded.identified_by) == ("mobile_sam", "vit_t", 1024, "shapes")
    assert type(loaded.model.image_encoder).__module__.startswith("mobile_sam")
    reference = torch.load(mobile_sam_file)
    for key in ("image_encoder.patch_embed.seq.0.c.weight", "mask_decoder.iou_token.weight"):
        assert torch.equal(loaded.model.state_dict()[key], reference[key])

    image = textured_image(160, 120)
    session = SamSession(loaded, EmbeddingCache())
    session.set_image(image)
    prediction = session.predict(points=[(90, 60, 1)])
    assert prediction.masks.shape == (3, 120, 160) and prediction.masks.dtype == bool

    bare = SamPredictor(loaded.model)
    bare.set_image(image)
    masks, scores, _ = bare.predict(point_coords=np.array([[90.0, 60.0]]), point_labels=np.array([1]))
    np.testing.assert_array_equal(prediction.masks, masks)
    np.testing.assert_allclose(prediction.scores, scores, rtol=1e-5)


@needs_sam_hq
@pytest.mark.slow
def test_sam_hq_tiny_loads_and_predicts_with_its_own_predictor(tmp_path):
    import segment_anything_hq

    torch.manual_seed(0)
    path = _random_file(segment_anything_hq.sam_model_registry["vit_tiny"]().eval(), tmp_path / "hq_tiny.pth")
    loaded = loading.load_sam(path, precision="fp32")  # compared bit for bit with SAM-HQ's own predictor
    assert (loaded.family, loaded.arch) == ("sam_hq", "vit_tiny")
    session = SamSession(loaded, EmbeddingCache())
    assert type(session.predictor).__module__.startswith("segment_anything_hq")
    image = textured_image(160, 120)
    session.set_image(image)
    prediction = session.predict(points=[(90, 60, 1)])

    bare = segment_anything_hq.SamPredictor(loaded.model)
    bare.set_image(image)
    masks, scores, _ = bare.predict(point_coords=np.array([[90.0, 60.0]]), point_labels=np.array([1]))
    np.testing.assert_array_equal(prediction.masks, masks)
    np.testing.assert_allclose(prediction.scores, scores, rtol=1e-5)
    # SAM-HQ keeps intermediate encoder features too; a cache hit must restore them (same answer, no encoder)
    again = SamSession(loaded, session.cache)
    again.set_image(image)
    assert again.encoder_calls == 0
    np.testing.assert_array_equal(again.predict(points=[(90, 60, 1)]).masks, prediction.masks)
