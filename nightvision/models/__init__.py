"""PyTorch models, one file per architecture, one registry.

>>> from nightvision import models
>>> net = models.create("zero-dce++")          # our shipped weights, eval mode
>>> models.list_models()
['zero-dce', 'zero-dce++']

Needs the ``train`` extra (torch). The torch-free runtime uses :mod:`nightvision.specs` instead.
"""

from nightvision.models import zero_dce  # registers its variants
from nightvision.models._registry import create, list_models, load_checkpoint, register_model

__all__ = ["create", "list_models", "load_checkpoint", "register_model", "zero_dce"]
