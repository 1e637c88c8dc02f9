"""The ``clrisk`` command line: a thin client of the public API.

A :class:`~clrisk.exceptions.ClriskError` becomes one line on stderr and exit
code 1; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
import time
import warnings
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from clrisk.datasets import make_country
from clrisk.diagnostics import ClassificationTable
from clrisk.effects import territory_effects
from clrisk.exceptions import (
    ClriskError,
    ClriskWarning,
    DataValidationError,
    InvalidParameterError,
    SchemaError,
)
from clrisk.features import encode, indicator_values
from clrisk.io import read_table, writable, write_geojson, write_table
from clrisk.model import RiskModel
from clrisk.modelfile import load_model, model_card
from clrisk.prioritise import prioritise
from clrisk.projection import predict
from clrisk.reliability import DEFAULT_MIN_CHILDREN, suppress, suppress_breakdown
from clrisk.scenario import simulate
from clrisk.sites import score_sites
from clrisk.spec import INDICATORS, FeatureSpec
from clrisk.stream import ARROW, PARQUET
from clrisk.validation import cross_validate
from clrisk.vulnerability import VulnerabilityIndex
from clrisk.workbook import write_workbook

__all__ = ["main"]

_EXAMPLES = """examples:
  clrisk demo                          # synthetic country, results in ./clrisk-demo
  clrisk demo --format json            # machine-readable summary on stdout
  clrisk check survey.csv --spec spec.toml
  clrisk fit survey.csv --spec spec.toml --outcome ti --weight fexp \\
      --strata estrato --psu upm --indicators indicators.csv -o model.json
  clrisk predict census.parquet --model model.json --territory municipio -o risk.csv
  clrisk prioritise risk.csv --coverage 0.5 -o plan.csv
  clrisk zones blocks_risk.csv --neighbours blocks.geojson --key block \
      --within-region -o zones.csv
  clrisk simulate census.parquet --model model.json --set attends_school=yes \\
      -o effect.csv
  clrisk vulnerability indicators.xlsx --territory codigo \\
      --dimension "poverty=pct_pobreza" --dimension "services=escuelas_1000" \\
      --orient escuelas_1000=-1 -o ivti.csv
