"""Llama Desk launcher: `python main.py` opens the window, `python main.py <command>` runs the CLI."""

import multiprocessing
import sys

from app.cli import main

if __name__ == "__main__":
    # A bundled app runs its engine process (models on RPC workers) by starting itself again.
    multiprocessing.freeze_support()
    sys.exit(main())
