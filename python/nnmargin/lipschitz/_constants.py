"""Names of the Lipschitz encoder that the command line needs without importing torch."""
from __future__ import annotations

#: The encoder layers the paper's Table 6 certifies on, in order.
ENCODER_LAYERS = ("relu1", "relu2", "relu3", "bottleneck")
#: Training-time normalisations of the encoder weights (:mod:`nnmargin.lipschitz.encoder`).
NORMALISATIONS = ("operator", "l2nnn")
#: Supported input shapes (C, H, W) -> spatial size after conv3.
IMAGE_SHAPES = {(1, 28, 28): 4, (3, 32, 32): 5, (1, 32, 32): 5, (3, 28, 28): 4}