"""


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):
        parser.print_help()
        return 2
    try:
        if getattr(args, "output", None) is not None and args.run is not _report:
            writable(args.output)  # fail before the work, not after it
        shown, warnings.formatwarning = warnings.formatwarning, _format_warning
        try:
            return int(args.run(args))
        finally:
            warnings.formatwarning = shown
    except ClriskError as exc:
        # the library's advice, in the command line's words
        message = _cli_words(str(exc), args)
        print(f"clrisk: error: {message}", file=sys.stderr)
        return 1


def _format_warning(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    line: str | None = None,
) -> str:
    """A warning as one line, in the command line's words (not the Python
    source line that raised it)."""
    return f"clrisk: warning: {_cli_words(str(message))}\n"


# the library's advice (Python arguments) in the command line's words
_CLI_WORDS = (
    ("(or read the file with decimal=',')", "(or pass --decimal ,)"),
    ("pass indicators=<the territory indicator table>", "pass --indicators <file>"),
    ("read the file with dtype=str", "keep the codes as text in the file"),
)


def _cli_words(text: str, args: argparse.Namespace | None = None) -> str:
    for python, cli in _CLI_WORDS:
        text = text.replace(python, cli)
    if args is None or hasattr(args, "on_invalid"):
        text = text.replace("pass on_invalid='drop'", "pass --on-invalid drop")
    return text


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="clrisk",
        description="Child labour risk identification: where children are most at "
        "risk of child labour, and why.",
        epilog=_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(title="commands")
    demo = sub.add_parser(
        "demo",
        help="generate a synthetic country, fit, project, classify, prioritise",
        description="Run the whole CLRISK workflow on a synthetic country whose true "
        "risk is known, print a summary and write the results as CSV.",
        epilog=_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    demo.add_argument(
        "--out",
        type=Path,
        default=Path("clrisk-demo"),
        help="output folder (default: ./clrisk-demo)",
    )
    demo.add_argument(
        "--seed", type=int, default=2024, help="random seed (default 2024)"
    )
    demo.add_argument(
        "--territories",
        type=int,
        default=300,
        help="municipalities in the synthetic country (default 300)",
    )
    demo.add_argument(
        "--coverage",
        type=_decimal_arg,
        default=0.5,
        help="share of expected child labour the priority list must "
        "cover (default 0.5)",
    )
    demo.add_argument(
        "--format",
        choices=("text", "json"),
        default="text",
        help="summary on stdout as text or JSON",
    )
    demo.set_defaults(run=_demo)
    _add_check(sub)
    _add_fit(sub)
    _add_predict(sub)
    _add_prioritise(sub)
    _add_zones(sub)
    _add_simulate(sub)
    _add_vulnerability(sub)
    _add_sites(sub)
    _add_report(sub)
    return parser


def _add_report(sub: Any) -> None:
    cmd = sub.add_parser(
        "report",
        help="maps and one HTML fact sheet per region",
        description="Project the model onto FRAME and write, in the output folder, "
        "one self-contained HTML fact sheet per region (maps from the GeoJSON "
        "boundaries, territories by level, main factors) and the Excel workbook.",
    )
    cmd.add_argument("frame", type=Path)
    cmd.add_argument("--model", type=Path, required=True, help="model.json")
    cmd.add_argument("--territory", help="territory-code column of the frame")
    cmd.add_argument("--region", help="region column of the frame")
    cmd.add_argument("--boundaries", type=Path, help="GeoJSON boundaries")
    cmd.add_argument(
        "--key", default="codigo", help="boundary property holding the territory code"
    )
    cmd.add_argument("--name", help="boundary property holding display names")
    cmd.add_argument(
        "--coverage",
        type=_decimal_arg,
        default=0.5,
        help="coverage target of the priority list (default 0.5)",
    )
    cmd.add_argument("--title", default="Child labour risk")
    cmd.add_argument(
        "--min-children",
        type=int,
        default=DEFAULT_MIN_CHILDREN,
        help="withhold territories with fewer children from every output "
        f"(default {DEFAULT_MIN_CHILDREN}; 0: none)",
    )
    _on_invalid(cmd)
    cmd.add_argument("-o", "--output", type=Path, required=True, help="folder")
    _common(cmd)
    cmd.set_defaults(run=_report)


def _add_sites(sub: Any) -> None:
    cmd = sub.add_parser(
        "sites",
        help="child-labour risk where production sites or suppliers work",
        description="Project the model onto FRAME (by territory and, with "
        "--sector, by the sector of the household head) and score each site of "
        "SITES: risk level, sector risk, expected exposure and reasons.",
    )
    cmd.add_argument("sites", type=Path)
    cmd.add_argument("--model", type=Path, required=True, help="model.json")
    cmd.add_argument("--frame", type=Path, required=True, help="census or registry")
    cmd.add_argument("--territory", help="territory-code column of the frame")
    cmd.add_argument(
        "--site-territory",
        default="territory",
        help="territory-code column of SITES (default: territory)",
    )
    cmd.add_argument("--sector", help="sector column of SITES")
    cmd.add_argument(
        "--sector-feature",
        default="head_branch",
        help="the spec feature holding sectors (default head_branch)",
    )
    cmd.add_argument("--volume", help="volume column of SITES (for exposure)")
    cmd.add_argument(
        "--region",
        help="region column of FRAME: withhold as clrisk predict/report --region do",
    )
    _on_invalid(cmd)
    _min_children(cmd, "the figures of territories (and sectors of a territory)")
    _output(cmd, "scored sites")
    _common(cmd)
    cmd.set_defaults(run=_sites)


def _frame(args: argparse.Namespace, model: RiskModel) -> Any:
    """The frame: a CSV, Excel or Stata file is read whole with the same
    detection and overrides as every other table (separator, encoding,
    decimal comma, sheet, codes as text); Parquet and Arrow files are
    streamed in batches by clrisk.predict."""
    if args.frame.suffix.lower() in (".csv", ".txt", ".tsv", ".xlsx", ".xlsm", ".dta"):
        codes = [*_spec_codes(model.spec_), args.territory]
        codes += [getattr(args, "region", None), *(getattr(args, "by", None) or [])]
        codes.append(getattr(args, "indicator_territory", None))
        return _read(args, args.frame, codes)
    return args.frame


def _range(text: str | None) -> tuple[float, float] | None:
    """``"5-17"`` -> ``(5.0, 17.0)``."""
    if text is None:
        return None
    low, sep, high = text.partition("-")
    if not sep:
        raise InvalidParameterError(f"--age-range takes LOW-HIGH; got {text!r}.")
    return _number(low, "--age-range"), _number(high, "--age-range")


# "1,000" / "1.000": a thousand or one, depending on the locale
_AMBIGUOUS = r"\s*[-+]?[1-9]\d{0,2}([.,]\d{3})+\s*"


def _decimal_arg(text: str) -> float:
    """An option's number, with '.' or ',' as the decimal mark (argparse type);
    ``12,000`` and ``12.000`` are refused: each could be twelve thousand or
    twelve, depending on the locale."""
    if re.fullmatch(_AMBIGUOUS, text):
        raise argparse.ArgumentTypeError(
            f"{text!r} could be read two ways: write 12000 or 12.0, without a "
            "thousands separator"
        )
    try:
        return float(text.replace(",", ".")) if text.count(",") <= 1 else float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None


def _number(text: str, what: str) -> float:
    """A number given on the command line (``.`` or ``,`` as decimal mark;
    ``1,000`` and ``1.000`` are refused as ambiguous)."""
    if re.fullmatch(_AMBIGUOUS, text):
        raise InvalidParameterError(
            f"{what} got {text!r}, which could be read two ways: write 1000 or "
            "1.0, without a thousands separator."
        )
    try:
        value = float(text.replace(",", "."))
    except ValueError:
        raise InvalidParameterError(
            f"{what} takes a number here; got {text!r}."
        ) from None
    if value != value or value in (float("inf"), float("-inf")):
        raise InvalidParameterError(f"{what} takes a finite number; got {text!r}.")
    return value


def _pairs(items: list[str] | None, what: str) -> dict[str, str]:
    """``["a=1", "b=x"]`` -> ``{"a": "1", "b": "x"}``, with a clear error."""
    out = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key or not value:
            raise InvalidParameterError(f"{what} takes NAME=VALUE; got {item!r}.")
        out[key.strip()] = value.strip()
    return out


def _add_simulate(sub: Any) -> None:
    cmd = sub.add_parser(
        "simulate",
        help="what a policy change would do, by territory",
        description="Score FRAME as it is and with the change applied; write the "
        "change in expected child labour per territory with intervals.",
    )
    cmd.add_argument("frame", type=Path)
    cmd.add_argument("--model", type=Path, required=True, help="model.json")
    cmd.add_argument("--territory", help="territory-code column of the frame")
    cmd.add_argument(
        "--set",
        dest="set_",
        metavar="FEATURE=LEVEL",
        help="set a feature, e.g. attends_school=yes",
    )
    cmd.add_argument(
        "--shift",
        metavar="FEATURE=AMOUNT",
        help="shift a numeric feature, e.g. household_size=-1 (in the model's "
        "units: after the spec's scale)",
    )
    cmd.add_argument(
        "--share",
        type=_decimal_arg,
        help="with --set: raise the share at that level to this value",
    )
    cmd.add_argument(
        "--where",
        action="append",
        metavar="FEATURE=LEVEL",
        help="only children with this level (repeatable)",
    )
    cmd.add_argument(
        "--territories", help="only these territory codes, comma-separated"
    )
    cmd.add_argument(
        "--region",
        help="region column: withhold as clrisk predict/report --region do "
        "(complements chosen within each region, whose totals are published)",
    )
    _on_invalid(cmd)
    _min_children(cmd)
    _output(cmd, "effects by territory")
    _common(cmd)
    cmd.set_defaults(run=_simulate)


def _add_vulnerability(sub: Any) -> None:
    cmd = sub.add_parser(
        "vulnerability",
        help="the Child Labour Vulnerability Index (IVTI)",
        description="Compute the vulnerability index from a territory indicator "
        "table: indicators grouped in dimensions, oriented, rescaled, weighted.",
    )
    cmd.add_argument("indicators", type=Path)
    cmd.add_argument("--territory", required=True, help="territory-code column")
    cmd.add_argument(
        "--dimension",
        action="append",
        required=True,
        metavar="NAME=COL1,COL2",
        help="a dimension and its columns",
    )
    cmd.add_argument(
        "--orient",
        action="append",
        metavar="COL=-1",
        help="-1 where a higher value means less vulnerable",
    )
    cmd.add_argument("--weights", default="equal", choices=("equal", "pca"))
    cmd.add_argument("--scaling", default="minmax", choices=("minmax", "zscore"))
    _output(cmd, "index by territory")
    _common(cmd)
    cmd.set_defaults(run=_vulnerability)


def _output(cmd: argparse.ArgumentParser, what: str) -> None:
    """The -o option of a command writing a table (or a workbook of them)."""
    cmd.add_argument(
        "-o",
        "--output",
        type=Path,
        required=True,
        help=f"{what}: .csv, .parquet or .xlsx (an Excel workbook)",
    )


def _common(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument(
        "--format",
        choices=("text", "json"),
        default="text",
        help="summary on stdout as text or JSON",
    )
    cmd.add_argument("--quiet", action="store_true", help="no progress messages")
    files = cmd.add_argument_group(
        "reading CSV and Excel files (detected when not given; what was "
        "detected is reported)"
    )
    files.add_argument("--sep", help="CSV field separator, e.g. ';'")
    files.add_argument("--encoding", help="CSV encoding, e.g. cp1252")
    files.add_argument("--decimal", choices=(".", ","), help="CSV decimal mark")
    files.add_argument("--sheet", help="Excel sheet, by name or 0-based index")


def _on_invalid(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument(
        "--on-invalid",
        choices=("error", "drop"),
        default="error",
        help="rows with missing values or unknown codes: stop "
        "(default) or drop them and report",
    )


def _min_children(cmd: argparse.ArgumentParser, what: str = "territories") -> None:
    cmd.add_argument(
        "--min-children",
        type=int,
        default=DEFAULT_MIN_CHILDREN,
        help=f"withhold {what} with fewer children from the output (and, "
        "where a published total would give one back, the next smallest) "
        f"(default {DEFAULT_MIN_CHILDREN}; 0: none)",
    )


def _add_check(sub: Any) -> None:
    cmd = sub.add_parser(
        "check",
        help="validate a file against a specification (no scoring)",
        description="Read FILE, code it with the specification and print the row "
        "accounting: rows read, usable, and rejected by reason.",
    )
    cmd.add_argument("file", type=Path)
    cmd.add_argument("--spec", type=Path, required=True, help="specification (TOML)")
    cmd.add_argument("--source", help="which source of the spec the file is")
    cmd.add_argument("--territory", help="territory-code column")
    cmd.add_argument("--indicators", type=Path, help="territory indicator table")
    _common(cmd)
    cmd.set_defaults(run=_check)


def _add_fit(sub: Any) -> None:
    cmd = sub.add_parser(
        "fit",
        help="fit the risk model on a survey and save it (JSON)",
        description="Fit the survey-weighted logit on SURVEY and write the model "
        "file and its model card (Markdown, next to it).",
    )
    cmd.add_argument("survey", type=Path)
    cmd.add_argument("--spec", type=Path, required=True, help="specification (TOML)")
    cmd.add_argument("--outcome", required=True, help="0/1 outcome column")
    cmd.add_argument("--weight", help="expansion-factor column")
    cmd.add_argument("--strata", help="stratum column")
    cmd.add_argument("--psu", help="primary sampling unit column")
    cmd.add_argument("--territory", help="territory-code column of the survey")
    cmd.add_argument("--indicators", type=Path, help="territory indicator table")
    cmd.add_argument("--link", choices=("logit", "probit"), default="logit")
    cmd.add_argument(
        "--cv-groups",
        metavar="COL",
        help="cross-validate with folds of whole groups (e.g. the PSU)",
    )
    cmd.add_argument("--folds", type=int, default=5, help="cross-validation folds")
    cmd.add_argument(
        "--cutoff",
        type=_decimal_arg,
        metavar="P",
        help="cut-off of the cross-validated classification table (children "
        "with a held-out probability >= P are flagged; default: the weighted "
        "share with the outcome); needs --cv-groups",
    )
    cmd.add_argument(
        "--territory-effects",
        action="store_true",
        help="estimate the territory random intercept on the survey (how much "
        "territories differ beyond their features); needs --territory",
    )
    cmd.add_argument(
        "--benchmark",
        action="store_true",
        help="also cross-validate gradient-boosted trees on the same features "
        "and folds, as an accuracy benchmark for the risk model; needs "
        "--cv-groups",
    )
    _on_invalid(cmd)
    cmd.add_argument("-o", "--output", type=Path, required=True, help="model.json")
    _common(cmd)
    cmd.set_defaults(run=_fit)


def _add_predict(sub: Any) -> None:
    cmd = sub.add_parser(
        "predict",
        help="project a saved model onto a frame, by territory",
        description="Score every child of FRAME (CSV, Parquet, Feather; read in "
        "batches) and write one row per territory.",
    )
    cmd.add_argument("frame", type=Path)
    cmd.add_argument("--model", type=Path, required=True, help="model.json")
    cmd.add_argument("--territory", help="territory-code column of the frame")
    cmd.add_argument("--region", help="region column, for roll-ups")
    cmd.add_argument("--by", action="append", help="breakdown (repeatable)")
    cmd.add_argument("--indicators", type=Path, help="territory indicator table")
    cmd.add_argument("--levels", default="jenks", help="level method")
    _on_invalid(cmd)
    cmd.add_argument("--age-column", help="age in years, to score only --age-range")
    cmd.add_argument(
        "--age-range",
        metavar="LOW-HIGH",
        help="e.g. 5-17: other ages are counted, not scored",
    )
    cmd.add_argument(
        "--unknown-as",
        action="append",
        metavar="FEATURE=LEVEL",
        help="code unknown codes of FEATURE as LEVEL (repeatable)",
    )
    cmd.add_argument(
        "--min-children",
        type=int,
        default=DEFAULT_MIN_CHILDREN,
        help="withhold territories (and breakdown cells) with fewer children "
        f"from the output (default {DEFAULT_MIN_CHILDREN}; 0: none)",
    )
    cmd.add_argument("--n-levels", type=int, default=3)
    cmd.add_argument(
        "--level-scope",
        choices=("national", "region"),
        default="national",
        help="classify the territories nationally or within each --region",
    )
    cmd.add_argument(
        "--indicator-territory",
        metavar="COL",
        help="column whose codes key the indicator table when it is not "
        "--territory (Phase II: --territory block --indicator-territory "
        "municipio --region municipio)",
    )
    cmd.add_argument(
        "--uncertainty",
        action="store_true",
        help="add each territory's rank interval and the probability of each "
        "risk level (2,000 draws of the coefficients, seed 0)",
    )
    _output(cmd, "territory table")
    _common(cmd)
    cmd.set_defaults(run=_predict)


def _add_prioritise(sub: Any) -> None:
    cmd = sub.add_parser(
        "prioritise",
        help="rank territories and select where to act first",
        description="Rank the territories of RISK (the output of clrisk predict) "
        "and select by top-k, budget or coverage.",
    )
    cmd.add_argument("risk", type=Path)
    cmd.add_argument(
        "--by", default="expected_count", choices=("expected_count", "risk", "blend")
    )
    cmd.add_argument("--top", type=int)
    cmd.add_argument("--budget", type=_decimal_arg)
    cmd.add_argument("--cost", help="per-territory cost column (with --budget)")
    cmd.add_argument("--coverage", type=_decimal_arg)
    _output(cmd, "ranked selection")
    _common(cmd)
    cmd.set_defaults(run=_prioritise)


def _add_zones(sub: Any) -> None:
    cmd = sub.add_parser(
        "zones",
        help="group neighbouring high-risk units into intervention zones",
        description="Group the neighbouring high-risk units of RISK (the output of "
        "clrisk predict at a fine level: localities, census blocks) into "
        "intervention zones. Neighbours come from boundaries (GeoJSON; units "
        "sharing a boundary point or segment) or from a table of code pairs.",
    )
    cmd.add_argument("risk", type=Path)
    cmd.add_argument(
        "--neighbours",
        type=Path,
        required=True,
        help="GeoJSON boundaries (.geojson/.json, with --key) or a table of "
        "neighbour pairs (columns territory and neighbour, or its first two)",
    )
    cmd.add_argument("--key", help="GeoJSON property holding the unit code")
    cmd.add_argument(
        "--rule",
        choices=("queen", "rook"),
        default="queen",
        help="boundaries: neighbours share a point (queen) or a segment (rook)",
    )
    cmd.add_argument(
        "--snap",
        type=_decimal_arg,
        default=0.0,
        help="boundaries: round coordinates to this multiple before comparing",
    )
    select = cmd.add_mutually_exclusive_group()
    select.add_argument(
        "--levels",
        nargs="+",
        help="risk levels to select (default: the highest)",
    )
    select.add_argument(
        "--min-risk", type=_decimal_arg, help="select units with risk >= P %%"
    )
    cmd.add_argument(
        "--within-region",
        action="store_true",
        help="do not join units of different regions",
    )
    cmd.add_argument("--units", type=Path, help="also write every unit with its zone")
    _output(cmd, "zone table")
    _common(cmd)
    cmd.set_defaults(run=_zones)


class _Progress:
    """A tqdm bar of rows scored, on stderr, only on a terminal."""

    def __init__(self, args: argparse.Namespace, frame: Any = None) -> None:
        self.bar: Any = None
        self.rows = 0
        if not args.quiet and sys.stderr.isatty():
            from tqdm import tqdm

            self.bar = tqdm(
                total=_n_rows(frame), unit=" rows", unit_scale=True, file=sys.stderr
            )

    def __call__(self, rows: int) -> None:
        if self.bar is not None:
            self.bar.update(rows - self.rows)
        self.rows = rows

    def close(self) -> None:
        """End the bar."""
        if self.bar is not None:
            self.bar.close()


def _n_rows(frame: Any) -> int | None:
    """Rows of a frame, where known without reading it (else None)."""
    if isinstance(frame, pd.DataFrame):
        return len(frame)
    suffix = frame.suffix.lower() if isinstance(frame, Path) else ""
    try:
        if suffix in PARQUET:
            import pyarrow.parquet as pq

            return int(pq.ParquetFile(frame).metadata.num_rows)
        if suffix in ARROW:
            import pyarrow as pa
            import pyarrow.ipc as ipc

            reader = ipc.open_file(pa.memory_map(str(frame), "r"))
            return sum(
                int(reader.get_batch(i).num_rows)
                for i in range(reader.num_record_batches)
            )
    except Exception:  # an unreadable file is reported by predict itself
        return None
    return None


def _say(args: argparse.Namespace, msg: str) -> None:
    """Progress and facts on stderr (stdout is for the summary)."""
    if not args.quiet:
        print(msg, file=sys.stderr, flush=True)


def _emit(args: argparse.Namespace, summary: dict[str, Any], text: str) -> int:
    if args.format == "json":
        print(json.dumps(_strict(summary), indent=2, allow_nan=False))
    else:
        print(text)
    return 0


def _strict(value: Any) -> Any:
    """`value` with NaN and infinite floats as null: standard JSON has neither."""
    if isinstance(value, dict):
        return {k: _strict(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_strict(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _read(
    args: argparse.Namespace, path: Path, codes: Sequence[str | None] = ()
) -> Any:
    """A table read whole; its `codes` columns kept as written (see
    :func:`clrisk.io.read_table`)."""
    sheet = args.sheet
    if sheet is not None and sheet.isdigit():
        sheet = int(sheet)
    table, info = read_table(
        path,
        sep=args.sep,
        encoding=args.encoding,
        decimal=args.decimal,
        sheet=sheet,
        codes=[c for c in codes if c],
    )
    _say(args, info.summary())
    return table


def _spec_codes(spec: FeatureSpec) -> list[str]:
    """Every column that holds codes of the spec's categorical features, in
    any source, and the indicator table's key."""
    cols = [
        src.column
        for f in spec.categorical
        if f.dimension != "territory"
        for src in f.sources.values()
    ]
    return [*cols, *spec.territory.values()]


