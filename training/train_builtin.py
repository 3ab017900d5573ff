"""Train seqdream's built-in model from scratch on the procedural shape world, on CPU.

The result is a `Flux2KleinPipeline` folder, loaded by the service exactly like any other
FLUX.2 [klein] checkpoint. Two stages, both seeded and reproducible:

  1. the VAE learns to reconstruct rendered scenes (64x64, 4x down-sampling);
  2. the text encoder and the transformer learn flow matching on text-to-image, edits,
     compositions and sequence frames, with the VAE frozen.

Usage: python training/train_builtin.py --out build/builtin [--vae-minutes 20 --minutes 80]
       (or --vae-steps N --steps M: the same schedule by step count, reproducible on any machine)

Training accumulates across sessions: `--resume DIR` continues from a saved folder (the shipped
model included) and appends to its `training.json`, the record of every run that made it. The
optimizer's moments are kept outside the folder (`--state`, default `build/builtin-state.pt`) so
the shipped package stays small; a resumed run without them starts fresh moments behind a warm-up:

  python training/train_builtin.py --resume src/seqdream/builtin/model \
      --out src/seqdream/builtin/model --minutes 120

`--declare-cache DIR` measures a saved folder's MagCache ratios and writes them, with CACHE and the
words the grammar uses (`vocabulary`: a prompt outside them gets a warning), into its seqdream.json
(every save does this itself).

Gate: the VAE stage prints the share of scenes the parser reads back exactly after a VAE
round trip; the transformer cannot beat that number, so it should be close to 100 %.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import random
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from seqdream.engines.acceleration import measure_mag_ratios
from seqdream_devkit import tasks, wording
from seqdream_devkit.tiny_pipeline import train_tokenizer, uncased
from seqdream_devkit.world import CANVAS, MARK_WIDTH, random_scene, render

TEXT_LAYERS = 28  # the pipeline reads hidden states 9, 18 and 27
MAX_TOKENS = 64
SAMPLING = {
    "native_resolution": CANVAS,
    "num_inference_steps": 20,
    "guidance_scale": 1.5,  # measured best on held-out prompts (2: 62 % edits, 3: 57 %, 4.5: 57 %)
    "max_sequence_length": MAX_TOKENS,
}
# How the planner asks for frame k of a group, declared in the model's seqdream.json so the service
# words frames exactly as training did. The share through the group ("35%") places frame k of any
# length directly; from "(image k of N)" alone the model has to work out k/(N-1). Legs up to 12
# trained on "{prompt} (image {index} of {count})" alone.
FRAME_PROMPT = "{prompt} (image {index} of {count}, {percent}%)"
# MagCache (seqdream.engines.acceleration) skips the steps whose change it predicts is small. On the
# leg-14 checkpoint it took 0.57x the time per image with the same held-out scores at thresholds
# 0.04, 0.08 and 0.12 (bench/sampling_sweep.py, n=12 each kind). Every save declares it with the
# checkpoint's own ratios, measured on this caption.
CACHE = {"cache": "magcache", "cache_threshold": 0.06}
CACHE_CALIBRATION_PROMPT = "a large red circle in the middle on a blue background"
LATENT_CHANNELS = 8
# Leg 21 (round 3) added compositions of 3-10 references and edits of a marked object, taken from the
# groups' and edits' shares (leg 20: edit 0.32, compose 0.06, sequence 0.38, sequence_first 0.12).
# Leg 22 gives both more (leg 21 ended with 3-10 reference compositions at 0 %, marked moves at 20 %):
# leg 21 was t2i 0.12, edit 0.28, compose 0.04, compose_many 0.10, marked 0.08, sequence 0.30.
# Leg 28 adds colour-tone edits (swap two colours, every object one colour, black and white) at 0.06,
# from text-to-image (0.10, 99.7 % on leg 27) and groups (0.27); their words need --grow-vocab.
# Leg 29 adds groups of the object from one of 1-4 references at 0.04, from the plain groups (0.24).
# Leg 30 gives them 0.06, from text-to-image (0.07; 100 % on leg 29): leg 29 drew image K's object
# 15-37.5 % of the time. Leg 31 gives them 0.08, from the plain groups (0.20; every plain group
# measure at or above target on leg 30, while image K's object was drawn 42.5-65 % of the time).
# Leg 32 gives tone edits 0.08 and those groups 0.10, from the edits (0.20; 98.6 % on leg 30): every
# task still short of target asks for a copy across the picture (a colour, a shape, image K's object).
# Leg 33 gives the plain groups 0.20 again (leg 32: 5-9 moving and 10-14 growing consistency 85 and
# 80 % at n = 20), from text-to-image (0.04) and two-image compositions (0.02), both 100 % on leg 32,
# and groups of image K's object 0.13 (0.10) from the edits (0.17; 98.9 % on leg 32): their later
# frames lose the object's kind, which no plain group asks of a picture (its prompt names it).
# Leg 35 gives those groups 0.15 from the edits (0.15; 99.3 % on leg 34): their recolouring groups
# were in order 27.5 % of the time, most misses one later frame a step behind or ahead.
TASK_MIX = {
    "t2i": 0.04, "edit": 0.15, "compose": 0.02, "compose_many": 0.16, "marked": 0.12, "tone": 0.08,
    "sequence": 0.20, "sequence_ref": 0.15, "sequence_first": 0.08,
}  # fmt: skip
# A batch of many references costs about (references + 1) times a plain one: its batch shrinks so a
# step costs about what a two-reference step does (the same tokens through the transformer).
MANY_REFERENCE_TOKENS = 3
# Group motions by weight: growing is learnt first; moving (the object must leave the reference's
# place) and recolouring (frame k's colour is k steps round the cycle) need more frames. Leg 19 drew
# growing 2.5 times as often (0.10 -> 0.25): leg 18 held 10-14 frame growing groups together 87.5 % of the time.
MOTION_MIX = {"moving": 0.25, "growing": 0.25, "recolouring": 0.50}
# A share of later frames is drawn from the far end of a long group (10-14 frames, the last half):
# drawn uniformly, a frame past the tenth is 1 in 15, and leg 17 lost the recolouring cycle there.
# Leg 18 drew 0.35 and still missed 1 in 5 of its 10-14 recolouring progressions; leg 19 draws 0.45.
LATE_FRAME_SHARE = 0.45
# The mirror for growing: a share of later growing frames is drawn from the first third of a long group.
# Leg 19's 10-14 frame growing misses (82.5 % consistency) were all one early, small frame read as a
# circle, most often a cross with stubby arms at a size between the named ones; leg 20 draws 0.25.
EARLY_GROWING_SHARE = 0.25
# A group of image K's object changing colour steps on from the colour frame 1 took from image K,
# which no plain group taught (an unnamed start is red; a named one is in the prompt): leg 32 drew
# 7.5 % of those groups in order. From leg 33, half the later frames of plain recolouring groups whose
# prompt names no colour start anywhere on the cycle (frame 1, their reference, says where).
# Leg 35 draws 0.75: leg 34 stepped on from image K's colour in 27.5 % of those groups (one frame
# in six a step off), while plain groups, whose prompt names the start, were in order 85-100 %.
FREE_START_SHARE = 0.75
# Edit kinds drawn by weight: the ones that copy the reference with one token changed (remove,
# background) are learnt first; moves, replacements, additions and resizes need more examples.
# Leg 19 raised remove (0.4 -> 1.2) and move (3.5 -> 4.5): leg 18 scored them 85 and 82.5 % at n = 40.
# Leg 20 raises move again (4.5 -> 5.5): leg 19 drew the moved object in its new cell 85 % of the time.
# Leg 27 raises it once more (5.5 -> 6.5): round 3's new tasks took shares from the edits, and legs
# 25-26 drew edit moves 85-87.5 % against the shipped leg 20's 92.5 %.
EDIT_MIX = {"add": 0.6, "remove": 1.2, "recolour": 3.4, "resize": 2.2, "move": 6.5, "replace": 1.2, "background": 0.2}
# Ways of composing 3-10 references and kinds of marked edit, by weight (uniform until leg 27). Leg 27
# scored gather / pick / swap 62.5 / 5 / 62.5 % and marked remove / recolour / move 95 / 82.5 / 37.5 %:
# leg 28 draws picks and marked moves twice as often as the others. Leg 29 scored gather / pick / swap
# 95 / 20 / 97.5 %, marked remove / recolour / move 100 / 90 / 50 % and tone swap / all / mono
# 42.5 / 97.5 / 100 %: leg 30 draws what is learnt less and what is not more.
# Leg 32 scored gather 82.5 % (90 on leg 30), drawn least: leg 33 draws it 1.0.
COMPOSE_MANY_MIX = {"gather": 1.0, "pick": 3.0, "swap": 0.6}
# Other objects in each picked image (leg 30 on; the bench's stream keeps 0-2): leg 29 copied them
# along with the named object (15 of 20 held-out picks' misses), and an image with none teaches no choosing.
PICK_LEFT_BEHIND = (1, 2)
# The share of those left-behind objects that take the kind another image's pick names (leg 32 on):
# leg 31's held-out picks that drew an extra object drew one left behind in a picked image (7 of 10),
# most often of a kind another image's pick names ("the triangle from image 2" and a triangle from image 1).
PICK_CONFUSERS = 0.5
MARKED_MIX = {"remove": 0.4, "recolour": 1.0, "move": 2.5}
# Objects in a marked edit's scene (the bench's stream keeps 2-3). From leg 30, a third of marked moves
# box the only object: leg 29 moved the boxed object to the right cell in its colour but redrew its
# shape as a blob (8 of 20 held-out moves), so some moves ask for the copy alone, nothing to choose.
MARKED_OBJECTS = {"remove": (2, 3), "recolour": (2, 3), "move": (1, 3)}
TONE_MIX = {"swap": 2.0, "all": 0.5, "mono": 0.3}
# Leg 32's swap misses (12 of 40) recoloured a third object of a swapped object's colour as well, or
# instead: from leg 33 half the swaps have such an object, which keeps its colour.
TONE_CONFUSERS = 0.5
# Recolour, resize and move misses pick the wrong object (leg 16: every recolour miss), which only a
# scene of several objects can teach: this share of their one-object scenes is drawn again.
BINDING_EDITS = ("recolour", "resize", "move")
ONE_OBJECT_REDRAW = 0.6
# A share of text-to-image captions is replaced by words the world does not know, paired with a
# random scene: a prompt outside the vocabulary should still draw shapes, not a bare background.
UNKNOWN_SHARE = 0.1
UNKNOWN_WORDS = """
dog house tree car city river forest flower robot castle bird boat garden street
beach dragon coffee mountain lake window chair book clock bridge night winter summer rain
cloud moon star ocean desert village happy old tiny giant beautiful dark bright cute
ancient modern cozy watercolor sketch cinematic anime realistic painting render poster logo
""".split()
UNKNOWN_TEMPLATES = ("{} {}", "a {} {}", "a {} with a {}", "{} of a {}", "the {} and the {}", "{} {}, {}")
PROMPT_DROPOUT = 0.1  # empty prompts teach the unconditional branch used by guidance
REFERENCE_NOISE = 0.1  # largest std of the noise added to reference latents
PEAK_LR = 5e-4
# Noise levels lean high, in training and sampling alike. Flat backgrounds repeat across every
# latent token, so the image shows through all but the heaviest noise; unshifted, the model
# seldom needs the prompt and learns to ignore it (measured: same loss with shuffled prompts).
SCHEDULER_SHIFT = 6.0


def to_tensor(images: list[Image.Image]) -> torch.Tensor:
    array = np.stack([np.asarray(image.convert("RGB"), dtype=np.float32) for image in images])
    return torch.from_numpy(array).permute(0, 3, 1, 2) / 127.5 - 1.0


def build_components(seed: int):  # type: ignore[no-untyped-def]
    from diffusers import AutoencoderKLFlux2, Flux2Transformer2DModel
    from transformers import Qwen3Config, Qwen3ForCausalLM

    torch.manual_seed(seed)
    tokenizer = uncased(train_tokenizer(prompt_corpus(random.Random(seed)), vocab_size=400))
    text_encoder = Qwen3ForCausalLM(
        Qwen3Config(
            vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=TEXT_LAYERS,
            num_attention_heads=4, num_key_value_heads=2, head_dim=16, max_position_embeddings=256,
            pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id, tie_word_embeddings=True,
        )
    )  # fmt: skip
    # Unit-scale token embeddings, so prompts differ clearly from the first step.
    torch.nn.init.normal_(text_encoder.get_input_embeddings().weight, std=1.0)
    vae = AutoencoderKLFlux2(
        block_out_channels=(32, 64, 64), down_block_types=("DownEncoderBlock2D",) * 3,
        up_block_types=("UpDecoderBlock2D",) * 3, latent_channels=LATENT_CHANNELS, layers_per_block=1,
        norm_num_groups=8, sample_size=CANVAS, mid_block_add_attention=False,
    )  # fmt: skip
    transformer = Flux2Transformer2DModel(
        patch_size=1, in_channels=4 * LATENT_CHANNELS, num_layers=3, num_single_layers=4, attention_head_dim=64,
        num_attention_heads=3, joint_attention_dim=3 * 64, timestep_guidance_channels=64,
        axes_dims_rope=(16, 16, 16, 16), guidance_embeds=False,
    )  # fmt: skip
    return tokenizer, text_encoder, vae, transformer, build_scheduler()


def prompt_corpus(rng: random.Random) -> list[str]:
    """Prompts of every task in every trained wording: what the tokenizer learns its merges from."""
    corpus = [tasks.text_to_image(rng).prompt for _ in range(3000)]
    corpus += [tasks.edit(rng).prompt for _ in range(3000)]
    corpus += [tasks.compose(rng).prompt for _ in range(200)]
    corpus += [tasks.compose_many(rng).prompt for _ in range(1500)]
    corpus += [tasks.marked_edit(rng).prompt for _ in range(600)]
    corpus += [tasks.tone_edit(rng).prompt for _ in range(600)]
    return corpus + [e.prompt for _ in range(300) for e in group(rng)]


def grow_vocabulary(pipe, vocab_size: int, rng: random.Random) -> int:  # type: ignore[no-untyped-def]
    """Add whole-word tokens for words today's tokenizer spells in pieces, keeping every existing
    id, merge and embedding: old prompts tokenize exactly as before. A new token's embedding
    starts as the mean of the pieces it replaces. Returns how many tokens were added."""
    from tokenizers import Tokenizer
    from transformers import Qwen2TokenizerFast  # type: ignore[attr-defined]

    old = pipe.tokenizer
    spec = json.loads(old.backend_tokenizer.to_str())
    vocab, merges = spec["model"]["vocab"], spec["model"]["merges"]
    fresh = json.loads(train_tokenizer(prompt_corpus(rng), vocab_size).backend_tokenizer.to_str())
    added: list[str] = []
    for merge in fresh["model"]["merges"]:
        left, right = merge if isinstance(merge, list) else merge.split(" ")
        token = left + right
        if token not in vocab and left in vocab and right in vocab:
            vocab[token] = len(vocab)
            merges.append([left, right] if isinstance(merge, list) else merge)
            added.append(token)
    if not added:
        return 0
    grown = Qwen2TokenizerFast(
        tokenizer_object=Tokenizer.from_str(json.dumps(spec)), eos_token="<|im_end|>", pad_token="<|endoftext|>",
        unk_token=None, bos_token=None,
    )  # fmt: skip
    grown.chat_template = old.chat_template
    embeddings = pipe.text_encoder.get_input_embeddings().weight.data.clone()
    pipe.text_encoder.resize_token_embeddings(len(vocab))
    weight = pipe.text_encoder.get_input_embeddings().weight.data
    weight[: len(embeddings)] = embeddings
    decode = old.backend_tokenizer.decoder
    for token in added:
        pieces = old(decode.decode([token]), add_special_tokens=False)["input_ids"]
        weight[vocab[token]] = embeddings[pieces].mean(0)
    pipe.tokenizer = grown
    return len(added)


def shifted(sigma: torch.Tensor) -> torch.Tensor:
    return SCHEDULER_SHIFT * sigma / (1 + (SCHEDULER_SHIFT - 1) * sigma)


def build_scheduler():  # type: ignore[no-untyped-def]
    """The training shift, fixed: the pipeline's own depends on the step count."""
    from diffusers import FlowMatchEulerDiscreteScheduler

    return FlowMatchEulerDiscreteScheduler(shift=SCHEDULER_SHIFT, use_dynamic_shifting=False)


