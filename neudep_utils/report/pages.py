"""The book's pages that summarise the notebooks' results, and the command that writes them.

No model is loaded and no image folder is scanned: everything comes from the results files the
notebooks wrote (:mod:`neudep_utils.record`). ``make book`` runs, after the notebooks::

    python -m neudep_utils.report.pages --profile smoke --output-dir outputs/smoke

which writes, under ``book/generated/``:

- ``answer.md``: the landing page's opening: one paragraph with the answer (the verdicts, the
  first claim's deciding number beside its reference, the scope), the claims table and the
  summary figure (:func:`answer_page`);
- ``models.md``: the profile's models, from the model registry (:func:`models_page`);
- ``claim_list.md``: the paper's claims (:data:`neudep_utils.verdicts.CLAIMS`);
- ``claims.md``: "claims at a glance": the claims table, the figure, each claim's summary,
  what decided it and its rule (:func:`claims_page`);
- ``numbers.md``: every number of every results file (:func:`numbers_page`);
- ``title.md``: the PDF's title page; ``atlas.md`` and its data (:mod:`.atlas`);
- ``reproducibility.md`` (:mod:`.reproducibility`);

and, for the default profile, the README's block and ``book/_static/`` (:func:`update_readme`).
"""

from __future__ import annotations

import argparse
import html
import io
import json
import os
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt

from ..errors import ResultsError
from ..images import default_data_root
from ..models import registry
from ..profiles import get_profile
from ..verdicts import CLAIMS
from . import atlas, readme
from .claims_figure import claims_figure, describe
from .readme import format_number, load_results
from .reproducibility import reproducibility_page

__all__ = ["GENERATED_NOTE", "answer_page", "breakable", "build", "claim_list", "claims_page",
           "main",
           "md_cell", "models_page", "numbers_page", "title_page", "update_readme",
           "write_binary_if_changed", "write_if_changed"]

#: The source checkout (the book and the README live there).
REPO = Path(__file__).resolve().parents[2]

GENERATED_NOTE = ("% Generated at build time by python -m neudep_utils.report.pages; do not edit "
                  "(changes are overwritten).\n")

#: The paper, for every page that cites it by link.
PAPER_URL = "https://arxiv.org/abs/2211.12339"


def md_cell(text: Any) -> str:
    """Text made safe for one cell of a Markdown table."""
    return " ".join(str(text).split()).replace("|", "\\|")


def breakable(text: str) -> str:
    """``text`` with a zero-width space after each ``/``, so that a long file path can wrap in
    a table cell (at 1400 px and on paper) instead of widening the table."""
    return text.replace("/", "/\u200b")


def _book_evidence(c: dict[str, Any]) -> str:
    """A {ref} link to the claim's verdict section, or the notebook page without a label."""
    title = f"notebook {c['notebook'][:2]}"
    if c.get("label"):
        return f"{{ref}}`{title} <{c['label']}>`"
    return f"{{doc}}`{title} </executed/{c['notebook']}>`"


def book_table(summary: dict[str, Any]) -> str:
    """The claims table as the book shows it: evidence linked to the notebooks' verdict
    sections, model counts to the model list."""
    return readme.verdict_table(summary, evidence=_book_evidence, models_link=_models_ref)


def _models_ref(text: str) -> str:
    return f"{{ref}}`{text} <models>`"


def answer_page(summary: dict[str, Any], figure: str | None = None, alt: str = "") -> str:
    """The landing page's opening (included by ``book/intro.md``): the answer paragraph, the
    claims table and the summary figure (``figure``: its path relative to the book root)."""
    lines = [GENERATED_NOTE]
    if summary.get("profile") == "smoke":
        lines += ["```{note}", "This book was built with the **smoke** profile, a quick preview "
                  "on fewer models and targets: its numbers check that the pipeline runs; the "
                  "study's verdicts are those of the default profile (`make book`).", "```", ""]
    lines += [readme.answer(summary, models_link=_models_ref), book_table(summary)]
    if figure:
        lines += [f"```{{figure}} {figure}", ":name: fig-answer", f":alt: {md_cell(alt)}",
                  ":width: 90%", "",
                  "The paper's expectation against the measurements: target-class accuracy "
                  "kept when a category's logit is replaced by a few others' (top: within a "
                  "model, C1; middle: across models, C2), against the number of partners k, "
                  "beside random partners and the unmodified model; bottom: every claim's "
                  "verdict. Details on the [claims page](generated/claims.md).", "```", ""]
    return "\n".join(lines)


