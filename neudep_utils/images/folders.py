"""ImageNet-format image folders: the data root, folder discovery, manifests and image opening.

A folder holds ``<class>/<image>`` files. In ``"wnid"`` label mode the class folder is an ImageNet-1k
WordNet id (``n01818515`` = macaw) and the label is its ImageNet-1k class index; in ``"folder"``
mode (e.g. the 16 cue-conflict categories) the label is the index of the sorted folder name.
A :class:`Manifest` is the sorted list of a folder's readable images with a digest that enters
every cache key; :func:`open_image` is the one place an image file is decoded. The bytes decoded
are those :meth:`Manifest.read` checked against the scan (size, and sha256 where the digest
holds the contents): an image replaced after the scan is never computed under the old key.
"""

from __future__ import annotations

import errno
import hashlib
import io
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, JpegImagePlugin, PngImagePlugin, UnidentifiedImageError

from .. import locations
from ..errors import DataError
from .classes import imagenet_classes

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".ppm", ".tif", ".tiff")
#: The only PIL decoders an image file may reach, whatever its name says (ImageNet holds JPEGs,
#: a few CMYK/greyscale ones and one PNG named .JPEG; the shared sets are JPEG and PNG). Other
#: formats (e.g. PostScript, which PIL hands to Ghostscript) are skipped and reported.
ALLOWED_FORMATS = ("JPEG", "PNG")
#: Images above this many pixels are skipped (checked from the header, before decoding).
MAX_PIXELS = 64_000_000
#: Images whose long side exceeds this many times their short side are skipped: the resize of the
#: short side to ~256 px would blow the long side up (a 9000 x 1 JPEG would need gigabytes).
MAX_ASPECT = 20.0
SUBSETS = ("imagenet-val", "imagenet-sample", "cue-conflict")
#: Folders with at most this many images have every file's bytes hashed into the manifest digest.
CONTENT_HASH_LIMIT = 20_000



# --------------------------------------------------------------------------------------------
# Data root and folders
# --------------------------------------------------------------------------------------------


def default_data_root() -> Path:
    """The data folder: ``$NEUDEP_DATA``, else ``../shared/data`` beside the checkout, else the
    download of ``make data`` (:func:`neudep_utils.locations.data_dir`)."""
    return locations.data_dir()


def data_root(path: str | os.PathLike[str] | None = None, require: Sequence[str] = ()) -> Path:
    """Resolve and validate the data root (a folder holding imagenet-val/, imagenet-sample/, ...).

    ``require`` lists subfolders that must exist (default: none beyond the root itself).
    """
    if path is None and locations.find("data").source == "missing":
        raise DataError(locations.not_found("data"))
    root = Path(path).expanduser() if path is not None else default_data_root()
    hint = (
        "set NEUDEP_DATA (or pass data_root) to a folder holding "
        + ", ".join(f"{s}/" for s in SUBSETS)
        + ", e.g. NEUDEP_DATA=../shared/data, or run `make data` to download them"
    )
    if not root.is_dir():
        raise DataError(f"data root {root} does not exist; {hint}")
    missing = [s for s in require if not (root / s).is_dir()]
    if missing:
        raise DataError(f"data root {root} has no {', '.join(m + '/' for m in missing)}; {hint}")
    return root.resolve()


def resolve_folder(folder: str | os.PathLike[str], root: str | os.PathLike[str] | None = None) -> Path:
    """A folder given as a path, or as a name under the data root (``"imagenet-val"``)."""
    p = Path(folder).expanduser()
    if p.is_dir():
        return p.resolve()
    if not p.is_absolute():
        base = data_root(root)
        if (base / p).is_dir():
            return (base / p).resolve()
        raise DataError(
            f"data folder {folder!r} not found as a path nor under the data root {base}; "
            "expected an ImageNet-format folder <wnid>/<image> or one of "
            + ", ".join(sorted(d.name for d in base.iterdir() if d.is_dir()))
        )
    raise DataError(f"data folder {p} does not exist; expected an ImageNet-format folder <wnid>/<image>")


