"""The diffusers backend end to end on CPU, on a tiny random-weight SD2-style inpainting pipeline.

Every model here is built by :mod:`tests.tiny_sd`, saved to a temporary folder or file in the formats real
models ship in (a diffusers folder, an original-layout single ``.safetensors``), and loaded back through
``DiffusersBackend.from_model``: the same code path as a real SD2-inpainting model, without any download.
"""

from __future__ import annotations

import json
import subprocess
import sys
from importlib.util import find_spec
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from segfill.backends.base import InpaintBackend, InpaintRequest
from segfill.errors import InputError, MissingDependencyError, ModelError
from tests import tiny_sd

needs_diffusers = pytest.mark.skipif(
    find_spec("diffusers") is None or find_spec("transformers") is None, reason="needs diffusers and transformers"
)

SIZE = tiny_sd.TINY_WORKING_SIZE


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    # Tiny convolutions are dominated by thread hand-offs: on a shared 2-core machine one thread is ~20x faster.
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory):
    return tiny_sd.save_tiny_pipeline(tmp_path_factory.mktemp("tiny-sd") / "pipeline")


@pytest.fixture(scope="module")
def backend(tiny_folder):
    from segfill.backends.diffusers_backend import DiffusersBackend

    return DiffusersBackend.from_model(str(tiny_folder), device="cpu")


def noise_image(width: int, height: int, seed: int = 0) -> Image.Image:
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    return Image.fromarray(pixels, "RGB")


