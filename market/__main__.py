"""``python -m market``: the same command line as the ``market`` script."""

from market.cli import main

if __name__ == "__main__":
    main()
