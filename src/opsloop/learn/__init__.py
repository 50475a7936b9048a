"""Training toolkit.

=====================================  ==================================================
module                                 what it does
=====================================  ==================================================
:mod:`~opsloop.learn.active`           active learning: query strategies, oracle, curves
:mod:`~opsloop.learn.propagation`      label propagation/spreading with a report
:mod:`~opsloop.learn.distill`          knowledge distillation into a torch student
:mod:`~opsloop.learn.quantize`         int8 (torchao), float16, ONNX export and report
:mod:`~opsloop.learn.distributed`      data-parallel ``fit`` (DDP), pipeline-parallel training
:mod:`~opsloop.learn.input_pipeline`   DataLoader streaming of Parquet files
:mod:`~opsloop.learn.run_log`          what a tracked run must offer (``run=`` everywhere)
:mod:`~opsloop.learn.robustness`       attacks: evasion, membership inference, extraction, poisoning
:mod:`~opsloop.learn.oversampling`     SMOTE rows for a class or a slice (and, in
                                       ``oversampling_effect``, slice metrics before/after)
=====================================  ==================================================

Every training and reporting entry takes ``run=``: a run from ``opsloop.start_run`` (or any
:class:`RunLog`) that receives its params, metrics by step and artifacts.

The PyTorch parts import torch only when called (``input_pipeline`` when imported), so this
package imports without it; they need ``pip install 'opsloop[torch]'``.

>>> from opsloop.learn import active, propagate_labels
>>> active.STRATEGY_NAMES[0]
'least_confidence'
"""

from opsloop.learn import active
from opsloop.learn.propagation import PropagationResult, propagate_labels
from opsloop.learn.run_log import InMemoryRun, RunLog

__all__ = ["InMemoryRun", "PropagationResult", "RunLog", "active", "propagate_labels"]
