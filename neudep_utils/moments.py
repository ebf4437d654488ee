"""Second moments of logits: one home for ``E[f f^T]`` and the centred covariance."""

from __future__ import annotations

from .covlasso import second_moment, second_moment_from_sums

__all__ = ["second_moment", "second_moment_from_sums"]