class Budget:
    """A stage's length, in steps (reproducible anywhere) or in minutes (fits a time slot)."""

    def __init__(self, steps: int | None, minutes: float) -> None:
        self.steps, self.seconds = steps, minutes * 60
        self.started, self.step = time.monotonic(), 0

    @property
    def progress(self) -> float:
        if self.steps is not None:
            return self.step / self.steps if self.steps else 1.0
        return (time.monotonic() - self.started) / self.seconds if self.seconds else 1.0

    def next(self) -> bool:
        """True while there is budget left for another step."""
        return self.progress < 1


def cosine(progress: float) -> float:
    """Learning-rate factor: cosine decay from 1 to 0.1 over the stage."""
    return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def train_vae(vae, budget: Budget, rng: random.Random, batch: int = 16) -> None:  # type: ignore[no-untyped-def]
    """Reconstruction training. Object pixels weigh 10x: the flat background dominates the
    plain loss, and a VAE that only gets the background right blurs the shapes away."""
    optimiser = torch.optim.AdamW(vae.parameters(), lr=1e-3)
    vae.train()
    while budget.next():
        for group in optimiser.param_groups:
            group["lr"] = 1e-3 * cosine(budget.progress)
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
        budget.step += 1
        if budget.step % 100 == 0:
            print(f"vae step {budget.step} loss {loss.item():.4f} ({budget.progress:.0%})", flush=True)
    vae.eval()


