"""Charts drawn from cited SQL evidence: a line for a time series, bars for a category breakdown.

A chart is drawn only when it answers the question (dossier.chart_rules): a time series when the
question asks how something changed, bars for one measure (or two in one unit) over at most
MAX_BARS categories; never for one row, small whole numbers or a crowd of categories.

The numbers come only from ``Evidence.rows``, never from the prose. Each chart is captioned with
the reference number of the evidence it draws, like a citation. The SVG is deterministic (a fixed
hash salt per evidence, no date, no creator metadata), so one report always renders to the same
bytes. matplotlib is imported on first use, with the Agg backend and no pyplot state.
"""

from __future__ import annotations

import datetime as dt
import io
import math
import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Literal

from dossier.chart_rules import asks_change, pick_measures, short_label, tiny
from dossier.fonts import matplotlib_cjk_family
from tools.vocabulary import Evidence, Report

if TYPE_CHECKING:  # matplotlib itself loads only when a chart is drawn
    from matplotlib.typing import RcKeyType

ChartKind = Literal["line", "bar"]
TIME_WORDS = {"date", "day", "week", "month", "quarter", "year", "period", "time", "timestamp", "ts", "dt"}
DATE_TEXT_RE = re.compile(r"^\d{4}-(?:\d{2}(?:-\d{2})?(?:[ T][\d:.+-]+)?|Q[1-4])$")
YEAR_TEXT_RE = re.compile(r"^\d{4}$")
MIN_POINTS, MIN_BARS, MAX_BARS, MAX_BAR_SERIES, MAX_TICKS = 3, 3, 12, 2, 12
COUNT_RE = re.compile(r"^(n|count|cnt|num_\w+|\w+_count)$", re.I)
SCALE_RATIO = 20  # series further apart than this get a second axis (lines) or are left out (bars)
COLORS = ("#2f6690", "#d1495b", "#3a7d44")
TEXTS = {
    "en": {"caption": "Figure {k}: {title} — source [{n}]", "title": "{ys} by {x}", "and": " and "},
    "zh": {"caption": "图 {k}：{title} — 来源 [{n}]", "title": "{ys}（按 {x}）", "and": "、"},
}


@dataclass
class ChartData:
    kind: ChartKind
    x_name: str
    x: list[str]
    series: dict[str, list[float | None]]
    at: list[float] = field(default_factory=list)  # x positions: days for dates, so gaps show as gaps


@dataclass
class Chart:
    evidence_id: str
    title: str
    svg: str  # inline SVG, without XML prolog
    caption: str
    kind: ChartKind = "bar"
    reference: int = 0  # the reference number of the evidence drawn
    x: list[str] = field(default_factory=list)
    series: dict[str, list[float | None]] = field(default_factory=dict)
    png: bytes = b""  # only when asked for (the PDF embeds it)


def charts_for(report: Report, *, png: bool = False) -> list[Chart]:
    """One chart per cited SQL evidence that answers the question as a time series or a category
    breakdown, in reference order."""
    by_id = report.evidence_by_id()
    charts: list[Chart] = []
    for ref in sorted(report.references, key=lambda r: r.number):
        ev = by_id.get(ref.evidence_id)
        data = chart_data(ev, question=report.question or report.plan.question) if ev else None
        if data:
            charts.append(_chart(data, ref.evidence_id, ref.number, len(charts) + 1, report.language, png))
    return charts


