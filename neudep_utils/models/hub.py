"""timm hub models (``resnet50``, ``swin_tiny_patch4_window7_224``, ...): the registry's fallback.

Any name that is not registered is a timm model created with ``pretrained=True`` from the
Hugging Face hub. Without a network this fails within seconds with
:class:`~neudep_utils.errors.HubUnavailableError` (a 3 s connection test, then the local cache
only) instead of retrying for a minute.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import time
from urllib.parse import urlparse

from ..errors import HubUnavailableError, ModelError
from ._base import LoadedModel
from .efficientnet import preprocess_from_timm
from .registry import register_fallback, registered

__all__ = ["hub_reachable", "load_hub"]


def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the Hugging Face hub (``$HF_ENDPOINT`` or huggingface.co) accepts a TCP connection."""
    if os.environ.get("HF_HUB_OFFLINE", "0") not in ("0", "", "false", "False"):
        return False
    url = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    host, port = url.hostname or "huggingface.co", url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


@contextlib.contextmanager
def _hf_offline():
    """Make huggingface_hub use its local cache only (no retries against an unreachable hub)."""
    try:
        import huggingface_hub.constants as c
    except ImportError:  # pragma: no cover - timm depends on huggingface_hub
        yield
        return
    old = c.HF_HUB_OFFLINE
    c.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        c.HF_HUB_OFFLINE = old


def load_hub(name: str, hub_timeout: float = 3.0) -> LoadedModel:
    """A timm model with pretrained weights from the hub (or its local cache)."""
    import timm

    timeout = hub_timeout
    if name not in timm.list_models(pretrained=True) and name.split(".")[0] not in timm.list_models():
        embedded = ", ".join(registered())
        raise ModelError(
            f"unknown model {name!r}: not a registered model ({embedded}) nor a timm model with "
            "pretrained weights; see timm.list_models(pretrained=True)"
        )
    online = hub_reachable(timeout)
    t0 = time.monotonic()
    try:
        ctx = contextlib.nullcontext() if online else _hf_offline()
        with ctx:
            model = timm.create_model(name, pretrained=True)
    except Exception as exc:  # noqa: BLE001 - any hub failure becomes one clear error
        if online:
            raise HubUnavailableError(
                f"could not download pretrained weights for timm model {name!r} from the hub: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        raise HubUnavailableError(
            f"timm model {name!r} needs pretrained weights from the Hugging Face hub, which is not "
            f"reachable from this machine (checked in {time.monotonic() - t0:.1f}s) and the weights "
            "are not in the local cache. Run once with internet access (the weights are then cached "
            "under ~/.cache/huggingface), or use a registered model: " + ", ".join(registered())
        ) from exc
    model.eval()
    digest = hashlib.sha256()
    for k, v in model.state_dict().items():
        digest.update(k.encode())
        digest.update(v.detach().cpu().contiguous().numpy().tobytes())
    return LoadedModel(name=name, timm_name=name, model=model,
                       preprocess=preprocess_from_timm(model), weights_sha256=digest.hexdigest(),
                       weights_source=f"timm hub: {model.pretrained_cfg.get('hf_hub_id', name)}",
                       num_classes=model.num_classes, num_features=model.num_features)


register_fallback(load_hub, lambda name: load_hub(name).weights_sha256)
