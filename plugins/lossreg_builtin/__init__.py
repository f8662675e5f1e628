"""lossreg's built-in losses, shipped as plugins through the ``lossreg`` entry points."""
