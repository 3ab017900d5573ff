"""Train seqdream's built-in model from scratch on the procedural shape world, on CPU.

The result is a `Flux2KleinPipeline` folder, loaded by the service exactly like any other
FLUX.2 [klein] checkpoint. Two stages, both seeded and reproducible:

  1. the VAE learns to reconstruct rendered scenes (64x64, 4x down-sampling);
  2. the text encoder and the transformer learn flow matching on text-to-image, edits,
     compositions and sequence frames, with the VAE frozen.

Usage: python training/train_builtin.py --out build/builtin --vae-minutes 15 --minutes 90

Gate: the VAE stage prints the share of scenes the parser reads back exactly after a VAE
round trip; the transformer cannot beat that number, so it should be close to 100 %.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from seqdream.builtin import tasks
from seqdream.builtin.world import CANVAS, random_scene, render
from seqdream.engines.scaffold import train_tokenizer

TEXT_LAYERS = 28  # the pipeline reads hidden states 9, 18 and 27
MAX_TOKENS = 64
SAMPLING = {
    "native_resolution": CANVAS,
    "num_inference_steps": 20,
    "guidance_scale": 3.0,
    "max_sequence_length": MAX_TOKENS,
}
TASK_MIX = {"t2i": 0.4, "edit": 0.35, "compose": 0.1, "sequence": 0.15}
PROMPT_DROPOUT = 0.1  # empty prompts teach the unconditional branch used by guidance


def to_tensor(images: list[Image.Image]) -> torch.Tensor:
    array = np.stack([np.asarray(image.convert("RGB"), dtype=np.float32) for image in images])
    return torch.from_numpy(array).permute(0, 3, 1, 2) / 127.5 - 1.0


def build_components(seed: int):  # type: ignore[no-untyped-def]
    from diffusers import AutoencoderKLFlux2, FlowMatchEulerDiscreteScheduler, Flux2Transformer2DModel
    from transformers import Qwen3Config, Qwen3ForCausalLM

    torch.manual_seed(seed)
    rng = random.Random(seed)
    corpus = [tasks.text_to_image(rng).prompt for _ in range(3000)]
    corpus += [tasks.edit(rng).prompt for _ in range(3000)]
    corpus += [tasks.compose(rng).prompt] + [e.prompt for _ in range(300) for e in tasks.sequence(rng)]
    tokenizer = train_tokenizer(corpus, vocab_size=400)
    text_encoder = Qwen3ForCausalLM(
        Qwen3Config(
            vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=TEXT_LAYERS,
            num_attention_heads=4, num_key_value_heads=2, head_dim=16, max_position_embeddings=256,
            pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id, tie_word_embeddings=True,
        )
    )  # fmt: skip
    vae = AutoencoderKLFlux2(
        block_out_channels=(32, 64, 64), down_block_types=("DownEncoderBlock2D",) * 3,
        up_block_types=("UpDecoderBlock2D",) * 3, latent_channels=8, layers_per_block=1, norm_num_groups=8,
        sample_size=CANVAS, mid_block_add_attention=False,
    )  # fmt: skip
    transformer = Flux2Transformer2DModel(
        patch_size=1, in_channels=32, num_layers=3, num_single_layers=4, attention_head_dim=64,
        num_attention_heads=3, joint_attention_dim=3 * 64, timestep_guidance_channels=64,
        axes_dims_rope=(16, 16, 16, 16), guidance_embeds=False,
    )  # fmt: skip
    scheduler = FlowMatchEulerDiscreteScheduler(shift=3.0, use_dynamic_shifting=True)
    return tokenizer, text_encoder, vae, transformer, scheduler


def train_vae(vae, minutes: float, rng: random.Random, batch: int = 16) -> None:  # type: ignore[no-untyped-def]
    """Reconstruction training. Object pixels weigh 10x: the flat background dominates the
    plain loss, and a VAE that only gets the background right blurs the shapes away."""
    optimiser = torch.optim.AdamW(vae.parameters(), lr=1e-3)
    vae.train()
    total_s = minutes * 60
    deadline, step = time.monotonic() + total_s, 0
    while time.monotonic() < deadline:
        progress = 1 - (deadline - time.monotonic()) / total_s
        for group in optimiser.param_groups:
            group["lr"] = 1e-3 * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))
        images = to_tensor([render(random_scene(rng)) for _ in range(batch)])
        background = images[:, :, :1, :1]
        weight = 1 + 9 * ((images - background).abs().sum(1, keepdim=True) > 0.05).float()
        latents = vae.encode(images).latent_dist.mode()
        recon = vae.decode(latents).sample
        error = (recon - images).abs() + 0.5 * (recon - images) ** 2
        loss = (error * weight).mean() / weight.mean() + 1e-4 * latents.pow(2).mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        step += 1
        if step % 100 == 0:
            print(f"vae step {step} loss {loss.item():.4f} ({progress:.0%})", flush=True)
    vae.eval()


@torch.no_grad()
def reconstruction_accuracy(vae, count: int = 100, seed: int = 12345) -> float:  # type: ignore[no-untyped-def]
    """Share of scenes the parser still reads exactly after encoding and decoding."""
    from seqdream.builtin.parser import parse

    rng = random.Random(seed)
    scenes = [random_scene(rng) for _ in range(count)]
    recon = vae.decode(vae.encode(to_tensor([render(scene) for scene in scenes])).latent_dist.mode()).sample
    pixels = ((recon.clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).numpy()
    return sum(parse(Image.fromarray(image)) == scene for image, scene in zip(pixels, scenes, strict=True)) / count


@torch.no_grad()
def calibrate_latent_norm(pipe, rng: random.Random) -> None:  # type: ignore[no-untyped-def]
    """Set the VAE's latent batch-norm statistics, which the pipeline uses to (de)normalise."""
    images = to_tensor([render(random_scene(rng)) for _ in range(512)])
    latents = pipe._patchify_latents(pipe.vae.encode(images).latent_dist.mode())
    pipe.vae.bn.running_mean.copy_(latents.mean(dim=(0, 2, 3)))
    pipe.vae.bn.running_var.copy_(latents.var(dim=(0, 2, 3)))


