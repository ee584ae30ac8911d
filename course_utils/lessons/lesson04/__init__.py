"""Lesson 04: MRI white-matter lesions in 3D (settings, pipeline steps, exercise self-checks)."""
