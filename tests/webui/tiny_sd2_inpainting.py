"""Write a tiny random-weight checkpoint with the SD2-inpainting *architecture* for a local WebUI.

Run it with the WebUI's own Python, from the WebUI folder (it needs the WebUI's ``repositories/`` for ``ldm``)::

    venv/bin/python /path/to/segfill/tests/webui/tiny_sd2_inpainting.py models/Stable-diffusion

It writes ``tiny-sd2-inpainting.safetensors`` and ``tiny-sd2-inpainting.yaml`` next to it (a config next to a
checkpoint wins over the WebUI's guess): ``LatentInpaintDiffusion`` with ``conditioning_key: hybrid``, a
9-input-channel UNet, an 8x VAE and an OpenCLIP text encoder (ViT-B-32 layout, random weights, nothing
downloaded) -- the same code paths as SD2-inpainting, small enough to sample a 64-px tile on a CPU in a
second. It also writes ``tiny-sd2-plain`` (4-channel, ``crossattn``) to check the "not an inpainting model"
warning. The images it makes are noise; the tests check sizes, pixels outside the mask and plumbing.
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
        model_channels: 32
        attention_resolutions: [ 2 ]
        num_res_blocks: 1
        channel_mult: [ 1, 2 ]
        num_head_channels: 16
        use_spatial_transformer: True
        use_linear_in_transformer: True
        transformer_depth: 1
        context_dim: 512
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
          ch: 32
          ch_mult: [ 1, 1, 2, 2 ]
          num_res_blocks: 1
          attn_resolutions: [ ]
          dropout: 0.0
        lossconfig:
          target: torch.nn.Identity
    cond_stage_config:
      target: ldm.modules.encoders.modules.FrozenOpenCLIPEmbedder
      params:
        arch: ViT-B-32
        version: null
        freeze: True
        layer: "penultimate"
"""

VARIANTS = {
    "tiny-sd2-inpainting": dict(target="LatentInpaintDiffusion", conditioning_key="hybrid", in_channels=9,
                                extra="    finetune_keys: null\n"),
    "tiny-sd2-plain": dict(target="LatentDiffusion", conditioning_key="crossattn", in_channels=4, extra=""),
}


def main(out_dir: str) -> None:
    sys.path.insert(0, os.path.abspath("repositories/stable-diffusion-stability-ai"))
    import torch
    from ldm.util import instantiate_from_config
    from omegaconf import OmegaConf
    from safetensors.torch import save_file

    os.makedirs(out_dir, exist_ok=True)
    torch.manual_seed(0)
    for name, variant in VARIANTS.items():
        text = CONFIG.format(**variant)
        config = OmegaConf.create(text)
        model = instantiate_from_config(config.model)
        state = {k: v.detach().contiguous().clone() for k, v in model.state_dict().items()}
        save_file(state, os.path.join(out_dir, name + ".safetensors"))
        with open(os.path.join(out_dir, name + ".yaml"), "w", encoding="utf-8") as fh:
            fh.write(text.lstrip())
        print(name, sum(v.numel() for v in state.values()), "parameters")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "models/Stable-diffusion")
