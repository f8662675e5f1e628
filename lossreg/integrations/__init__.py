"""Optional glue to training frameworks: :mod:`.lightning` (``pip install lossreg[lightning]``)
and :mod:`.hydra` (``pip install lossreg[hydra]``). The core never imports this package."""
