"""Execute the study's notebooks with papermill; executed copies go to ``book/executed/``.

Every ``notebooks/NN_*.ipynb`` is run with cwd ``notebooks/``, the ``python3`` kernel (the
virtualenv's own interpreter) and the parameters ``profile`` and ``output_dir`` (plus any given
with ``-p``). Each notebook writes ``<output_dir>/<stem>.json``; this script records the wall time
of each run in ``<output_dir>/runtimes.json``.

A notebook whose fingerprint (its source, the profile and parameters, the source of
``neudep_utils``, the data (its ``MANIFEST.sha256`` and the name, size and modification time of
every file under ``$NEUDEP_DATA``, so an image changed without regenerating the manifest is seen;
a rewrite that keeps both size and mtime is not), the installed package versions and the
``NEUDEP_*`` environment variables the package reads) is unchanged since its last successful run, and whose executed copy and JSON result are still there, is not run again (its
executed copy is restored from ``<output_dir>/executed/``); ``--force`` runs it anyway.

Examples::

    python scripts/run_notebooks.py --profile smoke --output-dir outputs/smoke
    python scripts/run_notebooks.py --only 01 -p lam_rel 0.05 --output-dir outputs/lam005

A ``-p NAME VALUE`` is parsed as a Python literal (``true``/``false`` in any case are booleans)
and must match the type of the notebook's default in its ``parameters`` cell (a bool default takes
only a bool, an int one an int, a float one a number, a str one a string; a ``None`` default takes
anything); a name the notebook does not define is refused.

Exit status 1 when a cell fails; the message names the notebook and the cell; 2 for a bad
parameter or profile (before any kernel starts); 130 on Ctrl-C (one ``error:`` line, the kernel
stopped). A notebook is marked "running" in ``runtimes.json`` before it starts, so a run that is
killed is never taken for a finished one; relative ``NEUDEP_DATA``/``NEUDEP_CACHE`` paths are made
absolute first (the notebooks run in ``notebooks/``); each run talks to its kernels through
sockets in its own temporary folder, so two runs started together in one checkout do not meet.
"""

from __future__ import annotations

import argparse
import ast
import atexit
import functools
import hashlib
import importlib.metadata
import importlib.util
import json
import multiprocessing as mp
import os
import shutil
import sys
import tempfile
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor
from concurrent.futures import wait as wait_futures
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = REPO / "notebooks"
EXECUTED = REPO / "book" / "executed"
RUNTIMES = "runtimes.json"


def discover(notebook_dir: Path = NOTEBOOKS, only: list[str] | None = None) -> list[Path]:
    """The study notebooks ``NN_*.ipynb`` in order; ``only`` keeps those matching a prefix/stem."""
    found = sorted(notebook_dir.glob("[0-9][0-9]_*.ipynb"))
    if not only:
        return found
    keep = [p for p in found if any(p.stem == o or p.stem.startswith(o) or p.name == o
                                    for o in only)]
    missing = [o for o in only if not any(p.stem.startswith(o) or p.name == o for p in found)]
    if missing:
        raise SystemExit(f"error: no notebook matches {missing} in {notebook_dir} "
                         f"(have: {[p.stem for p in found]})")
    return keep


def parse_value(text: str) -> Any:
    """A parameter value from the command line: a Python literal (``true``/``false`` in any case
    are booleans), else the string itself."""
    if text.strip().lower() in ("true", "false"):
        return text.strip().lower() == "true"
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return text


def notebook_defaults(nb: Path) -> dict[str, Any]:
    """The literal defaults of a notebook's ``parameters`` cell (``name = literal`` lines;
    names bound to something else map to ``None``, i.e. any type)."""
    cells = json.loads(nb.read_text()).get("cells", [])
    out: dict[str, Any] = {}
    for c in cells:
        if "parameters" not in c.get("metadata", {}).get("tags", []):
            continue
        src = "".join(c.get("source", []))
        for node in ast.parse(src).body:
            if isinstance(node, ast.Assign):
                for t in node.targets:
                    if isinstance(t, ast.Name):
                        try:
                            out[t.id] = ast.literal_eval(node.value)
                        except ValueError:
                            out[t.id] = None
            elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
                out[node.target.id] = None
        break
    return out


