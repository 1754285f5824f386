"""PyTorch models, one file per architecture, one registry.

>>> from nightvision import models
>>> net = models.create("zero-dce++")          # our shipped weights, eval mode
>>> models.list_models()
['zero-dce', 'zero-dce++']

Needs the ``train`` extra (torch). The torch-free runtime uses :mod:`nightvision.specs` instead.
"""

from nightvision.models import mirnet_v2, nafnet, retinexnet, zero_dce  # importing a model file registers its variants
from nightvision.models._registry import create, list_models, load_checkpoint, register_model

__all__ = [
    "create",
    "list_models",
    "load_checkpoint",
    "mirnet_v2",
    "nafnet",
    "register_model",
    "retinexnet",
    "zero_dce",
]