_RISK_CODES = ("territory", "region", "level", "lead_policy_area")


def _check(args: argparse.Namespace) -> int:
    spec = FeatureSpec.from_toml(args.spec)
    table = _read(args, args.file, [*_spec_codes(spec), args.territory])
    if args.source == INDICATORS or (
        args.source is None and _is_indicator_table(spec, table)
    ):
        return _check_indicators(args, spec, table)
    source = args.source or spec.detect_source(table.columns)
    territory = args.territory or spec.territory.get(source)
    indicators = (
        _read(args, args.indicators, _spec_codes(spec)) if args.indicators else None
    )
    coded = encode(
        spec,
        table,
        source=source,
        territory=territory,
        indicators=indicators,
        on_invalid="drop",
        where=f"'{args.file}'",
    )
    q = coded.quality
    summary = {
        "file": str(args.file),
        "source": source,
        "rows_read": q.rows_read,
        "rows_usable": q.rows_used,
        "rejected": q.rejected,
        "notes": q.notes,
    }
    return _emit(args, summary, f"source: {source}\n{q.summary()}")


def _is_indicator_table(spec: FeatureSpec, table: pd.DataFrame) -> bool:
    """A table matching no data source of the spec but holding the indicator
    key and every territory feature's column."""
    try:
        spec.detect_source(table.columns)
        return False
    except SchemaError:
        need = [spec.territory.get(INDICATORS)]
        need += [f.source(INDICATORS).column for f in spec.territory_features]
        return bool(spec.territory_features) and all(c in table.columns for c in need)