def check_parameters(nb: Path, given: dict[str, Any]) -> None:
    """Refuse (``SystemExit`` with one ``error:`` line) a ``-p`` parameter the notebook does not
    define, or whose value does not fit its declared type. The study's notebooks declare their
    parameters once, in :data:`neudep_utils.profiles.NOTEBOOK_SETTINGS` (name, type, doc);
    another notebook is checked against the literal defaults of its ``parameters`` cell."""
    from neudep_utils._params import ParameterError
    from neudep_utils.profiles import NOTEBOOK_SETTINGS

    given = {k: v for k, v in given.items() if k not in ("profile", "output_dir")}
    declared = NOTEBOOK_SETTINGS.get(nb.stem)
    if declared is not None:
        for name, value in given.items():
            try:
                declared.check({name: value})
            except ParameterError as exc:
                raise SystemExit(f"error: -p {name} {value!r}: notebook {nb.name}: {exc}"
                                 ) from None
        return
    check_cell_parameters(nb, given)


def check_cell_parameters(nb: Path, given: dict[str, Any]) -> None:
    """The check of :func:`check_parameters` for a notebook without a declared settings class:
    a name must be in its ``parameters`` cell, a value of the type of the cell's default."""
    defaults = notebook_defaults(nb)
    for name, value in given.items():
        if name not in defaults:
            raise SystemExit(f"error: -p {name}: notebook {nb.name} has no parameter {name!r} "
                             f"(its parameters: {', '.join(sorted(defaults))})")
        d = defaults[name]
        if d is None:
            continue
        if isinstance(d, bool):
            ok = isinstance(value, bool)
        elif isinstance(d, int):
            ok = isinstance(value, int) and not isinstance(value, bool)
        elif isinstance(d, float):
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        else:
            ok = isinstance(value, type(d))
        if not ok:
            raise SystemExit(f"error: -p {name} {value!r}: notebook {nb.name}'s default is "
                             f"{d!r} ({type(d).__name__}), the value given is a "
                             f"{type(value).__name__}; give a {type(d).__name__}"
                             + (" (true or false)" if isinstance(d, bool) else ""))


def _hash_tree(h: Any, root: Path, pattern: str) -> None:
    for p in sorted(root.rglob(pattern)):
        if "__pycache__" in p.parts:
            continue
        h.update(str(p.relative_to(root)).encode() + b"\0" + p.read_bytes() + b"\0")


