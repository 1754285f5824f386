"""Parameter counts and GFLOPs of a model, measured on its PyTorch module (needs torch).

GFLOPs count 2 × the multiply-adds of every convolution in one forward pass, plus, for curve models, the
curve arithmetic (4 flops per pixel, channel and iteration); other element-wise ops are left out. The frame
is padded to the model's multiple first, as the runtime does.
"""

from __future__ import annotations

from typing import Any

__all__ = ["complexity", "conv_gflops"]


def conv_gflops(net: Any, height: int, width: int) -> float:
    """2 × the multiply-adds of every ``nn.Conv2d`` of ``net`` in one forward pass on ``(1, 3, height, width)``."""
    import torch

    macs = 0

    def hook(mod: Any, inp: Any, out: Any) -> None:
        nonlocal macs
        macs += out.numel() * (mod.in_channels // mod.groups) * mod.kernel_size[0] * mod.kernel_size[1]

    handles = [m.register_forward_hook(hook) for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    try:
        with torch.no_grad():
            net.eval()(torch.zeros(1, 3, height, width))
    finally:
        for handle in handles:
            handle.remove()
    return 2 * macs / 1e9


def complexity(name: str, height: int = 1080, width: int = 1920) -> tuple[int | None, float | None]:
    """(parameters, GFLOPs) of registered model ``name`` at ``height × width``; ``(None, None)`` without torch."""
    try:
        from nightvision import models
    except ImportError:
        return None, None
    from nightvision.specs import get_spec

    spec = get_spec(name)
    net = models.create(name, pretrained=False)
    m = spec.pad_multiple
    h, w = -(-height // m) * m, -(-width // m) * m
    gflops = conv_gflops(net, h, w)
    if spec.family == "curve":
        gflops += 4 * 8 * 3 * h * w / 1e9  # 8 iterations of x + a*(x*x - x)
    return sum(p.numel() for p in net.parameters()), gflops
