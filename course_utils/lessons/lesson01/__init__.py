"""Lesson 01: PyTorch basics (settings, pipeline steps, exercise self-checks)."""
