"""DiffRIR: reference-based restoration that removes the seams of inpainting and outpainting (paper §3.4).

- :mod:`.network`: the network (DiffIR's compact-prior Transformer with a reference input) in its stage-1 and
  stage-2 forms, ×1/×2/×4, named as the released code names it;
- :mod:`.degradation`: the training degradations D1 (real-world, second order, kornia) and D2 (colour), and the
  masked reference;
- :mod:`.restorer`: :class:`Restorer` (pad, tile, restore, composite back) and loading restorers.
"""

from .network import RELEASED, NetworkConfig, StageOne, StageTwo
from .restorer import Restorer, save_restorer

__all__ = ["RELEASED", "NetworkConfig", "Restorer", "StageOne", "StageTwo", "save_restorer"]
