"""Tests of the conversation store."""
