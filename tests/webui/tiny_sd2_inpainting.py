"""Write a tiny random-weight checkpoint with the SD2-inpainting *architecture* for a local WebUI.

Run it with the WebUI's own Python, from the WebUI folder (it needs the WebUI's ``repositories/`` for ``ldm``)::

    venv/bin/python /path/to/segfill/tests/webui/tiny_sd2_inpainting.py models/Stable-diffusion

It writes ``tiny-sd2-inpainting.safetensors`` and ``tiny-sd2-inpainting.yaml`` next to it (a config next to a
checkpoint wins over the WebUI's guess): ``LatentInpaintDiffusion`` with ``conditioning_key: hybrid``, a
9-input-channel UNet, an 8x VAE and an OpenCLIP text encoder (ViT-B-32 layout, random weights, nothing
downloaded) -- the same code paths as SD2-inpainting, small enough to sample a 64-px tile on a CPU in a
second. It also writes ``tiny-sd2-plain`` (4-channel, ``crossattn``) to check the "not an inpainting model"
warning. The images it makes are noise; the tests check sizes, pixels outside the mask and plumbing.

Forge guesses a checkpoint's family from the UNet alone (``huggingface_guess``: SD2 means 320 model channels and a
1024-wide context) and builds the VAE and text encoder from SD2's own configs, so a checkpoint for Forge needs a
full-size VAE and OpenCLIP-H text encoder (random weights, ~1.7 GB in fp32) next to a UNet that is only one
level deep::

    venv/bin/python /path/to/segfill/tests/webui/tiny_sd2_inpainting.py models/Stable-diffusion --forge

writes ``tiny-sd2-inpainting-forge`` and ``tiny-sd2-plain-forge`` (no yaml: Forge reads the state dict). Building
them needs an ``ldm`` package: the WebUI 1.10's ``repositories/stable-diffusion-stability-ai`` (pass its folder
with ``--ldm DIR`` when running from Forge, which has none).
"""

import os
import sys

CONFIG = """
model:
  target: ldm.models.diffusion.ddpm.{target}
  params:
    linear_start: 0.00085
    linear_end: 0.0120
    num_timesteps_cond: 1
    log_every_t: 200
    timesteps: 1000
    first_stage_key: "jpg"
    cond_stage_key: "txt"
    image_size: 8
    channels: 4
    cond_stage_trainable: false
    conditioning_key: {conditioning_key}
    scale_factor: 0.18215
    monitor: val/loss_simple_ema
{extra}    use_ema: False
    unet_config:
      target: ldm.modules.diffusionmodules.openaimodel.UNetModel
      params:
        use_checkpoint: False
        image_size: 8
        in_channels: {in_channels}
        out_channels: 4
        model_channels: {model_channels}
        attention_resolutions: {attention_resolutions}
        num_res_blocks: 1
        channel_mult: {channel_mult}
        num_head_channels: {head_channels}
        use_spatial_transformer: True
        use_linear_in_transformer: True
        transformer_depth: 1
        context_dim: {context_dim}
        legacy: False
    first_stage_config:
      target: ldm.models.autoencoder.AutoencoderKL
      params:
        embed_dim: 4
        monitor: val/rec_loss
        ddconfig:
          double_z: true
          z_channels: 4
          resolution: 64
          in_channels: 3
          out_ch: 3
          ch: {vae_ch}
          ch_mult: [ 1, {vae_mult2}, {vae_mult34}, {vae_mult34} ]
          num_res_blocks: {vae_res_blocks}
          attn_resolutions: [ ]
          dropout: 0.0
        lossconfig:
          target: torch.nn.Identity
    cond_stage_config:
      target: ldm.modules.encoders.modules.FrozenOpenCLIPEmbedder
      params:
        arch: {clip_arch}
        version: null
        freeze: True
        layer: "penultimate"
"""

TINY = dict(model_channels=32, attention_resolutions="[ 2 ]", channel_mult="[ 1, 2 ]", head_channels=16,
            context_dim=512, vae_ch=32, vae_mult2=1, vae_mult34=2, vae_res_blocks=1, clip_arch="ViT-B-32")
#: what Forge recognises as SD2 (320 channels, 1024 context), one UNet level deep; SD2's VAE and text encoder
FORGE = dict(model_channels=320, attention_resolutions="[ 1 ]", channel_mult="[ 1 ]", head_channels=64,
             context_dim=1024, vae_ch=128, vae_mult2=2, vae_mult34=4, vae_res_blocks=2, clip_arch="ViT-H-14")

INPAINTING = dict(target="LatentInpaintDiffusion", conditioning_key="hybrid", in_channels=9,
                  extra="    finetune_keys: null\n")
PLAIN = dict(target="LatentDiffusion", conditioning_key="crossattn", in_channels=4, extra="")

VARIANTS = {
    "tiny-sd2-inpainting": {**INPAINTING, **TINY},
    "tiny-sd2-plain": {**PLAIN, **TINY},
}
FORGE_VARIANTS = {
    "tiny-sd2-inpainting-forge": {**INPAINTING, **FORGE},
    "tiny-sd2-plain-forge": {**PLAIN, **FORGE},
}


def main(out_dir: str, forge: bool = False, ldm_dir: str = "repositories/stable-diffusion-stability-ai") -> None:
    sys.path.insert(0, os.path.abspath(ldm_dir))
    import torch
    from ldm.util import instantiate_from_config
    from omegaconf import OmegaConf
    from safetensors.torch import save_file

    os.makedirs(out_dir, exist_ok=True)
    torch.manual_seed(0)
    for name, variant in (FORGE_VARIANTS if forge else VARIANTS).items():
        text = CONFIG.format(**variant)
        config = OmegaConf.create(text)
        model = instantiate_from_config(config.model)
        state = {k: v.detach().contiguous().clone() for k, v in model.state_dict().items()}
        save_file(state, os.path.join(out_dir, name + ".safetensors"))
        if not forge:  # Forge guesses from the state dict; the WebUI 1.10 reads this config
            with open(os.path.join(out_dir, name + ".yaml"), "w", encoding="utf-8") as fh:
                fh.write(text.lstrip())
        print(name, sum(v.numel() for v in state.values()), "parameters")
        del model, state


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("out_dir", nargs="?", default="models/Stable-diffusion")
    parser.add_argument("--forge", action="store_true", help="the checkpoints Forge recognises as SD2")
    parser.add_argument("--ldm", default="repositories/stable-diffusion-stability-ai",
                        help="folder holding the ldm package (the WebUI 1.10's repositories/stable-diffusion-stability-ai)")
    options = parser.parse_args()
    main(options.out_dir, forge=options.forge, ldm_dir=options.ldm)
