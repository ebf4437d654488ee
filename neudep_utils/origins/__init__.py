"""Every image and weight file of the study, from its public origin, verified.

``registry`` (the committed copy of ``../shared/ORIGINS.tsv``: sha256, repository, commit, path and
how each file was made; which rows a profile needs), ``fetch`` (pooch downloads, the PNG to JPEG
re-encoding, checks, the user data folder), ``command`` (``python -m neudep_utils data``).
Where the folders are found afterwards: :mod:`neudep_utils.locations`.
"""

from .command import cmd_data, ensure
from .fetch import fetch, origin_base, png_to_jpeg, verify_rows
from .registry import GITHUB_RAW, MODEL_FOLDERS, Row, load_registry, profile_rows

__all__ = ["GITHUB_RAW", "MODEL_FOLDERS", "Row", "cmd_data", "ensure", "fetch", "load_registry",
           "origin_base", "png_to_jpeg", "profile_rows", "verify_rows"]
