"""Training: trainable/frozen partitioning, optimisers, pure steps, the stage loop and checkpoints (generic), the one
task life cycle (`task`: train / evaluate / report for every family) and the families that plug into it
(`cf_task`, `llm_task`, `multiscale_task`).
"""

from jaxrec.train.batches import ArrayBatcher
from jaxrec.train.config import stage_config, validate_loop_config, validate_stages
from jaxrec.train.loop import TrainResult, restore_params, run_stage, train
from jaxrec.train.optim import make_optimizer, make_schedule
from jaxrec.train.partition import overlay, partition, rules_from_stage
from jaxrec.train.steps import make_train_step

__all__ = [
    "ArrayBatcher", "TrainResult", "make_optimizer", "make_schedule", "make_train_step",
    "overlay", "partition", "restore_params", "rules_from_stage", "run_stage", "stage_config", "train",
    "validate_loop_config", "validate_stages",
]
