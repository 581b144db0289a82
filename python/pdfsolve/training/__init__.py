"""Training of the generative models: run config, HDF5 batches, atomic checkpoints and the resumable loop."""
from .checkpoint import BEST_NAME, CHECKPOINT_NAME
from .config import BetaSchedule, OptimizerConfig, TrainConfig, data_hash
from .data import Batch, ShardData
from .loop import TrainResult, train, validate

__all__ = ["BEST_NAME", "CHECKPOINT_NAME", "Batch", "BetaSchedule", "OptimizerConfig", "ShardData", "TrainConfig",
           "TrainResult", "data_hash", "train", "validate"]
