"""Lesson 04b: false lesions in the MRI lesion segmentation, segment then classify (settings, pipeline steps,
exercise self-checks)."""
