"""Generic training: trainable/frozen partitioning, optimisers, pure steps, the stage loop and checkpoints.

Nothing here knows about a model family; `jaxrec.train.cf_task` wires the CF models to it.
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