def _check_indicators(
    args: argparse.Namespace, spec: FeatureSpec, table: pd.DataFrame
) -> int:
    """`clrisk check` of a territory indicator table: its key and the
    territory features' columns (numbers, one row per territory)."""
    if not spec.territory_features:
        raise InvalidParameterError(
            "The specification has no territory features: it reads no indicator table."
        )
    values = indicator_values(spec, table)  # refuses what predict would refuse
    summary = {
        "file": str(args.file),
        "source": INDICATORS,
        "rows_read": len(table),
        "territories": len(values),
        "features": list(values.columns),
    }
    text = (
        f"source: {INDICATORS}\nrows read: {len(table):,}; territories: "
        f"{len(values):,}; territory features: {', '.join(values.columns)}"
    )
    return _emit(args, summary, text)


def _fit(args: argparse.Namespace) -> int:
    if args.cutoff is not None and not args.cv_groups:
        raise InvalidParameterError(
            "--cutoff sets the cut-off of the cross-validated classification "
            "table: give --cv-groups too (the model card's in-sample table is at "
            "the weighted prevalence)."
        )
    if args.territory_effects and not args.territory:
        raise InvalidParameterError(
            "--territory-effects groups the survey by territory: give --territory too."
        )
    if args.benchmark and not args.cv_groups:
        raise InvalidParameterError(
            "--benchmark is scored out of fold: give --cv-groups too."
        )
    if args.cutoff is not None and not 0 < args.cutoff < 1:
        raise InvalidParameterError(
            f"--cutoff takes a probability strictly between 0 and 1; got {args.cutoff}."
        )
    spec = FeatureSpec.from_toml(args.spec)
    codes = _spec_codes(spec)
    survey = _read(
        args,
        args.survey,
        [*codes, args.territory, args.strata, args.psu, args.cv_groups],
    )
    indicators = _read(args, args.indicators, codes) if args.indicators else None
    fit_kwargs = {
        "outcome": args.outcome,
        "weight": args.weight,
        "strata": args.strata,
        "psu": args.psu,
        "territory": args.territory,
        "indicators": indicators,
    }
    model = RiskModel(spec, link=args.link, on_invalid=args.on_invalid).fit(
        survey, **fit_kwargs
    )
    text = model_card(model)
    sections: list[str] = []  # printed after the model's summary
    cv_summary = None
    if args.cv_groups:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ClriskWarning)
            cv = cross_validate(
                model,
                survey,
                groups=args.cv_groups,
                n_splits=args.folds,
                benchmark=args.benchmark,
                **fit_kwargs,
            )
        for w in caught:
            _say(args, f"warning: {w.message}")
        table = cv.classification_table(args.cutoff)
        cv_text = cv.summary()
        if args.cutoff is not None:
            cv_text += f"\nclassification {table.summary()}"
        text += "\n## Cross-validation\n" + cv_text + "\n"
        sections.append("\nCross-validation (out of fold):\n" + cv_text)
        cv_summary = {
            "auc": cv.auc,
            "brier": cv.brier,
            "calibration_slope": cv.calibration_slope,
            "weak": cv.weak,
            "classification": _classification_dict(table),
            "benchmark": None
            if cv.benchmark is None
            else {
                "model": cv.benchmark_name,
                "auc": cv.benchmark.auc,
                "brier": cv.benchmark.brier,
                "auc_gap": cv.benchmark_gap,
            },
        }
    effects_summary = None
    if args.territory_effects:
        fx = territory_effects(model, survey, **fit_kwargs)
        text += "\n## Territory effects\n" + fx.summary() + "\n"
        sections.append("\n" + fx.summary())
        effects_summary = {
            "sd": fx.sd,
            "sd_interval": list(fx.sd_interval),
            "lr_stat": fx.lr_stat,
            "p_value": fx.p_value,
            "territories": len(fx.table),
        }
    path = model.save(args.output)  # only once every requested check has run
    card = path.with_suffix(".md")
    card.write_text(text, encoding="utf-8")
    _say(args, f"wrote {path} and {card}")
    d = model.diagnostics_
    summary = {
        "cross_validation": cv_summary,
        "territory_effects": effects_summary,
        "model": str(path),
        "card": str(card),
        "n_obs": model.n_obs_,
        "converged": model.converged_,
        "auc": d.auc,
        "classification": _classification_dict(d.classification),
        "rows_rejected": model.quality_.rows_rejected,
    }
    return _emit(args, summary, "\n".join([model.summary(), *sections]))


