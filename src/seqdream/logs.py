"""The service's log: one line per step that matters, without libraries' chatter.

`serve` and `worker` configure it; the engine calls `quiet_model_loading` before it loads weights,
so no library progress bar lands in a server's log."""

from __future__ import annotations

import logging
import os
import sys

# Libraries whose INFO/WARNING lines say nothing a user of the service can act on.
QUIET = {
    "alembic": logging.WARNING,  # "Context impl SQLiteImpl", "Running upgrade ..." (we log one line)
    "torchao": logging.ERROR,  # optional native kernels for other CUDA/Python versions
    "torch.utils._pytree": logging.ERROR,  # a deprecation inside torchao's registrations
    "diffusers.quantizers.torchao.torchao_quantizer": logging.ERROR,
    "httpx": logging.WARNING,  # one INFO line per request the service makes
}


def configure(level: str) -> None:
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    for name, quiet_level in QUIET.items():
        logging.getLogger(name).setLevel(max(quiet_level, logging.getLogger().level))
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # downloads: logged, not drawn


def quiet_model_loading() -> None:
    """No "Loading pipeline components" / "Loading weights" bars (diffusers, transformers)."""
    import diffusers.utils.logging
    import transformers.utils.logging

    diffusers.utils.logging.disable_progress_bar()
    transformers.utils.logging.disable_progress_bar()
    for name, quiet_level in QUIET.items():
        logging.getLogger(name).setLevel(quiet_level)
