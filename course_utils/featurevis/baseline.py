"""A random-weight copy of a network: the sanity baseline of feature visualisation (Adebayo et al. 2018).

If a visualisation looks the same for the trained network and for the same architecture with
random weights, it shows the architecture (or the regulariser), not what was learned.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


def random_weight_copy(model: nn.Module, seed: int = 0) -> nn.Module:
    """A deep copy of ``model`` with every parameter re-initialised (and BatchNorm statistics reset).

    Each layer gets its default PyTorch initialisation (``reset_parameters``); a module that owns
    parameters but has no ``reset_parameters`` gets ``N(0, 0.02)`` weights. The copy is in eval
    mode, on the same device; ``model`` itself is not touched. Same ``seed``, same weights.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"random_weight_copy expects an nn.Module, got {type(model).__name__}.")
    clone = copy.deepcopy(model)
    generator_state = torch.random.get_rng_state()
    try:
        torch.manual_seed(seed)
        for module in clone.modules():
            if isinstance(module, nn.modules.batchnorm._NormBase):
                module.reset_running_stats()
            if hasattr(module, "reset_parameters") and callable(module.reset_parameters):
                module.reset_parameters()
            else:
                for p in module.parameters(recurse=False):
                    with torch.no_grad():
                        p.normal_(0.0, 0.02)
    finally:
        torch.random.set_rng_state(generator_state)  # the caller's random stream is left as it was
    return clone.eval()
