"""Lesson 06: activation maximization (settings, pipeline steps, exercise self-checks)."""
