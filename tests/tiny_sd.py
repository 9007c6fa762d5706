"""A tiny random-weight SD2-style inpainting pipeline for tests, saved the ways real models are shipped.

Nothing is downloaded. The helpers build the real diffusers/transformers classes, shrunk until a 64×64 tile
runs in a fraction of a second on CPU, and write them to disk so that tests load them through SegFill's real
loading code (:meth:`segfill.backends.diffusers_backend.DiffusersBackend.from_model`):

- ``save_tiny_pipeline(folder)``: a diffusers folder (``save_pretrained``: model_index.json, unet/, vae/,
  text_encoder/, tokenizer/, scheduler/), like a hub snapshot.
- ``save_tiny_config_folder(folder, tokenizer="files")``: the same folder without any weights (configs and,
  optionally, tokenizer files), like the config folders SegFill ships for single-file checkpoints.
- ``save_tiny_single_file(path, pipeline=None)``: one ``.safetensors`` in the original Stable Diffusion (LDM)
  key layout, like the WebUI's ``512-inpainting-ema.safetensors``: ``model.diffusion_model.*`` (UNet),
  ``first_stage_model.*`` (VAE), ``cond_stage_model.model.*`` (OpenCLIP text encoder). diffusers can only
  *read* that layout, so :func:`ldm_state_dict` inverts its converters here.
- ``write_tiny_clip_tokenizer(folder)`` / ``write_tiny_clip_bpe_gz(path)``: a CLIP BPE vocabulary of a few
  hundred tokens, as HF tokenizer files (vocab.json, merges.txt) or as OpenCLIP's ``bpe_simple_vocab`` file.

The tiny architecture mirrors SD2-inpainting where it matters for loading: a 9-input-channel UNet with linear
projections and cross-attention, a VAE that downsamples by 8, an OpenCLIP-style (gelu) CLIP text encoder.
"""

from __future__ import annotations

import gzip
import json
import shutil
from pathlib import Path

TINY_LATENT_SIZE = 8
TINY_VAE_SCALE = 8
#: the pipeline's native tile size: UNet sample_size × VAE scale factor.
TINY_WORKING_SIZE = TINY_LATENT_SIZE * TINY_VAE_SCALE
TINY_TEXT_WIDTH = 32
TINY_TEXT_LAYERS = 2
TINY_VOCAB_SIZE = 1000

# A handful of merges so that a few English words become single tokens; everything else falls back to bytes.
TINY_MERGES = [
    ("c", "a"),
    ("ca", "t</w>"),
    ("d", "o"),
    ("do", "g</w>"),
    ("s", "k"),
    ("sk", "y</w>"),
    ("h", "o"),
    ("u", "s"),
    ("ho", "us"),
    ("hous", "e</w>"),
]
START_TOKEN = "<|startoftext|>"
END_TOKEN = "<|endoftext|>"


def clip_vocab(merges: list[tuple[str, str]]) -> dict[str, int]:
    """CLIP's vocabulary rule (as in OpenAI's ``SimpleTokenizer``): bytes, bytes + ``</w>``, merges, specials."""
    from transformers.models.clip.tokenization_clip import bytes_to_unicode

    tokens = list(bytes_to_unicode().values())
    tokens += [token + "</w>" for token in tokens]
    tokens += ["".join(merge) for merge in merges]
    tokens += [START_TOKEN, END_TOKEN]
    return {token: index for index, token in enumerate(tokens)}


