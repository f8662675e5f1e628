"""``lossreg.hookimpl``: the marker plugin modules put on their ``register_losses``."""

import pluggy

hookimpl = pluggy.HookimplMarker("lossreg")
