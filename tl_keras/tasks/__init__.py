"""Task kinds (one label, several tags, a number) and what each owns; the core asks the task, never its name.

Layer: above `models` (a task names its losses and finds a model's head)
and below `training` (which fits and scores heads through it).
"""

from tl_keras.tasks.base import KINDS, MULTI_LABEL, REGRESSION, SINGLE_LABEL, Task, head_of  # noqa: F401
from tl_keras.tasks.targets import (  # noqa: F401
    TASK_CHOICES, TASKS, TargetSpec, decide_task, spec_for_training, task_named, task_of, task_of_head, with_scale,
)
