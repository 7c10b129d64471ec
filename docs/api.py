"""Build the API reference from the docstrings (``make docs``) into build/api/.

It covers the public modules: ``batch_orchestra`` (its ``__all__``), ``batch_orchestra.testing``,
``batch_orchestra.sources`` and ``batch_orchestra.dashboard``; the command line has its own
``--help``. Every warning pdoc gives (a type annotation it cannot read, a module it cannot
import, a broken link) fails the build, listed, so that the reference cannot rot unseen.

    python docs/api.py [output folder]
"""

from __future__ import annotations

import sys
import time
import warnings
from pathlib import Path

import jinja2
import pdoc
import pdoc.render

MODULES = [
    "batch_orchestra",
    "batch_orchestra.testing",
    "batch_orchestra.sources",
    "batch_orchestra.dashboard",
]
INDEX = '{% set root_module_name = none %}{% extends "default/index.html.jinja2" %}'
ROOT = Path(__file__).resolve().parent.parent
PDOC_DIR = str(Path(pdoc.__file__).parent)


def main(argv: list[str]) -> int:
    """Build into ``argv[0]`` (default build/api); 1 if pdoc warned of anything."""
    out = (Path(argv[0]) if argv else ROOT / "build" / "api").resolve()
    started = time.monotonic()
    # The source view highlights every member's code: most of the build's time, little use here.
    pdoc.render.configure(docformat="google", show_source=False)
    # index.html lists the modules (pdoc's own redirects to the package, whose page does not
    # link to the subpackages: they are not in its __all__).
    pdoc.render.env.loader = jinja2.ChoiceLoader(
        [jinja2.DictLoader({"index.html.jinja2": INDEX}), pdoc.render.env.loader]
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pdoc.pdoc(*MODULES, output_directory=out)
    problems = sorted({str(w.message) for w in caught if w.filename.startswith(PDOC_DIR)})
    for problem in problems:
        print(f"pdoc: {problem}", file=sys.stderr)
    if problems:
        print(f"{len(problems)} problem(s) in the API reference", file=sys.stderr)
        return 1
    shown = out.relative_to(ROOT) if out.is_relative_to(ROOT) else out
    print(f"API reference in {shown}/index.html ({time.monotonic() - started:.1f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
