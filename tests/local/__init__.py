"""Tests of the local emulator (aiosagemaker.local)."""
