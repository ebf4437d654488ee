"""Any ImageNet-style classifier saved as an ONNX file: a :class:`LoadedModel` of kind ``onnx``.

:func:`load_onnx` checks the file once (it opens in ONNX Runtime, has one image input, NCHW or
NHWC with 3 channels, float32/float16, one float output, and returns one finite logit row per
image on a probe batch) and records its sha256 as the weights checksum (with the sha256 of every
external-data file it names, e.g. ``model.onnx.data``), so the cache key of every extraction
(:func:`neudep_utils.cache.extract`) covers the weights' bytes and the preprocessing.

Outputs that are not one logit row per image are refused with the fix: several outputs (say
features and logits), integer outputs (argmax or top-k indices), probabilities (a graph ending in
Softmax or LogSoftmax: dependencies of probabilities are not those of logits). A 1001-way output
is taken as the TF-Slim order (background, then the 1000 ImageNet-1k classes, as the study's
int8 MobileNets): the first output is dropped, with a warning, and the cache key says so.
:func:`onnx_preprocess` builds the preprocessing from a preset (:data:`PRESETS`) and overrides.
The runner (:func:`onnx_runner`) runs the file in ONNX Runtime on the CPU, batch by batch.

Getting an ONNX file from a timm or torchvision checkpoint is one ``torch.onnx.export`` call
(a dynamic batch size lets the extraction batch images)::

    import torch, torchvision
    model = torchvision.models.resnet18(weights=None).eval()   # or your checkpoint:
    # model.load_state_dict(torch.load("resnet18.pth", weights_only=True))
    # timm: model = timm.create_model("resnet50", checkpoint_path="resnet50.pth").eval()
    x = torch.zeros(1, 3, 224, 224)
    torch.onnx.export(model, (x,), "resnet18.onnx", input_names=["x"],
                      output_names=["logits"], opset_version=18, external_data=False,
                      dynamic_shapes=({0: torch.export.Dim("batch", min=1, max=4096)},))

then ``python -m neudep_utils extract --onnx resnet18.onnx --preset imagenet --data FOLDER --out
X.npy``. The file must output logits (before any softmax) for the dependencies to mean what the
paper means; probabilities run too, but their dependencies are those of the probabilities.
"""

from __future__ import annotations

import hashlib
import math
import re
import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from ..errors import EngineError, ModelError
from ._base import LoadedModel, Preprocess, sha256_file
from ._runner import Runner, _ort_session, onnxruntime_version, requested_engine

__all__ = ["PRESETS", "OnnxFileRunner", "load_onnx", "onnx_preprocess", "onnx_runner"]

