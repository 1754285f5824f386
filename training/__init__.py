"""Training code for nightvision models (needs the ``train`` extra: torch).

* :mod:`nightvision.training.zero_reference` trains the curve models (Zero-DCE, Zero-DCE++) without ground truth.
* :mod:`nightvision.training.config` reads a recipe (TOML) and command-line overrides into a dataclass.
* :mod:`nightvision.training.data` holds the datasets.
"""
