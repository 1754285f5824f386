"""``python -m nightvision.training.pairs DIR``: the pair builder's counts.

The builder itself lives in :mod:`nightvision.evaluation.pairs`.
"""

from nightvision.evaluation.pairs import main

if __name__ == "__main__":
    main()
