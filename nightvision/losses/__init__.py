"""Training losses (torch). Zero-reference losses for the curve models."""

from nightvision.losses.zero_reference import (
    ColourConstancyLoss,
    ExposureControlLoss,
    IlluminationSmoothnessLoss,
    SpatialConsistencyLoss,
    ZeroReferenceLoss,
    colour_constancy_loss,
    exposure_control_loss,
    illumination_smoothness_loss,
    spatial_consistency_loss,
)

__all__ = [
    "ColourConstancyLoss",
    "ExposureControlLoss",
    "IlluminationSmoothnessLoss",
    "SpatialConsistencyLoss",
    "ZeroReferenceLoss",
    "colour_constancy_loss",
    "exposure_control_loss",
    "illumination_smoothness_loss",
    "spatial_consistency_loss",
]
