"""``nnmargin report``: the command-line front end of :func:`nnmargin.report.write_report`.

    nnmargin report runs/mnist runs/fmnist --out report/
"""
from __future__ import annotations

from ..report import write_report
from ._common import Command, require


def add_arguments(parser) -> None:
    """The options of ``nnmargin report``."""
    parser.add_argument("runs", nargs="+", metavar="RUN_DIR", help="output folders of 'nnmargin experiment'")
    parser.add_argument("--out", required=True, metavar="DIR", help="where report.md and figures/ go")
    parser.add_argument("--no-figures", action="store_true", help="write only the markdown (no matplotlib)")


def run(args, argv) -> int:
    """``nnmargin report``: write report.md (and its figures) for the experiment folders given."""
    if not args.no_figures:
        require("matplotlib")
    path = write_report(args.runs, args.out, figures=not args.no_figures)
    print(f"wrote {path}")
    return 0


COMMAND = Command(
    name="report",
    help="tables and figures from experiment folders",
    description="Tables and figures from nnmargin experiment folders.",
    add_arguments=add_arguments,
    run=run,
    error_prefix="nnmargin report",
)