def models_page(profile: str) -> str:
    """The models the profile tests, from the model registry: name, kind, family, feature
    width d and where the weights come from; hub names are listed as such."""
    try:
        prof = get_profile(profile)
        names = list(dict.fromkeys([*prof.models, *prof.cross.models,
                                    prof.robustness.model]))
    except (KeyError, ValueError) as exc:
        return f"{GENERATED_NOTE}\nNo model list: {md_cell(exc)}\n"
    lines = [GENERATED_NOTE,
             f"Profile **{profile}** tests {len(names)} models (notebook 01 fits all "
             f"{len(prof.models)} of its models; notebook 02 pairs "
             f"{len(prof.cross.models)}; notebook 04 fine-tunes the head of "
             f"`{readme.short(prof.robustness.model)}`). $d$ is the penultimate feature width "
             "(the logit layer's input); with $d < n = 1000$ classes the logits span at most "
             "$d + 1$ dimensions.", "",
             "| model | kind | family | $d$ | weights |", "| --- | --- | --- | --- | --- |"]
    kinds = {n: readme.model_kind(n, registry) for n in names}
    tf = [readme.short(n) for n, k in kinds.items() if k == "transformer"]
    lines[1] += (f" The transformer{'s' if len(tf) > 1 else ''} ({', '.join(tf)}) "
                 f"make{'' if len(tf) > 1 else 's'} the paper's CNN-versus-transformer "
                 "comparison (C2) testable offline." if tf else
                 " All are convolutional networks: the paper's CNN-versus-transformer "
                 "comparison (C2) needs hub weights (the full profile).")
    for name in names:
        spec = registry.get_spec(name)
        if spec is None:  # an unregistered name goes to the hub
            lines.append(f"| `{md_cell(name)}` | {kinds[name]} | hub | | timm hub weights "
                         "(needs the Hugging Face hub once) |")
            continue
        note = f" ({md_cell(spec.note)})" if getattr(spec, "note", "") else ""
        lines.append(f"| `{readme.short(name)}`{note} | {kinds[name]} | "
                     f"{md_cell(spec.family)} | {spec.width} | "
                     f"{breakable(md_cell(spec.description)).replace('$', chr(92) + '$')} |")
    return "\n".join(lines) + "\n"


def title_page(summary: dict[str, Any], profile: str) -> str:
    """The PDF's title page (raw HTML shown only in print): title, paper, profile, verdicts."""
    verdicts = "".join(
        f"<tr><td>{html.escape(c['cid'])} {html.escape(c['name'])}</td><td><b>"
        f"{html.escape(c.get('verdict') or 'no result')}</b></td></tr>"
        for c in summary["claims"])
    return "\n".join([
        GENERATED_NOTE, "```{raw} html", '<div class="print-only title-page">',
        '<p style="font-size:2.2em;font-weight:bold;margin-bottom:0.2em">Neural dependencies: '
        "a reproducibility study</p>",
        "<p>of Feng et al., <i>Neural Dependencies Emerging from Learning Massive "
        f'Categories</i>, CVPR 2023 (<a href="{PAPER_URL}">arXiv:2211.12339</a>)</p>',
        f"<p>The neudep project contributors. Profile <b>{html.escape(profile)}</b>, built "
        f"{time.strftime('%Y-%m-%d')}.</p>",
        '<table style="margin:2em auto;text-align:left">' + verdicts + "</table>",
        "</div>", "```", ""])


def claim_list() -> str:
    """The paper's claims as a Markdown definition list (included by the introduction)."""
    lines = [GENERATED_NOTE]
    for c in CLAIMS.values():
        lines += [f"{c.cid} {c.name}", f": {c.statement}", ""]
    return "\n".join(lines)


