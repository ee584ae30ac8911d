"""Lesson 05: transfer learning with an ImageNet encoder (settings, pipeline steps, exercise self-checks)."""
