"""Training stage: KTO / DPO / rejection-sampling SFT on preference records (LoRA or full).

Importing this package does not import torch (the CLI registers ``plumcode train`` cheaply); the
loop lives in :mod:`plumcode.training.trainer`, the losses in :mod:`plumcode.training.losses`.
"""

from plumcode.training.config import TrainConfig, TrainResult


def train(*args, **kwargs):
    """Lazy alias of :func:`plumcode.training.trainer.train` (see there)."""
    from plumcode.training.trainer import train as _train

    return _train(*args, **kwargs)


__all__ = ["TrainConfig", "TrainResult", "train"]