def _classification_dict(table: ClassificationTable | None) -> dict[str, Any] | None:
    """The JSON report's figures of a classification table."""
    if table is None:
        return None
    keys = ("cutoff", "rule", "flagged", "sensitivity", "specificity", "ppv", "npv",
            "accuracy")  # fmt: skip
    return {k: getattr(table, k) for k in keys}


def _predict(args: argparse.Namespace) -> int:
    model = load_model(args.model)
    codes = _spec_codes(model.spec_)
    indicators = _read(args, args.indicators, codes) if args.indicators else None
    frame = _frame(args, model)
    progress = _Progress(args, frame)
    risk = predict(
        model,
        frame,
        territory=args.territory,
        region=args.region,
        by=args.by,
        indicators=indicators,
        levels=args.levels,
        n_levels=args.n_levels,
        level_scope=args.level_scope,
        indicator_territory=args.indicator_territory,
        progress=progress,
        on_invalid=args.on_invalid,
        unknown_as=_pairs(args.unknown_as, "--unknown-as"),
        age=args.age_column,
        age_range=_range(args.age_range),
    )
    progress.close()
    if args.uncertainty:
        # ranked among the territories published (a rank counting a withheld
        # one would bound its expected count); its row is withheld below
        published = None
        if args.min_children > 0:
            shown, _ = suppress(risk, min_children=args.min_children)
            published = shown.loc[~shown["suppressed"], "territory"].tolist()
        ranks = risk.uncertainty(territories=published)
        risk = replace(risk, table=risk.table.merge(ranks, on="territory"))
    _say(args, "row accounting:\n  " + risk.quality.summary().replace("\n", "\n  "))
    if args.output.suffix.lower() == ".xlsx":
        inputs = {"frame": args.frame, "model": args.model}
        if args.indicators:
            inputs["indicators"] = args.indicators
        path = _risk_workbook(args, risk, model, inputs)
    else:
        export = risk.table
        if args.min_children > 0:  # reliability flags, small territories withheld
            export, record = suppress(risk, min_children=args.min_children)
            if record.suppressed:
                _say(args, record.summary())
        path = write_table(export, args.output)
        if args.by:  # the breakdown, suppressed cell by cell
            cells = risk.breakdown("territory")
            if args.min_children > 0:
                cells, rec = suppress_breakdown(risk, min_children=args.min_children)
                if rec.suppressed:
                    _say(args, "breakdown: " + rec.summary())
            by_path = args.output.with_name(
                f"{args.output.stem}_by_{'_'.join(args.by)}{args.output.suffix}"
            )
            _say(args, f"wrote {write_table(cells, by_path)}")
    _say(args, f"wrote {path}")
    shown = risk  # the text summary lists territories: not the withheld ones
    if args.min_children > 0:
        withheld, _ = suppress(risk, min_children=args.min_children)
        shown = replace(risk, table=withheld)
    nat = risk.national().iloc[0]
    summary = {
        "output": str(path),
        "territories": len(risk.table),
        "national_risk_percent": float(nat["risk"]),
        "national_expected_count": float(nat["expected_count"]),
        "rows_read": risk.quality.rows_read,
        "rows_scored": risk.quality.rows_used,
        "rejected": risk.quality.rejected,
    }
    return _emit(args, summary, shown.summary(n=10))


