"""What every engine module shares (:mod:`.engines`, :mod:`.litert`, :mod:`.onnxfile`): the
engine names and ``$NEUDEP_ENGINE``, the runner interface, and the ONNX Runtime session."""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass, field

__all__ = ["ENGINES", "Runner", "onnxruntime_version", "requested_engine"]

#: Engine names a user may ask for (``auto`` picks one).
ENGINES = ("auto", "onnxruntime", "torch", "litert")


def requested_engine(engine: str | None = None) -> str:
    """``engine``, else ``$NEUDEP_ENGINE``, else ``auto``; checked against :data:`ENGINES`."""
    name = (engine or os.environ.get("NEUDEP_ENGINE") or "auto").strip().lower()
    if name not in ENGINES:
        src = "engine" if engine else "NEUDEP_ENGINE"
        raise ValueError(f"{src} {name!r} is not an engine; use one of {', '.join(ENGINES)}")
    return name


@dataclass
class Runner:
    """Runs one model: ``runner(x)`` -> ``(logits, features)`` float32 numpy arrays."""

    engine: str  # "onnxruntime" or "torch"
    label: str  # the cache-key label
    device: str
    meta: dict = field(default_factory=dict)  # recorded in the entry's meta.json ("engine")

    def __call__(self, x):  # pragma: no cover - overridden
        raise NotImplementedError

    @property
    def channels_last(self) -> bool:
        """Whether inputs should be handed over in channels-last memory format."""
        return False


@functools.lru_cache(maxsize=1)
def onnxruntime_version() -> str | None:
    """The installed ONNX Runtime's version, or ``None`` when it does not import."""
    try:
        import onnxruntime
    except Exception:  # noqa: BLE001 - ImportError, or a broken native library
        return None
    return str(onnxruntime.__version__)


def _ort_session(data: bytes, threads: int, spinning: bool = False):
    """An ONNX Runtime CPU session of the model bytes: ``threads`` intra-op threads, sequential,
    every graph optimization, spinning as asked."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.log_severity_level = 3
    so.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    return ort.InferenceSession(data, so, providers=["CPUExecutionProvider"])