def square_mask(width: int, height: int, value: int = 255) -> Image.Image:
    mask = np.zeros((height, width), np.uint8)
    mask[height // 4 : 3 * height // 4, width // 4 : 3 * width // 4] = value
    return Image.fromarray(mask, "L")


def request(seed: int = 1, width: int = SIZE, height: int = SIZE, **fields) -> InpaintRequest:
    return InpaintRequest(
        image=noise_image(width, height),
        mask=square_mask(width, height),
        prompt="a cat on a house",
        seed=seed,
        steps=2,
        **fields,
    )


@pytest.fixture(scope="module")
def first_result(backend):
    steps_seen: list[float] = []
    result = backend.inpaint(request(seed=1), progress=steps_seen.append)
    return result, steps_seen


# --- import and dependency behaviour ------------------------------------------------------------------------------


def test_module_import_does_not_import_diffusers_or_torch():
    code = (
        "import sys, segfill.backends.diffusers_backend as m; "
        "heavy = [name for name in ('diffusers', 'transformers', 'torch') if name in sys.modules]; "
        "assert not heavy, heavy; assert m.DiffusersBackend.name == 'diffusers'"
    )
    completed = subprocess.run(
        [sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[1], capture_output=True, text=True
    )
    assert completed.returncode == 0, completed.stderr


def test_missing_diffusers_raises_missing_dependency(monkeypatch):
    from segfill.backends.diffusers_backend import DiffusersBackend

    monkeypatch.setitem(sys.modules, "diffusers", None)  # makes `import diffusers` raise ImportError
    with pytest.raises(MissingDependencyError) as caught:
        DiffusersBackend.from_model("anything")
    assert caught.value.package == "diffusers"
    assert "pip install diffusers transformers" in str(caught.value)


@needs_diffusers
def test_cpu_offload_without_accelerate_raises_missing_dependency(monkeypatch, tiny_folder):
    from segfill.backends import diffusers_backend

    monkeypatch.setattr(diffusers_backend, "has_accelerate", lambda: False)
    with pytest.raises(MissingDependencyError) as caught:
        diffusers_backend.DiffusersBackend.from_model(str(tiny_folder), device="cpu", cpu_offload=True)
    assert caught.value.package == "accelerate"


def test_dtype_policy():
    import torch

    from segfill.backends.diffusers_backend import resolve_dtype

    assert resolve_dtype(None, "cuda") == torch.float16
    assert resolve_dtype(None, "cuda:1") == torch.float16
    assert resolve_dtype(None, "cpu") == torch.float32
    assert resolve_dtype(None, "mps") == torch.float32
    assert resolve_dtype("fp16", "cpu") == torch.float16
    assert resolve_dtype("bf16", "cuda") == torch.bfloat16
    assert resolve_dtype("float32", "cuda") == torch.float32
    with pytest.raises(InputError, match="int8"):
        resolve_dtype("int8", "cpu")


# --- loading a diffusers folder and inpainting ---------------------------------------------------------------------


@needs_diffusers
def test_folder_backend_follows_the_protocol(backend):
    assert isinstance(backend, InpaintBackend)
    assert backend.name == "diffusers"
    assert backend.working_size == SIZE  # UNet sample_size 8 × VAE factor 8
    assert backend.pipeline.unet.config.in_channels == 9
    assert backend.pipeline.safety_checker is None


@needs_diffusers
def test_inpaint_repaints_only_the_mask(first_result):
    result, _ = first_result
    original = np.asarray(request().image)
    mask = np.asarray(request().mask) > 0
    pixels = np.asarray(result)
    assert result.mode == "RGB" and result.size == (SIZE, SIZE)
    assert np.array_equal(pixels[~mask], original[~mask]), "pixels outside the mask must be the input's, bit for bit"
    assert np.mean(np.any(pixels[mask] != original[mask], axis=-1)) > 0.9, "the masked area must be repainted"


@needs_diffusers
def test_progress_reports_increasing_fractions_up_to_one(first_result):
    _, steps_seen = first_result
    assert len(steps_seen) >= 2
    assert steps_seen == sorted(steps_seen) and len(set(steps_seen)) == len(steps_seen)
    assert 0 < steps_seen[0] and steps_seen[-1] == pytest.approx(1.0)


@needs_diffusers
def test_same_seed_same_result_other_seed_other_result(backend, first_result):
    result, _ = first_result
    again = backend.inpaint(request(seed=1))
    other = backend.inpaint(request(seed=2))
    assert np.array_equal(np.asarray(again), np.asarray(result))
    assert not np.array_equal(np.asarray(other), np.asarray(result))


@needs_diffusers
def test_size_not_a_multiple_of_8_is_padded_and_cropped_back(backend):
    tile = request(width=SIZE - 5, height=SIZE - 11)
    result = backend.inpaint(tile)
    assert result.size == (SIZE - 5, SIZE - 11)
    keep = np.asarray(tile.mask) == 0
    assert np.array_equal(np.asarray(result)[keep], np.asarray(tile.image)[keep])
    assert not np.array_equal(np.asarray(result)[~keep], np.asarray(tile.image)[~keep])


@needs_diffusers
def test_soft_mask_blends_and_keeps_black_pixels(backend):
    tile = request()
    soft = np.asarray(tile.mask).copy()
    soft[soft > 0] = 128
    tile.mask = Image.fromarray(soft, "L")
    result = np.asarray(backend.inpaint(tile)).astype(int)
    original = np.asarray(tile.image).astype(int)
    keep = soft == 0
    assert np.array_equal(result[keep], original[keep])
    assert np.any(result[~keep] != original[~keep])


@needs_diffusers
def test_empty_mask_returns_the_input(backend):
    tile = request()
    tile.mask = Image.new("L", tile.image.size, 0)
    calls: list[float] = []
    result = backend.inpaint(tile, progress=calls.append)
    assert np.array_equal(np.asarray(result), np.asarray(tile.image))
    assert calls == []


@needs_diffusers
def test_progress_callback_can_interrupt(backend):
    class Interrupted(Exception):
        pass

    def stop(_fraction: float) -> None:
        raise Interrupted

    with pytest.raises(Interrupted):
        backend.inpaint(request(), progress=stop)


@needs_diffusers
def test_bad_requests_raise_input_errors(backend):
    mismatched = request()
    mismatched.mask = Image.new("L", (SIZE // 2, SIZE), 255)
    with pytest.raises(InputError, match="mask"):
        backend.inpaint(mismatched)
    with pytest.raises(InputError, match="no denoising step"):
        backend.inpaint(request(strength=0.2))  # 2 steps × 0.2 = 0 steps


# --- refusing what is not a 9-channel inpainting model -------------------------------------------------------------


@needs_diffusers
def test_text_to_image_folder_is_refused_with_a_clear_message(tmp_path):
    from segfill.backends.diffusers_backend import DiffusersBackend

    folder = tiny_sd.save_tiny_config_folder(tmp_path / "txt2img", in_channels=4)
    with pytest.raises(ModelError) as caught:
        DiffusersBackend.from_model(str(folder), device="cpu")
    assert str(caught.value) == (
        f"{folder} is not an inpainting model: its UNet takes 4 input channels, an inpainting UNet takes 9."
    )


@needs_diffusers
def test_text_to_image_single_file_is_refused_before_loading(tmp_path):
    from segfill.backends.diffusers_backend import DiffusersBackend

    path = tiny_sd.save_tiny_single_file(tmp_path / "txt2img.safetensors", in_channels=4)
    with pytest.raises(ModelError) as caught:
        DiffusersBackend.from_model(str(path), device="cpu")
    assert str(caught.value) == (
        f"{path} is not an inpainting model: its UNet takes 4 input channels, an inpainting UNet takes 9."
    )


@needs_diffusers
@pytest.mark.parametrize(
    "make, expected",
    [
        (lambda tmp: tmp / "missing.safetensors", "Model not found"),
        (lambda tmp: tmp / "no" / "such" / "folder", "Model not found"),
        (lambda tmp: (tmp / "empty").mkdir() or tmp / "empty", "no model_index.json"),
        (lambda tmp: (tmp / "notes.txt").write_text("hi") and tmp / "notes.txt", "expected .safetensors or .ckpt"),
        (lambda tmp: (tmp / "junk.safetensors").write_bytes(b"\x00" * 64) and tmp / "junk.safetensors", "readable"),
        (lambda tmp: (tmp / "junk.ckpt").write_bytes(b"not a pickle") and tmp / "junk.ckpt", "readable"),
    ],
)
def test_missing_or_invalid_models_raise_model_errors_naming_them(tmp_path, make, expected):
    from segfill.backends.diffusers_backend import DiffusersBackend

    path = make(tmp_path)
    with pytest.raises(ModelError, match=expected) as caught:
        DiffusersBackend.from_model(str(path), device="cpu")
    assert str(path) in str(caught.value)


@needs_diffusers
def test_safetensors_without_unet_is_not_a_stable_diffusion_checkpoint(tmp_path):
    import torch
    from safetensors.torch import save_file

    from segfill.backends.diffusers_backend import DiffusersBackend

    path = tmp_path / "lora.safetensors"
    save_file({"lora_unet_down.weight": torch.zeros(2, 2)}, str(path))
    with pytest.raises(ModelError, match="not a Stable Diffusion checkpoint"):
        DiffusersBackend.from_model(str(path), device="cpu")


@needs_diffusers
def test_unknown_hub_id_raises_model_error_naming_it(monkeypatch, tmp_path):
    import huggingface_hub.constants

    from segfill.backends.diffusers_backend import DiffusersBackend

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(ModelError, match="nobody-here/no-such-inpainting-model"):
        DiffusersBackend.from_model("nobody-here/no-such-inpainting-model", device="cpu")


# --- single-file checkpoints (original SD layout), offline -----------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_single_file(tmp_path_factory):
    return tiny_sd.save_tiny_single_file(tmp_path_factory.mktemp("tiny-sd-file") / "tiny-inpainting.safetensors")


@needs_diffusers
def test_single_file_loads_offline_and_matches_the_folder(tmp_path, tiny_single_file, first_result):
    from segfill.backends.diffusers_backend import DiffusersBackend

    config = tiny_sd.save_tiny_config_folder(tmp_path / "config")
    assert not list(config.rglob("*.safetensors")) and not list(config.rglob("*.bin")), (
        "weights must come from the file"
    )
    backend = DiffusersBackend.from_model(str(tiny_single_file), device="cpu", config=str(config))
    assert backend.working_size == SIZE
    result = backend.inpaint(request(seed=1))
    assert np.array_equal(np.asarray(result), np.asarray(first_result[0])), "same weights, same seed, same pixels"


@needs_diffusers
def test_ckpt_single_file_loads_too(tmp_path, first_result):
    from segfill.backends.diffusers_backend import DiffusersBackend

    path = tiny_sd.save_tiny_single_file(tmp_path / "tiny-inpainting.ckpt")
    config = tiny_sd.save_tiny_config_folder(tmp_path / "config")
    backend = DiffusersBackend.from_model(str(path), device="cpu", config=str(config))
    assert np.array_equal(np.asarray(backend.inpaint(request(seed=1))), np.asarray(first_result[0]))


@pytest.fixture
def no_cached_tokenizers(monkeypatch, tmp_path):
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "empty-hf-cache"))


@pytest.fixture
def fake_open_clip(monkeypatch, tmp_path):
    """An importable-looking ``open_clip`` package whose only content is a (tiny) CLIP BPE file."""
    package = tmp_path / "site" / "open_clip"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("raise ImportError('SegFill must not import open_clip')\n")
    tiny_sd.write_tiny_clip_bpe_gz(package / "bpe_simple_vocab_16e6.txt.gz")
    monkeypatch.syspath_prepend(str(package.parent))
    return package


@needs_diffusers
def test_single_file_without_tokenizer_files_uses_open_clips_vocabulary(
    tmp_path, tiny_single_file, first_result, no_cached_tokenizers, fake_open_clip
):
    from segfill.backends.diffusers_backend import DiffusersBackend

    config = tiny_sd.save_tiny_config_folder(tmp_path / "config", tokenizer="settings")
    assert not (config / "tokenizer" / "vocab.json").exists()
    backend = DiffusersBackend.from_model(str(tiny_single_file), device="cpu", config=str(config))
    assert backend.pipeline.tokenizer("a cat").input_ids == [522, 320, 513, 523]
    result = backend.inpaint(request(seed=1))
    assert np.array_equal(np.asarray(result), np.asarray(first_result[0])), "same tokens as the HF tokenizer files"


@needs_diffusers
def test_single_file_without_config_uses_the_shipped_config_for_its_text_width(
    monkeypatch, tmp_path, tiny_single_file, first_result, no_cached_tokenizers, fake_open_clip
):
    """The real-user path: a single file, no ``config``, no network, no tokenizer files anywhere but open_clip.

    SegFill's shipped folders describe the full-size models, so the tiny model gets a shipped-like folder of its
    own (configs + tokenizer settings, no vocabulary, no weights), registered under its text width.
    """
    from segfill.backends import diffusers_backend

    configs = tmp_path / "configs"
    tiny_sd.save_tiny_config_folder(configs / "tiny-inpainting", tokenizer="settings")
    assert not (configs / "tiny-inpainting" / "tokenizer" / "vocab.json").exists()
    monkeypatch.setattr(diffusers_backend, "CONFIGS_DIR", configs)
    monkeypatch.setattr(
        diffusers_backend, "SHIPPED_CONFIG_BY_CONTEXT_DIM", {tiny_sd.TINY_TEXT_WIDTH: "tiny-inpainting"}
    )
    backend = diffusers_backend.DiffusersBackend.from_model(str(tiny_single_file), device="cpu")
    assert np.array_equal(np.asarray(backend.inpaint(request(seed=1))), np.asarray(first_result[0]))


@needs_diffusers
def test_single_file_without_any_vocabulary_says_what_to_install(
    monkeypatch, tmp_path, tiny_single_file, no_cached_tokenizers
):
    from segfill.backends import diffusers_backend

    monkeypatch.setattr(diffusers_backend, "_open_clip_bpe_file", lambda: None)
    config = tiny_sd.save_tiny_config_folder(tmp_path / "config", tokenizer="none")
    with pytest.raises(ModelError) as caught:
        diffusers_backend.DiffusersBackend.from_model(str(tiny_single_file), device="cpu", config=str(config))
    message = str(caught.value)
    assert str(tiny_single_file) in message
    assert "pip install open-clip-torch" in message and "tokenizer/" in message


@needs_diffusers
def test_tokenizer_files_are_found_in_the_hugging_face_cache(monkeypatch, tmp_path):
    import huggingface_hub.constants

    from segfill.backends import diffusers_backend

    cache = tmp_path / "hub"
    snapshot = cache / "models--openai--clip-vit-large-patch14" / "snapshots" / "0123abcd"
    tiny_sd.write_tiny_clip_tokenizer(snapshot)
    (cache / "models--openai--clip-vit-large-patch14" / "refs").mkdir()
    (cache / "models--openai--clip-vit-large-patch14" / "refs" / "main").write_text("0123abcd")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    assert diffusers_backend._cached_tokenizer_dir() == snapshot
    tokenizer = diffusers_backend.load_clip_tokenizer(diffusers_backend.CONFIGS_DIR / "sd2-inpainting", "m")
    assert tokenizer("a cat").input_ids == [522, 320, 513, 523]
    # SD2 was trained with OpenCLIP's tokenizer, which pads with token 0 ("!"), as the WebUI does for SD2
    assert tokenizer.model_max_length == 77 and tokenizer.pad_token == "!"
    assert tokenizer("a cat", padding="max_length").input_ids[4:] == [0] * 73


def test_bpe_file_conversion_matches_clips_vocabulary_rule(tmp_path):
    from segfill.backends.diffusers_backend import write_tokenizer_files_from_bpe

    bpe = tiny_sd.write_tiny_clip_bpe_gz(tmp_path / "bpe.txt.gz")
    folder = write_tokenizer_files_from_bpe(bpe, tmp_path / "tokenizer")
    expected = tiny_sd.write_tiny_clip_tokenizer(tmp_path / "expected")
    assert json.loads((folder / "vocab.json").read_text()) == json.loads((expected / "vocab.json").read_text())
    assert (folder / "merges.txt").read_text() == (expected / "merges.txt").read_text()


# --- the config folders SegFill ships for real single-file checkpoints --------------------------------------------


def _save_shapes(path: Path, in_channels: int, context_dim: int) -> Path:
    import torch
    from safetensors.torch import save_file

    from segfill.backends.diffusers_backend import LDM_UNET_CONTEXT_KEY, LDM_UNET_INPUT_KEY

    save_file(
        {
            LDM_UNET_INPUT_KEY: torch.zeros(320, in_channels, 3, 3, dtype=torch.float16),
            LDM_UNET_CONTEXT_KEY: torch.zeros(320, context_dim, dtype=torch.float16),
        },
        str(path),
    )
    return path


@pytest.mark.parametrize("context_dim, family", [(1024, "sd2-inpainting"), (768, "sd1-inpainting")])
def test_checkpoint_shapes_pick_the_shipped_config(tmp_path, context_dim, family):
    from segfill.backends.diffusers_backend import CONFIGS_DIR, shipped_config_for_checkpoint

    path = _save_shapes(tmp_path / "model.safetensors", 9, context_dim)
    assert shipped_config_for_checkpoint(path) == CONFIGS_DIR / family


def test_unknown_text_width_asks_for_a_config(tmp_path):
    from segfill.backends.diffusers_backend import shipped_config_for_checkpoint

    path = _save_shapes(tmp_path / "model.safetensors", 9, 2048)
    with pytest.raises(ModelError, match="no built-in config"):
        shipped_config_for_checkpoint(path)


@needs_diffusers
@pytest.mark.parametrize(
    "family, unet_params, text_params, context_dim, heads",
    [
        # published sizes: SD2 UNet 865,910,724 + 14,400 for the 5 extra input channels; OpenCLIP-H text tower
        # without its last block; SD1.5 UNet 859,520,964 + 14,400; CLIP ViT-L/14 text 123,060,480; VAE 83,653,863
        ("sd2-inpainting", 865_925_124, 340_387_840, 1024, 5),
        ("sd1-inpainting", 859_535_364, 123_060_480, 768, 8),
    ],
)
def test_shipped_configs_describe_the_real_models(family, unet_params, text_params, context_dim, heads):
    import torch
    from diffusers import AutoencoderKL, StableDiffusionInpaintPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    from segfill.backends.diffusers_backend import CONFIGS_DIR

    folder = CONFIGS_DIR / family
    assert StableDiffusionInpaintPipeline.load_config(str(folder))["_class_name"] == "StableDiffusionInpaintPipeline"
    with torch.device("meta"):  # shapes only, no memory
        unet = UNet2DConditionModel.from_config(UNet2DConditionModel.load_config(str(folder / "unet")))
        vae = AutoencoderKL.from_config(AutoencoderKL.load_config(str(folder / "vae")))
        text = CLIPTextModel(CLIPTextConfig.from_pretrained(str(folder / "text_encoder")))

    def count(model):
        return sum(parameter.numel() for parameter in model.parameters())

    assert count(unet) == unet_params and count(vae) == 83_653_863 and count(text) == text_params
    assert tuple(unet.conv_in.weight.shape) == (320, 9, 3, 3)
    first_attention = unet.down_blocks[0].attentions[0].transformer_blocks[0]
    assert tuple(first_attention.attn2.to_k.weight.shape) == (320, context_dim)
    assert first_attention.attn1.heads == heads
    assert unet.config.sample_size * 2 ** (len(vae.config.block_out_channels) - 1) == 512


@pytest.mark.parametrize("zip_format", [True, False], ids=["zip-ckpt", "legacy-ckpt"])
def test_ckpt_headers_are_read_in_both_torch_save_formats(tmp_path, zip_format):
    import torch

    from segfill.backends.diffusers_backend import (
        CONFIGS_DIR,
        LDM_UNET_CONTEXT_KEY,
        LDM_UNET_INPUT_KEY,
        shipped_config_for_checkpoint,
    )

    inpainting, plain = tmp_path / "inpainting.ckpt", tmp_path / "plain.ckpt"
    for path, in_channels in ((inpainting, 9), (plain, 4)):
        state = {LDM_UNET_INPUT_KEY: torch.zeros(320, in_channels, 3, 3), LDM_UNET_CONTEXT_KEY: torch.zeros(320, 1024)}
        torch.save({"state_dict": state}, str(path), _use_new_zipfile_serialization=zip_format)
    assert shipped_config_for_checkpoint(inpainting) == CONFIGS_DIR / "sd2-inpainting"
    with pytest.raises(ModelError, match="its UNet takes 4 input channels"):
        shipped_config_for_checkpoint(plain)


# --- create_backend("diffusers", ...): the one entry point the CLI and serve use ------------------------------------


@needs_diffusers
def test_create_backend_loads_a_model_that_is_then_tiled(tiny_folder):
    from segfill.backends import create_backend
    from segfill.backends.base import backend_tiling
    from segfill.backends.diffusers_backend import DiffusersBackend

    backend = create_backend("diffusers", model=str(tiny_folder), device="cpu", dtype="float32")
    assert isinstance(backend, DiffusersBackend) and backend.model == str(tiny_folder)
    assert backend_tiling(backend) == (SIZE, True)
    out = backend.inpaint(request(seed=3))
    assert out.size == (SIZE, SIZE)
    keep = np.asarray(square_mask(SIZE, SIZE)) == 0
    assert (np.asarray(out)[keep] == np.asarray(noise_image(SIZE, SIZE))[keep]).all()


@needs_diffusers
def test_create_backend_model_errors_are_one_sentence_model_errors(tmp_path, monkeypatch):
    from segfill.backends import create_backend
    from segfill.backends.diffusers_backend import DiffusersBackend

    with pytest.raises(ModelError, match="needs a model"):
        create_backend("diffusers", model="")
    missing = tmp_path / "nope.safetensors"
    with pytest.raises(ModelError, match="Model not found") as caught:
        create_backend("diffusers", model=str(missing), device="cpu")
    assert str(missing) in str(caught.value)
    (tmp_path / "junk.safetensors").write_bytes(b"\x00" * 64)
    with pytest.raises(ModelError, match="junk.safetensors"):
        create_backend("diffusers", model=str(tmp_path / "junk.safetensors"), device="cpu")
    with pytest.raises(InputError, match="int8"):
        create_backend("diffusers", model=str(tmp_path / "junk.safetensors"), dtype="int8")

    def fails(model, **options):
        raise OSError("disk on fire\nTraceback details nobody needs")

    monkeypatch.setattr(DiffusersBackend, "from_model", staticmethod(fails))
    with pytest.raises(ModelError) as caught:
        create_backend("diffusers", model="some/model")
    assert str(caught.value) == "Could not load the inpainting model 'some/model': disk on fire."


def test_create_backend_names_what_is_missing(monkeypatch):
    from segfill.backends import create_backend

    monkeypatch.setitem(sys.modules, "diffusers", None)
    with pytest.raises(MissingDependencyError) as caught:
        create_backend("diffusers", model="some/model")
    assert caught.value.package == "diffusers"
    monkeypatch.setitem(sys.modules, "segfill.backends.diffusers_backend", None)
    with pytest.raises(ModelError, match="not available in this SegFill version"):
        create_backend("diffusers", model="some/model")