def _risk_workbook(
    args: argparse.Namespace,
    risk: Any,
    model: RiskModel,
    inputs: dict[str, Any],
    scenario: Any = None,
    extra: dict[str, Any] | None = None,
) -> Path:
    """The workbook, with small territories and cells withheld when asked
    (`scenario` and the `extra` sheets come withheld already)."""
    more = dict(extra or {})
    if args.min_children <= 0:
        return write_workbook(
            args.output, risk, model=model, inputs=inputs, scenario=scenario,
            extra=more,
        )  # fmt: skip
    table, record = suppress(risk, min_children=args.min_children)
    withheld = bool(record.suppressed)
    if risk.stats.by:
        cells, cell_record = suppress_breakdown(risk, min_children=args.min_children)
        more["breakdown (suppressed)"] = cells
        withheld = withheld or bool(cell_record.suppressed)
    if not withheld:
        return write_workbook(
            args.output, risk, model=model, inputs=inputs, scenario=scenario,
            extra=extra,
        )  # fmt: skip
    # the full workbook's factor, region and breakdown sheets would show what is
    # withheld: write the suppressed tables and the record instead
    _say(
        args,
        record.summary() + " The workbook holds the suppressed tables only "
        "(no factor or region sheets).",
    )
    more["suppression"] = record.to_frame()
    return write_workbook(
        args.output, table, model=model, inputs=inputs, scenario=scenario, extra=more
    )


def _withhold(table: pd.DataFrame, record: Any) -> pd.DataFrame:
    """`table` (one row per territory) with the figures of the territories
    `record` suppressed blanked, and ``suppressed`` / ``suppression_reason``."""
    out = table.copy()
    hit = out["territory"].isin(record.suppressed).to_numpy()
    figures = [c for c in out.columns if c != "territory"]
    _blank(out, figures, hit)
    out["suppressed"] = hit
    out["suppression_reason"] = out["territory"].map(record.reasons)
    return out


def _simulate(args: argparse.Namespace) -> int:
    model = load_model(args.model)
    if (args.set_ is None) == (args.shift is None):
        raise InvalidParameterError("Give exactly one of --set or --shift.")
    spec_pair = _pairs([args.set_ or args.shift], "--set/--shift")
    ((feature, value),) = spec_pair.items()
    change: dict[str, Any] = {
        "feature": feature,
        "where": _pairs(args.where, "--where"),
    }
    names = {f.name: f for f in model.spec_.features}
    if feature not in names:
        raise InvalidParameterError(
            f"'{feature}' is not a feature of the model; the features are "
            f"{sorted(names)}."
        )
    numeric = names[feature].kind == "numeric"
    if args.set_ is not None:
        change["set"] = _number(value, "--set") if numeric else value
    else:
        change["shift"] = _number(value, "--shift")
    if args.share is not None:
        change["share"] = args.share
    if args.territories:
        change["territories"] = [t.strip() for t in args.territories.split(",")]
    frame = _frame(args, model)
    scenario = simulate(
        model, frame, [change], territory=args.territory, on_invalid=args.on_invalid
    )
    shown = scenario
    risk = None
    if args.output.suffix.lower() == ".xlsx" or (args.min_children > 0 and args.region):
        risk = predict(
            model,
            frame,
            territory=args.territory,
            region=args.region,
            on_invalid=args.on_invalid,
        )
    _say(args, "row accounting:\n  " + scenario.quality.summary().replace("\n", "\n  "))
    national_shown = True
    if args.min_children > 0:  # the territories predict would withhold
        # the scenario's own counts (its rows are the ones shown), with the
        # regions predict --region finds, so complements are chosen as there
        probe = scenario.table[["territory", "n_children", "risk"]].assign(
            risk_se=float("nan")
        )
        if risk is not None and risk.regions is not None:
            probe["region"] = probe["territory"].map(risk.regions)
        _, record = suppress(probe, min_children=args.min_children)
        if record.suppressed:
            _say(args, record.summary())
            shown = replace(scenario, table=_withhold(scenario.table, record))
        # territories outside --territories change by 0: a lone withheld one
        # among the changed would be the national change minus the others'
        changed = set(change.get("territories") or scenario.table["territory"])
        national_shown = len(changed & set(record.suppressed)) != 1
        if not national_shown:
            figures = [c for c in shown.national.columns if c != "scope"]
            blank = shown.national.copy()
            _blank(blank, figures, np.ones(len(blank), dtype=bool))
            shown = replace(shown, national=blank)
    if risk is not None and args.output.suffix.lower() == ".xlsx":
        inputs = {"frame": args.frame, "model": args.model}
        path = _risk_workbook(args, risk, model, inputs, scenario=shown)
    else:
        path = write_table(shown.table, args.output)
    _say(args, f"wrote {path}")
    q = scenario.quality
    summary: dict[str, Any] = {
        "output": str(path),
        "rows_read": q.rows_read,
        "rows_scored": q.rows_used,
        "rejected": q.rejected,
    }
    if not national_shown:
        note = (
            "The national change is withheld: it would give back the change of "
            "a withheld territory."
        )
        summary["national"] = "withheld"
        return _emit(args, summary, note)
    nat = scenario.national.iloc[0]
    summary.update(
        change=float(nat["change"]),
        change_low=float(nat["change_low"]),
        change_high=float(nat["change_high"]),
        expected_count=float(nat["expected_count"]),
    )
    return _emit(args, summary, shown.summary())


def _vulnerability(args: argparse.Namespace) -> int:
    table = _read(args, args.indicators)
    dims = {
        name: [c.strip() for c in cols.split(",")]
        for name, cols in _pairs(args.dimension, "--dimension").items()
    }
    orient = {
        k: int(_number(v, "--orient"))
        for k, v in _pairs(args.orient, "--orient").items()
    }
    index = VulnerabilityIndex(
        dims,
        orientation=orient or None,
        scaling=args.scaling,
        weights=args.weights,
        territory=args.territory,
    )
    result = index.compute(table)
    if args.output.suffix.lower() == ".xlsx":
        path = write_workbook(
            args.output,
            result.table,
            vulnerability=result,
            inputs={"indicators": args.indicators},
        )
    else:
        path = write_table(result.table, args.output)
    _say(args, f"wrote {path}")
    top = result.table.sort_values("score", ascending=False).head(10)
    summary = {
        "output": str(path),
        "territories": len(result.table),
        "weights": {k: float(v) for k, v in result.weights.items()},
    }
    return _emit(args, summary, top.to_string(index=False))


