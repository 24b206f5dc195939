"""Tests of the CLI commands."""