def data_fingerprint() -> str:
    """sha256 of the data folder: its path, its ``MANIFEST.sha256`` and the relative name, size
    and modification time (ns) of every file under it (a cheap digest of the files themselves:
    an image changed without regenerating the manifest changes it; a rewrite that keeps both the
    size and the mtime does not)."""
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    from neudep_utils.locations import data_dir  # the notebooks' own resolution

    root = data_dir()
    manifest = root / "MANIFEST.sha256"
    h = hashlib.sha256(str(root.resolve()).encode())
    if manifest.is_file():
        h.update(manifest.read_bytes())
    if root.is_dir():
        for p in sorted(root.rglob("*")):
            try:
                st = p.stat()
            except OSError:  # e.g. a dangling link
                h.update(f"{p.relative_to(root)}\t?\n".encode())
                continue
            if p.is_file():
                h.update(f"{p.relative_to(root)}\t{st.st_size}\t{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


def environment_fingerprint() -> str:
    """sha256 of the installed distributions (name==version), the python version and env vars."""
    h = hashlib.sha256(sys.version.encode())
    dists = sorted(f"{d.metadata['Name']}=={d.version}"
                   for d in importlib.metadata.distributions() if d.metadata["Name"])
    h.update("\n".join(dists).encode())
    for var in ("NEUDEP_IMAGENET", "NEUDEP_MODELS", "NEUDEP_MODELS_DIR", "NEUDEP_ENGINE",
                "NEUDEP_CACHE", "NEUDEP_WORDNET", "HF_HUB_OFFLINE"):
        h.update(f"{var}={os.environ.get(var, '')}\n".encode())
    return h.hexdigest()


def fingerprint(notebook: Path, parameters: dict[str, Any], shared: str) -> str:
    """What a notebook's run depends on: its bytes, the parameters and ``shared`` (code, data, env)."""
    h = hashlib.sha256(notebook.read_bytes())
    h.update(json.dumps(parameters, sort_keys=True, default=str).encode())
    h.update(shared.encode())
    return h.hexdigest()


def shared_fingerprint() -> str:
    """Fingerprint of everything every notebook depends on besides its own source."""
    h = hashlib.sha256()
    spec = importlib.util.find_spec("neudep_utils")  # the copy the kernel imports
    pkg = Path(spec.origin).parent if spec and spec.origin else REPO / "neudep_utils"
    _hash_tree(h, pkg, "*.py")
    h.update(data_fingerprint().encode())
    h.update(environment_fingerprint().encode())
    return h.hexdigest()


def load_runtimes(output_dir: Path) -> dict[str, Any]:
    """``<output_dir>/runtimes.json`` (empty when absent or unreadable)."""
    try:
        return json.loads((output_dir / RUNTIMES).read_text())
    except (OSError, json.JSONDecodeError):
        return {}


def save_runtimes(output_dir: Path, runtimes: dict[str, Any]) -> None:
    """Write ``runtimes.json`` atomically."""
    output_dir.mkdir(parents=True, exist_ok=True)
    tmp = output_dir / f".{RUNTIMES}.tmp"
    tmp.write_text(json.dumps(runtimes, indent=1, sort_keys=True))
    os.replace(tmp, output_dir / RUNTIMES)


def check_kernel() -> None:
    """Fail early when the ``python3`` kernel would not run this interpreter's environment."""
    from jupyter_client.kernelspec import KernelSpecManager

    spec = KernelSpecManager().get_kernel_spec("python3")
    exe = spec.argv[0]
    if exe in ("python", "python3", f"python{sys.version_info[0]}.{sys.version_info[1]}"):
        return  # jupyter_client substitutes sys.executable for a bare "python"
    if Path(exe).resolve() != Path(sys.executable).resolve():
        raise SystemExit(f"error: the 'python3' kernel ({spec.resource_dir}) runs {exe}, not this "
                         f"environment's {sys.executable}; reinstall it with `{sys.executable} -m "
                         "ipykernel install --sys-prefix --name python3`")


def describe_failure(exc: BaseException) -> str:
    """'cell N (execution count M): Error: message' for a papermill execution error."""
    cell = getattr(exc, "cell_index", None)
    count = getattr(exc, "exec_count", None)
    ename = getattr(exc, "ename", type(exc).__name__)
    evalue = getattr(exc, "evalue", str(exc))
    where = f"cell {cell} of the executed copy" if cell is not None else "a cell"
    if count is not None:
        where += f" (execution count {count})"
    return f"{where}: {ename}: {str(evalue).strip().splitlines()[0] if evalue else ''}"


def compile_note() -> str:
    """The CovLasso kernels' compile note when numba's cache is cold (else ``""``)."""
    try:
        from neudep_utils.covlasso.api import _COMPILE_NOTE, kernels_cold
    except ImportError:
        return ""
    return _COMPILE_NOTE if kernels_cold() else ""


#: The kernel managers this process started (stopped at once on Ctrl-C).
_KERNEL_MANAGERS: list = []


@functools.lru_cache(maxsize=1)
def ipc_dir() -> Path:
    """This process's own folder for its kernels' IPC sockets (removed at exit). jupyter_client
    would put them at ``kernel-ipc-1..5`` in the working directory (``notebooks/``), where two
    runs started together pick the same ones ("Invalid Signature", "Kernel didn't respond")."""
    d = Path(tempfile.mkdtemp(prefix="neudep-ipc-"))
    atexit.register(shutil.rmtree, d, True)
    return d


def ipc_kernel_manager() -> type:
    """A kernel manager that talks to the kernel over local IPC sockets instead of TCP (no
    ``[IPKernelApp] WARNING ... TCP without encryption`` line, nothing listening on a port),
    in :func:`ipc_dir`."""
    from jupyter_client.manager import AsyncKernelManager
    from traitlets import CaselessStrEnum

    class IPCKernelManager(AsyncKernelManager):
        transport = CaselessStrEnum(["tcp", "ipc"], default_value="ipc", config=True)

        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            _KERNEL_MANAGERS.append(self)

        def _ip_default(self) -> str:
            return str(ipc_dir() / f"kernel-{len(_KERNEL_MANAGERS)}")

    return IPCKernelManager


def stop_kernels() -> None:
    """Kill the kernels this process started (after Ctrl-C: a kernel left running would print
    its own traceback when it notices its parent gone)."""
    for km in _KERNEL_MANAGERS:
        proc = getattr(getattr(km, "provisioner", None), "process", None)
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        for cleanup in ("cleanup_connection_file", "cleanup_ipc_files"):
            try:
                getattr(km, cleanup)()
            except Exception:  # noqa: BLE001 - best effort on the way out
                pass


def absolute_env_paths() -> None:
    """Make relative ``NEUDEP_*`` folder variables absolute, against the directory this runner
    was started in (the notebooks run in ``notebooks/``, where ``../shared/data`` is wrong)."""
    for var in ("NEUDEP_DATA", "NEUDEP_CACHE", "NEUDEP_MODELS_DIR", "NEUDEP_IMAGENET",
                "NEUDEP_HOME"):
        value = os.environ.get(var)
        if value and not Path(value).expanduser().is_absolute():
            os.environ[var] = os.path.abspath(os.path.expanduser(value))


def check_profile(name: str) -> str | None:
    """The ``error:`` line of an unknown profile (checked before any kernel starts), else None."""
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    try:
        from neudep_utils.profiles import get_profile

        get_profile(name)
    except ValueError as exc:
        return f"error: --profile {name}: {exc}"
    return None


def mark_running(output_dir: Path, runtimes: dict[str, Any], stem: str, fp: str,
                 parameters: dict[str, Any]) -> None:
    """Record that ``stem`` is running before it starts: a run killed mid-way leaves this
    record, never the previous run's "ok", so the next run does not skip it."""
    runtimes[stem] = {"status": "running", "fingerprint": fp, "parameters": parameters,
                      "started": time.strftime("%Y-%m-%dT%H:%M:%S")}
    save_runtimes(output_dir, runtimes)


def run_one(nb: Path, executed: Path, parameters: dict[str, Any], timeout: int | None,
            progress: bool = True) -> None:
    """Execute ``nb`` into ``executed`` (raises papermill's error when a cell fails);
    ``progress``: papermill's cell progress bar on stderr. The kernel is stopped at once when
    the notebook ends or on Ctrl-C (a graceful shutdown of a kernel still running a cell makes
    it print a traceback of its own)."""
    import papermill as pm

    executed.parent.mkdir(parents=True, exist_ok=True)
    try:
        pm.execute_notebook(str(nb), str(executed), parameters=parameters, cwd=str(nb.parent),
                            kernel_name="python3", progress_bar=progress, log_output=False,
                            execution_timeout=timeout, report_mode=False,
                            kernel_manager_class=ipc_kernel_manager(),
                            shutdown_kernel="immediate")
    finally:
        if executed.exists():
            collapse_progress(executed)


def collapse_text(text: str) -> str:
    """A stream as a terminal shows it: each line keeps only what follows its last carriage
    return (tqdm redraws its bar with ``\\r``; the stored stream holds every redraw)."""
    return "\n".join(line.rsplit("\r", 1)[-1] for line in text.split("\n"))


def collapse_progress(path: Path) -> None:
    """Rewrite an executed notebook's stream outputs with :func:`collapse_text`, so that the
    book shows each progress bar once, in its final state."""
    import nbformat

    nb = nbformat.read(str(path), as_version=4)
    changed = False
    for cell in nb.cells:
        merged: list = []
        for out in cell.get("outputs", []):
            prev = merged[-1] if merged else None
            if (out.get("output_type") == "stream" and prev is not None
                    and prev.get("output_type") == "stream" and prev["name"] == out["name"]):
                prev["text"] += out["text"]  # consecutive writes to one stream: one output
                changed = True
                continue
            merged.append(out)
        for out in merged:
            if out.get("output_type") == "stream" and "\r" in out["text"]:
                out["text"] = collapse_text(out["text"])
                changed = True
        if "outputs" in cell:  # a bar cleared at its end (leave=False) leaves nothing to show
            cell["outputs"] = [o for o in merged if o.get("output_type") != "stream"
                               or o["text"].strip()]
    if changed:
        nbformat.write(nb, str(path))


def book_copy(keep: Path, dest: Path, output_dir: Path) -> None:
    """Copy an executed notebook into the book with the output folder of its injected
    parameters cell shown relative to the notebooks (``../outputs/<profile>``), or by its name
    when it lies outside the checkout: the book prints no absolute path of the build machine
    (the copy under ``<output_dir>/executed/`` keeps the real one)."""
    import nbformat

    nb = nbformat.read(str(keep), as_version=4)
    shown = (os.path.relpath(output_dir, NOTEBOOKS) if output_dir.is_relative_to(REPO)
             else f"<outside the checkout>/{output_dir.name}")
    for cell in nb.cells:
        if "injected-parameters" in cell.get("metadata", {}).get("tags", []):
            cell.source = cell.source.replace(str(output_dir), shown)
    dest.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(dest))