def chart_data(ev: Evidence, *, question: str | None = None) -> ChartData | None:
    """What the rows of ``ev`` are drawn as, or None when no chart answers ``question`` (None: any
    question): a time series only for a question about change; bars only for a few categories."""
    if ev.kind != "sql" or not ev.columns or any(len(row) != len(ev.columns) for row in ev.rows):
        return None
    values = {name: [row[i] for row in ev.rows] for i, name in enumerate(ev.columns)}
    kinds = {name: _column_kind(name, column) for name, column in values.items()}
    of = {k: [name for name in ev.columns if kinds[name] == k] for k in ("time", "number", "text")}
    only = len(ev.columns) == 1 + len(of["number"])
    if only and len(of["time"]) == 1 and 1 <= len(of["number"]) <= 2 and len(ev.rows) >= MIN_POINTS:
        if question is not None and not asks_change(question):
            return None
        return _drawable(_series("line", of["time"][0], values, of["number"]))
    if only and len(of["text"]) == 1 and of["number"] and MIN_BARS <= len(ev.rows) <= MAX_BARS:
        measures = pick_measures(of["number"], values, question=question, sql=ev.sql or "")
        return _drawable(_series("bar", of["text"][0], values, _same_scale(measures, values))) if measures else None
    return None


def _drawable(data: ChartData | None) -> ChartData | None:
    return None if data is None or not data.series or tiny(data.series) else data


def place_charts(blocks: list[list[tuple[str, set[int]]]], charts: list[Chart]) -> dict[tuple[int, int], list[Chart]]:
    """Where charts go, as (section, block) -> charts: after the first block that cites the evidence
    (and after a table right behind it), looking at the executive summary (section 0) last."""
    slots: dict[tuple[int, int], list[Chart]] = {}
    order = [*range(1, len(blocks)), 0]
    for chart in charts:
        slot = next((s for s in (_citing(blocks, i, chart.reference) for i in order) if s), None)
        if slot is None and blocks and blocks[-1]:
            slot = (len(blocks) - 1, len(blocks[-1]) - 1)
        if slot is not None:
            slots.setdefault(slot, []).append(chart)
    return slots


def _citing(blocks: list[list[tuple[str, set[int]]]], s: int, number: int) -> tuple[int, int] | None:
    section = blocks[s]
    for b, (_, cites) in enumerate(section):
        if number in cites:
            while b + 1 < len(section) and section[b + 1][0] == "table":
                b += 1
            return s, b
    return None


# --- reading the rows ---

def _column_kind(name: str, column: list[Any]) -> str:
    present = [v for v in column if v is not None]
    named = bool(TIME_WORDS & set(re.split(r"[_\W]+", name.lower())))
    if not present:
        return "empty"
    if all(isinstance(v, (dt.date, dt.datetime)) for v in present):
        return "time"
    if all(isinstance(v, str) for v in present):
        dated = all(DATE_TEXT_RE.match(v) or (named and YEAR_TEXT_RE.match(v)) for v in present)
        return "time" if dated else "text"
    if all(_is_number(v) for v in present):
        return "time" if named and all(isinstance(v, int) for v in present) else "number"
    return "other"


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, Decimal)) and not isinstance(value, bool)


def _series(kind: ChartKind, x_name: str, values: dict[str, list[Any]], ys: list[str]) -> ChartData | None:
    x = values[x_name]
    if any(v is None for v in x) or len(set(map(str, x))) != len(x):
        return None  # a gap or a repeat on the x axis is not one series
    order = sorted(range(len(x)), key=lambda i: _sort_key(x[i])) if kind == "line" else list(range(len(x)))
    labels = _time_labels([x[i] for i in order]) if kind == "line" else [str(x[i]) for i in order]
    series = {y: [_number(values[y][i]) for i in order] for y in ys}
    return ChartData(kind=kind, x_name=x_name, x=labels, series=series, at=_positions([x[i] for i in order]))


def _positions(values: list[Any]) -> list[float]:
    parsed = [_parsed(v) for v in values]
    if all(isinstance(v, dt.date) for v in parsed):
        return [v.toordinal() + (_seconds(v) / 86400 if isinstance(v, dt.datetime) else 0) for v in parsed]
    if all(isinstance(v, int) for v in parsed):
        return [float(v) for v in parsed]
    return [float(i) for i in range(len(values))]


def _seconds(value: dt.datetime) -> float:
    return value.hour * 3600 + value.minute * 60 + value.second


