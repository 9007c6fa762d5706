"""The model-free OpenCV backend honours the protocol: same size, only masked pixels, deterministic."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from segfill.backends import create_backend
from segfill.backends.base import InpaintBackend, InpaintRequest, backend_tiling
from segfill.backends.opencv_backend import WHOLE_CANVAS_MAX_SIDE, OpenCVBackend
from segfill.errors import InputError, ModelError


def _request(seed=0, strength=1.0):
    rng = np.random.default_rng(0)
    image = np.zeros((64, 96, 3), dtype=np.uint8)
    image[:, :48] = (200, 40, 40)
    image[:, 48:] = (40, 40, 200)
    image = np.clip(image + rng.integers(0, 10, image.shape), 0, 255).astype(np.uint8)
    mask = np.zeros((64, 96), dtype=np.uint8)
    mask[20:44, 30:70] = 255
    return InpaintRequest(image=Image.fromarray(image), mask=Image.fromarray(mask, "L"), seed=seed, strength=strength)


@pytest.mark.parametrize("method", ["telea", "navier_stokes"])
def test_repaints_only_the_mask_deterministically(method):
    backend = OpenCVBackend(method=method)
    assert isinstance(backend, InpaintBackend) and backend_tiling(backend) == (WHOLE_CANVAS_MAX_SIDE, False)
    request = _request()
    calls = []
    out = backend.inpaint(request, progress=calls.append)
    assert out.size == request.image.size and out.mode == "RGB"
    a, src, m = np.asarray(out), np.asarray(request.image), np.asarray(request.mask) > 0
    assert (a[~m] == src[~m]).all()
    assert (a[m] != src[m]).any()
    # the hole is filled from its surroundings: red on the left, blue on the right
    assert a[32, 32, 0] > a[32, 32, 2] and a[32, 68, 2] > a[32, 68, 0]
    assert calls == [0.0, 1.0]
    assert (np.asarray(backend.inpaint(request)) == a).all()


def test_strength_blends_and_grain_follows_the_seed():
    backend = OpenCVBackend()
    full = np.asarray(backend.inpaint(_request(strength=1.0))).astype(int)
    half = np.asarray(backend.inpaint(_request(strength=0.5))).astype(int)
    src = np.asarray(_request().image).astype(int)
    assert np.abs(half - (src + full) / 2).max() <= 1
    grainy = OpenCVBackend(grain=6.0)
    a, b = grainy.inpaint(_request(seed=1)), grainy.inpaint(_request(seed=2))
    assert (np.asarray(a) != np.asarray(b)).any()
    assert (np.asarray(a) == np.asarray(grainy.inpaint(_request(seed=1)))).all()


def test_errors():
    with pytest.raises(InputError):
        OpenCVBackend(method="magic")
    request = _request()
    request.mask = request.mask.resize((10, 10))
    with pytest.raises(InputError):
        OpenCVBackend().inpaint(request)


def test_what_lies_under_the_mask_does_not_matter():
    request = _request()
    other = _request()
    pixels = np.asarray(other.image).copy()
    pixels[np.asarray(other.mask) > 0] = (0, 255, 0)
    other.image = Image.fromarray(pixels)
    assert np.array_equal(np.asarray(OpenCVBackend().inpaint(request)), np.asarray(OpenCVBackend().inpaint(other)))


def test_a_hole_without_surroundings_is_filled_with_a_blur_of_it():
    request = _request()
    request.mask = Image.new("L", request.image.size, 255)
    out, src = np.asarray(OpenCVBackend().inpaint(request)).astype(int), np.asarray(request.image).astype(int)
    assert (out != src).any(axis=-1).mean() > 0.95  # cv2.inpaint alone would return the input unchanged
    assert out[32, 5, 0] > out[32, 5, 2] and out[32, 90, 2] > out[32, 90, 0]  # red left, blue right, softened
    assert np.abs(np.diff(out, axis=1)).max() < np.abs(np.diff(src, axis=1)).max()


def test_create_backend():
    backend = create_backend("opencv", working_size=256)
    assert backend.name == "opencv" and backend_tiling(backend) == (256, False)
    assert backend_tiling(create_backend("opencv", tiled=True)) == (512, True)
    with pytest.raises(InputError, match="Unknown backend"):
        create_backend("dalle")
    with pytest.raises(ModelError, match="needs a model"):
        create_backend("diffusers")