#: A notebook that reads another's cached work waits for it when notebooks run side by side
#: (``--jobs``): 02 reuses notebook 01's within-model CovLasso fits (the dependency-fit cache of
#: the shared output folder) instead of fitting them again.
AFTER = {"02": ("01",)}


def _execute(nb: Path, keep: Path, parameters: dict[str, Any], timeout: int | None,
             progress: bool) -> tuple[str, str]:
    """Run one notebook: ``("ok", "")`` or ``("failed", where and why)``."""
    try:
        run_one(nb, keep, parameters, timeout, progress=progress)
    except Exception as exc:  # papermill's PapermillExecutionError, or a kernel death
        return "failed", describe_failure(exc)
    return "ok", ""


def _waits_for(nb: Path, pending: set[str]) -> bool:
    """Whether ``nb`` must wait for a notebook still to run (see :data:`AFTER`)."""
    pre = AFTER.get(nb.stem[:2], ())
    return any(p[:2] in pre for p in pending)


def _run_side_by_side(todo: list, jobs: int, parameters: dict[str, Any], timeout: int | None,
                      started, finished) -> None:
    """Run the notebooks of ``todo`` (``(notebook, fingerprint, executed copy)``) ``jobs`` at a
    time, each in its own process (its own kernel), in order, a notebook of :data:`AFTER`
    starting once those it reads from have finished."""
    queue = list(todo)
    running: dict = {}
    with ProcessPoolExecutor(max_workers=jobs, mp_context=mp.get_context("spawn")) as pool:
        while queue or running:
            pending = {nb.stem for nb, _, _ in queue} | {x[0].stem for x in running.values()}
            for item in list(queue):
                if len(running) >= jobs:
                    break
                nb = item[0]
                if _waits_for(nb, pending - {nb.stem}):
                    continue
                queue.remove(item)
                started(nb, item[1])
                fut = pool.submit(_execute, nb, item[2], parameters, timeout, False)
                running[fut] = (*item, time.perf_counter())
            done, _ = wait_futures(list(running), return_when=FIRST_COMPLETED)
            for fut in done:
                nb, fp, keep, t0 = running.pop(fut)
                try:
                    status, message = fut.result()
                except Exception as exc:  # noqa: BLE001 - the worker process itself died
                    status, message = "failed", f"its process: {type(exc).__name__}: {exc}"
                finished(nb, fp, keep, time.perf_counter() - t0, status, message)


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", default="default", help="smoke, default or full")
    ap.add_argument("--output-dir", default=None, help="default: outputs/<profile>")
    ap.add_argument("--only", nargs="+", default=None,
                    help="run only these notebooks (number prefix or stem, e.g. 01 03)")
    ap.add_argument("-p", "--param", nargs=2, action="append", default=[],
                    metavar=("NAME", "VALUE"), help="extra notebook parameter (Python literal)")
    ap.add_argument("--force", action="store_true", help="run even when unchanged")
    ap.add_argument("--timeout", type=int, default=None, help="per-cell timeout in seconds")
    ap.add_argument("--quiet", action="store_true", help="no per-cell progress bar")
    ap.add_argument("--jobs", type=int, default=1,
                    help="notebooks run side by side, each in its own kernel (02 after 01: it "
                         "reuses 01's fits); their cell progress bars are not shown")
    ap.add_argument("--notebook-dir", default=str(NOTEBOOKS), help=argparse.SUPPRESS)
    ap.add_argument("--executed-dir", default=str(EXECUTED), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    absolute_env_paths()
    bad_profile = check_profile(args.profile)
    if bad_profile:
        print(bad_profile, file=sys.stderr)
        return 2
    try:
        return run_all(args)
    except KeyboardInterrupt:
        stop_kernels()
        print("error: interrupted (Ctrl-C); the notebook that was running is not kept: rerun "
              "the same command (notebooks that finished are skipped)", file=sys.stderr)
        return 130


def run_all(args: argparse.Namespace) -> int:
    """Run (or skip) every notebook of ``args``; returns the exit status."""

    output_dir = Path(args.output_dir or REPO / "outputs" / args.profile).resolve()
    executed_dir = Path(args.executed_dir).resolve()
    notebooks = discover(Path(args.notebook_dir), args.only)
    if not notebooks:
        print(f"error: no notebooks NN_*.ipynb in {args.notebook_dir}", file=sys.stderr)
        return 1
    check_kernel()
    parameters = {"profile": args.profile, "output_dir": str(output_dir)}
    given = {k: parse_value(v) for k, v in args.param}
    try:
        for nb in notebooks:
            check_parameters(nb, given)
    except SystemExit as exc:
        print(exc, file=sys.stderr)
        return 2
    parameters.update(given)
    shared = shared_fingerprint()
    runtimes = load_runtimes(output_dir)
    if args.only is None:  # drop executed copies of notebooks that no longer exist
        stems = {p.stem for p in notebooks}
        for stale in executed_dir.glob("*.ipynb"):
            if stale.stem not in stems:
                stale.unlink()
    failures: list[str] = []
    todo = []
    for nb in notebooks:
        stem = nb.stem
        fp = fingerprint(nb, parameters, shared)
        keep = output_dir / "executed" / nb.name
        prev = runtimes.get(stem, {})
        unchanged = (prev.get("fingerprint") == fp and prev.get("status") == "ok"
                     and keep.is_file() and (output_dir / f"{stem}.json").is_file())
        if unchanged and not args.force:
            book_copy(keep, executed_dir / nb.name, output_dir)
            print(f"== {stem}: unchanged since its run of {prev.get('finished', '?')} "
                  f"({prev.get('runtime_s', 0):.0f} s); skipped (--force to rerun)", flush=True)
            continue
        todo.append((nb, fp, keep))
    if todo:
        note = compile_note()  # the kernel's own note goes to the notebook's output
        if note:
            print(f"   {note}", flush=True)

    def started(nb: Path, fp: str) -> None:
        print(f"== {nb.stem}: running (profile {args.profile})", flush=True)
        (output_dir / f"{nb.stem}.json").unlink(missing_ok=True)
        mark_running(output_dir, runtimes, nb.stem, fp, parameters)

    def finished(nb: Path, fp: str, keep: Path, seconds: float, status: str,
                 message: str) -> None:
        stem = nb.stem
        if status == "ok" and not (output_dir / f"{stem}.json").is_file():
            status, message = "failed", (f"it ran but wrote no {output_dir / (stem + '.json')} "
                                         "(call neudep_utils.record.write_results at its end)")
        if keep.is_file():
            book_copy(keep, executed_dir / nb.name, output_dir)
        runtimes[stem] = {"runtime_s": round(seconds, 2), "status": status, "fingerprint": fp,
                          "profile": args.profile, "parameters": parameters,
                          "finished": time.strftime("%Y-%m-%dT%H:%M:%S")}
        save_runtimes(output_dir, runtimes)
        if status == "ok":
            print(f"   {stem}: done in {seconds:.1f} s", flush=True)
        else:
            msg = f"notebook {nb.relative_to(nb.parent.parent)} failed at {message}"
            print(f"error: {msg}\n   executed copy with the traceback: {keep}", file=sys.stderr,
                  flush=True)
            failures.append(msg)

    if args.jobs <= 1 or len(todo) <= 1:
        for nb, fp, keep in todo:
            started(nb, fp)
            t0 = time.perf_counter()
            status, message = _execute(nb, keep, parameters, args.timeout, not args.quiet)
            finished(nb, fp, keep, time.perf_counter() - t0, status, message)
    else:
        _run_side_by_side(todo, args.jobs, parameters, args.timeout, started, finished)
    if failures:
        print(f"error: {len(failures)} notebook(s) failed:\n  " + "\n  ".join(failures),
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