def write_tiny_clip_tokenizer(folder: Path | str, merges: list[tuple[str, str]] = TINY_MERGES) -> Path:
    """HF CLIP tokenizer files (vocab.json, merges.txt, tokenizer_config.json) for a tiny vocabulary."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps(clip_vocab(merges)), encoding="utf-8")
    merge_lines = ["#version: 0.2"] + [" ".join(merge) for merge in merges]
    (folder / "merges.txt").write_text("\n".join(merge_lines) + "\n", encoding="utf-8")
    tokenizer_config = {
        "tokenizer_class": "CLIPTokenizer",
        "model_max_length": 77,
        "bos_token": START_TOKEN,
        "eos_token": END_TOKEN,
        "unk_token": END_TOKEN,
        "pad_token": END_TOKEN,
        "do_lower_case": True,
    }
    (folder / "tokenizer_config.json").write_text(json.dumps(tokenizer_config), encoding="utf-8")
    return folder


def write_tiny_clip_bpe_gz(path: Path | str, merges: list[tuple[str, str]] = TINY_MERGES) -> Path:
    """The same vocabulary in OpenCLIP's ``bpe_simple_vocab_16e6.txt.gz`` format (a header line, then merges)."""
    path = Path(path)
    lines = ["#version: 0.2"] + [" ".join(merge) for merge in merges]
    with gzip.open(path, "wt", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
    return path


def build_tiny_pipeline(seed: int = 0, in_channels: int = 9, tokenizer_folder: Path | str | None = None):
    """A ``StableDiffusionInpaintPipeline`` with random weights (CPU, float32, no safety checker).

    ``in_channels=4`` builds the same pipeline around a plain text-to-image UNet (not an inpainting model).
    ``tokenizer_folder`` must hold files from :func:`write_tiny_clip_tokenizer`.
    """
    import torch
    from diffusers import AutoencoderKL, PNDMScheduler, StableDiffusionInpaintPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    generator_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    try:
        unet = UNet2DConditionModel(
            sample_size=TINY_LATENT_SIZE,
            in_channels=in_channels,
            out_channels=4,
            layers_per_block=1,
            block_out_channels=(32, 64),
            down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
            up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
            cross_attention_dim=TINY_TEXT_WIDTH,
            attention_head_dim=(2, 4),
            use_linear_projection=True,
        )
        vae = AutoencoderKL(
            block_out_channels=(32, 32, 32, 32),
            in_channels=3,
            out_channels=3,
            down_block_types=("DownEncoderBlock2D",) * 4,
            up_block_types=("UpDecoderBlock2D",) * 4,
            latent_channels=4,
            layers_per_block=1,
            sample_size=TINY_WORKING_SIZE,
        )
        text_encoder = CLIPTextModel(
            CLIPTextConfig(
                hidden_size=TINY_TEXT_WIDTH,
                intermediate_size=37,
                num_attention_heads=4,
                num_hidden_layers=TINY_TEXT_LAYERS,
                vocab_size=TINY_VOCAB_SIZE,
                max_position_embeddings=77,
                hidden_act="gelu",
                projection_dim=TINY_TEXT_WIDTH,
                bos_token_id=0,
                eos_token_id=2,
                pad_token_id=1,
            )
        )
    finally:
        torch.random.set_rng_state(generator_state)
    scheduler = PNDMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        skip_prk_steps=True,
        set_alpha_to_one=False,
        steps_offset=1,
    )
    if tokenizer_folder is None:
        raise ValueError("build_tiny_pipeline needs tokenizer_folder (see write_tiny_clip_tokenizer)")
    tokenizer = CLIPTokenizer.from_pretrained(str(tokenizer_folder))
    pipeline = StableDiffusionInpaintPipeline(
        unet=unet.eval(),
        vae=vae.eval(),
        text_encoder=text_encoder.eval(),
        tokenizer=tokenizer,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    return pipeline


def save_tiny_pipeline(folder: Path | str, seed: int = 0, in_channels: int = 9) -> Path:
    """Build the tiny pipeline and ``save_pretrained`` it into ``folder`` (a diffusers model folder)."""
    folder = Path(folder)
    tokenizer_source = write_tiny_clip_tokenizer(folder.parent / f"{folder.name}-tokenizer-source")
    pipeline = build_tiny_pipeline(seed=seed, in_channels=in_channels, tokenizer_folder=tokenizer_source)
    pipeline.save_pretrained(str(folder))
    return folder


def save_tiny_config_folder(folder: Path | str, tokenizer: str = "files", in_channels: int = 9) -> Path:
    """A diffusers folder holding only configs, no weights.

    ``tokenizer``: ``"files"`` keeps the tokenizer folder whole, ``"settings"`` keeps only its
    tokenizer_config.json (like the config folders SegFill ships: no vocabulary), ``"none"`` drops it.
    """
    folder = Path(folder)
    full = save_tiny_pipeline(folder.parent / f"{folder.name}-full", in_channels=in_channels)
    for source in full.rglob("*"):
        if source.is_dir() or source.suffix not in {".json", ".txt"}:
            continue
        relative = source.relative_to(full)
        if relative.parts[0] == "tokenizer" and (
            tokenizer == "none" or (tokenizer == "settings" and relative.name != "tokenizer_config.json")
        ):
            continue
        target = folder / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
    return folder


# --- diffusers -> original (LDM) key layout: the inverse of diffusers.loaders.single_file_utils' converters ---

_RESNET_TO_LDM = [
    ("norm1", "in_layers.0"),
    ("conv1", "in_layers.2"),
    ("norm2", "out_layers.0"),
    ("conv2", "out_layers.3"),
    ("time_emb_proj", "emb_layers.1"),
    ("conv_shortcut", "skip_connection"),
]
_UNET_TOP_LEVEL_TO_LDM = {
    "time_embedding.linear_1": "time_embed.0",
    "time_embedding.linear_2": "time_embed.2",
    "conv_in": "input_blocks.0.0",
    "conv_norm_out": "out.0",
    "conv_out": "out.2",
}


def _replace_first(name: str, pairs: list[tuple[str, str]]) -> str:
    head, _, leaf = name.rpartition(".")
    for diffusers_name, ldm_name in pairs:
        if head.startswith(diffusers_name):
            return ldm_name + head[len(diffusers_name) :] + "." + leaf
    return name


def ldm_unet_key(key: str, layers_per_block: int) -> str:
    """Original UNet key (without ``model.diffusion_model.``) of a diffusers ``UNet2DConditionModel`` key."""
    parts = key.split(".")
    per_level = layers_per_block + 1
    head, _, leaf = key.rpartition(".")
    if head in _UNET_TOP_LEVEL_TO_LDM:
        return f"{_UNET_TOP_LEVEL_TO_LDM[head]}.{leaf}"
    if parts[0] == "down_blocks":
        level, kind = int(parts[1]), parts[2]
        if kind == "downsamplers":  # down_blocks.L.downsamplers.0.conv.weight
            return f"input_blocks.{(level + 1) * per_level}.0.op.{leaf}"
        index = 1 + level * per_level + int(parts[3])
        rest = ".".join(parts[4:])
        if kind == "resnets":
            return f"input_blocks.{index}.0." + _replace_first(rest, _RESNET_TO_LDM)
        return f"input_blocks.{index}.1.{rest}"
    if parts[0] == "mid_block":
        kind, number, rest = parts[1], int(parts[2]), ".".join(parts[3:])
        if kind == "resnets":
            return f"middle_block.{2 * number}." + _replace_first(rest, _RESNET_TO_LDM)
        return f"middle_block.1.{rest}"
    if parts[0] == "up_blocks":
        level, kind = int(parts[1]), parts[2]
        if kind == "upsamplers":
            raise KeyError(key)  # handled by ldm_unet_state_dict: its index depends on the block's attentions
        index = level * per_level + int(parts[3])
        rest = ".".join(parts[4:])
        if kind == "resnets":
            return f"output_blocks.{index}.0." + _replace_first(rest, _RESNET_TO_LDM)
        return f"output_blocks.{index}.1.{rest}"
    raise KeyError(key)


def ldm_unet_state_dict(unet) -> dict:
    layers_per_block = unet.config.layers_per_block
    per_level = layers_per_block + 1
    state = unet.state_dict()
    converted = {}
    for key, tensor in state.items():
        parts = key.split(".")
        if parts[0] == "up_blocks" and parts[2] == "upsamplers":
            level = int(parts[1])
            has_attention = any(k.startswith(f"up_blocks.{level}.attentions.") for k in state)
            index = level * per_level + layers_per_block
            ldm_key = f"output_blocks.{index}.{2 if has_attention else 1}.conv.{parts[-1]}"
        else:
            ldm_key = ldm_unet_key(key, layers_per_block)
        converted["model.diffusion_model." + ldm_key] = tensor
    return converted


_VAE_TOP_LEVEL_TO_LDM = {"conv_norm_out": "norm_out"}
_VAE_ATTENTION_TO_LDM = [
    ("group_norm", "norm"),
    ("to_q", "q"),
    ("to_k", "k"),
    ("to_v", "v"),
    ("to_out.0", "proj_out"),
]


def ldm_vae_state_dict(vae) -> dict:
    state = vae.state_dict()
    num_levels = len(vae.config.block_out_channels)
    converted = {}
    for key, tensor in state.items():
        parts = key.split(".")
        coder, rest = parts[0], parts[1:]
        if coder not in ("encoder", "decoder"):  # quant_conv / post_quant_conv keep their names
            converted[f"first_stage_model.{key}"] = tensor
            continue
        if rest[0] == "down_blocks":  # encoder.down_blocks.L.(resnets.J | downsamplers.0.conv).*
            level = int(rest[1])
            if rest[2] == "downsamplers":
                ldm = f"down.{level}.downsample.conv.{rest[-1]}"
            else:
                ldm = f"down.{level}.block.{rest[3]}." + ".".join(rest[4:]).replace("conv_shortcut", "nin_shortcut")
        elif rest[0] == "up_blocks":  # diffusers counts decoder levels from the bottom, LDM from the top
            level = num_levels - 1 - int(rest[1])
            if rest[2] == "upsamplers":
                ldm = f"up.{level}.upsample.conv.{rest[-1]}"
            else:
                ldm = f"up.{level}.block.{rest[3]}." + ".".join(rest[4:]).replace("conv_shortcut", "nin_shortcut")
        elif rest[0] == "mid_block" and rest[1] == "resnets":
            ldm = f"mid.block_{int(rest[2]) + 1}." + ".".join(rest[3:]).replace("conv_shortcut", "nin_shortcut")
        elif rest[0] == "mid_block" and rest[1] == "attentions":
            ldm = "mid.attn_1." + _replace_first(".".join(rest[3:]), _VAE_ATTENTION_TO_LDM)
            if tensor.ndim == 2:  # LDM keeps the attention projections as 1×1 convolutions
                tensor = tensor[:, :, None, None]
        else:
            head, _, leaf = ".".join(rest).rpartition(".")
            ldm = f"{_VAE_TOP_LEVEL_TO_LDM.get(head, head)}.{leaf}"
        converted[f"first_stage_model.{coder}.{ldm}"] = tensor
    return converted


_OPEN_CLIP_LAYER_TO_LDM = [
    ("layer_norm1", "ln_1"),
    ("layer_norm2", "ln_2"),
    ("mlp.fc1", "mlp.c_fc"),
    ("mlp.fc2", "mlp.c_proj"),
    ("self_attn.out_proj", "attn.out_proj"),
]


def ldm_open_clip_state_dict(text_encoder) -> dict:
    """OpenCLIP layout (``cond_stage_model.model.*``) with fused q/k/v ``in_proj`` as in SD2 checkpoints."""
    import torch

    prefix = "cond_stage_model.model."
    state = text_encoder.state_dict()
    converted = {
        prefix + "token_embedding.weight": state["text_model.embeddings.token_embedding.weight"],
        prefix + "positional_embedding": state["text_model.embeddings.position_embedding.weight"],
        prefix + "ln_final.weight": state["text_model.final_layer_norm.weight"],
        prefix + "ln_final.bias": state["text_model.final_layer_norm.bias"],
        # diffusers reads the text width from this tensor's first dimension to split the fused q/k/v
        prefix + "text_projection": torch.zeros(text_encoder.config.hidden_size, text_encoder.config.projection_dim),
    }
    for layer in range(text_encoder.config.num_hidden_layers):
        source = f"text_model.encoder.layers.{layer}."
        target = f"{prefix}transformer.resblocks.{layer}."
        for kind in ("weight", "bias"):
            converted[f"{target}attn.in_proj_{kind}"] = torch.cat(
                [state[f"{source}self_attn.{name}_proj.{kind}"] for name in ("q", "k", "v")]
            )
            for diffusers_name, ldm_name in _OPEN_CLIP_LAYER_TO_LDM:
                converted[f"{target}{ldm_name}.{kind}"] = state[f"{source}{diffusers_name}.{kind}"]
    return converted


def ldm_state_dict(pipeline) -> dict:
    """The pipeline's UNet, VAE and text encoder as one state dict in the original SD2 single-file layout."""
    state = {}
    state.update(ldm_unet_state_dict(pipeline.unet))
    state.update(ldm_vae_state_dict(pipeline.vae))
    state.update(ldm_open_clip_state_dict(pipeline.text_encoder))
    return {key: tensor.detach().contiguous().clone() for key, tensor in state.items()}


def save_tiny_single_file(path: Path | str, seed: int = 0, in_channels: int = 9) -> Path:
    """The tiny pipeline of ``seed`` as one ``.safetensors`` (or ``.ckpt``) in the original SD layout."""
    import torch
    from safetensors.torch import save_file

    path = Path(path)
    tokenizer_source = write_tiny_clip_tokenizer(path.parent / f"{path.stem}-tokenizer-source")
    pipeline = build_tiny_pipeline(seed=seed, in_channels=in_channels, tokenizer_folder=tokenizer_source)
    state = ldm_state_dict(pipeline)
    if path.suffix == ".safetensors":
        save_file(state, str(path))
    else:
        torch.save({"state_dict": state}, str(path))
    return path
