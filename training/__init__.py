"""Training code for nightvision models (needs the ``train`` extra: torch), installed as ``nightvision.training``.

* :mod:`nightvision.training.zero_reference` trains the curve models (Zero-DCE, Zero-DCE++) without ground truth.
* :mod:`nightvision.training.supervised` trains restoration models on (low, high) pairs.
* :mod:`nightvision.training.retinex` trains Retinex-Net in its two phases.
* :mod:`nightvision.training.config` holds every trainer's hyperparameters and reads a recipe (TOML) and
  command-line overrides into them; it needs no torch (``help_text`` lists every key).
* :mod:`nightvision.training.run` is what the three loops share: run folder, seed, device, atomic checkpoints,
  resume and evaluation logs.
* :mod:`nightvision.training.data` holds the datasets.
"""
