"""Training code for nightvision models (needs the ``train`` extra: torch).

* :mod:`training.zero_reference` trains the curve models (Zero-DCE, Zero-DCE++) without ground truth.
* :mod:`training.config` reads a recipe (TOML) and command-line overrides into a dataclass.
* :mod:`training.data` holds the datasets.
"""
