"""The one registry of PyTorch model constructors (after timm's ``register_model``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import torch
from torch import nn

from nightvision.errors import EngineError
from nightvision.specs import get_spec, list_specs

__all__ = ["create", "list_models", "load_checkpoint", "register_model"]

_CONSTRUCTORS: dict[str, Callable[..., nn.Module]] = {}
F = TypeVar("F", bound=Callable[..., nn.Module])


def register_model(name: str) -> Callable[[F], F]:
    """Register a constructor under ``name``; the name must have a :class:`~nightvision.specs.ModelSpec`."""

    def wrap(fn: F) -> F:
        get_spec(name)  # every model has a spec: fail at import time otherwise
        if name in _CONSTRUCTORS:
            raise ValueError(f"model {name!r} is registered twice")
        _CONSTRUCTORS[name] = fn
        return fn

    return wrap


def list_models() -> list[str]:
    """Names of all models that have a PyTorch constructor, in registration order."""
    return [s.name for s in list_specs() if s.name in _CONSTRUCTORS]


def create(name: str, *, pretrained: bool = True, **kwargs: Any) -> nn.Module:
    """Build a registered model, in eval mode.

    Args:
        name: registry name (``nightvision models`` lists them).
        pretrained: load our shipped weights; an error if the model has none.
        **kwargs: override the constructor arguments of the shipped variant. Weights are only loaded when
            the overrides leave the architecture unchanged (shapes must match).
    """
    spec = get_spec(name)
    try:
        constructor = _CONSTRUCTORS[name]
    except KeyError:
        raise EngineError(f"model {name!r} has no PyTorch implementation in this version") from None
    model = constructor(**{**dict(spec.kwargs), **kwargs})
    if pretrained:
        path = spec.weights_path
        if path is None or not path.is_file():
            raise EngineError(
                f"model {name!r} ships no weights: train it (see training/README.md) and give the checkpoint "
                "(--weights RUN/final.pt; in Python, create it with pretrained=False and load_checkpoint)"
            )
        load_checkpoint(model, path)
    return model.eval()


def load_checkpoint(model: nn.Module, path: str | Any) -> dict[str, Any]:
    """Load a nightvision checkpoint (``{"model": state_dict, "args": ...}``) or a bare state dict.

    Returns the whole checkpoint dictionary. Loads with ``weights_only=True``.
    """
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    state = ckpt["model"] if isinstance(ckpt, dict) and "model" in ckpt else ckpt
    model.load_state_dict(state, strict=True)
    return ckpt if isinstance(ckpt, dict) else {"model": state}
