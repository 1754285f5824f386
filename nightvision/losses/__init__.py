"""Training losses (torch): zero-reference losses for the curve models, paired losses for restoration models."""

from nightvision.losses.retinex import decomposition_loss, relight_loss
from nightvision.losses.retinex import illumination_smoothness_loss as retinex_smoothness_loss
from nightvision.losses.supervised import (
    CharbonnierLoss,
    L1Loss,
    PSNRLoss,
    SSIMLoss,
    charbonnier_loss,
    l1_loss,
    psnr,
    psnr_loss,
    ssim,
    ssim_loss,
)
from nightvision.losses.zero_reference import (
    ColourConstancyLoss,
    ExposureControlLoss,
    IlluminationSmoothnessLoss,
    SpatialConsistencyLoss,
    ZeroReferenceLoss,
    colour_constancy_loss,
    exposure_control_loss,
    illumination_smoothness_loss,
    neutral_loss,
    spatial_consistency_loss,
)

__all__ = [
    "CharbonnierLoss",
    "ColourConstancyLoss",
    "ExposureControlLoss",
    "IlluminationSmoothnessLoss",
    "L1Loss",
    "PSNRLoss",
    "SSIMLoss",
    "SpatialConsistencyLoss",
    "ZeroReferenceLoss",
    "charbonnier_loss",
    "colour_constancy_loss",
    "decomposition_loss",
    "exposure_control_loss",
    "illumination_smoothness_loss",
    "l1_loss",
    "neutral_loss",
    "psnr",
    "psnr_loss",
    "relight_loss",
    "retinex_smoothness_loss",
    "spatial_consistency_loss",
    "ssim",
    "ssim_loss",
]
