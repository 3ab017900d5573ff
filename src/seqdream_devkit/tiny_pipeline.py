"""Build small, randomly initialised FLUX.2 [klein] pipelines on disk.

Used by the test-suite (and by the training scripts) to get a real `Flux2KleinPipeline`
folder without downloading anything: configs are written by hand and the tokenizer is
trained on the spot with `tokenizers`. The result loads through the same
`Flux2KleinPipeline.from_pretrained` path as production weights.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

QWEN_CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n{{ message['content'] }}<|im_end|>\n"
    "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n"
    "{% if enable_thinking is defined and enable_thinking is false %}<think>\n\n</think>\n\n{% endif %}{% endif %}"
)
SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<think>", "</think>"]

DEFAULT_CORPUS = [
    "a red square on a blue background",
    "a series of four images of a green circle moving from left to right",
    "replace the cat with a dog and make the sky orange",
    "put the object from image 1 on the background of image 2",
    "a group of images showing a lighthouse at dawn, noon, dusk and night",
    "a photo of a small yellow triangle above a large purple star",
]


@dataclass(frozen=True)
class TinyFlux2Spec:
    """Sizes of the random pipeline; defaults keep a 64x64 render well under a second on CPU."""

    text_hidden_size: int = 16
    text_layers: int = 28  # the pipeline reads hidden states 9, 18 and 27
    vocab_size: int = 300
    vae_channels: tuple[int, ...] = (8, 16)
    latent_channels: int = 4
    transformer_heads: int = 2
    transformer_head_dim: int = 16
    transformer_layers: int = 1
    transformer_single_layers: int = 1


def train_tokenizer(corpus: list[str], vocab_size: int):
    """Train a byte-level BPE tokenizer in memory and wrap it as the Qwen2 fast tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import Qwen2TokenizerFast  # type: ignore[attr-defined]  # lazily exported

    bpe = Tokenizer(models.BPE(unk_token=None))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    bpe.train_from_iterator(corpus, trainer=trainer)
    tokenizer = Qwen2TokenizerFast(
        tokenizer_object=bpe,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        unk_token=None,
        bos_token=None,
    )
    tokenizer.chat_template = QWEN_CHAT_TEMPLATE
    return tokenizer


def uncased(tokenizer):  # type: ignore[no-untyped-def]
    """The same vocabulary, ids and merges with a lower-casing normaliser in front: "Make the
    background Yellow." reads as "make the background yellow.", so a capital letter is never a
    word the model has to learn apart. Idempotent.

    Returned as the generic fast tokenizer: `Qwen2Tokenizer` rebuilds its own normaliser on
    load and would drop this one; `PreTrainedTokenizerFast` loads tokenizer.json as written.
    """
    from tokenizers import Tokenizer, normalizers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer.from_str(tokenizer.backend_tokenizer.to_str())
    backend.normalizer = normalizers.Sequence([normalizers.NFC(), normalizers.Lowercase()])
    lowered = PreTrainedTokenizerFast(
        tokenizer_object=backend, eos_token=tokenizer.eos_token, pad_token=tokenizer.pad_token,
        unk_token=tokenizer.unk_token, bos_token=tokenizer.bos_token,
    )  # fmt: skip
    lowered.chat_template = tokenizer.chat_template
    lowered.model_max_length = tokenizer.model_max_length
    return lowered


def build_tiny_flux2_klein(
    folder: str | Path,
    spec: TinyFlux2Spec = TinyFlux2Spec(),
    corpus: list[str] | None = None,
    seed: int = 0,
    distilled: bool = True,
) -> Path:
    """Create a random `Flux2KleinPipeline` and save it in diffusers format under `folder`."""
    from diffusers import (
        AutoencoderKLFlux2,
        FlowMatchEulerDiscreteScheduler,
        Flux2KleinPipeline,
        Flux2Transformer2DModel,
    )
    from transformers import Qwen3Config, Qwen3ForCausalLM

    torch.manual_seed(seed)
    tokenizer = train_tokenizer(corpus or DEFAULT_CORPUS, spec.vocab_size)
    text_config = Qwen3Config(
        vocab_size=len(tokenizer),
        hidden_size=spec.text_hidden_size,
        intermediate_size=spec.text_hidden_size * 2,
        num_hidden_layers=spec.text_layers,
        num_attention_heads=2,
        num_key_value_heads=1,
        head_dim=spec.text_hidden_size // 2,
        max_position_embeddings=1024,
        pad_token_id=tokenizer.pad_token_id,
        eos_token_id=tokenizer.eos_token_id,
        tie_word_embeddings=True,
    )
    text_encoder = Qwen3ForCausalLM(text_config)
    vae = AutoencoderKLFlux2(
        block_out_channels=spec.vae_channels,
        down_block_types=("DownEncoderBlock2D",) * len(spec.vae_channels),
        up_block_types=("UpDecoderBlock2D",) * len(spec.vae_channels),
        latent_channels=spec.latent_channels,
        layers_per_block=1,
        norm_num_groups=4,
        sample_size=64,
    )
    head_dim = spec.transformer_head_dim
    transformer = Flux2Transformer2DModel(
        patch_size=1,
        in_channels=spec.latent_channels * 4,
        num_layers=spec.transformer_layers,
        num_single_layers=spec.transformer_single_layers,
        attention_head_dim=head_dim,
        num_attention_heads=spec.transformer_heads,
        joint_attention_dim=spec.text_hidden_size * 3,
        timestep_guidance_channels=32,
        axes_dims_rope=(head_dim // 4,) * 4,
        guidance_embeds=False,
    )
    scheduler = FlowMatchEulerDiscreteScheduler(shift=3.0, use_dynamic_shifting=True)
    pipeline = Flux2KleinPipeline(
        scheduler=scheduler,
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        transformer=transformer,
        is_distilled=distilled,  # False: a "-base" model, sampled with guidance over many steps
    )
    folder = Path(folder)
    pipeline.save_pretrained(folder)  # type: ignore[attr-defined]  # from DiffusionPipeline, lazily typed
    return folder


def build_tiny_preview_decoder(folder: str | Path, latent_channels: int = 4, blocks: int = 2, seed: int = 0) -> Path:
    """Create a random `AutoencoderTiny` (the kind `SEQDREAM_PREVIEW_DECODER` loads) for latents of
    `latent_channels`, upscaling 2 ** (blocks - 1) times, and save it in diffusers format."""
    from diffusers import AutoencoderTiny

    torch.manual_seed(seed)
    channels = (8,) * blocks
    decoder = AutoencoderTiny(
        encoder_block_out_channels=channels,
        decoder_block_out_channels=channels,
        num_encoder_blocks=(1,) * blocks,
        num_decoder_blocks=(1,) * blocks,
        latent_channels=latent_channels,
    )
    decoder.save_pretrained(folder)  # type: ignore[attr-defined]  # from ModelMixin, lazily typed
    return Path(folder)