@torch.no_grad()
def reconstruction_accuracy(vae, count: int = 100, seed: int = 12345) -> float:  # type: ignore[no-untyped-def]
    """Share of scenes the parser still reads exactly after encoding and decoding."""
    from seqdream_devkit.parser import parse

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


def unknown_caption(rng: random.Random) -> str:
    template = rng.choice(UNKNOWN_TEMPLATES)
    return template.format(*rng.sample(UNKNOWN_WORDS, template.count("{}")))


def motion(rng: random.Random) -> str:
    return rng.choices(list(MOTION_MIX), weights=list(MOTION_MIX.values()))[0]


def group(
    rng: random.Random,
    motion: str | None = None,
    count: int | None = None,
    references: int = 0,
    free_start: bool = False,
) -> list[tasks.Example]:
    """A group's frames, each worded as this model declares (FRAME_PROMPT)."""
    return tasks.sequence(rng, motion, count, frame_template=FRAME_PROMPT, references=references, free_start=free_start)


def later_frames(rng: random.Random, motion: str, count: int | None = None) -> list[tasks.Example]:
    """A plain group's later frames (frame 1 is their reference); FREE_START_SHARE of them from a
    recolouring group that starts where its prompt does not say."""
    return group(rng, motion, count, free_start=rng.random() < FREE_START_SHARE)[1:]