@torch.no_grad()
def encode_images(pipe, images: list[Image.Image]) -> torch.Tensor:  # type: ignore[no-untyped-def]
    """Normalised, patchified latents (B, C*4, h, w), as the pipeline computes them."""
    return pipe._encode_vae_image(to_tensor(images), generator=None)


def sample_batch(rng: random.Random, task: str, batch: int):  # type: ignore[no-untyped-def]
    examples: list[tasks.Example] = []
    while len(examples) < batch:
        if task == "t2i":
            examples.append(tasks.text_to_image(rng))
        elif task == "edit":
            examples.append(tasks.edit(rng))
        elif task == "compose":
            examples.append(tasks.compose(rng))
        else:  # frames after the first: they carry the first frame as their reference
            examples.extend(tasks.sequence(rng)[1:])
    return examples[:batch]


def training_step(pipe, examples: list[tasks.Example], rng: random.Random) -> torch.Tensor:  # type: ignore[no-untyped-def]
    prompts = ["" if rng.random() < PROMPT_DROPOUT else example.prompt for example in examples]
    embeds = pipe._get_qwen3_prompt_embeds(
        pipe.text_encoder, pipe.tokenizer, prompts, dtype=torch.float32, device=torch.device("cpu"),
        max_sequence_length=MAX_TOKENS,
    )  # fmt: skip
    text_ids = pipe._prepare_text_ids(embeds)
    target = encode_images(pipe, [example.target for example in examples])
    latent_ids = pipe._prepare_latent_ids(target)
    x0 = pipe._pack_latents(target)
    noise = torch.randn_like(x0)
    sigma = torch.sigmoid(torch.randn(len(examples)))  # logit-normal
    noisy = (1 - sigma[:, None, None]) * x0 + sigma[:, None, None] * noise
    hidden, ids = noisy, latent_ids
    count = len(examples[0].references)
    if count:
        refs = [encode_images(pipe, [example.references[k] for example in examples]) for k in range(count)]
        ref_ids = pipe._prepare_image_ids([ref[:1] for ref in refs]).repeat(len(examples), 1, 1)
        hidden = torch.cat([noisy] + [pipe._pack_latents(ref) for ref in refs], dim=1)
        ids = torch.cat([latent_ids, ref_ids], dim=1)
    prediction = pipe.transformer(
        hidden_states=hidden, timestep=sigma, guidance=None, encoder_hidden_states=embeds,
        txt_ids=text_ids, img_ids=ids, return_dict=False,
    )[0][:, : x0.shape[1]]  # fmt: skip
    return F.mse_loss(prediction, noise - x0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--vae-minutes", type=float, default=15)
    parser.add_argument("--minutes", type=float, default=45)
    parser.add_argument("--batch", type=int, default=24)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--save-every-minutes", type=float, default=10)
    args = parser.parse_args()

    from diffusers import Flux2KleinPipeline

    torch.set_num_threads(max(1, torch.get_num_threads()))
    rng = random.Random(args.seed)
    tokenizer, text_encoder, vae, transformer, scheduler = build_components(args.seed)
    pipe = Flux2KleinPipeline(
        scheduler=scheduler, vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, transformer=transformer,
        is_distilled=False,
    )  # fmt: skip
    started = time.monotonic()
    train_vae(vae, args.vae_minutes, rng)
    vae.requires_grad_(False)
    calibrate_latent_norm(pipe, rng)
    accuracy = reconstruction_accuracy(vae)
    print(f"vae done in {time.monotonic() - started:.0f}s; scenes read back exactly: {accuracy:.0%}", flush=True)

    params = list(transformer.parameters()) + list(text_encoder.parameters())
    optimiser = torch.optim.AdamW(params, lr=3e-4, weight_decay=0.01)
    total_s = args.minutes * 60
    deadline = time.monotonic() + total_s
    next_save = time.monotonic() + args.save_every_minutes * 60
    step, losses = 0, []
    transformer.train()
    text_encoder.train()
    while time.monotonic() < deadline:
        progress = 1 - (deadline - time.monotonic()) / total_s
        for group in optimiser.param_groups:  # short warm-up, then cosine decay over the time budget
            group["lr"] = 3e-4 * min(1.0, (step + 1) / 200) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress)))
        task = rng.choices(list(TASK_MIX), weights=list(TASK_MIX.values()))[0]
        loss = training_step(pipe, sample_batch(rng, task, args.batch), rng)
        optimiser.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimiser.step()
        losses.append(loss.item())
        step += 1
        if step % 50 == 0:
            print(f"step {step} {task:8s} loss {np.mean(losses[-50:]):.4f} ({progress:.0%})", flush=True)
        if time.monotonic() >= next_save:
            save(pipe, args.out)
            next_save = time.monotonic() + args.save_every_minutes * 60
    save(pipe, args.out)
    print(f"trained {step} steps in {time.monotonic() - started:.0f}s; saved to {args.out}", flush=True)


def save(pipe, out: Path) -> None:  # type: ignore[no-untyped-def]
    pipe.transformer.eval()
    pipe.text_encoder.eval()
    pipe.save_pretrained(out)
    (out / "seqdream.json").write_text(json.dumps(SAMPLING, indent=2) + "\n")
    pipe.transformer.train()
    pipe.text_encoder.train()


if __name__ == "__main__":
    main()
