"""The profiles of lesson 01_pytorch_basics: knob -> value for ``smoke``, ``cpu`` and ``gpu``.

Every profile has the same knobs.

Read through :func:`course_utils.config.get_config` (``get_config("01_pytorch_basics", profile, knob=value)``).
"""

LESSON = "01_pytorch_basics"

SETTINGS = {
    "smoke": dict(n_train=64, n_val=16, image_size=32, epochs=2, batch_size=16, lr=3e-3, width=8, seed=0),
    "cpu": dict(n_train=512, n_val=128, image_size=48, epochs=8, batch_size=32, lr=3e-3, width=16, seed=0),
    "gpu": dict(n_train=2048, n_val=256, image_size=64, epochs=15, batch_size=64, lr=3e-3, width=32, seed=0),
}
