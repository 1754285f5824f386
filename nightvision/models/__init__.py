"""PyTorch models, one file per architecture, one registry.

>>> from nightvision import models
>>> net = models.create("zero-dce++")          # our shipped weights, eval mode
>>> models.list_models()
['zero-dce', 'zero-dce++']

Needs the ``train`` extra (torch). The torch-free runtime uses :mod:`nightvision.specs` instead.
"""

from nightvision.models import (  # importing a model file registers its variants
    curve_denoise,
    mirnet_v2,
    nafnet,
    retinexnet,
    zero_dce,
)
from nightvision.models._registry import create, list_models, load_checkpoint, register_model

__all__ = [
    "create",
    "curve_denoise",
    "list_models",
    "load_checkpoint",
    "mirnet_v2",
    "nafnet",
    "register_model",
    "retinexnet",
    "zero_dce",
]
