"""LiteRT (PyPI ``ai-edge-litert``), the engine of TensorFlow Lite models
(``LoadedModel.kind == "tflite"``): version and cache-key label, the graph reader that finds the
logit (SOFTMAX input) and feature tensors, the logit layer's dequantized weights, and the runner.
See :mod:`.engines` for how engines enter cache keys."""

from __future__ import annotations

import functools
import hashlib
import os
import platform
import warnings
from dataclasses import dataclass
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import numpy as np
import torch

from ..errors import EngineError
from ._runner import Runner, requested_engine


@functools.lru_cache(maxsize=1)
def litert_version() -> str | None:
    """The installed LiteRT's (``ai-edge-litert``) version, or ``None`` when it does not import."""
    try:
        from ai_edge_litert import interpreter  # noqa: F401
    except Exception:  # noqa: BLE001 - ImportError, or a broken native library
        return None
    try:
        return version("ai-edge-litert")
    except PackageNotFoundError:  # pragma: no cover - imported but not installed as a package
        import ai_edge_litert

        return str(getattr(ai_edge_litert, "__version__", "unknown"))


def litert_label() -> str:
    """The cache-key label of LiteRT: its version and the kernels (:data:`LITERT_KERNELS`)."""
    return f"litert {litert_version()}; {LITERT_KERNELS}"


# --------------------------------------------------------------------------------------------
# LiteRT (TensorFlow Lite models)
# --------------------------------------------------------------------------------------------

#: The kernels the LiteRT engine runs (part of its label): the default XNNPACK delegate.
LITERT_KERNELS = "XNNPACK"
#: Tensor-reshaping ops allowed between the logit layer and the SOFTMAX op.
_PASS_THROUGH = ("RESHAPE", "SQUEEZE")
#: Ops that can be the logit layer.
_LOGIT_LAYERS = ("CONV_2D", "FULLY_CONNECTED")


def check_litert_request(loaded, engine: str | None) -> None:
    """A TFLite model runs in LiteRT only: ``engine`` must be ``auto``/``litert`` (or unset), and
    LiteRT must import; else :class:`EngineError` naming the fix."""
    asked = requested_engine(engine)
    if asked not in ("auto", "litert"):
        raise EngineError(f"{loaded.name} is a TensorFlow Lite model, run by LiteRT only; engine "
                          f"{asked!r} cannot run it (use engine auto or litert, or unset "
                          "NEUDEP_ENGINE)")
    if litert_version() is None:
        raise EngineError(f"{loaded.name} needs LiteRT: the ai-edge-litert package does not "
                          "import; install it (`pip install -e .` pins it)")


