"""Model loading: embedded weights verified on real images, hub failures fast and clear."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from neudep_utils.errors import HubUnavailableError, ModelError
from neudep_utils.images import ViewDataset, scan_folder
from neudep_utils.models import load_model
from neudep_utils.models.efficientnet import EMBEDDED
from neudep_utils.models.hub import hub_reachable


def _predict(loaded, manifest, n):
    ds = ViewDataset(manifest, loaded.preprocess, indices=np.arange(n))
    x = torch.stack([ds[i][0] for i in range(n)])
    with torch.inference_mode():
        logits, feats = loaded.logits_and_features(x)
    return logits.numpy(), feats.numpy()


def test_lite0_weights_are_mapped(lite0, data_root):
    """Real weights classify real validation images; the same net with random weights does not."""
    m = scan_folder(data_root / "imagenet-val")
    idx = np.linspace(0, len(m) - 1, 24).astype(int)
    sub = m.subset(idx)
    logits, feats = _predict(lite0, sub, len(sub))
    assert logits.shape == (24, 1000) and feats.shape == (24, 1280)
    acc = float((logits.argmax(1) == sub.labels).mean())
    assert acc >= 0.6, f"Lite0 top-1 on 24 real images is {acc:.2f}; expected about 0.8"
    import timm  # noqa: PLC0415 - timm: ~2 s

    torch.manual_seed(0)
    rand = timm.create_model("tf_efficientnet_lite0", pretrained=False).eval()
    with torch.inference_mode():
        rlogits = rand(torch.stack([ViewDataset(sub, lite0.preprocess)[i][0] for i in range(24)]))
    assert float((rlogits.numpy().argmax(1) == sub.labels).mean()) <= 0.1
    # logits are the classifier applied to the returned features
    w = lite0.model.get_classifier()
    np.testing.assert_allclose(feats @ w.weight.detach().numpy().T + w.bias.detach().numpy(),
                               logits, rtol=1e-4, atol=1e-3)


def test_embedded_metadata(lite0):
    assert lite0.preprocess.input_size == 224 and lite0.preprocess.resize_size == 256
    assert lite0.num_classes == 1000 and len(lite0.weights_sha256) == 64
    assert not lite0.model.training
    assert set(EMBEDDED) == {"efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2"}


@pytest.mark.slow
@pytest.mark.parametrize("name,size", [("efficientnet_lite1", 240), ("efficientnet_lite2", 260)])
def test_other_embedded_models(name, size, data_root):
    loaded = load_model(name)
    assert loaded.preprocess.input_size == size
    m = scan_folder(data_root / "imagenet-val")
    sub = m.subset(np.linspace(0, len(m) - 1, 24).astype(int))
    logits, _ = _predict(loaded, sub, len(sub))
    assert float((logits.argmax(1) == sub.labels).mean()) >= 0.6


def test_unknown_model_name():
    with pytest.raises(ModelError, match="unknown model 'resnet_does_not_exist'.*registered model"):
        load_model("resnet_does_not_exist")


def test_hub_model_fails_fast_offline(monkeypatch):
    if hub_reachable(3.0):
        pytest.skip("the hub is reachable here; the offline path cannot be exercised")
    t0 = time.monotonic()
    with pytest.raises(HubUnavailableError, match="not reachable.*registered model"):
        load_model("resnet18")
    assert time.monotonic() - t0 < 15, "offline hub access must fail within seconds"


def test_hub_offline_env_is_respected(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert not hub_reachable()
    t0 = time.monotonic()
    with pytest.raises(HubUnavailableError):
        load_model("vit_small_patch16_224")
    assert time.monotonic() - t0 < 15
