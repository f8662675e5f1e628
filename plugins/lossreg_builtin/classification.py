"""Built-in classification losses (being filled in)."""

import lossreg


@lossreg.hookimpl
def register_losses(register):  # type: ignore[no-untyped-def]
    pass
