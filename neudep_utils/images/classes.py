"""The 1000 ImageNet-1k classes in logit order: wnid, readable name and index.

The class list comes from timm (``timm.data.ImageNetInfo``), the sorted-wnid order every model of
the study uses (models with another order, e.g. Darknet's devkit order, are permuted to it when
they are loaded).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from ..errors import DataError

__all__ = ["MACAW_WNID", "ImageNetClasses", "imagenet_classes"]

#: The paper's example target (macaw).
MACAW_WNID = "n01818515"


@dataclass(frozen=True)
class ImageNetClasses:
    """The 1000 ImageNet-1k classes in logit order: index, wnid and readable name."""

    wnids: tuple[str, ...]
    names: tuple[str, ...]

    def index(self, wnid: str) -> int:
        """Logit index of ``wnid``; raises :class:`DataError` when it is not an ImageNet-1k class."""
        try:
            return self._lookup()[wnid]
        except KeyError:
            raise DataError(
                f"{wnid!r} is not an ImageNet-1k wnid; expected one of the 1000 synsets "
                "(e.g. 'n01818515' = macaw)"
            ) from None

    def _lookup(self) -> dict[str, int]:
        return _wnid_lookup(self.wnids)

    def short_name(self, idx: int) -> str:
        """First synonym of a class name (``'macaw'`` rather than the full synonym list)."""
        return self.names[idx].split(",")[0].strip()

    def __len__(self) -> int:
        return len(self.wnids)


@lru_cache(maxsize=4)
def _wnid_lookup(wnids: tuple[str, ...]) -> dict[str, int]:
    return {w: i for i, w in enumerate(wnids)}


@lru_cache(maxsize=1)
def imagenet_classes() -> ImageNetClasses:
    """ImageNet-1k synsets as shipped by timm (``timm.data.ImageNetInfo``), in logit order."""
    from timm.data import ImageNetInfo

    info = ImageNetInfo("imagenet-1k")
    wnids = tuple(info.label_names())
    names = tuple(info.index_to_description(i) for i in range(len(wnids)))
    if len(wnids) != 1000:
        raise RuntimeError(f"timm's ImageNet-1k info has {len(wnids)} classes, expected 1000")
    return ImageNetClasses(wnids=wnids, names=names)