def litert_interpreter(data: bytes, threads: int, delegate: bool = True):
    """A LiteRT interpreter of a model's bytes, every tensor kept
    (``experimental_preserve_all_tensors``, so the softmax input can be read), ``threads``
    threads, tensors allocated. ``delegate``: the default XNNPACK delegate (the engine's
    kernels); ``False``: the builtin kernels, whose op list names every op (the delegate folds
    them into ``DELEGATE`` nodes), as :func:`litert_graph` needs."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    kind = OpResolverType.AUTO if delegate else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "preserve_all_tensors is meant for debugging"
        it = Interpreter(model_content=data, num_threads=int(threads),
                         experimental_preserve_all_tensors=True,
                         experimental_op_resolver_type=kind)
    it.allocate_tensors()
    return it


@dataclass(frozen=True)
class LiteRTGraph:
    """Where a TFLite classifier's input, logits and features are (tensor index, shape,
    dtype and per-tensor (scale, zero point))."""

    input_index: int
    input_shape: tuple[int, ...]
    input_dtype: str
    input_quant: tuple[float, int]
    logits_index: int
    logits_quant: tuple[float, int]
    num_outputs: int
    features_index: int | None
    features_quant: tuple[float, int] | None
    num_features: int | None
    logit_layer: str | None
    ops: tuple[str, ...]


def _quant(t: dict) -> tuple[float, int]:
    scale, zp = t["quantization"]
    return float(scale), int(zp)


def litert_graph(data: bytes, source: str) -> LiteRTGraph:
    """Find a classifier's tensors in a TFLite model (an undelegated interpreter of its bytes;
    tensor indices are the flatbuffer's, the same in any interpreter): the single uint8/int8 image
    input, the input of the (single, last) SOFTMAX op (the pre-softmax logits, per-tensor
    quantized) and, walking back through RESHAPE/SQUEEZE, the logit layer (CONV_2D or
    FULLY_CONNECTED) whose input is the features. Raises :class:`EngineError` naming
    ``source`` when the graph is not such a classifier (no features is not an error: the
    features are then ``None``)."""
    it = litert_interpreter(data, 1, delegate=False)
    ops = it._get_ops_details()
    tensors = {int(t["index"]): t for t in it.get_tensor_details()}
    ins = it.get_input_details()
    if len(ins) != 1 or len(ins[0]["shape"]) != 4 or ins[0]["shape"][3] != 3:
        raise EngineError(f"{source}: expected one NHWC RGB image input, got "
                          f"{[tuple(int(v) for v in d['shape']) for d in ins]}")
    inp = ins[0]
    if np.dtype(inp["dtype"]) not in (np.uint8, np.int8):
        raise EngineError(f"{source}: input is {np.dtype(inp['dtype'])}, expected a quantized "
                          "uint8 or int8 image")
    soft = [op for op in ops if op["op_name"] == "SOFTMAX"]
    if len(soft) != 1:
        raise EngineError(f"{source}: {len(soft)} SOFTMAX ops, expected one (its input is the "
                          "pre-softmax logits)")
    li = int(soft[0]["inputs"][0])
    lt = tensors[li]
    shape = tuple(int(v) for v in lt["shape"])
    scale, zp = _quant(lt)
    if not (scale > 0 and np.dtype(lt["dtype"]) in (np.uint8, np.int8)):
        raise EngineError(f"{source}: the SOFTMAX input {lt['name']!r} is not per-tensor "
                          f"quantized (dtype {np.dtype(lt['dtype'])}, scale {scale})")
    if len(shape) != 2 or shape[0] != 1:
        raise EngineError(f"{source}: the SOFTMAX input has shape {shape}, expected (1, classes)")
    producer = {int(o): op for op in ops for o in op["outputs"]}
    t, layer = li, None
    while t in producer:
        op = producer[t]
        if op["op_name"] in _PASS_THROUGH:
            t = int(op["inputs"][0])
            continue
        if op["op_name"] in _LOGIT_LAYERS:
            layer = op
        break
    f_index = f_quant = d = None
    if layer is not None:
        fi = int(layer["inputs"][0])
        ft = tensors[fi]
        fq = _quant(ft)
        if fq[0] > 0 and np.dtype(ft["dtype"]) in (np.uint8, np.int8):
            f_index, f_quant = fi, fq
            d = int(np.prod(ft["shape"][1:]))
    return LiteRTGraph(input_index=int(inp["index"]),
                       input_shape=tuple(int(v) for v in inp["shape"]),
                       input_dtype=str(np.dtype(inp["dtype"])), input_quant=_quant(inp),
                       logits_index=li, logits_quant=(scale, zp), num_outputs=shape[1],
                       features_index=f_index, features_quant=f_quant, num_features=d,
                       logit_layer=None if layer is None else str(layer["op_name"]),
                       ops=tuple(str(op["op_name"]) for op in ops))


def litert_head(data: bytes, source: str, drop_leading: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The logit layer of a TFLite classifier, dequantized: ``(W, b)`` float64 with ``W`` of
    shape ``(outputs - drop_leading, d)``, so that ``logits ~= features @ W.T + b`` up to the
    rounding of the logits to their grid. Per-tensor or per-output-channel weight quantization;
    the int32 bias has scale ``input scale x weight scale`` and zero point 0 (TFLite's rule)."""
    g = litert_graph(data, source)
    if g.logit_layer is None:
        raise EngineError(f"{source}: no CONV_2D/FULLY_CONNECTED logit layer feeds the SOFTMAX")
    it = litert_interpreter(data, 1, delegate=False)
    ops = it._get_ops_details()
    tensors = {int(t["index"]): t for t in it.get_tensor_details()}
    layer = next(op for op in ops if op["op_name"] == g.logit_layer
                 and int(op["inputs"][0]) == g.features_index)
    wt = tensors[int(layer["inputs"][1])]
    w = it.get_tensor(wt["index"]).astype(np.float64)
    w = w.reshape(w.shape[0], -1)  # CONV_2D 1x1 [out, 1, 1, in] or FULLY_CONNECTED [out, in]
    qp = wt["quantization_parameters"]
    ws = np.asarray(qp["scales"], np.float64)
    wz = np.asarray(qp["zero_points"], np.float64)
    if ws.size not in (1, w.shape[0]):
        raise EngineError(f"{source}: logit weights quantized along axis "
                          f"{qp.get('quantized_dimension')} with {ws.size} scales; expected one "
                          f"per tensor or per output ({w.shape[0]})")
    W = (w - wz.reshape(-1, 1)) * ws.reshape(-1, 1)
    b = np.zeros(w.shape[0])
    if len(layer["inputs"]) > 2 and int(layer["inputs"][2]) >= 0:
        bt = tensors[int(layer["inputs"][2])]
        bq = it.get_tensor(bt["index"]).astype(np.float64)
        b = bq * ws * g.features_quant[0]
    return W[drop_leading:], np.broadcast_to(b, (w.shape[0],))[drop_leading:].copy()


