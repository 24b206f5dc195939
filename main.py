"""Llama Desk launcher: `python main.py` opens the window, `python main.py <command>` runs the CLI."""

import sys

from app.cli import main

if __name__ == "__main__":
    sys.exit(main())
