"""Stage 1 of the pipeline, the images: folders and manifests, views, corruptions, class names.

- :mod:`.folders`: the data root, ImageNet-format folders scanned into a :class:`Manifest`
  (sorted, digested, unreadable files skipped with a reason), :func:`open_image`.
- :mod:`.views`: the centre view and seeded augmented views (:class:`ViewSpec`,
  :class:`ViewDataset`).
- :mod:`.corruptions`: named ImageNet-C corruptions and seeded eval subsets.
- :mod:`.classes`: the 1000 ImageNet-1k classes in logit order; :mod:`.taxonomy`: their WordNet
  3.0 hierarchy (committed), distances and families.
"""

from __future__ import annotations

from .classes import MACAW_WNID, ImageNetClasses, imagenet_classes
from .folders import Manifest, data_root, default_data_root, open_image, resolve_folder, scan_folder
from .views import ViewDataset, ViewSpec

__all__ = ["MACAW_WNID", "ImageNetClasses", "Manifest", "ViewDataset", "ViewSpec", "data_root",
           "default_data_root", "imagenet_classes", "open_image", "resolve_folder", "scan_folder"]