# --------------------------------------------------------------------------------------------
# Manifests
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Manifest:
    """A deterministic list of the images of a folder (sorted relative paths) with their labels."""

    root: Path
    relpaths: tuple[str, ...]
    labels: np.ndarray  # int64, class index (ImageNet logit index in wnid mode)
    label_mode: str
    class_names: tuple[str, ...]  # folder names, in label order for "folder" mode
    digest: str  # sha256 over label mode, paths, labels, sizes (and contents for small folders)
    skipped: tuple[tuple[str, str], ...] = field(default=())
    #: size in bytes of each image at the scan (``None``: not recorded)
    sizes: np.ndarray | None = None
    #: sha256 of each image at the scan, when the digest covers the contents (else ``None``)
    sha256: tuple[bytes, ...] | None = None

    def __len__(self) -> int:
        return len(self.relpaths)

    def path(self, i: int) -> Path:
        """Absolute path of image ``i``."""
        return self.root / self.relpaths[i]

    def read(self, i: int) -> bytes:
        """The bytes of image ``i``, checked against the scan: a file whose size (or sha256,
        when recorded) changed since is refused with an :class:`ImageReadError` (transient:
        never recorded as unreadable; a rerun scans the new file under a new key).

        Parameters
        ----------
        i : int
            Manifest index of the image.

        Returns
        -------
        bytes
            The file's bytes, as scanned.
        """
        path = self.path(i)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise _read_error(path, exc) from None
        if self.sizes is not None and len(data) != int(self.sizes[i]):
            raise _changed_error(path, f"{int(self.sizes[i])} bytes at the scan, {len(data)} now")
        if self.sha256 is not None and hashlib.sha256(data).digest() != self.sha256[i]:
            raise _changed_error(path, "same size, other bytes")
        return data

    @property
    def image_ids(self) -> tuple[str, ...]:
        """Image identifiers: the relative paths (``<class>/<file>``)."""
        return self.relpaths

    def subset(self, indices: Sequence[int] | np.ndarray) -> Manifest:
        """A manifest with only the given images (in the given order), digest recomputed."""
        idx = np.asarray(indices, dtype=np.int64)
        rel = tuple(self.relpaths[i] for i in idx)
        labels = self.labels[idx]
        h = hashlib.sha256(self.digest.encode())
        h.update(np.ascontiguousarray(idx).tobytes())
        return Manifest(self.root, rel, labels, self.label_mode, self.class_names,
                        h.hexdigest(), self.skipped,
                        None if self.sizes is None else self.sizes[idx],
                        None if self.sha256 is None else tuple(self.sha256[i] for i in idx))


def _is_image(name: str) -> bool:
    return name.lower().endswith(IMAGE_EXTENSIONS) and not name.startswith(".")


def _utf8_ok(name: str) -> bool:
    """Whether a name from ``os.scandir`` is valid UTF-8 (undecodable bytes come back as lone
    surrogates, which cannot enter a manifest digest, a cache key or a JSON file)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _shown(name: str) -> str:
    """A printable form of a file name (undecodable bytes as backslash escapes)."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


def _os_reason(exc: OSError) -> str:
    if exc.errno == errno.ELOOP:
        return "unreadable: symbolic link loop (too many levels of symbolic links); remove the link"
    return f"unreadable: {exc.strerror or type(exc).__name__}"


_FORMAT_REASON = ("unreadable image: not an image in an allowed format (allowed formats: "
                  + ", ".join(ALLOWED_FORMATS) + ")")


_LOOSE_REASON = ("image beside the class folders, not in a <class>/ folder: not read; move it "
                 "into its class folder")


def _nested_reason(n: int, cname: str) -> str:
    return (f"subfolder of a class folder: its {n} image(s) are not read (only <class>/<image> "
            f"is); move them up into {_shown(cname)}/")


def _images_under(folder: Path) -> int:
    """Number of image files anywhere under ``folder`` (hidden names skipped)."""
    n = 0
    for _base, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        n += sum(_is_image(f) for f in files)
    return n


def _dangling(entry: os.DirEntry) -> bool:
    """Whether a directory entry is a symbolic link whose target does not exist."""
    try:
        return entry.is_symlink() and not os.path.exists(entry.path)
    except OSError:
        return False


def _dangling_reason(entry: os.DirEntry) -> str:
    try:
        target = _shown(os.readlink(entry.path))
    except OSError:
        target = "?"
    return f"dangling symbolic link (to {target}, which does not exist); fix or remove the link"


def _image_error(path: str | os.PathLike[str], reason: str) -> DataError:
    exc = DataError(f"{_shown(os.fspath(path))}: {reason}")
    exc.reason = reason  # type: ignore[attr-defined]  (recorded without the path)
    return exc


class ImageReadError(DataError):
    """An image file could not be *read* (the operating system refused: vanished, permission
    denied, I/O error), as opposed to read but not decodable. Such a failure may be transient, so
    it is never recorded as "unreadable" in a cache entry; its ``reason`` starts with
    :data:`READ_ERROR_PREFIX`."""


