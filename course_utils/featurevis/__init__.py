"""Feature visualisation for segmentation networks (lesson 06): what did the network learn?

* :mod:`.hooks`: :func:`capture_features`, :func:`feature_maps` of named layers (hooks always removed).
* :mod:`.objectives`: :class:`ChannelObjective`, :class:`NeuronObjective`, :class:`RegionObjective`.
* :mod:`.activation_max`: :func:`maximize_activation` (gradient ascent on the input), :func:`activation_table`.
* :mod:`.regularizers`: :func:`l2_penalty`, :func:`total_variation`, :func:`jitter`, :func:`random_rotate_scale`.
* :mod:`.parameterization`: :class:`PixelImage`, :class:`FourierImage`.
* :mod:`.baseline`: :func:`random_weight_copy` (the random-weight sanity baseline).
* :mod:`.top_patches`: :func:`top_activating_patches` (the dataset patches a filter likes most).

Works with any number of input channels, 2D and 3D inputs, the course UNet and smp models.
"""

from .activation_max import ActivationMaxResult, activation_table, make_normalizer, maximize_activation
from .baseline import random_weight_copy
from .hooks import (
    capture_features,
    conv_layer_names,
    count_forward_hooks,
    evaluation_mode,
    feature_maps,
    layer_names,
    resolve_layer,
)
from .objectives import ChannelObjective, NeuronObjective, Objective, RegionObjective
from .parameterization import FourierImage, PixelImage, make_image, spectrum_scale
from .regularizers import jitter, l2_penalty, random_rotate_scale, total_variation
from .top_patches import PatchHit, top_activating_patches

__all__ = [
    "capture_features",
    "feature_maps",
    "evaluation_mode",
    "layer_names",
    "conv_layer_names",
    "resolve_layer",
    "count_forward_hooks",
    "Objective",
    "ChannelObjective",
    "NeuronObjective",
    "RegionObjective",
    "maximize_activation",
    "ActivationMaxResult",
    "activation_table",
    "make_normalizer",
    "l2_penalty",
    "total_variation",
    "jitter",
    "random_rotate_scale",
    "PixelImage",
    "FourierImage",
    "make_image",
    "spectrum_scale",
    "random_weight_copy",
    "top_activating_patches",
    "PatchHit",
]
