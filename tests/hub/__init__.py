"""Tests of app.hub against a loopback Hub emulator."""
