"""``python -m batch_orchestra``: the ``batch-orchestra`` command line."""

from .cli import main

if __name__ == "__main__":
    main()
