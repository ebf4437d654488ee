"""Inference engines for logit extraction: ONNX Runtime on the CPU, and PyTorch.

An engine turns a batch of preprocessed images into logits and pooled penultimate features. The
engine is part of every cache key, because engines differ in the last bits of the logits (far
below :data:`PROBE_RTOL`, but not zero): entries computed by different engines never mix.

- ``onnxruntime`` (the default on the CPU when the package imports): the model is exported once
  with ``torch.onnx.export`` (the ``torch.export``-based exporter, dynamic batch size) to
  ``<cache_dir>/onnx/<model>/<digest>.onnx``, keyed by the weights' sha256, the input size, the
  opset and the torch version, and checksummed; a damaged file is exported again. Each session is
  checked against the PyTorch model on a seeded probe batch before use (top-1 identical, logits
  and features within :data:`PROBE_RTOL` relative). It is several times faster than PyTorch eager
  for EfficientNet-Lite and MobileNet v1 on the CPU (``benchmarks/bench_extract.py``). Its
  results do not depend on the batch size or the number of threads (bitwise; tested).
- ``torch``: eager PyTorch, channels-last (oneDNN) on the CPU, on any device. Its cache-key label
  is ``torch`` on the CPU (the label entries written before engines existed implicitly carry) and
  ``torch-<device type>`` elsewhere (``torch-cuda``): GPU logits differ from CPU logits.

- ``litert``: LiteRT (PyPI ``ai-edge-litert``), the only engine of TensorFlow Lite models
  (``LoadedModel.kind == "tflite"``, e.g. the int8 MobileNets of :mod:`.tflite`), on the CPU with
  its default XNNPACK delegate, every intermediate tensor kept, the thread count set explicitly
  (``$NEUDEP_LITERT_THREADS``, else torch's). The logits are the input tensor of the graph's
  SOFTMAX op and the features the input of the logit layer (the CONV_2D or FULLY_CONNECTED op
  feeding it), both dequantized with their tensor's (scale, zero point); the tensors are found
  on the undelegated graph (:func:`litert_graph`). XNNPACK is 20-35 times faster here than the
  builtin reference kernels and rounds a few int8 steps differently from them (both are valid
  int8 implementations; the kernels are in the label). Its label is ``litert <version>;
  XNNPACK``; the model file's sha256 is the weights checksum.

``engine="auto"`` (default; ``$NEUDEP_ENGINE`` overrides) picks ``litert`` for a TFLite model and ``onnxruntime`` on the CPU when it
is installed, else ``torch``. When ONNX Runtime cannot be used (not installed, export failed,
probe disagreement), ``auto`` falls back to ``torch`` with a warning and records why in the entry's
``meta.json`` (``engine.fallback``); an explicit ``engine="onnxruntime"`` raises
:class:`EngineError` instead. The fallback is never silent and its entries are keyed ``torch``.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import platform
import warnings
from pathlib import Path

import numpy as np
import torch

from .._io import atomic_write_bytes
from ..errors import EngineError, WriteError
from ._runner import (  # noqa: F401 - ENGINES re-exported
    ENGINES,
    Runner,
    _ort_session,
    onnxruntime_version,
    requested_engine,
)
from .litert import (  # noqa: F401 - re-exported: the engines' one namespace
    LITERT_KERNELS,
    LiteRTGraph,
    LiteRTRunner,
    _cached_litert_runner,
    check_litert_request,
    litert_graph,
    litert_head,
    litert_interpreter,
    litert_label,
    litert_threads,
    litert_version,
)
from .onnxfile import onnx_key_label, onnx_runner

#: Whether ONNX Runtime's threads busy-wait between operators. Off: on a few cores the spinning
#: threads take the cores from the DataLoader workers decoding the next batch
#: (``benchmarks/bench_extract.py`` measures both). It does not change any result.
ORT_SPINNING = False
#: ONNX opset of the export.
ONNX_OPSET = 18
#: Version of the export recipe (wrapper, outputs, options); part of the .onnx file's key.
EXPORT_VERSION = 1
#: Largest per-row ``max|engine - torch| / max|torch|`` accepted on the probe batch.
PROBE_RTOL = 1e-4
#: Images in the probe batch.
PROBE_BATCH = 2


def resolve_engine(engine: str | None, device: str) -> str:
    """The engine extraction uses: ``onnxruntime`` or ``torch``.

    ``auto`` -> ``onnxruntime`` on the CPU when it imports, else ``torch``. An explicit
    ``onnxruntime`` on another device, or not installed, raises :class:`EngineError`.
    """
    name = requested_engine(engine)
    on_cpu = str(device) == "cpu"
    if name == "litert":
        raise EngineError("engine 'litert' runs TensorFlow Lite models only (kind 'tflite'); use "
                          "engine auto, onnxruntime or torch for this model")
    if name == "auto":
        return "onnxruntime" if on_cpu and onnxruntime_version() else "torch"
    if name == "onnxruntime":
        if not on_cpu:
            raise EngineError(f"engine 'onnxruntime' runs on the CPU only (device {device!r}); use "
                              "device cpu, or engine 'torch' (NEUDEP_ENGINE=torch) on this device")
        if onnxruntime_version() is None:
            raise EngineError("engine 'onnxruntime' requested but the onnxruntime package does not "
                              "import; install it (`pip install -e .` pins it) or use engine "
                              "'torch' (NEUDEP_ENGINE=torch)")
    return name


def export_tag() -> str:
    """What determines the exported ONNX graph besides the weights: opset, exporter, torch."""
    version = torch.__version__.split("+")[0]  # the build tag (cpu, cu130) does not change it
    return f"opset {ONNX_OPSET}, torch.export exporter of torch {version}, recipe {EXPORT_VERSION}"


def key_label(engine: str, device: str) -> str:
    """The cache-key label of a resolved engine on ``device``.

    ``torch`` on the CPU; ``torch-cuda`` (or ``torch-mps``) elsewhere; ``onnxruntime <version>;
    <export tag>`` for ONNX Runtime (its version and the export both move the last bits).
    """
    if engine == "torch":
        kind = str(device).split(":")[0]
        return "torch" if kind == "cpu" else f"torch-{kind}"
    if engine == "onnxruntime":
        return f"onnxruntime {onnxruntime_version()}; {export_tag()}"
    if engine == "litert":
        return litert_label()
    raise ValueError(f"unknown engine {engine!r}")


def default_key_label(engine: str | None = None, device: str | None = None, loaded=None) -> str:
    """The label :func:`neudep_utils.cache.extract` uses with these arguments, before any
    fallback (``device=None``: the best device here). A TFLite ``loaded`` model has the LiteRT
    label whatever the device (:func:`litert_label`; another explicit engine raises
    :class:`EngineError`)."""
    if loaded is not None and getattr(loaded, "kind", "torch") == "tflite":
        check_litert_request(loaded, engine)
        return litert_label()
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    return key_label(resolve_engine(engine, device), device)


def model_key_label(loaded, engine: str | None = None, device: str | None = None) -> str:
    """:func:`default_key_label` for a loaded model: a user's ONNX file (``kind == "onnx"``) is
    always run by ONNX Runtime as it is (no export), with its own label."""
    if getattr(loaded, "kind", "torch") == "onnx":
        return onnx_key_label(loaded)
    return default_key_label(engine, device, loaded=loaded)


def best_device() -> str:
    """``cuda`` when a GPU is present, else ``cpu``."""
    return "cuda" if torch.cuda.is_available() else "cpu"


def resolve_device(device: str | None) -> str:
    """Check a device name (``cpu``, ``cuda``, ``cuda:N``, ``mps``); ``None`` -> :func:`best_device`.

    Raises ``ValueError`` naming the device and what to use instead.
    """
    if device is None:
        return best_device()
    d = str(device).strip().lower()
    if d == "cpu":
        return d
    if d == "cuda" or d.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise ValueError(f"device {device!r}: no CUDA GPU is visible to torch "
                             "(torch.cuda.is_available() is False); use --device cpu")
        if d.startswith("cuda:"):
            try:
                k = int(d.split(":", 1)[1])
            except ValueError:
                raise ValueError(f"device {device!r}: expected cuda:N with an integer N") from None
            if not 0 <= k < torch.cuda.device_count():
                raise ValueError(f"device {device!r}: only {torch.cuda.device_count()} GPU(s) "
                                 f"(cuda:0..cuda:{torch.cuda.device_count() - 1})")
        return d
    if d == "mps":
        if not torch.backends.mps.is_available():
            raise ValueError("device 'mps' is not available here; use --device cpu")
        return d
    raise ValueError(f"unknown device {device!r}; use cpu, cuda or cuda:N (default: cuda when a "
                     "GPU is present, else cpu)")


# --------------------------------------------------------------------------------------------
# Runners
# --------------------------------------------------------------------------------------------


class TorchRunner(Runner):
    """Eager PyTorch; channels-last on the CPU (oneDNN)."""

    def __init__(self, loaded, device: str, meta: dict | None = None):
        super().__init__("torch", key_label("torch", device), device,
                         {"name": "torch", "torch": torch.__version__, "device": device,
                          "channels_last": device == "cpu", **(meta or {})})
        self.loaded = loaded
        loaded.model.to(device)  # in place
        if device == "cpu":
            loaded.model.to(memory_format=torch.channels_last)

    @property
    def channels_last(self) -> bool:
        return self.device == "cpu"

    def __call__(self, x):
        with torch.inference_mode():
            x = x.to(self.device, non_blocking=True)
            if self.device == "cpu":
                x = x.contiguous(memory_format=torch.channels_last)
            logits, feats = self.loaded.logits_and_features(x)
            return logits.float().cpu().numpy(), feats.float().cpu().numpy()


class OrtRunner(Runner):
    """An ONNX Runtime CPU session of the exported model (outputs ``logits``, ``features``)."""

    def __init__(self, session, onnx_path: Path, onnx_sha256: str, threads: int, probe_rdiff: float):
        super().__init__("onnxruntime", key_label("onnxruntime", "cpu"), "cpu",
                         {"name": "onnxruntime", "onnxruntime": onnxruntime_version(),
                          "export": export_tag(), "onnx_file": onnx_path.name,
                          "onnx_sha256": onnx_sha256, "threads": threads,
                          "probe_max_rel_diff_vs_torch": probe_rdiff,
                          "machine": platform.machine()})
        self.session = session
        self.input_name = session.get_inputs()[0].name

    def __call__(self, x):
        arr = np.ascontiguousarray(x.numpy() if hasattr(x, "numpy") else x, dtype=np.float32)
        logits, feats = self.session.run(["logits", "features"], {self.input_name: arr})
        return logits, feats


# --------------------------------------------------------------------------------------------
# Export and checks
# --------------------------------------------------------------------------------------------


def _wrapper(loaded):
    class LogitsAndFeatures(torch.nn.Module):
        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, x):
            m = self.model
            feats = m.forward_head(m.forward_features(x), pre_logits=True)
            return m.get_classifier()(feats), feats

    return LogitsAndFeatures(loaded.model).eval()


def onnx_path(loaded, cache_dir: Path) -> Path:
    """Where the exported model lives: keyed by model, weights sha256, input size, export tag."""
    desc = {"model": loaded.name, "weights_sha256": loaded.weights_sha256,
            "input_size": loaded.preprocess.input_size, "export": export_tag()}
    digest = hashlib.sha256(json.dumps(desc, sort_keys=True).encode()).hexdigest()[:16]
    return Path(cache_dir) / "onnx" / loaded.name / f"{digest}.onnx"


def export_onnx(loaded) -> bytes:
    """``loaded`` exported to ONNX (outputs ``logits`` and ``features``, dynamic batch size)."""
    size = loaded.preprocess.input_size
    x = torch.zeros(2, 3, size, size)
    model = _wrapper(loaded)
    batch = torch.export.Dim("batch", min=1, max=1 << 16)
    sink = io.StringIO()
    with warnings.catch_warnings(), contextlib.redirect_stdout(sink), torch.no_grad():
        warnings.simplefilter("ignore")
        prog = torch.onnx.export(model, (x,), dynamo=True, input_names=["x"],
                                 output_names=["logits", "features"], opset_version=ONNX_OPSET,
                                 dynamic_shapes=({0: batch},), external_data=False, verbose=False)
    return prog.model_proto.SerializeToString()


def save_onnx(loaded, data: bytes, path: Path) -> None:
    """Write an exported model atomically, then its checksum file (which makes it valid)."""
    atomic_write_bytes(path, data)
    atomic_write_bytes(path.with_suffix(".json"), json.dumps(
        {"sha256": hashlib.sha256(data).hexdigest(), "model": loaded.name,
         "weights_sha256": loaded.weights_sha256, "export": export_tag()},
        indent=1, sort_keys=True).encode())


def _read_checked(path: Path) -> tuple[bytes, str] | None:
    """The bytes and sha256 of an exported model whose checksum file matches; else ``None``."""
    try:
        data = path.read_bytes()
        want = json.loads(path.with_suffix(".json").read_text())["sha256"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    sha = hashlib.sha256(data).hexdigest()
    return (data, sha) if sha == want else None


def probe_input(loaded, n: int = PROBE_BATCH):
    """A seeded batch of ``n`` normalised-looking images (uniform pixels through the model's
    normalisation)."""
    size = loaded.preprocess.input_size
    g = torch.Generator().manual_seed(20230601)
    x = torch.rand(n, 3, size, size, generator=g)
    mean = torch.tensor(loaded.preprocess.mean).view(1, 3, 1, 1)
    std = torch.tensor(loaded.preprocess.std).view(1, 3, 1, 1)
    return (x - mean) / std


def max_rel_diff(a: np.ndarray, ref: np.ndarray) -> float:
    """Largest per-row ``max|a - ref| / max|ref|``."""
    a = np.asarray(a, np.float64).reshape(len(a), -1)
    ref = np.asarray(ref, np.float64).reshape(len(ref), -1)
    scale = np.maximum(np.abs(ref).max(axis=1), np.finfo(np.float32).tiny)
    return float((np.abs(a - ref).max(axis=1) / scale).max())


def _torch_reference(loaded, x):
    with torch.inference_mode():
        model = loaded.model
        fmt = torch.channels_last if next(model.parameters()).is_contiguous(
            memory_format=torch.channels_last) else torch.contiguous_format
        logits, feats = loaded.logits_and_features(x.contiguous(memory_format=fmt))
    return logits.float().numpy(), feats.float().numpy()


def build_ort_runner(loaded, cache_dir: Path, threads: int | None = None) -> OrtRunner:
    """An :class:`OrtRunner` for ``loaded``: export (once; cached and checksummed), open a
    session, and check it against PyTorch on :func:`probe_input`.

    Raises :class:`EngineError` naming what failed (export, session, probe disagreement).
    """
    loaded.model.to("cpu")  # in place (a PyTorch run on a GPU may have moved it)
    path = onnx_path(loaded, cache_dir)
    got = _read_checked(path)
    not_kept = None
    if got is None:
        if path.exists():
            warnings.warn(f"{path}: exported model missing its checksum or damaged; exporting "
                          "again", stacklevel=3)
        try:
            data = export_onnx(loaded)
        except Exception as exc:  # noqa: BLE001 - any exporter failure means: no ONNX engine
            raise EngineError(f"ONNX export of {loaded.name} failed ({type(exc).__name__}: "
                              f"{str(exc).splitlines()[0] if str(exc) else ''})") from exc
        sha = hashlib.sha256(data).hexdigest()
        try:
            save_onnx(loaded, data, path)
        except WriteError as exc:
            # the session runs from memory all the same (same bytes, same results); the entry's
            # meta.json says the file was not kept, and the extraction's own writes report the
            # full disk or read-only folder
            not_kept = str(exc)
    else:
        data, sha = got
    threads = int(threads or torch.get_num_threads())
    try:
        session = _ort_session(data, threads, ORT_SPINNING)
    except Exception as exc:  # noqa: BLE001
        raise EngineError(f"ONNX Runtime could not load {path} ({type(exc).__name__}: "
                          f"{exc})") from exc
    x = probe_input(loaded)
    ref_l, ref_f = _torch_reference(loaded, x)
    runner = OrtRunner(session, path, sha, threads, 0.0)
    got_l, got_f = runner(x)
    rdiff = max(max_rel_diff(got_l, ref_l), max_rel_diff(got_f, ref_f))
    if not (rdiff <= PROBE_RTOL and np.array_equal(got_l.argmax(1), ref_l.argmax(1))):
        raise EngineError(f"ONNX Runtime disagrees with PyTorch on {loaded.name}'s probe batch "
                          f"(max relative difference {rdiff:.1e} > {PROBE_RTOL:g}, or another "
                          f"top-1); {path} may be stale or the exporter wrong")
    runner.meta["probe_max_rel_diff_vs_torch"] = float(f"{rdiff:.3e}")
    if not_kept:
        runner.meta["onnx_file_not_kept"] = not_kept
    return runner


_FALLBACK_WARNED: set[tuple[str, str]] = set()


def make_runner(loaded, engine: str | None, device: str, cache_dir: Path) -> Runner:
    """The runner extraction uses for ``engine`` on ``device``.

    ``auto`` falls back from ONNX Runtime to PyTorch with a warning (once per model and reason in
    a process) and records ``fallback`` in the runner's meta; an explicit ``onnxruntime`` raises
    :class:`EngineError`.
    """
    if getattr(loaded, "kind", "torch") == "onnx":  # a user's ONNX file: ONNX Runtime only
        return onnx_runner(loaded, engine, device)
    if getattr(loaded, "kind", "torch") == "tflite":
        check_litert_request(loaded, engine)
        return _cached_litert_runner(loaded)
    asked = requested_engine(engine)
    if asked == "auto" and str(device) == "cpu" and onnxruntime_version() is None:
        return _fallback(loaded, device, "the onnxruntime package does not import")
    name = resolve_engine(asked, device)
    if name == "torch":
        return TorchRunner(loaded, device)
    try:
        return _cached_ort_runner(loaded, Path(cache_dir))
    except EngineError as exc:
        if asked == "onnxruntime":
            raise
        return _fallback(loaded, device, str(exc))


def _fallback(loaded, device: str, reason: str) -> TorchRunner:
    key = (loaded.name, reason)
    if key not in _FALLBACK_WARNED:
        _FALLBACK_WARNED.add(key)
        warnings.warn(f"{loaded.name}: ONNX Runtime engine unavailable ({reason}); extracting "
                      "with the slower PyTorch engine instead. Its cache entries are keyed "
                      "'torch' and never mix with ONNX Runtime ones", stacklevel=3)
    return TorchRunner(loaded, device, {"fallback": {"from": "onnxruntime", "reason": reason}})


_ORT_RUNNERS: dict[tuple, OrtRunner] = {}


def _cached_ort_runner(loaded, cache_dir: Path) -> OrtRunner:
    """One checked session per (model, weights, export, threads, ONNX Runtime) in a process,
    whichever cache folder asked first (its ``.onnx`` file has the same content in any folder)."""
    k = (loaded.name, loaded.weights_sha256, loaded.preprocess.input_size, export_tag(),
         torch.get_num_threads(), onnxruntime_version(), ORT_SPINNING)
    runner = _ORT_RUNNERS.get(k)
    if runner is None:
        runner = build_ort_runner(loaded, cache_dir)
        if len(_ORT_RUNNERS) >= 4:
            _ORT_RUNNERS.pop(next(iter(_ORT_RUNNERS)))
        _ORT_RUNNERS[k] = runner
    return runner
