"""Lesson 07: from pixels to objects on blood-cell images (settings, pipeline steps, exercise self-checks)."""
