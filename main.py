"""Llama Desk launcher: `python main.py` opens the window, `python main.py <command>` runs the CLI."""

import multiprocessing
import sys

from app.cli import main

if __name__ == "__main__":
    multiprocessing.freeze_support()  # the bundle re-enters here for the quantizer's child process
    sys.exit(main())