#: The start of the ``reason`` of an :class:`ImageReadError` (an OS error while reading the file).
READ_ERROR_PREFIX = "cannot read the file (OS error"
#: The start of the ``reason`` of an :class:`ImageReadError` for a file changed since the scan.
CHANGED_PREFIX = "the file changed since the folder was scanned"
#: Reasons of failures that may not last (never recorded as "unreadable" in a cache entry).
TRANSIENT_PREFIXES = (READ_ERROR_PREFIX, CHANGED_PREFIX)


def _read_error(path: str | os.PathLike[str], exc: OSError) -> ImageReadError:
    reason = (f"{READ_ERROR_PREFIX} {exc.errno}: {exc.strerror or type(exc).__name__}); not "
              "recorded as unreadable: fix the file or its folder and rerun to retry it")
    err = ImageReadError(f"{_shown(os.fspath(path))}: {reason}")
    err.reason = reason  # type: ignore[attr-defined]
    return err


def _changed_error(path: Path, how: str) -> ImageReadError:
    reason = (f"{CHANGED_PREFIX} ({how}); not computed under the scan's key: rerun to scan and "
              "read the new file")
    err = ImageReadError(f"{_shown(os.fspath(path))}: {reason}")
    err.reason = reason  # type: ignore[attr-defined]
    return err


#: Modes of greyscale images with more than 8 bits per pixel (PNG's 16-bit grey opens as
#: ``I;16``): ``convert("RGB")`` would clip them at 255, so they are scaled to 8 bits first.
_WIDE_GREY_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")


