"""The shared base of every verdict rule (:mod:`.rules`, :mod:`.similar`)."""

from __future__ import annotations

from dataclasses import fields

__all__ = ["_Rule"]


class _Rule:
    """Shared behaviour: the rule's text with its thresholds filled in."""

    TEXT = ""

    def params(self) -> dict[str, float]:
        """The thresholds by name (and derived display values)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}  # type: ignore[arg-type]

    def text(self) -> str:
        """The rule in words (Markdown)."""
        return self.TEXT.format(**self.params())