def _sites(args: argparse.Namespace) -> int:
    model = load_model(args.model)
    sites = _read(args, args.sites, [args.site_territory, args.sector])
    by = [args.sector_feature] if args.sector else None
    frame = _frame(args, model)
    progress = _Progress(args, frame)
    risk = predict(
        model,
        frame,
        territory=args.territory,
        region=args.region,
        by=by,
        progress=progress,
        on_invalid=args.on_invalid,
    )
    progress.close()
    _say(args, "row accounting:\n  " + risk.quality.summary().replace("\n", "\n  "))
    out = score_sites(
        sites,
        risk,
        territory=args.site_territory,
        sector=args.sector,
        sector_feature=args.sector_feature if args.sector else None,
        volume=args.volume,
    )
    if args.min_children > 0:
        out = _withhold_sites(out, risk, args)
    if args.output.suffix.lower() == ".xlsx":
        inputs = {"sites": args.sites, "frame": args.frame, "model": args.model}
        path = _risk_workbook(args, risk, model, inputs, extra={"sites": out})
    else:
        path = write_table(out, args.output)
    _say(args, f"wrote {path}")
    counts = out["status"].value_counts().to_dict()
    summary = {
        "output": str(path),
        "sites": len(out),
        "status": {str(k): int(v) for k, v in counts.items()},
        "frame_rows_read": risk.quality.rows_read,
        "frame_rows_scored": risk.quality.rows_used,
        "frame_rejected": risk.quality.rejected,
    }
    return _emit(args, summary, out.to_string(index=False, max_rows=20))


def _blank(table: pd.DataFrame, columns: list[str], rows: Any) -> None:
    """Blank `columns` of `rows` (a boolean mask) in place; integer columns
    become nullable integers."""
    for col in columns:
        values = table[col]
        if pd.api.types.is_integer_dtype(values.dtype):
            values = values.astype("Int64")
        table[col] = values.mask(rows)


def _withhold_sites(
    out: pd.DataFrame, risk: Any, args: argparse.Namespace
) -> pd.DataFrame:
    """Scored sites without the figures :func:`_predict` would withhold: those
    of small territories (and their complements), and with ``--sector`` those
    of small territory x sector cells."""
    _, record = suppress(risk, min_children=args.min_children)
    territory = set(record.suppressed)
    cell_hit = pd.Series(False, index=out.index)
    if args.sector:
        cells, cell_record = suppress_breakdown(risk, min_children=args.min_children)
        territory |= set(cell_record.withheld_totals) - {"national"}
        small = cells.loc[cells["suppressed"], ["territory", args.sector_feature]]
        pairs = set(zip(small["territory"], small[args.sector_feature].astype(str),
                        strict=True))  # fmt: skip
        site_pairs = zip(
            out[args.site_territory].astype("string").str.strip(),
            out[args.sector].astype("string").str.strip(),
            strict=True,
        )
        cell_hit = pd.Series([p in pairs for p in site_pairs], index=out.index)
    codes = out[args.site_territory].astype("string").str.strip()
    hit = codes.isin(territory).fillna(False).astype(bool)
    if not (hit.any() or cell_hit.any()):
        return out
    out = out.copy()
    scored = [c for c in _SITE_FIGURES if c in out.columns]
    sector_cols = [c for c in scored if c.startswith("sector_") or c == "exposure"]
    _blank(out, scored, hit.to_numpy())
    _blank(out, sector_cols, cell_hit.to_numpy())
    out.loc[cell_hit & ~hit, "status"] = (
        f"sector figures withheld (fewer than {args.min_children} children)"
    )
    out.loc[hit, "status"] = "territory withheld: " + codes[hit].map(
        lambda c: record.reasons.get(c, "its sector cells are withheld")
    )
    _say(args, f"{int(hit.sum())} sites in withheld territories, "
               f"{int((cell_hit & ~hit).sum())} in withheld sector cells")  # fmt: skip
    return out


_SITE_FIGURES = (
    "territory_risk", "territory_level", "lead_policy_area", "main_risk_factors",
    "sector_risk", "sector_risk_low", "sector_risk_high", "sector_children",
    "sector_expected_count", "sector_level", "exposure",
)  # fmt: skip


def _report(args: argparse.Namespace) -> int:
    from clrisk.report import fact_sheets, read_boundaries

    model = load_model(args.model)
    bounds = None
    if args.boundaries is not None:
        bounds = read_boundaries(args.boundaries, args.key, name=args.name)
    frame = _frame(args, model)
    progress = _Progress(args, frame)
    risk = predict(
        model,
        frame,
        territory=args.territory,
        region=args.region,
        progress=progress,
        on_invalid=args.on_invalid,
    )
    progress.close()
    shown, record = risk, None
    if args.min_children > 0:  # small territories withheld from every output
        table, record = suppress(risk, min_children=args.min_children)
        if record.withheld_totals:
            raise InvalidParameterError(
                f"The totals of {list(record.withheld_totals)} would reveal withheld "
                "territories and the fact sheets publish them: merge small "
                "territories or lower --min-children."
            )
        if record.suppressed:
            _say(args, record.summary())
            shown = replace(risk, table=table)
    plan = prioritise(shown, coverage=args.coverage)
    args.output.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ClriskWarning)
        pages = fact_sheets(shown, bounds, args.output, plan=plan, title=args.title)
    for w in caught:
        _say(args, f"warning: {w.message}")
    inputs = {"frame": args.frame, "model": args.model}
    extra = []
    if args.boundaries is not None:
        inputs["boundaries"] = args.boundaries
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ClriskWarning)
            extra.append(
                write_geojson(
                    shown.table,
                    args.boundaries,
                    args.key,
                    args.output / "clrisk-results.geojson",
                )
            )
        for w in caught:
            _say(args, f"warning: {w.message}")
    book_path = args.output / "clrisk-results.xlsx"
    if shown is risk:
        book = write_workbook(book_path, risk, plan=plan, model=model, inputs=inputs)
    else:  # without the sheets that would show what is withheld
        assert record is not None
        book = write_workbook(
            book_path,
            shown.table,
            plan=plan,
            model=model,
            inputs=inputs,
            extra={"suppression": record.to_frame()},
        )
    _say(args, f"wrote {len(pages)} fact sheets and {book} in {args.output}")
    summary = {
        "output": str(args.output),
        "fact_sheets": [p.name for p in pages],
        "workbook": book.name,
        "geojson": [p.name for p in extra],
    }
    return _emit(args, summary, "\n".join(str(p) for p in [*pages, book, *extra]))