def claims_page(results: dict[str, dict[str, Any]], summary: dict[str, Any], profile: str,
                notebooks: Iterable[str] = ()) -> str:
    """Markdown of the "claims at a glance" page: the claims table, a pointer to the summary
    figure (on the landing page), each claim's summary, what decided it, its headline and
    reference numbers in full and its rule, and the notebooks."""
    lines = [GENERATED_NOTE, "(claims-at-a-glance)=", "# Claims at a glance", ""]
    profiles = sorted({str(r.get("profile")) for r in results.values()})
    lines += [
        f"Generated at build time from the notebooks' results files (profile **{profile}**). "
        "Each row gives a claim's verdict, the number its rule reads beside the number it is "
        "read against (95% intervals in brackets; for a rule with two parts, the second "
        "part's number below them), how many models it was tested on and the notebook "
        "section with the evidence. Below the table, each claim's summary, what decided its "
        "verdict and the rule. The claims are numbered as in the [introduction](../intro.md), whose summary "
        "figure ({numref}`fig-answer`) draws the C1 and C2 curves.", ""]
    if profiles and profiles != [profile]:
        lines += [f"```{{warning}}\nThe results files come from profile(s) {', '.join(profiles)}, "
                  f"not only from profile {profile}.\n```", ""]
    if profile == "smoke":
        lines += ["```{note}\nThis is the **smoke** profile: a quick preview on fewer models and "
                  "targets. Its numbers check that the pipeline runs; the study's verdicts are "
                  "those of the default profile (`make book`).\n```", ""]
    lines += [book_table(summary), ""]
    missing = [s for s in notebooks if s not in results]
    if missing:
        lines += ["```{warning}", "No results file for: " + ", ".join(missing) + ".", "```", ""]
    lines += ["## Each claim", ""]
    for cid, claim_def in CLAIMS.items():
        found = [(stem, r, r["claims"][cid]) for stem, r in results.items()
                 if cid in r["claims"]]
        lines += [f"### {cid} {claim_def.name}", "", f"*The paper:* {claim_def.statement}", ""]
        if not found:
            lines += ["No notebook reported this claim in this build.", ""]
        for stem, r, c in found:
            ev = _book_evidence({"notebook": stem, "label": c.get("label")})
            lines += [f"**{c.get('verdict')}** ({ev}). {c.get('summary', '')}", ""]
            if c.get("why"):
                lines += [f"*What decided it:* {c['why']}.", ""]
            keys = [("Headline number", c.get("headline")), ("Read against", c.get("reference")),
                    ("Second part", c.get("second"))]
            for what, key in keys:
                num = r.get("numbers", {}).get(key) if key else None
                if num:
                    lines += [f"*{what}* (`{key}`): {format_number(num)}; "
                              f"{num.get('definition', '')}.", ""]
            if c.get("rule"):
                lines += [f"*Rule:* {c['rule']}", ""]
    lines += ["## Notebooks", "",
              "| notebook | its claims and their verdicts | run time (s) |", "| --- | --- | --- |"]
    for stem, r in results.items():
        rt = r.get("runtime_s")
        verdicts = " <br> ".join(f"{cid} **{md_cell(c.get('verdict'))}**"
                             for cid, c in r.get("claims", {}).items())
        lines.append(f"| [{md_cell(r.get('title', stem))}](../executed/{stem}.ipynb) | "
                     f"{verdicts or md_cell(r.get('claim', ''))} | "
                     f"{readme.fmt(round(rt)) if rt is not None else 'n/a'} |")
    lines += ["", "Every number each notebook wrote to its results file, with its definition, "
              "is listed in the appendix {ref}`all-numbers`.", ""]
    return "\n".join(lines)


def numbers_page(results: dict[str, dict[str, Any]], profile: str) -> str:
    """Markdown of the appendix page with every number of every results file: one paragraph
    per number (name, value, definition), so that nothing needs a wide table; the PDF leaves
    it to the HTML book (``print-hide``)."""
    n = sum(len(r.get("numbers", {})) for r in results.values())
    lines = [GENERATED_NOTE, "(all-numbers)=", "# All reported numbers", "",
             f"Every number each notebook wrote to its results file (profile **{profile}**, "
             f"{n} numbers), with its definition; percentages are fractions of the images or "
             "categories the definition names, intervals in brackets.", "",
             "```{raw} html",
             '<p class="print-only">This appendix is left to the HTML book '
             "(<code>book/_build/html/generated/numbers.html</code>) and to the results files "
             "(<code>outputs/&lt;profile&gt;/NN_*.json</code>): it lists "
             f"{n} numbers.</p>", "```", "", ":::{div} print-hide", ""]
    for stem, r in results.items():
        nums = r.get("numbers", {})
        lines += [f"## {md_cell(r.get('title', stem))}", ""]
        if not nums:
            lines += ["No numbers reported.", ""]
            continue
        lines += [f"- `{name}` = **{format_number(num)}**: "
                  f"{' '.join(str(num.get('definition', '')).split())}"
                  for name, num in nums.items()]
        lines.append("")
    lines += [":::", ""]
    return "\n".join(lines)


def write_if_changed(path: Path, text: str, volatile: str | None = None) -> bool:
    """Write ``text`` unless the file already holds it, ignoring lines that start with
    ``volatile`` (keeps Sphinx's incremental build)."""
    path.parent.mkdir(parents=True, exist_ok=True)

    def stable(t: str) -> str:
        return "\n".join(x for x in t.splitlines() if not (volatile and x.startswith(volatile)))

    if path.is_file() and stable(path.read_text()) == stable(text):
        return False
    path.write_text(text)
    return True


