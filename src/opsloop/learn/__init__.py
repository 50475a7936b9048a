"""Training toolkit.

=====================================  ==================================================
module                                 what it does
=====================================  ==================================================
:mod:`~opsloop.learn.active`           active learning: query strategies, oracle, curves
:mod:`~opsloop.learn.propagation`      label propagation/spreading with a report
:mod:`~opsloop.learn.distill`          knowledge distillation into a torch student
:mod:`~opsloop.learn.quantize`         int8 (torchao), float16, ONNX export and report
:mod:`~opsloop.learn.distributed`      data-parallel ``fit`` (DDP) and pipeline stages
:mod:`~opsloop.learn.input_pipeline`   DataLoader streaming of Parquet files
=====================================  ==================================================

The PyTorch parts import torch only when called (``input_pipeline`` when imported), so this
package imports without it; they need ``pip install 'opsloop[torch]'``.

>>> from opsloop.learn import active, propagate_labels
>>> active.STRATEGY_NAMES[0]
'least_confidence'
"""

from opsloop.learn import active
from opsloop.learn.propagation import PropagationResult, propagate_labels

__all__ = ["PropagationResult", "active", "propagate_labels"]