def binding_edit(rng: random.Random, kind: str) -> tasks.Example:
    """An edit of `kind`; for BINDING_EDITS, a one-object scene is kept only 1 - ONE_OBJECT_REDRAW of the time."""
    while True:
        example = tasks.edit(rng, kind)
        one_object = example.scene is not None and len(example.scene.things) == 1
        if kind not in BINDING_EDITS or not one_object or rng.random() >= ONE_OBJECT_REDRAW:
            return example


def sample_batch(rng: random.Random, task: str, batch: int):  # type: ignore[no-untyped-def]
    examples: list[tasks.Example] = []
    while len(examples) < batch:
        if task == "t2i":
            example = tasks.text_to_image(rng)
            if rng.random() < UNKNOWN_SHARE:
                example = dataclasses.replace(example, prompt=unknown_caption(rng))
            examples.append(example)
        elif task == "edit":
            examples.append(binding_edit(rng, rng.choices(list(EDIT_MIX), weights=list(EDIT_MIX.values()))[0]))
        elif task == "compose":
            examples.append(tasks.compose(rng))
        elif task == "compose_many":  # one reference count per batch: the references stack as tokens
            count = rng.randint(3, tasks.MAX_REFERENCES)
            size = max(2, batch * MANY_REFERENCE_TOKENS // (count + 1))
            ways = rng.choices(list(COMPOSE_MANY_MIX), weights=list(COMPOSE_MANY_MIX.values()), k=size)
            return [
                tasks.compose_many(rng, way, references=count, left_behind=PICK_LEFT_BEHIND, confusers=PICK_CONFUSERS)
                for way in ways
            ]
        elif task == "marked":
            kind = rng.choices(list(MARKED_MIX), weights=list(MARKED_MIX.values()))[0]
            examples.append(tasks.marked_edit(rng, kind, objects=MARKED_OBJECTS[kind]))
        elif task == "tone":
            kind = rng.choices(list(TONE_MIX), weights=list(TONE_MIX.values()))[0]
            examples.append(tasks.tone_edit(rng, kind, confusers=TONE_CONFUSERS))
        elif task == "sequence_ref":  # one reference count per batch, as for compose_many
            given = rng.randint(*tasks.GROUP_REFERENCES)
            first = rng.random() < TASK_MIX["sequence_first"] / (TASK_MIX["sequence"] + TASK_MIX["sequence_first"])
            size = min(batch, max(2, batch * MANY_REFERENCE_TOKENS // (given + 1 + (not first))))
            frames = [group(rng, motion(rng), references=given) for _ in range(size)]
            return [group_frames[0] if first else rng.choice(group_frames[1:]) for group_frames in frames]
        elif task == "sequence_first":  # a group's first frame comes from its prompt alone
            examples.append(group(rng, motion(rng))[0])
        elif (kind := motion(rng)) == "growing" and rng.random() < EARLY_GROWING_SHARE:
            count = rng.randint(10, tasks.MAX_GROUP)  # an early, small frame of a long growing group
            examples.append(rng.choice(group(rng, kind, count)[1 : count // 3 + 1]))
        elif rng.random() < LATE_FRAME_SHARE:  # a frame from the last half of a long group
            count = rng.randint(10, tasks.MAX_GROUP)
            examples.append(rng.choice(later_frames(rng, kind, count)[count // 2 - 1 :]))
        else:  # a later frame of a group of any length, with the first frame as its reference
            examples.append(rng.choice(later_frames(rng, kind)))
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
    sigma = shifted(torch.sigmoid(torch.randn(len(examples))))  # logit-normal, shifted as in sampling
    noisy = (1 - sigma[:, None, None]) * x0 + sigma[:, None, None] * noise
    hidden, ids = noisy, latent_ids
    count = len(examples[0].references)
    if count:
        refs = [encode_images(pipe, [example.references[k] for example in examples]) for k in range(count)]
        # Light noise on the references: at serving time a group's anchor is the model's own
        # (imperfect) first frame, not a crisp render.
        refs = [ref + REFERENCE_NOISE * torch.rand(len(ref), 1, 1, 1) * torch.randn_like(ref) for ref in refs]
        ref_ids = pipe._prepare_image_ids([ref[:1] for ref in refs]).repeat(len(examples), 1, 1)
        hidden = torch.cat([noisy] + [pipe._pack_latents(ref) for ref in refs], dim=1)
        ids = torch.cat([latent_ids, ref_ids], dim=1)
    prediction = pipe.transformer(
        hidden_states=hidden, timestep=sigma, guidance=None, encoder_hidden_states=embeds,
        txt_ids=text_ids, img_ids=ids, return_dict=False,
    )[0][:, : x0.shape[1]]  # fmt: skip
    return F.mse_loss(prediction, noise - x0)


HISTORY_FILE = "training.json"  # in the model folder: every run that trained it


def read_history(folder: Path | None) -> list[dict]:
    path = folder / HISTORY_FILE if folder else None
    return list(json.loads(path.read_text())["runs"]) if path and path.is_file() else []


def load_moments(path: Path, optimiser: torch.optim.Optimizer) -> None:
    if not path.is_file():
        print(f"no optimizer state at {path}: fresh moments", flush=True)
        return
    saved = torch.load(path, weights_only=False)["optimizer"]
    params = [param for group in optimiser.param_groups for param in group["params"]]
    if len(params) != sum(len(group["params"]) for group in saved["param_groups"]) or any(
        state["exp_avg"].shape != params[index].shape for index, state in saved["state"].items()
    ):  # moments of another model (another vocabulary, another run): they would fail at the first step
        print(f"optimizer state at {path} belongs to another model: fresh moments", flush=True)
        return
    optimiser.load_state_dict(saved)
    print(f"resumed optimizer moments from {path}", flush=True)


def save_moments(path: Path, optimiser: torch.optim.Optimizer) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".tmp")
    torch.save({"optimizer": optimiser.state_dict()}, partial)
    partial.replace(path)  # never a half-written state


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=None, help="where the model folder is saved (required to train)")
    parser.add_argument("--declare-cache", type=Path, default=None, metavar="DIR",
                        help="only measure DIR's MagCache ratios and declare them in its seqdream.json")  # fmt: skip
    parser.add_argument("--vae-minutes", type=float, default=20)
    parser.add_argument("--vae-steps", type=int, default=None, help="overrides --vae-minutes")
    parser.add_argument("--minutes", type=float, default=80)
    parser.add_argument("--steps", type=int, default=None, help="overrides --minutes")
    parser.add_argument("--batch", type=int, default=24)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--save-every-minutes", type=float, default=10)
    parser.add_argument("--lr", type=float, default=PEAK_LR, help="peak learning rate of the transformer stage")
    parser.add_argument("--warmup", type=int, default=200, help="steps of linear learning-rate warm-up")
    parser.add_argument("--vae-from", type=Path, default=None, help="reuse the VAE of an earlier --out (skips stage 1)")
    parser.add_argument("--resume", type=Path, default=None, help="continue from a saved folder (skips stage 1)")
    parser.add_argument("--grow-vocab", type=int, default=None, metavar="N",
                        help="on --resume: add merges of an N-token tokenizer trained on today's prompts")  # fmt: skip
    parser.add_argument("--state", type=Path, default=Path("build/builtin-state.pt"),
                        help="optimizer state, read on --resume and written with every save")  # fmt: skip
    parser.add_argument("--autocast", choices=("none", "bf16"), default="none",
                        help="bf16: the transformer stage's matmuls in bfloat16 (fp32 weights and optimizer); "
                             "1.4x the steps on a CPU with AVX512-BF16, slower on one without")  # fmt: skip
    args = parser.parse_args(argv)

    from diffusers import AutoencoderKLFlux2, Flux2KleinPipeline

    if args.declare_cache:
        declare_cache(Flux2KleinPipeline.from_pretrained(str(args.declare_cache)), args.declare_cache)
        return
    if args.out is None:
        parser.error("--out is required to train")

    torch.set_num_threads(max(1, torch.get_num_threads()))
    # A resumed run draws fresh examples: its stream is seeded by how far training has come.
    rng = random.Random(args.seed)
    started = time.monotonic()
    if args.resume:
        pipe = Flux2KleinPipeline.from_pretrained(str(args.resume))
        pipe.scheduler = build_scheduler()
        if args.grow_vocab:
            count = grow_vocabulary(pipe, args.grow_vocab, random.Random(args.seed))
            print(f"vocabulary grown by {count} tokens to {len(pipe.tokenizer)}", flush=True)
        pipe.tokenizer = uncased(pipe.tokenizer)  # checkpoints before leg 17 were cased
    else:
        tokenizer, text_encoder, vae, transformer, scheduler = build_components(args.seed)
        if args.vae_from:  # stage 1 done by an earlier run: its VAE and latent statistics as they are
            vae = AutoencoderKLFlux2.from_pretrained(args.vae_from, subfolder="vae")
        pipe = Flux2KleinPipeline(
            scheduler=scheduler, vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, transformer=transformer,
            is_distilled=False,
        )  # fmt: skip
        if not args.vae_from:
            train_vae(vae, Budget(args.vae_steps, args.vae_minutes), rng)
            calibrate_latent_norm(pipe, rng)
            accuracy = reconstruction_accuracy(vae)  # the gate; a reused VAE was measured when it was trained
            print(
                f"vae done in {time.monotonic() - started:.0f}s; scenes read back exactly: {accuracy:.0%}", flush=True
            )
    transformer, text_encoder = pipe.transformer, pipe.text_encoder
    pipe.vae.requires_grad_(False)

    params = list(transformer.parameters()) + list(text_encoder.parameters())
    optimiser = torch.optim.AdamW(params, lr=args.lr, weight_decay=0.01)
    history = read_history(args.resume)
    if args.resume and not args.grow_vocab:  # a grown vocabulary's moments would not fit
        load_moments(args.state, optimiser)
    done_before = sum(run["steps"] for run in history)
    rng = random.Random(args.seed * 1_000_003 + done_before)
    budget, losses = Budget(args.steps, args.minutes), []
    run = {"steps": 0, "batch": args.batch, "lr": args.lr, "autocast": args.autocast,
           "task_mix": TASK_MIX, "edit_mix": EDIT_MIX,
           "compose_many_mix": COMPOSE_MANY_MIX, "pick_left_behind": list(PICK_LEFT_BEHIND),
           "pick_confusers": PICK_CONFUSERS,
           "marked_mix": MARKED_MIX, "marked_objects": MARKED_OBJECTS,
           "tone_mix": TONE_MIX, "tone_confusers": TONE_CONFUSERS,
           "motion_mix": MOTION_MIX, "free_start_share": FREE_START_SHARE,
           "frame_prompt": FRAME_PROMPT, "late_frame_share": LATE_FRAME_SHARE,
           "early_growing_share": EARLY_GROWING_SHARE,
           "one_object_redraw": {"kinds": BINDING_EDITS, "share": ONE_OBJECT_REDRAW},
           "unknown_caption_share": UNKNOWN_SHARE, "vocabulary": len(pipe.tokenizer),
           "compositions": f"{', '.join(tasks.COMPOSITIONS)} of 3-{tasks.MAX_REFERENCES} references",
           "marked_edits": tasks.MARKED_EDITS, "mark": f"{MARK_WIDTH}-px box on the cell's edge",
           "tone_edits": tasks.TONE_EDITS,
           "group_references": tasks.GROUP_REFERENCES,
           "position_first_share": wording.POSITION_FIRST_SHARE,
           "groups": f"2-{tasks.MAX_GROUP} frames", "wordings": "seqdream_devkit.wording, trained forms"}  # fmt: skip
    next_save = time.monotonic() + args.save_every_minutes * 60
    transformer.train()
    text_encoder.train()
    while budget.next():
        for group in optimiser.param_groups:  # short warm-up, then cosine decay over the budget
            group["lr"] = args.lr * min(1.0, (budget.step + 1) / max(1, args.warmup)) * cosine(budget.progress)
        task = rng.choices(list(TASK_MIX), weights=list(TASK_MIX.values()))[0]
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.autocast == "bf16"):
            loss = training_step(pipe, sample_batch(rng, task, args.batch), rng)
        optimiser.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimiser.step()
        losses.append(loss.item())
        budget.step += 1
        if budget.step % 50 == 0:
            print(f"step {budget.step} {task:8s} loss {np.mean(losses[-50:]):.4f} ({budget.progress:.0%})", flush=True)
        if time.monotonic() >= next_save:
            run["steps"], run["loss"] = budget.step, float(np.mean(losses[-200:]))
            save(pipe, args.out, history + [run])
            save_moments(args.state, optimiser)
            next_save = time.monotonic() + args.save_every_minutes * 60
    run["steps"], run["loss"] = budget.step, float(np.mean(losses[-200:])) if losses else None
    save(pipe, args.out, history + [run])
    save_moments(args.state, optimiser)
    total = done_before + budget.step
    print(f"trained {budget.step} steps ({total} in all) in {time.monotonic() - started:.0f}s; saved to {args.out}",
          flush=True)  # fmt: skip


def cache_declaration(pipe) -> dict:  # type: ignore[no-untyped-def]
    """CACHE with the checkpoint's own MagCache ratios, for its seqdream.json."""
    ratios = measure_mag_ratios(pipe, CANVAS, SAMPLING["num_inference_steps"], MAX_TOKENS, CACHE_CALIBRATION_PROMPT)
    return {**CACHE, "mag_ratios": ratios}


def declare_cache(pipe, folder: Path) -> None:  # type: ignore[no-untyped-def]
    """Add the cache declaration to a saved folder's seqdream.json, keeping the rest."""
    path = folder / "seqdream.json"
    declared = json.loads(path.read_text()) if path.is_file() else dict(SAMPLING)
    path.write_text(
        json.dumps({**declared, **cache_declaration(pipe), "vocabulary": tasks.vocabulary()}, indent=2) + "\n"
    )
    print(f"declared MagCache and the vocabulary in {path}", flush=True)


def save(pipe, out: Path, history: list[dict]) -> None:  # type: ignore[no-untyped-def]
    pipe.transformer.eval()
    pipe.text_encoder.eval()
    pipe.save_pretrained(out)
    declared = {**SAMPLING, "frame_prompt": FRAME_PROMPT, **cache_declaration(pipe), "vocabulary": tasks.vocabulary()}
    (out / "seqdream.json").write_text(json.dumps(declared, indent=2) + "\n")
    record = {"transformer_steps": sum(run["steps"] for run in history), "runs": history}
    (out / HISTORY_FILE).write_text(json.dumps(record, indent=2) + "\n")
    pipe.transformer.train()
    pipe.text_encoder.train()


if __name__ == "__main__":
    main()
