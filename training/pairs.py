"""``python -m training.pairs DIR``: the pair builder's counts (the builder lives in :mod:`nightvision.pairs`)."""

from nightvision.pairs import main

if __name__ == "__main__":
    main()