#: Preprocessing presets: ``imagenet`` (torchvision / most timm CNNs: 224 px, crop 0.875,
#: bilinear, ImageNet mean/std), ``inception`` (Inception/Xception-style: 299 px, bicubic,
#: mean = std = 0.5, i.e. pixels in [-1, 1]), ``raw`` (224 px, pixels in [0, 1], no
#: normalisation).
PRESETS: dict[str, Preprocess] = {
    "imagenet": Preprocess(224, 0.875, "bilinear", (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
    "inception": Preprocess(299, 0.875, "bicubic", (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)),
    "raw": Preprocess(224, 0.875, "bilinear", (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)),
}

_INTERP = ("bilinear", "bicubic", "nearest")


def _triple(v, name: str) -> tuple[float, float, float] | None:
    if v is None:
        return None
    a = [float(x) for x in (v if isinstance(v, (list, tuple)) else [v])]
    if len(a) == 1:
        a = a * 3
    if len(a) != 3 or not all(math.isfinite(x) for x in a):
        raise ValueError(f"{name} must be 1 or 3 finite numbers (per RGB channel); got {v!r}")
    return (a[0], a[1], a[2])


def onnx_preprocess(preset: str = "imagenet", *, input_size: int | None = None,
                    crop_pct: float | None = None, interpolation: str | None = None,
                    mean=None, std=None, scale: float | None = None) -> Preprocess:
    """The preprocessing of an ONNX classifier: a preset with overrides.

    Pixels are first scaled to [0, 1], then normalised ``(x - mean) / std`` per channel.

    Parameters
    ----------
    preset : str, default "imagenet"
        A key of :data:`PRESETS`.
    input_size : int, optional
        Side of the square centre crop fed to the model.
    crop_pct : float, optional
        Fraction of the resized shorter side kept by the centre crop (0 < crop_pct <= 1).
    interpolation : {"bilinear", "bicubic", "nearest"}, optional
        Resize filter.
    mean, std : float or sequence of 3 floats, optional
        Per-channel normalisation in [0, 1] pixel units (e.g. 0.485 0.456 0.406).
    scale : float, optional
        Instead of ``mean``/``std``: feed ``scale * pixel`` (e.g. 255 for a model that takes raw
        0..255 pixels), i.e. mean 0 and std ``1 / scale``.

    Returns
    -------
    Preprocess
        The preprocessing (its :meth:`~Preprocess.describe` enters the cache key).
    """
    if preset not in PRESETS:
        raise ValueError(f"unknown preprocessing preset {preset!r}; use one of "
                         f"{', '.join(PRESETS)}")
    p = PRESETS[preset]
    if scale is not None and (mean is not None or std is not None):
        raise ValueError("give either --scale or --mean/--std, not both")
    if input_size is not None:
        if int(input_size) != input_size or not 16 <= int(input_size) <= 4096:
            raise ValueError(f"input size must be an integer from 16 to 4096 pixels; got "
                             f"{input_size!r}")
        p = replace(p, input_size=int(input_size))
    if crop_pct is not None:
        if not (math.isfinite(crop_pct) and 0.05 <= crop_pct <= 1.0):
            raise ValueError(f"crop fraction must be in [0.05, 1]; got {crop_pct!r}")
        p = replace(p, crop_pct=float(crop_pct))
    if interpolation is not None:
        if interpolation not in _INTERP:
            raise ValueError(f"interpolation must be one of {', '.join(_INTERP)}; got "
                             f"{interpolation!r}")
        p = replace(p, interpolation=interpolation)
    if scale is not None:
        if not (math.isfinite(scale) and scale > 0):
            raise ValueError(f"scale must be a positive number; got {scale!r}")
        p = replace(p, mean=(0.0, 0.0, 0.0), std=(1.0 / scale,) * 3)
    m, s = _triple(mean, "mean"), _triple(std, "std")
    if m is not None:
        p = replace(p, mean=m)
    if s is not None:
        if min(s) <= 0:
            raise ValueError(f"std must be positive; got {std!r}")
        p = replace(p, std=s)
    return p


def _session(data: bytes | str, threads: int | None = None):
    return _ort_session(data, int(threads or torch.get_num_threads()))


def _layout(session, path: Path) -> tuple[str, str, int | None, int | None, str]:
    """``(input name, layout NCHW/NHWC, static side or None, static batch or None, dtype)``."""
    ins = session.get_inputs()
    if len(ins) != 1:
        raise ModelError(f"{path}: the ONNX model has {len(ins)} inputs "
                         f"({', '.join(i.name for i in ins)}); an image classifier with one image "
                         "input is needed (export it with only the image as input)")
    inp = ins[0]
    shape = list(inp.shape)
    if len(shape) != 4:
        raise ModelError(f"{path}: the input {inp.name!r} has shape {shape}; an image batch "
                         "(N, 3, H, W) or (N, H, W, 3) is needed")
    if inp.type not in ("tensor(float)", "tensor(float16)"):
        raise ModelError(f"{path}: the input {inp.name!r} is {inp.type}; only float32 or float16 "
                         "image inputs are supported (export the model with a float input)")

    def static(d):
        return d if isinstance(d, int) and d > 0 else None

    if static(shape[1]) == 3:
        layout, hw = "NCHW", shape[2:4]
    elif static(shape[3]) == 3:
        layout, hw = "NHWC", shape[1:3]
    else:
        raise ModelError(f"{path}: the input {inp.name!r} has shape {shape}: no axis of 3 colour "
                         "channels at position 1 (NCHW) or 3 (NHWC)")
    h, w = static(hw[0]), static(hw[1])
    if (h is None) != (w is None) or (h is not None and h != w):
        raise ModelError(f"{path}: the input is {h}x{w}; only square inputs (or a dynamic size) "
                         "are supported")
    _check_outputs(session, path)
    return inp.name, layout, h, static(shape[0]), inp.type


#: Output element types taken as logits.
_FLOAT_OUTPUTS = ("tensor(float)", "tensor(float16)", "tensor(double)")


def _check_outputs(session, path: Path) -> None:
    """Refuse a model with several outputs (which one holds the logits is a guess) or a
    non-float output (argmax / top-k indices are not logits)."""
    outs = session.get_outputs()
    if len(outs) != 1:
        shown = ", ".join(f"{o.name!r} {o.shape}" for o in outs[:6])
        raise ModelError(f"--onnx {path}: the model has {len(outs)} outputs ({shown}); which one "
                         "holds the logits is not guessed: export only the logits (e.g. "
                         "output_names=['logits'] with a forward returning them alone), or cut "
                         "the graph: onnx.utils.extract_model(FILE, OUT, [input], ['<logits "
                         "output>'])")
    if outs[0].type not in _FLOAT_OUTPUTS:
        raise ModelError(f"--onnx {path}: the output {outs[0].name!r} is {outs[0].type}, not "
                         "float logits (integer outputs are class indices, e.g. of an ArgMax or "
                         "TopK); export the logits, before any argmax or top-k")


class OnnxFileRunner(Runner):
    """Runs a user's ONNX file in ONNX Runtime: ``runner(x)`` -> ``(logits, features)``.

    ``x`` is an NCHW float batch (as the extraction's data loader gives it); NHWC models get it
    transposed, float16 models get it cast. Models with a fixed batch size of 1 are run image by
    image. ``features`` is an empty ``(B, 0)`` array (a model file has no known penultimate
    layer).

    Parameters
    ----------
    loaded : LoadedModel
        From :func:`load_onnx` (``kind == "onnx"``).
    threads : int, optional
        ONNX Runtime intra-op threads (default: torch's thread count).
    """

    def __init__(self, loaded: LoadedModel, threads: int | None = None):
        try:
            self.session = _session(str(loaded.file), threads)
        except Exception as exc:  # noqa: BLE001 - one clear error
            raise EngineError(f"ONNX Runtime could not load {loaded.file} ({type(exc).__name__}: "
                              f"{str(exc).splitlines()[0] if str(exc) else ''})") from exc
        self.name, self.layout, _, self.batch, dtype = _layout(self.session, loaded.file)
        self.dtype = np.float16 if dtype == "tensor(float16)" else np.float32
        self.output = self.session.get_outputs()[0].name
        self.drop = int(loaded.dropped_outputs)
        super().__init__("onnxruntime", onnx_key_label(loaded), "cpu",
                         {"name": "onnxruntime", "onnxruntime": onnxruntime_version(),
                          "onnx_file": str(loaded.file), "onnx_sha256": loaded.weights_sha256,
                          "layout": self.layout, "input": self.name, "output": self.output,
                          "input_dtype": dtype, "dropped_outputs": self.drop})

    def _run(self, arr: np.ndarray) -> np.ndarray:
        out = self.session.run([self.output], {self.name: arr})[0]
        out = np.asarray(out)
        if out.ndim == 4 and out.shape[2:] == (1, 1):
            out = out[:, :, 0, 0]
        if out.ndim != 2 or out.shape[0] != arr.shape[0]:
            raise ModelError(f"the ONNX model's output {self.output!r} has shape {out.shape} for "
                             f"a batch of {arr.shape[0]}; a (batch, n_classes) logit matrix is "
                             "needed")
        return out[:, self.drop:].astype(np.float32, copy=False)

    def __call__(self, x):
        arr = np.asarray(x.numpy() if hasattr(x, "numpy") else x, dtype=np.float32)
        if self.layout == "NHWC":
            arr = arr.transpose(0, 2, 3, 1)
        arr = np.ascontiguousarray(arr, dtype=self.dtype)
        if self.batch is not None and self.batch != arr.shape[0]:
            if self.batch != 1:
                raise ModelError(f"the ONNX model has a fixed batch size of {self.batch}; export "
                                 "it with a dynamic batch axis (or batch size 1)")
            logits = np.concatenate([self._run(arr[i:i + 1]) for i in range(arr.shape[0])])
        else:
            logits = self._run(arr)
        return logits, np.zeros((logits.shape[0], 0), np.float32)


def onnx_key_label(loaded: LoadedModel | None = None) -> str:
    """The cache-key engine label of a user's ONNX file run by ONNX Runtime (the file itself is
    keyed by its sha256 as the weights checksum).

    Parameters
    ----------
    loaded : LoadedModel, optional
        The model; a 1001-way model whose background output is dropped says so in its label.

    Returns
    -------
    str
        The label.
    """
    label = f"onnxruntime {onnxruntime_version()}; onnx file"
    if loaded is not None and loaded.dropped_outputs:
        label += f"; first {loaded.dropped_outputs} output(s) (background) dropped"
    return label


def onnx_weights_sha256(path: Path) -> str:
    """The weights checksum of an ONNX file: its sha256, or, when its tensors live in external
    data files (``model.onnx.data``, what ``torch.onnx.export`` writes for large models), the
    sha256 of the file's sha256 and of each external file's name and sha256.

    Parameters
    ----------
    path : path
        The ``.onnx`` file.

    Returns
    -------
    str
        The hex digest.
    """
    sha = sha256_file(path)
    files = _external_files(path)
    if not files:
        return sha  # the checksum of a self-contained file is unchanged
    h = hashlib.sha256(f"onnx+external-data\n{sha}\n".encode())
    for name in files:
        f = path.parent / name
        if not f.is_file():
            raise ModelError(f"--onnx {path}: its weights are in the external-data file {f}, "
                             "which does not exist; keep the .data file beside the .onnx file "
                             "(as torch.onnx.export wrote them)")
        h.update(f"{name}\t{sha256_file(f)}\n".encode())
    return h.hexdigest()


def _external_files(path: Path) -> list[str]:
    """The external-data files (relative names) the tensors of an ONNX file point to."""
    import onnx
    from onnx.external_data_helper import uses_external_data

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception:  # noqa: BLE001 - not parseable here: ONNX Runtime's check will say why
        return []
    names: set[str] = set()
    graphs = [model.graph]
    while graphs:
        g = graphs.pop()
        tensors = list(g.initializer) + list(g.sparse_initializer)
        for node in g.node:
            for a in node.attribute:
                tensors += ([a.t] if a.HasField("t") else []) + list(a.tensors)
                graphs += ([a.g] if a.HasField("g") else []) + list(a.graphs)
        for t in tensors:
            if isinstance(t, onnx.SparseTensorProto):
                t = t.values
            if uses_external_data(t):
                names.update(e.value for e in t.external_data if e.key == "location")
    return sorted(names)


def _model_name(path: Path) -> str:
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", path.stem).strip("._") or "model"
    return f"onnx-{stem[:60]}"


def load_onnx(path, preprocess: Preprocess | None = None, *, preset: str = "imagenet",
              adapt_size: bool | None = None, name: str | None = None) -> LoadedModel:
    """Check an ONNX classifier and describe it as a :class:`LoadedModel` of kind ``onnx``.

    Parameters
    ----------
    path : str or path
        The ``.onnx`` file.
    preprocess : Preprocess, optional
        Its preprocessing (default: ``preset``).
    preset : str, default "imagenet"
        Preset used when ``preprocess`` is not given.
    adapt_size : bool, optional
        When the model has a fixed input size that differs from the preprocessing's, use the
        model's (``True``) or raise (``False``); default: adapt only when ``preprocess`` is not
        given.
    name : str, optional
        Name in the cache (default ``onnx-<file stem>``).

    Returns
    -------
    LoadedModel
        ``kind="onnx"``, ``file`` the resolved path, ``weights_sha256`` the file's sha256 (and
        its external data's, :func:`onnx_weights_sha256`), ``num_classes`` from a probe batch
        (1000 for a 1001-way model, whose background output is dropped), ``num_features`` 0.

    Raises
    ------
    ModelError
        Missing or unreadable file (or external-data file), not an ONNX model, unsupported
        input, an input size that disagrees with the model's, several or integer outputs, or an
        output that is not one finite logit row per image (probabilities included).
    """
    p = Path(path).expanduser()
    if not p.exists():
        raise ModelError(f"--onnx {path}: no such file; check the path")
    if p.is_dir():
        raise ModelError(f"--onnx {path}: is a folder; give the .onnx file")
    p = p.resolve()
    try:
        sha = onnx_weights_sha256(p)
    except OSError as exc:
        raise ModelError(f"--onnx {path}: cannot be read ({exc.strerror}); check its "
                         "permissions") from exc
    try:
        session = _session(str(p), 1)
    except Exception as exc:  # noqa: BLE001 - a damaged or non-ONNX file: one line
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ModelError(f"--onnx {path}: ONNX Runtime cannot load it as a model ({first[:200]});"
                         " is it an ONNX file (torch.onnx.export) and complete?") from exc
    _, layout, side, batch, dtype = _layout(session, p)
    if adapt_size is None:
        adapt_size = preprocess is None
    if preprocess is None:
        preprocess = onnx_preprocess(preset)
    if side is not None and side != preprocess.input_size and adapt_size:
        preprocess = replace(preprocess, input_size=side)
    elif side is not None and side != preprocess.input_size:
        raise ModelError(f"--onnx {path}: the model takes {side}x{side} images but the input size "
                         f"is {preprocess.input_size}; pass --input-size {side}")
    size = preprocess.input_size
    n = 1 if batch == 1 else 2
    shape = (n, 3, size, size) if layout == "NCHW" else (n, size, size, 3)
    x = np.random.default_rng(0).standard_normal(shape).astype(
        np.float16 if dtype == "tensor(float16)" else np.float32)
    try:
        out = np.asarray(session.run(None, {session.get_inputs()[0].name: x})[0])
    except Exception as exc:  # noqa: BLE001
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise ModelError(f"--onnx {path}: the model fails on a {shape} input batch "
                         f"({first[:200]}); check --input-size and the export") from exc
    if out.ndim == 4 and out.shape[2:] == (1, 1):
        out = out[:, :, 0, 0]
    if out.ndim != 2 or out.shape[0] != n or out.shape[1] < 2:
        raise ModelError(f"--onnx {path}: the first output has shape {out.shape} for a batch of "
                         f"{n}; a (batch, n_classes) logit matrix is needed")
    if not np.all(np.isfinite(out)):
        raise ModelError(f"--onnx {path}: the model returns NaN or inf on a probe batch")
    _refuse_probabilities(out, path)
    drop = _background_outputs(out.shape[1], path)
    return LoadedModel(name=name or _model_name(p), timm_name="", model=None,
                       preprocess=preprocess, weights_sha256=sha,
                       weights_source=f"ONNX file {p}", num_classes=int(out.shape[1]) - drop,
                       num_features=0, kind="onnx", file=p, family="onnx",
                       dropped_outputs=drop)


def _refuse_probabilities(out: np.ndarray, path) -> None:
    """Refuse outputs that are (log-)probabilities: every row in [0, 1] summing to 1 (a final
    Softmax), or every row <= 0 with log-sum-exp 0 (a final LogSoftmax)."""
    out = out.astype(np.float64)
    if np.all(out >= 0) and np.all(out <= 1) and np.allclose(out.sum(1), 1.0, atol=1e-3):
        what = "probabilities (every row is in [0, 1] and sums to 1: the graph ends in a Softmax)"
    elif np.all(out <= 0) and np.allclose(np.log(np.exp(out).sum(1)), 0.0, atol=1e-3):
        what = "log-probabilities (every row's log-sum-exp is 0: the graph ends in a LogSoftmax)"
    else:
        return
    raise ModelError(f"--onnx {path}: the model outputs {what}, not logits; the dependencies of "
                     "probabilities are not those of logits: export the model without its final "
                     "softmax (the logits it takes), or cut the graph before it with "
                     "onnx.utils.extract_model(FILE, OUT, [input], ['<softmax input>'])")


def _background_outputs(n_out: int, path) -> int:
    """Leading outputs to drop: 1 for a 1001-way model (background, then ImageNet-1k)."""
    if n_out != 1001:
        return 0
    warnings.warn(f"--onnx {path}: 1001 outputs, taken as background + the 1000 ImageNet-1k "
                  "classes (the TF-Slim order of the study's int8 MobileNets): the first output "
                  "is dropped, so that logit j is ImageNet class j", UserWarning, stacklevel=3)
    return 1


def onnx_runner(loaded: LoadedModel, engine: str | None, device: str) -> OnnxFileRunner:
    """The runner of an ONNX-file model (``loaded.kind == "onnx"``): ONNX Runtime on the CPU.

    Parameters
    ----------
    loaded : LoadedModel
        From :func:`load_onnx`.
    engine : str or None
        ``None``, ``auto`` or ``onnxruntime`` (``torch`` cannot run a model file).
    device : str
        Must be ``cpu``.

    Returns
    -------
    OnnxFileRunner
        The runner.
    """
    if requested_engine(engine) == "torch":
        raise EngineError(f"{loaded.file}: an ONNX file runs in ONNX Runtime, not PyTorch; unset "
                          "NEUDEP_ENGINE or use engine 'auto'/'onnxruntime'")
    if str(device) != "cpu":
        raise EngineError(f"{loaded.file}: ONNX files run on the CPU (ONNX Runtime's CPU "
                          f"provider), not {device!r}; use --device cpu")
    return OnnxFileRunner(loaded)
