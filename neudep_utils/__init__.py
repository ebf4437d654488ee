"""neudep_utils: the tested core of the neudep reproducibility study.

Modules
-------
- :mod:`neudep_utils.data`: ImageNet-format folders, manifests, centre and augmented views.
- :mod:`neudep_utils.models`: embedded EfficientNet-Lite models and timm hub models.
- :mod:`neudep_utils.cache`: content-addressed logit/feature cache and streamed moments.
- :mod:`neudep_utils.moments`: the logit second moment / centred covariance S.
- :mod:`neudep_utils.covlasso`: the batched, certified CovLasso solver (a small package).
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
