"""The profiles of lesson 02_unet_from_scratch: knob -> value for ``smoke``, ``cpu`` and ``gpu``.

Every profile has the same knobs.

Read through :func:`course_utils.config.get_config` (``get_config("02_unet_from_scratch", profile, knob=value)``).
"""

LESSON = "02_unet_from_scratch"

SETTINGS = {
    "smoke": dict(n_train=32, n_val=16, image_size=32, epochs=1, batch_size=16, lr=2e-3, base_width=4, depth=2, seed=0),
    "cpu": dict(
        n_train=512, n_val=128, image_size=64, epochs=10, batch_size=32, lr=2e-3, base_width=8, depth=3, seed=0
    ),
    "gpu": dict(
        n_train=4096, n_val=512, image_size=96, epochs=20, batch_size=64, lr=2e-3, base_width=16, depth=4, seed=0
    ),
}
