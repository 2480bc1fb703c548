"""`python -m skelex_desktop`: the same entry point as the `skelex-desktop` script."""

import sys

from skelex_desktop.cli import main

if __name__ == "__main__":
    sys.exit(main())
