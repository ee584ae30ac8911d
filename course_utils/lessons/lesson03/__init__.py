"""Lesson 03: DRIVE retinal vessels (settings, pipeline steps, exercise self-checks)."""