def _to_rgb(im):
    """``im`` as an 8-bit RGB image; 16-bit greyscale (``I;16``, and ``I`` holding 0..65535) is
    scaled by 255/65535 (rounded: a value ``v * 257`` maps back to exactly ``v``) instead of
    clipped."""
    if im.mode in _WIDE_GREY_MODES:
        a = np.asarray(im, dtype=np.int64)
        if a.size and (a.min() < 0 or a.max() > 65535):
            raise DataError(f"{im.mode} image with values outside 0..65535 (min {a.min()}, max "
                            f"{a.max()}); convert it to 8 or 16 bits per channel")
        im = Image.fromarray(((a * 255 + 32767) // 65535).astype(np.uint8))  # mode L
    return im.convert("RGB")


def open_image(path: str | os.PathLike[str], data: bytes | None = None):
    """Open an image with only the :data:`ALLOWED_FORMATS` decoders, check its size from the header
    (:data:`MAX_PIXELS`, :data:`MAX_ASPECT`) and decode it to RGB.

    ``data``: the file's bytes, already read (e.g. by :meth:`Manifest.read`); ``path`` then only
    names the image in errors.

    Raises :class:`DataError` saying why the file cannot be used (format not allowed, too large,
    extreme aspect ratio, truncated or corrupt); its ``reason`` attribute omits the path. When the
    operating system refuses the read (the file vanished, permission denied, an I/O error) the
    error is an :class:`ImageReadError`, which the cache never records as "unreadable". 16-bit
    greyscale images are scaled to 8 bits (not clipped).
    """
    try:
        with warnings.catch_warnings():  # our own caps decide (checked before decoding)
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            src = path if data is None else io.BytesIO(data)
            with Image.open(src, formats=ALLOWED_FORMATS) as im:
                check_image_size(im.size)
                return _to_rgb(im)
    except UnidentifiedImageError:
        raise _image_error(path, _FORMAT_REASON + "; convert or remove the file") from None
    except Image.DecompressionBombError as exc:  # beyond PIL's own cap, above ours (MAX_PIXELS)
        raise _image_error(path, _size_cap_reason(path if data is None else data, exc)) from None
    except DataError as exc:
        raise _image_error(path, str(exc)) from None
    except OSError as exc:
        if exc.errno is not None:  # the OS refused the read (PIL's decoder errors carry none)
            raise _read_error(path, exc) from None
        raise _image_error(path, f"unreadable image ({type(exc).__name__}: {exc}); replace or "
                                 "remove the file") from exc
    except Exception as exc:  # noqa: BLE001 - any decoder failure means unreadable
        raise _image_error(path, f"unreadable image ({type(exc).__name__}: {exc}); replace or "
                                 "remove the file") from exc


def _size_cap_reason(src: str | os.PathLike[str] | bytes, exc: Exception) -> str:
    """The :data:`MAX_PIXELS` message of an image PIL refused as a decompression bomb (its size
    read from the header by the JPEG or PNG plugin itself, which does not apply PIL's cap)."""
    for plugin in (JpegImagePlugin.JpegImageFile, PngImagePlugin.PngImageFile):
        try:
            fp = io.BytesIO(src) if isinstance(src, bytes) else open(src, "rb")  # noqa: SIM115
            with fp, plugin(fp) as im:
                check_image_size(im.size)
        except DataError as cap:
            return str(cap)
        except Exception:  # noqa: BLE001 - not this format: try the next
            continue
    return (f"image above the cap of {MAX_PIXELS} pixels (neudep_utils.images.folders."
            f"MAX_PIXELS; {exc}); downscale it")


def check_image_size(size: tuple[int, int]) -> None:
    """Raise :class:`DataError` for an image size beyond :data:`MAX_PIXELS` or
    :data:`MAX_ASPECT`."""
    w, h = size
    if w < 1 or h < 1:
        raise DataError(f"image of size {w} x {h} has no pixels")
    if w * h > MAX_PIXELS:
        raise DataError(f"image of {w} x {h} = {w * h} pixels is above the cap of {MAX_PIXELS} "
                        "pixels (neudep_utils.images.folders.MAX_PIXELS); downscale it")
    if max(w, h) > MAX_ASPECT * min(w, h):
        raise DataError(f"image of {w} x {h} has an aspect ratio of {max(w, h) / min(w, h):.0f}, "
                        f"above the cap of {MAX_ASPECT:g} (neudep_utils.images.folders.MAX_ASPECT); crop "
                        "or remove it")


def _class_folders(root: Path, skipped: list[tuple[str, str]]) -> list[str]:
    """The class folders of ``root``, sorted; hidden entries are ignored, and a folder that
    cannot be read, a dangling link, an image beside the class folders and a folder name that
    is not UTF-8 are appended to ``skipped`` with the reason."""
    class_dirs = []
    for d in os.scandir(root):
        if d.name.startswith("."):
            continue
        try:
            is_dir = d.is_dir()
        except OSError as exc:  # e.g. a symbolic link loop
            skipped.append((_shown(d.name) + "/", _os_reason(exc)))
            continue
        if not is_dir:
            if _dangling(d):
                skipped.append((_shown(d.name) + "/", _dangling_reason(d)))
            elif _is_image(d.name):
                skipped.append((_shown(d.name), _LOOSE_REASON))
            continue
        if not _utf8_ok(d.name):
            skipped.append((_shown(d.name) + "/", "folder name is not valid UTF-8; rename it"))
            continue
        class_dirs.append(d.name)
    return sorted(class_dirs)


def _class_images(root: Path, cname: str, label: int, skipped: list[tuple[str, str]]
                  ) -> list[tuple[str, int, int]]:
    """``(relative path, label, size)`` of the image files of the class folder ``cname``, by
    name; everything else (a dangling link, a subfolder holding images, an unreadable entry, a
    name that is not UTF-8, a file that is not an image) is appended to ``skipped``."""
    entries = []
    for f in sorted(os.scandir(root / cname), key=lambda e: e.name):
        rel = f"{cname}/{f.name}"
        try:
            if not f.is_file():
                if _dangling(f):
                    skipped.append((_shown(rel), _dangling_reason(f)))
                elif f.is_dir() and not f.name.startswith("."):
                    n_nested = _images_under(Path(f.path))
                    if n_nested:
                        skipped.append((_shown(rel) + "/", _nested_reason(n_nested, cname)))
                continue
            size = f.stat().st_size
        except OSError as exc:  # e.g. a symbolic link loop
            skipped.append((_shown(rel), _os_reason(exc)))
            continue
        if not _utf8_ok(f.name):
            skipped.append((_shown(rel), "file name is not valid UTF-8; rename it"))
        elif not _is_image(f.name):
            skipped.append((rel, "not an image file"))
        else:
            entries.append((rel, label, size))
    return entries


def scan_folder(
    folder: str | os.PathLike[str],
    label_mode: str = "wnid",
    content_hash: bool | None = None,
    verify: bool | None = None,
) -> Manifest:
    """Scan an ImageNet-format folder ``<class>/<image>`` into a :class:`Manifest`.

    ``label_mode``: ``"wnid"`` (class folders are ImageNet-1k wnids; label = logit index) or
    ``"folder"`` (label = index of the sorted class-folder name). ``content_hash`` hashes every
    file's bytes into the digest (default: when the folder has at most ``CONTENT_HASH_LIMIT``
    images); otherwise paths and sizes are hashed. ``verify`` opens each image header and skips
    (with a warning) files PIL cannot identify (default: same rule as ``content_hash``).
    Empty class folders, non-image files, dangling symbolic links, images beside the class
    folders and subfolders of a class folder holding images are skipped and reported in
    ``Manifest.skipped`` (and a warning); a folder whose every image fails the check raises
    :class:`DataError` ("no readable images").
    """
    if label_mode not in ("wnid", "folder"):
        raise ValueError(f"label_mode must be 'wnid' or 'folder', got {label_mode!r}")
    root = Path(folder).expanduser()
    if not root.is_dir():
        raise DataError(
            f"data folder {root} does not exist; expected an ImageNet-format folder <wnid>/<image>"
        )
    root = root.resolve()
    skipped: list[tuple[str, str]] = []
    class_dirs = _class_folders(root, skipped)
    if not class_dirs:
        raise DataError(f"data folder {root} has no class subfolders; expected <wnid>/<image>")
    classes = imagenet_classes() if label_mode == "wnid" else None
    if classes is not None:
        unknown = [c for c in class_dirs if c not in classes._lookup()]
        if unknown:
            shown = ", ".join(unknown[:5]) + (" ..." if len(unknown) > 5 else "")
            raise DataError(
                f"data folder {root} has {len(unknown)} class folder(s) that are not ImageNet-1k "
                f"wnids ({shown}); expected <wnid>/<image> with wnids such as n01818515, or, for "
                "other categories, --label-mode folder (label_mode='folder' in Python)"
            )
    entries: list[tuple[str, int, int]] = []
    for ci, cname in enumerate(class_dirs):
        label = classes.index(cname) if classes is not None else ci
        found = _class_images(root, cname, label, skipped)
        if not found:
            skipped.append((cname + "/", "empty class folder"))
        entries += found
    if not entries:
        raise DataError(f"data folder {root} has class subfolders but no images; expected <wnid>/<image>")
    small = len(entries) <= CONTENT_HASH_LIMIT
    do_hash = small if content_hash is None else content_hash
    do_verify = small if verify is None else verify
    if do_verify:
        entries, bad = _verify_images(root, entries)
        skipped.extend(bad)
        if not entries:
            shown = "; ".join(f"{p} ({why})" for p, why in bad[:3])
            raise DataError(f"no readable images in {root}: all {len(bad)} image file(s) failed "
                            f"the check ({shown}{' ...' if len(bad) > 3 else ''}); expected "
                            "JPEG or PNG images in <wnid>/<image>")
    if skipped:
        warnings.warn(
            f"{root}: skipped {len(skipped)} entr{'y' if len(skipped) == 1 else 'ies'}: "
            + "; ".join(f"{p} ({why})" for p, why in skipped[:5])
            + (" ..." if len(skipped) > 5 else ""),
            stacklevel=2,
        )
    h = hashlib.sha256(f"neudep-manifest-v1|{label_mode}|hash={do_hash}\n".encode())
    file_sha: list[bytes] = []
    for rel, label, size in entries:
        h.update(f"{rel}\t{label}\t{size}\n".encode())
        if do_hash:
            file_sha.append(hashlib.sha256((root / rel).read_bytes()).digest())
            h.update(file_sha[-1])
    return Manifest(
        root=root,
        relpaths=tuple(e[0] for e in entries),
        labels=np.asarray([e[1] for e in entries], dtype=np.int64),
        label_mode=label_mode,
        class_names=tuple(class_dirs),
        digest=h.hexdigest(),
        skipped=tuple(skipped),
        sizes=np.asarray([e[2] for e in entries], dtype=np.int64),
        sha256=tuple(file_sha) if do_hash else None,
    )


def _verify_images(
    root: Path, entries: list[tuple[str, int, int]]
) -> tuple[list[tuple[str, int, int]], list[tuple[str, str]]]:
    good, bad = [], []
    for e in entries:
        try:
            with warnings.catch_warnings():  # our own caps decide (checked before decoding)
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                with Image.open(root / e[0], formats=ALLOWED_FORMATS) as im:
                    check_image_size(im.size)
                    im.verify()
        except UnidentifiedImageError:
            bad.append((e[0], _FORMAT_REASON))
        except Image.DecompressionBombError as exc:  # beyond PIL's own cap, above ours
            bad.append((e[0], _size_cap_reason(root / e[0], exc)))
        except DataError as exc:
            bad.append((e[0], str(exc)))
        except Exception as exc:  # noqa: BLE001 - any decoder failure means unreadable
            bad.append((e[0], f"unreadable image: {type(exc).__name__}"))
        else:
            good.append(e)
    return good, bad

