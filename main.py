"""Llama Desk launcher: `python main.py` opens the window, `python main.py <command>` runs the CLI."""

import multiprocessing
import sys

from app.cli import main

if __name__ == "__main__":
    # The bundle re-enters here for its child processes (quantizer, engine on RPC workers).
    multiprocessing.freeze_support()
    sys.exit(main())