def write_binary_if_changed(path: Path, data: bytes) -> bool:
    """Write ``data`` unless the file already holds it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_file() and path.read_bytes() == data:
        return False
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
    return True


def figure_png(summary: dict[str, Any]) -> bytes:
    """The headline figure as PNG bytes (no timestamp in the metadata: same input, same bytes)."""
    fig = claims_figure(summary)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, metadata={"Software": None})
    plt.close(fig)
    return buf.getvalue()


def update_readme(summary: dict[str, Any], png: bytes, static: Path,
                  readme_path: Path) -> list[Path]:
    """Commit-ready README material of the default profile: ``default_summary.json``,
    ``readme_verdicts.md`` (the README's block), ``summary.png`` under ``static``, and the
    block spliced into ``readme_path``; returns the files that changed."""
    block = readme.readme_block(summary)
    changed = []
    for path, data in ((static / "default_summary.json",
                        (json.dumps(summary, indent=1, sort_keys=True) + "\n").encode()),
                       (static / "readme_verdicts.md", block.encode()),
                       (static / "summary.png", png)):
        if write_binary_if_changed(path, data):
            changed.append(path)
    if readme_path.is_file():
        text = readme_path.read_text()
        new = readme.splice(text, block)
        if new != text:
            readme_path.write_text(new)
            changed.append(readme_path)
    return changed


def build(profile: str, output_dir: Path, book: Path = REPO / "book",
          readme_mode: str = "auto", repo: Path = REPO) -> list[str]:
    """Write every generated page of ``book`` from the results files in ``output_dir``;
    returns the messages to print. Raises :class:`~neudep_utils.errors.ResultsError` (via
    :func:`~neudep_utils.report.readme.load_results`) for a damaged results file."""
    notebooks = [p.stem for p in sorted((repo / "notebooks").glob("[0-9][0-9]_*.ipynb"))]
    results = load_results(output_dir)
    msgs = [] if results else [f"warning: no notebook results files in {output_dir}"]
    gen = book / "generated"
    summary = readme.summarize(results, profile)
    png = figure_png(summary)
    alt = describe(summary)
    write_binary_if_changed(gen / "claims_summary.png", png)
    write_if_changed(gen / "answer.md", answer_page(summary, "generated/claims_summary.png",
                                                    alt))
    write_if_changed(gen / "models.md", models_page(profile))
    write_if_changed(gen / "claim_list.md", claim_list())
    write_if_changed(gen / "title.md", title_page(summary, profile), volatile="<p>The neudep")
    write_if_changed(gen / "claims.md", claims_page(results, summary, profile, notebooks))
    write_if_changed(gen / "numbers.md", numbers_page(results, profile))
    write_if_changed(gen / "atlas.md", atlas.atlas_page(results, profile, GENERATED_NOTE))
    atlas.write_atlas(results, gen / "extra" / "_atlas")
    write_if_changed(gen / "reproducibility.md",
                     GENERATED_NOTE + reproducibility_page(
                         profile, results, output_dir, default_data_root(), repo,
                         book / "_build" / "stages.txt", book / "_build" / "extraction.json"),
                     volatile="| built |")
    msgs.append(f"generated {gen}/{{answer,models,claim_list,claims,numbers,atlas,"
                f"reproducibility}}.md from {len(results)} results file(s) in {output_dir}")
    if readme_mode == "yes" or (readme_mode == "auto" and profile == "default"):
        if results:
            changed = update_readme(summary, png, book / "_static", repo / "README.md")
            msgs.append("README: " + (", ".join(str(p.relative_to(repo)) for p in changed)
                                      + " updated (commit them)" if changed else "unchanged"))
    return msgs


def main(argv: list[str] | None = None) -> int:
    """Entry point; returns the exit status (2, with one ``error:`` line, for bad input)."""
    ap = argparse.ArgumentParser(prog="python -m neudep_utils.report.pages",
                                 description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", default="default")
    ap.add_argument("--output-dir", default=None, help="default: outputs/<profile>")
    ap.add_argument("--book", default=str(REPO / "book"), help="the book's folder")
    ap.add_argument("--readme", choices=("auto", "yes", "no"), default="auto",
                    help="update README.md and book/_static/ (auto: for the default profile)")
    args = ap.parse_args(argv)
    output_dir = Path(args.output_dir or REPO / "outputs" / args.profile).resolve()
    try:
        msgs = build(args.profile, output_dir, Path(args.book).resolve(), args.readme)
    except ResultsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for m in msgs:
        print(m, file=sys.stderr if m.startswith("warning:") else sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