class LiteRTRunner(Runner):
    """A TFLite classifier in LiteRT on the CPU, one image per invocation.

    The inputs are images in [0, 1] (``Preprocess`` mean 0, std 1), fed as the raw 8-bit pixels
    ``round(255 x)`` (uint8; ``- 128`` for an int8 input), as the int8 MobileNets expect. The
    logits are the dequantized SOFTMAX input with the first ``drop_leading`` outputs removed
    (the background class of the 1001-way TF-Slim heads); the features the dequantized input of
    the logit layer (zeros of width ``num_features`` when the graph has none: see
    :attr:`LoadedModel.num_features`).
    """

    def __init__(self, loaded, threads: int):
        data = Path(loaded.file).read_bytes()
        sha = hashlib.sha256(data).hexdigest()
        if sha != loaded.weights_sha256:
            raise EngineError(f"{loaded.file}: sha256 {sha} is not the loaded model's "
                              f"{loaded.weights_sha256}; the file changed after loading, load "
                              "the model again")
        self.graph = litert_graph(data, str(loaded.file))
        self.interpreter = litert_interpreter(data, threads)
        self.loaded = loaded
        self.drop = int(loaded.num_classes and self.graph.num_outputs - loaded.num_classes)
        if self.drop < 0:
            raise EngineError(f"{loaded.file}: {self.graph.num_outputs} outputs, fewer than the "
                              f"{loaded.num_classes} classes of {loaded.name}")
        super().__init__("litert", litert_label(), "cpu",
                         {"name": "litert", "litert": litert_version(), "threads": int(threads),
                          "kernels": LITERT_KERNELS, "tflite_file": Path(loaded.file).name,
                          "tflite_sha256": sha, "logits_quantization": list(self.graph.logits_quant),
                          "features_quantization": (list(self.graph.features_quant)
                                                    if self.graph.features_quant else None),
                          "dropped_leading_outputs": self.drop,
                          "machine": platform.machine()})

    def __call__(self, x):
        g, it = self.graph, self.interpreter
        arr = np.asarray(x.numpy() if hasattr(x, "numpy") else x, dtype=np.float32)
        pix = np.clip(np.rint(arr * 255.0), 0, 255).astype(np.int16).transpose(0, 2, 3, 1)
        if g.input_dtype == "int8":
            pix = pix - 128
        pix = pix.astype(g.input_dtype)
        if pix.shape[1:] != g.input_shape[1:]:
            raise EngineError(f"{self.loaded.name}: input batch of images {pix.shape[1:3]}, the "
                              f"model takes {g.input_shape[1:3]}")
        n = pix.shape[0]
        d = self.loaded.num_features
        logits = np.empty((n, g.num_outputs - self.drop), np.float32)
        feats = np.zeros((n, d), np.float32)
        ls, lz = g.logits_quant
        for i in range(n):
            it.set_tensor(g.input_index, pix[i:i + 1])
            it.invoke()
            q = it.get_tensor(g.logits_index).reshape(-1)[self.drop:]
            logits[i] = (q.astype(np.float32) - np.float32(lz)) * np.float32(ls)
            if g.features_index is not None:
                fs, fz = g.features_quant
                f = it.get_tensor(g.features_index).reshape(-1)
                feats[i] = (f.astype(np.float32) - np.float32(fz)) * np.float32(fs)
        return logits, feats


_LITERT_RUNNERS: dict[tuple, LiteRTRunner] = {}


def litert_threads() -> int:
    """LiteRT's thread count: ``$NEUDEP_LITERT_THREADS``, else torch's intra-op threads."""
    env = os.environ.get("NEUDEP_LITERT_THREADS")
    if env:
        try:
            n = int(env)
        except ValueError:
            n = 0
        if n < 1:
            raise ValueError(f"NEUDEP_LITERT_THREADS={env!r}: expected a positive integer")
        return n
    return int(torch.get_num_threads())


def _cached_litert_runner(loaded) -> LiteRTRunner:
    """One interpreter per (model, file sha256, threads, LiteRT version) in a process."""
    threads = litert_threads()
    k = (loaded.name, loaded.weights_sha256, threads, litert_version())
    runner = _LITERT_RUNNERS.get(k)
    if runner is None:
        runner = LiteRTRunner(loaded, threads)
        if len(_LITERT_RUNNERS) >= 6:
            _LITERT_RUNNERS.pop(next(iter(_LITERT_RUNNERS)))
        _LITERT_RUNNERS[k] = runner
    return runner
