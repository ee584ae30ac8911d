"""Lesson 02: U-Net from scratch (settings, pipeline steps, exercise self-checks)."""