def _sort_key(value: Any) -> str:
    if isinstance(value, int):
        return f"{value:012d}"
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def _time_labels(values: list[Any]) -> list[str]:
    """Dates as 2025-03-01, or 2025-03 when every one is the first of its month; midnight times dropped."""
    days = [_day(_parsed(v)) for v in values]
    if all(isinstance(v, dt.date) and not isinstance(v, dt.datetime) for v in days):
        monthly = all(v.day == 1 for v in days)
        return [v.strftime("%Y-%m") if monthly else v.isoformat() for v in days]
    return [v.isoformat() if hasattr(v, "isoformat") else str(v) for v in days]


def _parsed(value: Any) -> Any:
    """ISO text (a report read back from JSON) as the date or datetime it was; anything else as is."""
    if isinstance(value, str):
        try:
            return dt.datetime.fromisoformat(value)
        except ValueError:
            return value
    return value


def _day(value: Any) -> Any:
    return value.date() if isinstance(value, dt.datetime) and value.time() == dt.time() else value


def _number(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return None if math.isnan(number) else number


def _peak(column: list[Any]) -> float:
    return max((abs(float(v)) for v in column if v is not None), default=0.0)


def _same_scale(numbers: list[str], values: dict[str, list[Any]]) -> list[str]:
    """Bars that share one axis: a count ('n') only when it is alone, then those near the first's size."""
    numbers = [n for n in numbers if not COUNT_RE.match(n)] or numbers
    if not numbers:
        return []
    first = _peak(values[numbers[0]]) or 1.0
    kept = [n for n in numbers if 1 / SCALE_RATIO <= (_peak(values[n]) or 1.0) / first <= SCALE_RATIO]
    return kept[:MAX_BAR_SERIES]


# --- drawing ---

def _chart(data: ChartData, evidence_id: str, number: int, k: int, language: str, png: bool) -> Chart:
    t = TEXTS.get(language, TEXTS["en"])
    title = t["title"].format(ys=t["and"].join(data.series), x=data.x_name)
    svg, image = _draw(data, salt=evidence_id, png=png)
    return Chart(evidence_id=evidence_id, title=title, svg=svg, caption=t["caption"].format(k=k, title=title, n=number),
                 kind=data.kind, reference=number, x=data.x, series=data.series, png=image)


def _draw(data: ChartData, *, salt: str, png: bool) -> tuple[str, bytes]:
    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure  # no pyplot: no global figures, no GUI backend

    with matplotlib.rc_context(_rc(salt)):
        fig = Figure(figsize=(6.4, 3.0), layout="constrained")
        FigureCanvasAgg(fig)
        ax = fig.add_subplot()
        (_line if data.kind == "line" else _bars)(ax, data)
        svg = io.StringIO()
        fig.savefig(svg, format="svg", metadata={"Date": None, "Creator": None})
        image = io.BytesIO()
        if png:
            fig.savefig(image, format="png", dpi=200, metadata={"Software": None})
    return _inline_svg(svg.getvalue()), image.getvalue()


def _rc(salt: str) -> dict[RcKeyType, Any]:
    families = ["DejaVu Sans"] + ([name] if (name := matplotlib_cjk_family()) else [])
    return {"svg.hashsalt": f"dossier-{salt}", "svg.fonttype": "none", "font.size": 9,
            "font.family": families, "axes.spines.top": False,  # a list: glyph-by-glyph fallback
            "axes.spines.right": False, "axes.edgecolor": "#888888", "axes.grid": True, "axes.grid.axis": "y",
            "grid.color": "#e4e4e4", "axes.axisbelow": True, "legend.frameon": False}


def _bars(ax: Any, data: ChartData) -> None:
    width = 0.8 / len(data.series)
    for j, (name, ys) in enumerate(data.series.items()):
        xs = [i + (j - (len(data.series) - 1) / 2) * width for i in range(len(data.x))]
        bars = ax.bar(xs, [math.nan if v is None else v for v in ys], width, label=_safe(name), color=COLORS[j])
        ax.bar_label(bars, labels=["" if v is None else human(v) for v in ys], padding=2, fontsize=7)
    labels = [short_label(x) for x in data.x]
    ax.set_xticks(range(len(data.x)), [_safe(x) for x in labels], **_tick_style(labels))
    _axes(ax, data)


def _line(ax: Any, data: ChartData) -> None:
    (a, ya), *rest = data.series.items()
    axes = [ax, ax.twinx() if rest and _apart(ya, rest[0][1]) else ax]
    for j, (name, ys) in enumerate(data.series.items()):
        axes[j].plot(data.at, [math.nan if v is None else v for v in ys], marker="o", markersize=3,
                     linewidth=1.8, label=_safe(name), color=COLORS[j])
    ticks, labels = time_ticks(data.x)
    ax.set_xticks([data.at[i] for i in ticks], [_safe(x) for x in labels], **_tick_style(labels))
    if axes[1] is not ax:
        axes[1].yaxis.set_major_formatter(_formatter())
        axes[1].set_ylabel(_safe(rest[0][0]), color=COLORS[1])
        ax.set_ylabel(_safe(a), color=COLORS[0])
    _axes(ax, data, extra=axes[1] if axes[1] is not ax else None)


def time_ticks(x: list[str]) -> tuple[list[int], list[str]]:
    """At most MAX_TICKS labelled points: a long dated series is labelled by year (2010, 2012, ...)
    at the first point of each labelled year; a short one every k-th point."""
    years = [v[:4] for v in x]
    starts = [i for i, y in enumerate(years) if y.isdigit() and (i == 0 or years[i - 1] != y)]
    if len(x) > MAX_TICKS and all(v[:4].isdigit() for v in x) and len(starts) >= 3:
        step = math.ceil(len(starts) / MAX_TICKS)
        chosen = starts[::step]
        return chosen, [years[i] for i in chosen]
    step = max(1, math.ceil(len(x) / MAX_TICKS))
    chosen = list(range(0, len(x), step))
    return chosen, [x[i] for i in chosen]


def _axes(ax: Any, data: ChartData, extra: Any = None) -> None:
    ax.yaxis.set_major_formatter(_formatter())
    ax.set_xlabel(_safe(data.x_name))
    if len(data.series) == 1:
        ax.set_ylabel(_safe(next(iter(data.series))))
    elif extra is None:
        ax.legend(loc="best", fontsize=8)
    for axis in (ax, extra):
        if axis is not None and axis.get_ylim()[0] >= 0:
            axis.set_ylim(bottom=0)


def _safe(label: str) -> str:
    """Text from the warehouse drawn as is: a '$' would start matplotlib's math mode."""
    return label.replace("$", r"\$")


def _apart(a: list[float | None], b: list[float | None]) -> bool:
    pa, pb = _peak(a) or 1.0, _peak(b) or 1.0
    return max(pa / pb, pb / pa) > SCALE_RATIO


def _tick_style(labels: list[str]) -> dict[str, Any]:
    crowded = sum(map(len, labels)) > 60 or max(map(len, labels), default=0) > 14
    return {"rotation": 30, "ha": "right", "rotation_mode": "anchor"} if crowded else {}


def _formatter() -> Any:
    from matplotlib.ticker import FuncFormatter

    return FuncFormatter(lambda v, _pos: human(v))


def human(value: float) -> str:
    """1250000 -> 1.25M, 20000 -> 20k, 7.0 -> 7, 4.66667 -> 4.67."""
    for limit, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= limit:
            return f"{value / limit:.3g}{suffix}"
    return str(int(value)) if float(value).is_integer() else f"{value:.3g}"


def _inline_svg(svg: str) -> str:
    svg = svg[svg.index("<svg"):]  # no XML prolog or DOCTYPE inside HTML
    return re.sub(r"\s*<metadata>.*?</metadata>", "", svg, flags=re.S)