def _prioritise(args: argparse.Namespace) -> int:
    table = _risk_numbers(_read(args, args.risk, _RISK_CODES), args.risk, [args.cost])
    plan = prioritise(
        table,
        by=args.by,
        top=args.top,
        budget=args.budget,
        cost=args.cost,
        coverage=args.coverage,
    )
    if args.output.suffix.lower() == ".xlsx":
        path = write_workbook(args.output, table, plan=plan, inputs={"risk": args.risk})
    else:
        path = write_table(plan.ranking, args.output)
    _say(args, f"wrote {path}")
    summary = {
        "output": str(path),
        "selected": len(plan.selection),
        "covered_share": plan.covered_share,
    }
    return _emit(args, summary, plan.summary())


def _risk_numbers(
    table: pd.DataFrame, path: Path, extra: Sequence[str | None] = ()
) -> pd.DataFrame:
    """A risk table read from a file, with its figures as numbers (a value
    that is not a number is an error, never a silent missing value)."""
    columns = ["n_children", "weighted_children", "expected_count", "risk"]
    for col in [*columns, *(c for c in extra if c)]:
        if col in table.columns:
            values = pd.to_numeric(table[col], errors="coerce")
            bad = values.isna() & table[col].notna()
            if bad.any():
                raise DataValidationError(
                    column=col,
                    problem="values that are not numbers",
                    n_bad=int(bad.sum()),
                    examples=[
                        f"row {i}: {v!r}" for i, v in table[col][bad].head().items()
                    ],
                    fix="Give the risk table as written by clrisk predict.",
                    where=f"'{path}'",
                )
            table[col] = values
    return table


def _zones(args: argparse.Namespace) -> int:
    from clrisk.report import read_boundaries
    from clrisk.zones import contiguity, intervention_zones

    geojson = args.neighbours.suffix.lower() in (".geojson", ".json")
    if geojson and not args.key:
        raise InvalidParameterError(
            "clrisk zones reads boundaries from a GeoJSON file: pass --key "
            "<the feature property holding the unit code>."
        )
    if args.units is not None:
        writable(args.units)  # fail before the work, not after it
    table = _risk_numbers(_read(args, args.risk, _RISK_CODES), args.risk)
    neighbours: Any
    if geojson:
        bounds = read_boundaries(args.neighbours, args.key)
        neighbours = contiguity(bounds, rule=args.rule, snap=args.snap)
        _say(args, f"{len(neighbours):,} pairs of neighbours ({args.rule} rule)")
    else:
        # a table of codes only: no column is a number in any locale
        with_point = argparse.Namespace(**{**vars(args), "decimal": "."})
        neighbours = _read(with_point, args.neighbours)
    zones = intervention_zones(
        table,
        neighbours,
        levels=args.levels,
        min_risk=args.min_risk,
        within_region=args.within_region,
    )
    if args.output.suffix.lower() == ".xlsx":
        path = write_workbook(
            args.output,
            table,
            inputs={"risk": args.risk, "neighbours": args.neighbours},
            extra={"zones": zones.zones, "zone units": zones.units},
        )
    else:
        path = write_table(zones.zones, args.output)
    _say(args, f"wrote {path}")
    summary: dict[str, Any] = {
        "output": str(path),
        "zones": len(zones.zones),
        "selected_units": int(zones.units["selected"].sum()),
        "selection": zones.rule,
        "expected_in_zones": float(zones.zones["expected_count"].sum()),
        "total_expected": zones.total_expected,
        "isolated": list(zones.isolated),
    }
    if args.units is not None:
        summary["units"] = str(write_table(zones.units, args.units))
        _say(args, f"wrote {summary['units']}")
    return _emit(args, summary, zones.summary())


def _demo(args: argparse.Namespace) -> int:
    t0 = time.perf_counter()
    text = args.format == "text"

    def say(msg: str) -> None:
        if text:
            print(msg, flush=True)

    say(
        f"Generating a synthetic country ({args.territories} municipalities, seed "
        f"{args.seed})..."
    )
    c = make_country(n_territories=args.territories, random_state=args.seed)
    say(f"  survey: {len(c.survey):,} children; census: {len(c.census):,} children")
    model = RiskModel(c.spec).fit(c.survey, **c.fit_kwargs)
    say(f"Fitted the survey-weighted logit: {model.diagnostics_.summary()}")
    risk = predict(model, c.census, **c.predict_kwargs, by="sex")
    plan = prioritise(risk, coverage=args.coverage)

    truth = risk.table.merge(c.truth.territories, on="territory", suffixes=("", "_t"))
    rho = float(spearmanr(truth["risk"], truth["true_risk"]).statistic)
    nat = risk.national().iloc[0]
    true_total = float(c.truth.territories["true_count"].sum())
    covered = float(
        (
            (truth["risk_low"] <= truth["true_risk"])
            & (truth["true_risk"] <= truth["risk_high"])
        ).mean()
    )
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    files = {
        "territories.csv": risk.table,
        "priorities.csv": plan.ranking,
        "factors.csv": risk.factors.long(risk.table.set_index("territory")["risk"]),
        "regions.csv": risk.rollup(),
        "by_sex.csv": risk.breakdown("territory"),
        "levels.csv": risk.levels.breaks,
        "coefficients.csv": model.coef_table(),
        "targeting_curve.csv": plan.curve,
    }
    for name, table in files.items():
        table.to_csv(out / name, index=False, encoding="utf-8")
    elapsed = time.perf_counter() - t0
    summary: dict[str, Any] = {
        "national_risk_percent": float(nat["risk"]),
        "national_expected_count": float(nat["expected_count"]),
        "true_national_count": true_total,
        "count_error_percent": 100 * (float(nat["expected_count"]) / true_total - 1),
        "spearman_vs_true_risk": rho,
        "interval_coverage_of_true_risk": covered,
        "selected_territories": len(plan.selection),
        "covered_share": plan.covered_share,
        "output_folder": str(out),
        "files": sorted(files),
        "seconds": elapsed,
    }
    if not text:
        print(json.dumps(summary, indent=2))
        return 0
    print()
    print(risk.summary(n=10))
    print()
    print(plan.summary())
    print()
    print("How well the estimates match the known truth:")
    print(f"  Spearman correlation of territory risk with the true risk: {rho:.3f}")
    print(
        f"  national expected count {nat['expected_count']:,.0f} vs true "
        f"{true_total:,.0f} ({summary['count_error_percent']:+.1f}%)"
    )
    print(
        f"  95% intervals cover the true territory risk in {covered:.0%} of "
        "territories (the model has no territory effect: intervals reflect "
        "coefficient uncertainty only)"
    )
    print()
    print(f"Wrote {', '.join(sorted(files))} to {out}/ in {elapsed:.1f} s.")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
