"""One self-contained HTML page per result: CSS and SVG inline, drawn here in
Python, with no script (nothing can log to a console) and no reference to the
network (the page must open offline, from a mail attachment or a CI artifact).

Every string taken from the input (job, rack, pod and chip type names, reasons,
notes) passes through `_e` (html.escape); numbers pass through `_n`.  The page
is a pure function of its inputs: no clock, no randomness, dict order as given.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from html import escape
from typing import Any, Callable, Iterable, Mapping, Sequence

from trnsched.inputs.fleet import Fleet, Rack
from trnsched.result import workloads

CHIP = 9                  # px: one chip's square
STEP = 11                 # px: chip pitch, square plus gap
MAX_COLS = 18             # chips per row in a rack: 144 -> 8 rows, 72 -> 4, 8 -> 1
MAP_CHIPS = 50_000       # the most chips the fleet map draws one square each (a few MB of SVG)
OPEN_UP_TO = 40           # more jobs than this: legend and long tables start folded
TOP_JOBS = 25             # jobs drawn as bars in the by-job charts; the rest are summed
LABEL_CHARS = 34          # longest job id drawn in full in a chart label
GANTT_ROWS = 600          # most jobs in the Gantt chart (a row each); a long replay shows its first
GANTT_ROW = 14            # px per Gantt row
BUSY = "#8a8f98"          # chips busy before this placement
FREE = "#eef1f5"
FREE_EDGE = "#c3ccd7"
PLACED = "#3b73c4"        # placed chips where one colour stands for all jobs
# Chip types in charts that are not about jobs (utilisation over time); cycled.
TYPE_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf")

CSS = """
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;
  margin:0;color:#1d2430;background:#f7f8fa}
main{max-width:1360px;margin:0 auto;padding:16px 20px 40px}
h1{font-size:22px;margin:4px 0 12px}
h2{font-size:17px;margin:26px 0 8px;border-bottom:1px solid #d9dee5;padding-bottom:4px}
h3{font-size:14px;margin:10px 0 6px}
small,.muted{color:#5d6675}
.cards{display:grid;grid-template-columns:repeat(auto-fill,minmax(160px,1fr));gap:8px}
.card{background:#fff;border:1px solid #dde2e8;border-radius:6px;padding:6px 10px}
.card .k{font-size:12px;color:#5d6675}
.card .v{font-size:17px;font-weight:600;overflow-wrap:anywhere}
.badge{display:inline-block;border-radius:4px;padding:0 6px;font-size:12px;font-weight:600;
  color:#fff;background:#5d6675}
.s-OPTIMAL{background:#1e8e3e}.s-FEASIBLE{background:#c77c02}
.s-INFEASIBLE,.s-UNKNOWN,.s-MODEL_INVALID{background:#c5221f}
.badge.hybrid{background:#7b2cbf}
.badge.over{background:#c5221f}
.legend ul{list-style:none;padding:0;margin:6px 0;display:flex;flex-wrap:wrap;gap:3px 14px}
.legend li{display:flex;align-items:center;gap:5px;font-size:12px;overflow-wrap:anywhere}
.sw{display:inline-block;width:12px;height:12px;border-radius:2px;flex:none;border:1px solid rgba(0,0,0,.15)}
.pod{background:#fff;border:1px solid #dde2e8;border-radius:6px;padding:6px 10px 10px;margin:8px 0}
.racks{display:flex;flex-wrap:wrap;gap:8px;align-items:flex-start}
.rack{border:1px solid #cfd6de;border-radius:4px;padding:4px 5px;background:#fbfcfd}
.rack.hybrid{border:2px dashed #7b2cbf;background:#f8f2fd}
.rack-head{font-size:11px;font-weight:600;white-space:nowrap;margin-bottom:3px}
.rack-foot{font-size:10px;color:#5d6675;white-space:nowrap;margin-top:2px}
.rack svg{display:block}
svg text{font-family:inherit}
table{border-collapse:collapse;background:#fff;margin:4px 0 8px;font-size:13px}
th,td{border:1px solid #dde2e8;padding:3px 8px;text-align:left;vertical-align:top}
th{background:#eef1f5;font-weight:600}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
td.reason{max-width:820px;overflow-wrap:anywhere}
td.whole{white-space:nowrap}
.charts{display:flex;flex-wrap:wrap;gap:24px}
.scroll{overflow-x:auto}
details>summary{cursor:pointer;font-weight:600;margin:4px 0}
"""


@dataclass(frozen=True)
class Span:
    """One job's chips over a time span: a solve's placement or a replay's run."""
    job: str
    chip_type: str
    chips: int
    allocations: tuple[tuple[str, int], ...]      # (rack id, chips)
    start_h: float
    end_h: float
    energy_kwh: float | None = None
    cost_usd: float | None = None
    power_kw: float | None = None
    arrival_h: float | None = None


@dataclass(frozen=True)
class Bar:
    label: str            # raw text, escaped when drawn
    value: float
    colour: str
    note: str = ""        # drawn after the value


# ---------------------------------------------------------------- public

def render_html(result: Mapping[str, Any], fleet: Fleet, *, title: str | None = None) -> str:
    """The report of a `trnsched solve --json` result solved on `fleet`."""
    spans = [_placement_span(w) for p in result.get("placements") or [] for w in workloads(p)]
    _check_racks_known(fleet, spans)
    colours = job_colours([s.job for s in spans])
    totals = result.get("totals") or {}
    horizon = _number(totals.get("horizon_h"))
    rows = result.get("racks") or []
    title = title or f"trnsched placement: {result.get('policy', '?')}, {result.get('objective', '?')} objective"
    sections = [
        _solve_summary(result, fleet),
        _legend(colours),
        _fleet_section(fleet, spans, colours, _rack_power(rows), timed=horizon is not None),
        _chip_type_section(rows, fleet, timed=horizon is not None),
        _power_section(rows, fleet),
        _energy_section(spans, colours, fleet),
        _unplaced_section(result.get("unplaced") or []),
    ]
    if horizon is not None or len({s.start_h for s in spans}) > 1:
        sections.append(_gantt_section(spans, colours, horizon))
    sections.append(_placements_table(spans, colours))
    return _page(title, sections)


def render_simulation_html(sim: Mapping[str, Any], fleet: Fleet, *, title: str | None = None) -> str:
    """The report of a replay, as `trnsched simulate -o FILE` writes it (figures
    and every job's run); from the figures alone (`--json`) it draws what they hold."""
    runs = sim.get("runs")
    spans = [_run_span(w) for r in runs or [] for w in workloads(r)]
    _check_racks_known(fleet, spans)
    colours = job_colours([s.job for s in spans])
    title = title or f"trnsched replay: {sim.get('policy', '?')}, {sim.get('objective', '?')} objective"
    sections = [_simulation_summary(sim), _utilisation_section(sim, fleet)]
    if runs is None:
        sections.append('<p class="muted">This file holds the figures only; '
                        '<code>trnsched simulate -o FILE</code> also writes every job\'s run, '
                        'for the fleet map, the Gantt chart and energy by job.</p>')
    else:
        sections += [_legend(colours),
                     _fleet_section(fleet, spans, colours, {}, timed=True),
                     _energy_section(spans, colours, fleet),
                     _gantt_section(spans, colours, None),
                     _placements_table(spans, colours)]
    return _page(title, sections)


def job_colours(jobs: Iterable[str]) -> dict[str, str]:
    """A colour per job, in the order given.  Hues step by the golden angle so
    jobs next to each other differ most; lightness cycles over three levels so
    jobs whose hues come round close together after many turns still differ."""
    out: dict[str, str] = {}
    for i, job in enumerate(dict.fromkeys(jobs)):
        hue = (i * 137.508) % 360.0
        light = (50, 36, 64)[i % 3]
        out[job] = f"hsl({hue:.1f},68%,{light}%)"
    return out


# ---------------------------------------------------------------- inputs

def _placement_span(p: Mapping[str, Any]) -> Span:
    metrics = p.get("metrics") or {}
    return Span(str(p["job"]), str(p["chip_type"]), int(p["chips"]), _allocations(p),
                float(p.get("start_h") or 0.0), float(p.get("end_h") or 0.0),
                _number(metrics.get("energy_kwh")), _number(metrics.get("cost_usd")),
                _number(metrics.get("power_kw")))


def _run_span(r: Mapping[str, Any]) -> Span:
    return Span(str(r["job"]), str(r["chip_type"]), int(r["chips"]), _allocations(r),
                float(r["start_h"]), float(r["end_h"]), _number(r.get("energy_kwh")),
                _number(r.get("cost_usd")), arrival_h=_number(r.get("arrival_h")))


def _allocations(entry: Mapping[str, Any]) -> tuple[tuple[str, int], ...]:
    return tuple((str(a["rack"]), int(a["chips"])) for a in entry.get("allocations") or [])


def _check_racks_known(fleet: Fleet, spans: Sequence[Span]) -> None:
    """A result drawn on another fleet would show chips in the wrong places: refuse."""
    known = {r.id for r in fleet.racks}
    for s in spans:
        for rack, _ in s.allocations:
            if rack not in known:
                raise ValueError(f"job {s.job!r} is placed on rack {rack!r}, which the fleet "
                                 f"{fleet.name!r} lacks: give the fleet the result was solved on")


def _number(x: Any) -> float | None:
    """A finite number or None (the JSON may hold null, or strings for infinities)."""
    if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x):
        return None
    return float(x)


# ---------------------------------------------------------------- formatting

def _e(x: Any) -> str:
    return escape(str(x), quote=True)


def _n(x: Any, digits: int = 0, unit: str = "") -> str:
    """A number with thousands separators, or a dash where there is none."""
    v = _number(x)
    if v is None:
        return "—" if x is None else _e(x)
    return f"{v:,.{digits}f}{unit}"


def _usd(x: Any) -> str:
    return "$" + _n(x) if _number(x) is not None else _n(x)


def format_gap(gap: Any) -> str:
    """The solver's relative gap as a percentage, three significant digits."""
    v = _number(gap)
    return "—" if v is None else f"{v * 100:.3g} %"


def _plural(n: int, noun: str) -> str:
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def _short(label: str) -> str:
    return label if len(label) <= LABEL_CHARS else label[:LABEL_CHARS - 1] + "…"


def _page(title: str, sections: Iterable[str]) -> str:
    # The empty data: icon keeps the browser from asking for /favicon.ico.
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
            f"<title>{_e(title)}</title>\n<link rel=\"icon\" href=\"data:,\">\n<style>{CSS}</style>\n</head>\n"
            f"<body>\n<main>\n<h1>{_e(title)}</h1>\n" + "\n".join(s for s in sections if s)
            + "\n</main>\n</body>\n</html>\n")


def _cards(items: Iterable[tuple[str, str]]) -> str:
    """Key figures as cards; values are HTML already escaped by the caller."""
    return '<div class="cards">' + "".join(
        f'<div class="card"><div class="k">{_e(k)}</div><div class="v">{v}</div></div>' for k, v in items) + "</div>"


def _table(head: Sequence[str], rows: Iterable[Sequence[str]], numeric: Iterable[int] = (),
           prose: Iterable[int] = (), whole: Iterable[int] = ()) -> str:
    """A table; cells are HTML already escaped by the caller; `numeric` columns
    align right, `prose` columns wrap long text, `whole` columns never wrap."""
    cls = {**{i: ' class="num"' for i in numeric}, **{i: ' class="reason"' for i in prose},
           **{i: ' class="whole"' for i in whole}}
    th = "".join(f"<th{cls.get(i, '')}>{_e(h)}</th>" for i, h in enumerate(head))
    body = "".join("<tr>" + "".join(f"<td{cls.get(i, '')}>{c}</td>" for i, c in enumerate(r)) + "</tr>"
                   for r in rows)
    return f"<table><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>"


def _folded(summary: str, body: str, count: int) -> str:
    """Long content in a <details>, open while short enough to read at a glance."""
    state = " open" if count <= OPEN_UP_TO else ""
    return f"<details{state}><summary>{summary}</summary>{body}</details>"


def _swatch(colour: str) -> str:
    return f'<span class="sw" style="background:{colour}"></span>'


# ---------------------------------------------------------------- summaries

def _solve_summary(result: Mapping[str, Any], fleet: Fleet) -> str:
    totals = result.get("totals") or {}
    status = str(result.get("status", "?"))
    badges = f'<span class="badge s-{_e(status)}">{_e(status)}</span>'
    if result.get("interrupted"):
        badges += ' <span class="badge over">interrupted</span>'
    priority = (f'{_n(totals.get("priority_placed"))} of {_n(totals.get("priority_total"))}'
                f'<br><small>bound {_n(result.get("priority_bound"))}</small>')
    items = [("Status", badges),
             ("Policy / objective", f'{_e(result.get("policy", "?"))} / {_e(result.get("objective", "?"))}'),
             ("Objective value", _n(result.get("objective_value"), 2)),
             ("Best bound", _n(result.get("best_bound"), 2)),
             ("Gap", f'<span data-gap="{_n(result.get("gap"), 9)}">{format_gap(result.get("gap"))}</span>'),
             ("Priority placed", priority),
             ("Jobs placed", f'{_n(totals.get("jobs_placed"))} of '
                             f'{_n((totals.get("jobs_placed") or 0) + (totals.get("jobs_unplaced") or 0))}'),
             ("Chips placed", _n(totals.get("chips_used"))),
             ("Energy", _n(totals.get("energy_kwh"), 0, " kWh")),
             ("Cost", _usd(totals.get("cost_usd"))),
             ("Power of placed jobs", _n(totals.get("power_kw"), 0, " kW")),
             ("Solve time", _n(result.get("solve_time_s"), 3, " s"))]
    if "horizon_h" in totals:
        items += [("Horizon", _n(totals.get("horizon_h"), 1, " h")),
                  ("Makespan", _n(totals.get("makespan_h"), 1, " h")),
                  ("Mean wait", _n(totals.get("mean_wait_h"), 2, " h"))]
    facts = f"Fleet: {_e(fleet.name)}, {len(fleet.racks):,} racks." + _candidates(result.get("stats") or {})
    return _cards(items) + f'<p class="muted">{facts}</p>' + _notes(result.get("notes"))


def _candidates(stats: Mapping[str, Any]) -> str:
    """The candidate counts of the result's stats, in one line."""
    counts = [f"{_e(k.removeprefix('candidates_'))} {_n(v)}" for k, v in stats.items() if k.startswith("candidates_")]
    return f" Candidates: {', '.join(counts)}." if counts else ""


def _notes(notes: Any) -> str:
    if not notes:
        return ""
    return "<h3>Notes</h3><ul>" + "".join(f"<li>{_e(n)}</li>" for n in notes) + "</ul>"


def _simulation_summary(sim: Mapping[str, Any]) -> str:
    energy = sim.get("energy_kwh") or {}
    comp, wait = sim.get("completion_h") or {}, sim.get("wait_h") or {}
    items = [("Policy / objective", f'{_e(sim.get("policy", "?"))} / {_e(sim.get("objective", "?"))}'),
             ("Trace", _e(sim.get("trace", "?"))),
             ("Jobs run", f'{_n(sim.get("jobs_run"))} of {_n(sim.get("jobs"))}'),
             ("Never placeable", _n(sim.get("jobs_never_placeable"))),
             ("Missed deadline", _n(sim.get("jobs_missed_deadline"))),
             ("Makespan", _n(sim.get("makespan_h"), 1, " h")),
             ("Completion mean / p99", f'{_n(comp.get("mean"), 1)} / {_n(comp.get("p99"), 1)} h'),
             ("Wait mean / p99", f'{_n(wait.get("mean"), 2)} / {_n(wait.get("p99"), 2)} h'),
             ("Energy: jobs / idle", f'{_n(energy.get("jobs"))} / {_n(energy.get("idle"))} kWh'),
             ("Energy total", _n(energy.get("total"), 0, " kWh")),
             ("Cost", _usd(sim.get("cost_usd"))),
             ("Decisions / solver calls", f'{_n(sim.get("decisions"))} / {_n(sim.get("solver_calls"))}'),
             ("Deciding time", _n(sim.get("decide_s"), 3, " s"))]
    return (_cards(items) + f'<p class="muted">Fleet: {_e(sim.get("fleet", "?"))}.</p>'
            + _notes(sim.get("notes")))


def _legend(colours: Mapping[str, str]) -> str:
    fixed = (f'<li>{_swatch(BUSY)}busy before</li>'
             f'<li><span class="sw" style="background:{FREE};border-color:{FREE_EDGE}"></span>free</li>')
    jobs = "".join(f"<li>{_swatch(colour)}{_e(job)}</li>" for job, colour in colours.items())
    count = len(colours)
    return ('<section class="legend"><h2>Legend</h2>' + f"<ul>{fixed}</ul>"
            + _folded(f"Jobs by colour ({count})", f"<ul>{jobs}</ul>", count) + "</section>")


# ---------------------------------------------------------------- fleet map

def _fleet_section(fleet: Fleet, spans: Sequence[Span], colours: Mapping[str, str],
                   power: Mapping[str, tuple[float | None, float | None]], *, timed: bool) -> str:
    """Pods -> racks -> chips.  Results in time hold different jobs on the same
    chips at different times, so those are drawn at their busiest instant."""
    shown, caption = spans, ("Each square is a chip: coloured by the job placed on it, grey where busy before "
                             "this placement, light where free.")
    if timed and spans:
        at = _busiest_instant(spans)
        shown = [s for s in spans if s.start_h <= at < s.end_h]
        caption = (f"The fleet at t = {at:,.2f} h, the instant with the most chips placed "
                   f"({sum(s.chips for s in shown):,} chips, {len(shown)} jobs); chips used only at other times "
                   f"show as free: the Gantt chart has every job over time.")
    held = _holdings(shown)
    pods: dict[str, list[Rack]] = {}
    for rack in fleet.racks:
        pods.setdefault(rack.pod, []).append(rack)
    total = sum(sum(r.chips.values()) for r in fleet.racks)
    if total > MAP_CHIPS:
        # A square per chip of an UltraCluster would be a page of hundreds of MB
        # that no browser draws: per pod and chip type, the figures instead.
        caption = (f"The fleet has {total:,} chips, more than the {MAP_CHIPS:,} the chip map draws: per pod and "
                   f"chip type, installed, busy before this placement, placed and free chips.")
        return f'<section><h2>Fleet</h2><p class="muted">{_e(caption)}</p>{_pod_table(pods, held)}</section>'
    caption += (" A hybrid rack (two chip types on one fabric, sharing one power cap) has a dashed purple "
                "border, a labelled block per chip type, and its second type's chips drawn round.")
    body = "".join(_pod(pod, racks, held, colours, power) for pod, racks in pods.items())
    return f'<section><h2>Fleet</h2><p class="muted">{_e(caption)}</p>{body}</section>'


def _pod_table(pods: Mapping[str, Sequence[Rack]], held: Mapping) -> str:
    rows = []
    for pod, racks in pods.items():
        for t in sorted({t for r in racks for t in r.chips}):
            mine = [r for r in racks if t in r.chips]
            installed = sum(r.chips[t] for r in mine)
            busy = sum(r.used.get(t, 0) for r in mine)
            placed = sum(n for r in mine for _, n in held.get((r.id, t), ()))
            rows.append([_e(pod), _e(t), f"{len(mine):,}", f"{installed:,}", f"{busy:,}", f"{placed:,}",
                         f"{installed - busy - placed:,}"])
    return _table(["pod", "chip type", "racks", "chips", "busy before", "placed", "free"], rows,
                  numeric=range(2, 7))


def _busiest_instant(spans: Sequence[Span]) -> float:
    """The earliest instant at which the most chips are placed at once: a sweep
    over starts and ends, ends first where they meet (spans are [start, end))."""
    steps = sorted([(s.start_h, s.chips) for s in spans] + [(s.end_h, -s.chips) for s in spans])
    best_at, best, level = spans[0].start_h, -1, 0
    for at, delta in steps:
        level += delta
        if level > best:
            best_at, best = at, level
    return best_at


def _holdings(spans: Iterable[Span]) -> dict[tuple[str, str], list[tuple[str, int]]]:
    """(rack id, chip type) -> [(job, chips)], in the spans' order."""
    out: dict[tuple[str, str], list[tuple[str, int]]] = {}
    for s in spans:
        for rack, n in s.allocations:
            out.setdefault((rack, s.chip_type), []).append((s.job, n))
    return out


def _pod(pod: str, racks: Sequence[Rack], held: Mapping, colours: Mapping[str, str],
         power: Mapping[str, tuple[float | None, float | None]]) -> str:
    chips = sum(sum(r.chips.values()) for r in racks)
    head = f'<h3>{_e(pod)} <small>{len(racks)} racks, {chips:,} chips</small></h3>'
    inner = "".join(_rack(r, held, colours, power.get(r.id, (None, r.power_cap_kw))) for r in racks)
    return f'<section class="pod" data-pod="{_e(pod)}">{head}<div class="racks">{inner}</div></section>'


def _rack(rack: Rack, held: Mapping, colours: Mapping[str, str], power: tuple[float | None, float | None]) -> str:
    types = list(rack.chips)
    drawn, over = {}, False
    for t in types:
        drawn[t], overfilled = _chip_cells(rack, t, held.get((rack.id, t), []))
        over = over or overfilled
    head = _e(rack.id)
    if rack.hybrid:
        head += f' <span class="badge hybrid">hybrid {_e(" + ".join(types))}</span>'
    else:
        head += f' <small>{_e(types[0]) if types else ""}</small>'
    if over:
        head += ' <span class="badge over">over capacity</span>'
    capacity = sum(rack.chips.values())
    used = sum(sum(1 for kind, _ in cells if kind != "free") for cells in drawn.values())
    foot = f"{used:,}/{capacity:,} chips" + _power_text(*power)
    cls = "rack hybrid" if rack.hybrid else "rack"
    hybrid = f' data-hybrid="{_e("+".join(types))}"' if rack.hybrid else ""
    return (f'<div class="{cls}" data-rack="{_e(rack.id)}"{hybrid}><div class="rack-head">{head}</div>'
            f'{_rack_svg(rack, drawn, colours)}<div class="rack-foot">{foot}</div></div>')


def _power_text(drawn_kw: float | None, cap_kw: float | None) -> str:
    if drawn_kw is None:
        return f" · cap {cap_kw:,.0f} kW" if cap_kw is not None else ""
    if cap_kw is None:
        return f" · {drawn_kw:,.0f} kW"
    return f" · {drawn_kw:,.0f}/{cap_kw:,.0f} kW"


Cell = tuple[str, str]         # ("busy" | "job" | "free", job id or ""): kinds apart from any job id


def _chip_cells(rack: Rack, chip_type: str, jobs: Sequence[tuple[str, int]]) -> tuple[list[Cell], bool]:
    """Each chip's owner in drawing order (busy before, the jobs, free), and
    whether the jobs overfill the rack: then it is drawn full and flagged."""
    count = rack.chips[chip_type]
    cells = [("busy", "")] * min(count, rack.used.get(chip_type, 0))
    for job, n in jobs:
        cells += [("job", job)] * n
    overfilled = len(cells) > count
    return cells[:count] + [("free", "")] * (count - len(cells)), overfilled


def _rack_svg(rack: Rack, drawn: Mapping[str, list[Cell]], colours: Mapping[str, str]) -> str:
    cols = min(MAX_COLS, max(rack.chips.values(), default=1))
    parts, y = [], 0
    for k, (t, cells) in enumerate(drawn.items()):
        if rack.hybrid:
            parts.append(f'<text x="0" y="{y + 9}" font-size="10" fill="#5b2196">{_e(t)} × {len(cells)}</text>')
            y += 12
        round_ = rack.hybrid and k > 0
        parts += _chip_groups(rack.id, t, cells, cols, y, colours, round_)
        y += math.ceil(len(cells) / cols) * STEP + (4 if rack.hybrid else 0)
    width = max(cols * STEP - (STEP - CHIP), 60 if rack.hybrid else 0)
    height = max(y - (STEP - CHIP), CHIP)
    return (f'<svg width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img">'
            + "".join(parts) + "</svg>")


def _chip_groups(rack_id: str, chip_type: str, cells: Sequence[Cell], cols: int, y0: int,
                 colours: Mapping[str, str], round_: bool) -> list[str]:
    """One <g> per run of chips with one owner, titled for the hover tooltip."""
    groups, start = [], 0
    rx = CHIP / 2 if round_ else 1
    for i in range(1, len(cells) + 1):
        if i < len(cells) and cells[i] == cells[start]:
            continue
        (kind, job), n = cells[start], i - start
        fill = {"busy": BUSY, "free": FREE}.get(kind) or colours.get(job, PLACED)
        edge = f' stroke="{FREE_EDGE}" stroke-width="0.8"' if kind == "free" else ""
        what = {"busy": "busy before", "free": "free"}.get(kind, job)
        rects = "".join(f'<rect x="{(j % cols) * STEP}" y="{y0 + (j // cols) * STEP}" width="{CHIP}" '
                        f'height="{CHIP}" rx="{rx:g}"/>' for j in range(start, i))
        groups.append(f'<g fill="{fill}"{edge}><title>{_e(rack_id)} · {_e(chip_type)} · {_e(what)}: '
                      f'{_plural(n, "chip")}</title>{rects}</g>')
        start = i
    return groups


# ---------------------------------------------------------------- chip types and power

def _rack_power(rows: Sequence[Mapping[str, Any]]) -> dict[str, tuple[float | None, float | None]]:
    """Rack id -> (IT kW drawn, cap); a hybrid rack's rows repeat its one figure."""
    return {str(r["rack"]): (_number(r.get("power_kw")), _number(r.get("power_cap_kw"))) for r in rows}


def _chip_type_section(rows: Sequence[Mapping[str, Any]], fleet: Fleet, *, timed: bool) -> str:
    busy_of = {(r.id, t): r.used.get(t, 0) for r in fleet.racks for t in r.chips}
    per: dict[str, dict[str, int]] = {}
    for row in rows:
        t = str(row["chip_type"])
        acc = per.setdefault(t, {"racks": 0, "capacity": 0, "busy": 0, "placed": 0})
        busy = row.get("busy_before", busy_of.get((str(row["rack"]), t), 0))
        acc["racks"] += 1
        acc["capacity"] += int(row.get("capacity") or 0)
        acc["busy"] += int(busy or 0)
        acc["placed"] += int(row.get("placed") or 0)
    table = _table(["chip type", "racks", "installed", "busy before", "placed", "free", "use"],
                   ([_e(t), _n(a["racks"]), _n(a["capacity"]), _n(a["busy"]), _n(a["placed"]),
                     _n(max(0, a["capacity"] - a["busy"] - a["placed"])), _use_bar(a)] for t, a in per.items()),
                   numeric=range(1, 6))
    note = (" In a result scheduled over time, <i>placed</i> is each rack's most chips placed at any one "
            "instant, summed over racks." if timed else "")
    return (f'<section><h2>Chips by type</h2><p class="muted">A hybrid rack counts under each of its chip '
            f'types.{note}</p>{table}</section>')


def _use_bar(a: Mapping[str, int]) -> str:
    """Busy-before, placed and free chips as one stacked bar."""
    width, cap = 220, max(a["capacity"], 1)
    busy_w = round(width * a["busy"] / cap, 1)
    placed_w = round(width * min(a["placed"], cap - a["busy"]) / cap, 1)
    pct = 100 * (a["busy"] + a["placed"]) / cap
    return (f'<svg width="{width + 48}" height="12" role="img"><title>{pct:.0f} % in use</title>'
            f'<rect width="{width}" height="12" fill="{FREE}" stroke="{FREE_EDGE}"/>'
            f'<rect width="{busy_w}" height="12" fill="{BUSY}"/>'
            f'<rect x="{busy_w}" width="{placed_w}" height="12" fill="{PLACED}"/>'
            f'<text x="{width + 6}" y="10" font-size="11">{pct:.0f} %</text></svg>')


def _power_section(rows: Sequence[Mapping[str, Any]], fleet: Fleet) -> str:
    """Drawn IT power against caps, by rack kind: one chip type, or a hybrid
    pair, since a hybrid rack's types share one cap and one figure."""
    power = _rack_power(rows)
    if not power:
        return ""
    if all(kw is None for kw, _ in power.values()):
        return ('<section><h2>Power</h2><p class="muted">A result scheduled over time has no one rack power '
                'figure (it changes as jobs start and end); caps hold at every instant.</p></section>')
    kinds: dict[str, list[tuple[float | None, float | None]]] = {}
    for rack in fleet.racks:
        if rack.id in power:
            kind = " + ".join(rack.chips) + (" (hybrid)" if rack.hybrid else "")
            kinds.setdefault(kind, []).append(power[rack.id])
    table = _table(["racks of", "racks", "drawn kW", "cap kW", "drawn / cap", "racks at cap", "busiest rack"],
                   (_power_row(kind, figures) for kind, figures in kinds.items()), numeric=range(1, 7))
    return ('<section><h2>Power</h2><p class="muted">IT power at the racks (PUE excluded) with every '
            'placed job running, against the racks\' caps; <i>at cap</i>: within 1 % of it.</p>'
            f'{table}</section>')


def _power_row(kind: str, figures: Sequence[tuple[float | None, float | None]]) -> list[str]:
    drawn = sum(kw or 0.0 for kw, _ in figures)
    capped = [(kw or 0.0, cap) for kw, cap in figures if cap]
    cap = sum(c for _, c in capped)
    share = sum(kw for kw, _ in capped) / cap if cap else None
    at_cap = sum(1 for kw, c in capped if kw >= 0.99 * c)
    busiest = max((kw / c for kw, c in capped), default=None)
    return [_e(kind), _n(len(figures)), _n(drawn, 1), _n(cap, 1) if capped else "no cap",
            _share_bar(share), f"{at_cap:,}" if capped else "—",
            "—" if busiest is None else f"{100 * busiest:.0f} %"]


def _share_bar(share: float | None, colour: str | None = None) -> str:
    """A share of 0..1 as a bar; without `colour`, green to red as it nears 1 (a cap)."""
    if share is None:
        return "—"
    width = 160
    colour = colour or ("#c5221f" if share >= 0.99 else "#c77c02" if share >= 0.9 else "#1e8e3e")
    return (f'<svg width="{width + 48}" height="12" role="img">'
            f'<rect width="{width}" height="12" fill="{FREE}" stroke="{FREE_EDGE}"/>'
            f'<rect width="{round(width * min(share, 1.0), 1)}" height="12" fill="{colour}"/>'
            f'<text x="{width + 6}" y="10" font-size="11">{100 * share:.0f} %</text></svg>')


def _utilisation_section(sim: Mapping[str, Any], fleet: Fleet) -> str:
    util, hours, runs = sim.get("utilisation") or {}, sim.get("chip_hours") or {}, sim.get("runs_per_chip_type") or {}
    totals = fleet.totals()
    table = _table(["chip type", "chips", "free at start", "runs", "busy chip-hours", "utilisation"],
                   ([_e(t), _n(totals.get(t, {}).get("chips")), _n(totals.get(t, {}).get("free")),
                     _n(runs.get(t)), _n(hours.get(t)), _share_bar(_number(u), PLACED)] for t, u in util.items()),
                   numeric=range(1, 5))
    return ('<section><h2>Chips by type</h2><p class="muted">Utilisation: busy chip-hours over the chip-hours '
            'of the chips free at the start, for the replay\'s span.</p>' + table + _utilisation_chart(sim)
            + "</section>")


def _utilisation_chart(sim: Mapping[str, Any]) -> str:
    """Mean utilisation per chip type over time, one line per type."""
    series = sim.get("utilisation_series") or {}
    by_type = {t: v for t, v in (series.get("by_chip_type") or {}).items() if v}
    bucket, first = _number(series.get("bucket_h")), _number(series.get("start_h")) or 0.0
    if not by_type or not bucket:
        return ""
    left, width, height, top = 44, 1000, 200, 10
    buckets = max(len(v) for v in by_type.values())
    end = first + buckets * bucket
    x = _scale(first, end, left, left + width)

    def y_of(share: float) -> float:
        return top + height - height * min(max(share, 0.0), 1.0)

    parts = [_time_axis(first, end, x, top, top + height, top + height + 14)]
    for frac in (0.0, 0.25, 0.5, 0.75, 1.0):
        y = y_of(frac)
        parts.append(f'<line x1="{left}" x2="{left + width}" y1="{y:.1f}" y2="{y:.1f}" stroke="#e3e7ec"/>'
                     f'<text x="{left - 6}" y="{y + 4:.1f}" font-size="10" text-anchor="end">{frac * 100:.0f}%</text>')
    keys = []
    for i, (t, values) in enumerate(by_type.items()):
        colour = TYPE_COLOURS[i % len(TYPE_COLOURS)]
        points = " ".join(f"{x(first + (k + 0.5) * bucket):.1f},{y_of(_number(v) or 0.0):.1f}"
                          for k, v in enumerate(values))
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.6" points="{points}">'
                     f'<title>{_e(t)}</title></polyline>')
        keys.append(f"<li>{_swatch(colour)}{_e(t)}</li>")
    svg = f'<svg width="{left + width + 16}" height="{top + height + 22}" role="img">' + "".join(parts) + "</svg>"
    return (f'<h3>Utilisation over time</h3><div class="legend"><ul>{"".join(keys)}</ul></div>'
            f'<div class="scroll">{svg}</div>')


# ---------------------------------------------------------------- energy and cost

def _energy_section(spans: Sequence[Span], colours: Mapping[str, str], fleet: Fleet) -> str:
    if not spans:
        return '<section><h2>Energy and cost</h2><p class="muted">No job was placed.</p></section>'
    by_type: dict[str, list[Span]] = {}
    for s in spans:
        by_type.setdefault(s.chip_type, []).append(s)
    order = [t for t in fleet.types_present() if t in by_type] + [t for t in by_type if t not in fleet.types_present()]
    type_colour = {t: TYPE_COLOURS[i % len(TYPE_COLOURS)] for i, t in enumerate(order)}

    def type_bars(key: str) -> list[Bar]:
        return [Bar(t, sum(getattr(s, key) or 0.0 for s in by_type[t]), type_colour[t],
                    f"{_plural(len(by_type[t]), 'job')}, {_plural(sum(s.chips for s in by_type[t]), 'chip')}")
                for t in order]

    charts = ('<div class="charts">'
              f'<div><h3>Energy by chip type (kWh)</h3>{_bar_chart(type_bars("energy_kwh"), 0)}</div>'
              f'<div><h3>Cost by chip type (USD)</h3>{_bar_chart(type_bars("cost_usd"), 0, "$")}</div></div>')
    by_job = ('<div class="charts">'
              f'<div><h3>Energy by job (kWh)</h3>{_bar_chart(_job_bars(spans, colours, "energy_kwh"), 0)}</div>'
              f'<div><h3>Cost by job (USD)</h3>{_bar_chart(_job_bars(spans, colours, "cost_usd"), 0, "$")}</div></div>')
    return f"<section><h2>Energy and cost</h2>{charts}{by_job}</section>"


def _job_bars(spans: Sequence[Span], colours: Mapping[str, str], key: str) -> list[Bar]:
    """The TOP_JOBS largest jobs by `key`, ties in result order, then the rest summed."""
    ranked = sorted(range(len(spans)), key=lambda i: (-(getattr(spans[i], key) or 0.0), i))
    bars = [Bar(spans[i].job, getattr(spans[i], key) or 0.0, colours[spans[i].job],
                f"{spans[i].chips:,} {spans[i].chip_type}") for i in ranked[:TOP_JOBS]]
    rest = ranked[TOP_JOBS:]
    if rest:
        bars.append(Bar(f"{len(rest)} other jobs", sum(getattr(spans[i], key) or 0.0 for i in rest), BUSY))
    return bars


def _bar_chart(bars: Sequence[Bar], digits: int, prefix: str = "") -> str:
    """Horizontal bars, labels left, values right; scaled to the largest."""
    label_w, bar_w, row = 190, 250, 18
    top = max((b.value for b in bars), default=0.0) or 1.0
    parts = []
    for i, b in enumerate(bars):
        y = i * row
        w = round(bar_w * max(b.value, 0.0) / top, 1)
        value = f"{prefix}{b.value:,.{digits}f}" + (f"  ({b.note})" if b.note else "")
        parts.append(f'<g><title>{_e(b.label)}: {_e(value)}</title>'
                     f'<text x="{label_w - 6}" y="{y + 12}" font-size="12" text-anchor="end">'
                     f'{_e(_short(b.label))}</text>'
                     f'<rect x="{label_w}" y="{y + 2}" width="{w}" height="{row - 5}" fill="{b.colour}"/>'
                     f'<text x="{label_w + w + 5}" y="{y + 12}" font-size="11">{_e(value)}</text></g>')
    width, height = label_w + bar_w + 190, max(len(bars) * row, row)
    return f'<svg width="{width}" height="{height}" role="img">' + "".join(parts) + "</svg>"


# ---------------------------------------------------------------- unplaced jobs

def _unplaced_section(unplaced: Sequence[Mapping[str, Any]]) -> str:
    if not unplaced:
        return '<section><h2>Unplaced jobs</h2><p>Every job was placed.</p></section>'
    table = _table(["job", "kind", "reason"],
                   ([_e(u.get("job", "?")), _e(u.get("kind", "")), _e(u.get("reason", ""))] for u in unplaced),
                   prose=(2,), whole=(0,))
    return (f'<section><h2>Unplaced jobs ({len(unplaced)})</h2>'
            + _folded(f"{len(unplaced)} jobs and why", table, len(unplaced)) + "</section>")


# ---------------------------------------------------------------- time

def _scale(a: float, b: float, left: float, right: float) -> Callable[[float], float]:
    """Hours a..b onto pixels left..right."""
    span = (b - a) or 1.0
    return lambda v: left + (v - a) / span * (right - left)


def _nice_step(span: float, most: int = 12) -> float:
    for step in (0.25, 0.5, 1, 2, 3, 6, 12, 24, 48, 72, 168, 336, 720, 1440, 2160, 4320, 8760):
        if span / step <= most:
            return float(step)
    return span / most


def _time_axis(first: float, end: float, x: Callable[[float], float], top: float, bottom: float,
               label_y: float) -> str:
    """Vertical grid lines at round hours from `top` to `bottom`, labelled on the baseline `label_y`."""
    step, parts = _nice_step(end - first), []
    k = math.ceil(first / step)
    while k * step <= end + 1e-9:          # ticks by count, so no rounding creeps in
        tick, k = k * step, k + 1
        px = x(tick)
        parts.append(f'<line x1="{px:.1f}" x2="{px:.1f}" y1="{top}" y2="{bottom}" stroke="#e3e7ec"/>'
                     f'<text x="{px:.1f}" y="{label_y}" font-size="10" text-anchor="middle">{tick:g} h</text>')
    return "".join(parts)


def _gantt_section(spans: Sequence[Span], colours: Mapping[str, str], horizon: float | None) -> str:
    if not spans:
        return ""
    note = (f"Each job's run; the dashed line is the {horizon:g} h horizon, which bounds starts, not ends."
            if horizon is not None else "Each job's run.")
    if any(s.arrival_h is not None for s in spans):
        note += " The thin grey line runs from the job's arrival to its start."
    if len(spans) > GANTT_ROWS:
        note += f" The first {GANTT_ROWS:,} of {len(spans):,} jobs to start are drawn."
    return (f'<section><h2>Schedule</h2><p class="muted">{_e(note)}</p>'
            f'<div class="scroll">{_gantt_svg(spans, colours, horizon)}</div></section>')


def _gantt_svg(spans: Sequence[Span], colours: Mapping[str, str], horizon: float | None) -> str:
    """One row per job, ordered by start then result order; the time axis spans every job."""
    label_w, plot_w, axis = 240, 1060, 18
    order = sorted(range(len(spans)), key=lambda i: (spans[i].start_h, i))[:GANTT_ROWS]
    first = min([0.0] + [s.start_h if s.arrival_h is None else min(s.arrival_h, s.start_h) for s in spans])
    end = max([s.end_h for s in spans] + ([horizon] if horizon is not None else []))
    x = _scale(first, end, label_w, label_w + plot_w)
    height = axis + len(order) * GANTT_ROW
    parts = [_time_axis(first, end, x, axis, height, axis - 6)]
    for k, i in enumerate(order):
        parts.append(_gantt_row(spans[i], colours[spans[i].job], x, axis + k * GANTT_ROW, label_w))
    if horizon is not None:
        px = x(horizon)
        parts.append(f'<line x1="{px:.1f}" x2="{px:.1f}" y1="{axis}" y2="{height}" stroke="#c5221f" '
                     f'stroke-dasharray="5 3" stroke-width="1.5"><title>horizon {horizon:g} h</title></line>')
    return f'<svg width="{label_w + plot_w + 10}" height="{height + 4}" role="img">' + "".join(parts) + "</svg>"


def _gantt_row(s: Span, colour: str, x: Callable[[float], float], y: float, label_w: int) -> str:
    tip = (f"{s.job}: {s.chips:,} {s.chip_type}, {s.start_h:,.2f} h to {s.end_h:,.2f} h"
           + (f", arrived {s.arrival_h:,.2f} h" if s.arrival_h is not None else ""))
    wait = ""
    if s.arrival_h is not None and s.arrival_h < s.start_h:
        wait = (f'<line x1="{x(s.arrival_h):.1f}" x2="{x(s.start_h):.1f}" y1="{y + 7}" y2="{y + 7}" '
                f'stroke="#9aa3ae" stroke-width="1.5"/>')
    start, width = x(s.start_h), max(x(s.end_h) - x(s.start_h), 1.0)
    return (f'<g><title>{_e(tip)}</title>'
            f'<text x="{label_w - 6}" y="{y + 11}" font-size="11" text-anchor="end">{_e(_short(s.job))}</text>'
            f'{wait}<rect x="{start:.1f}" y="{y + 2}" width="{width:.1f}" height="10" rx="2" '
            f'fill="{colour}"/></g>')


# ---------------------------------------------------------------- placements

def _placements_table(spans: Sequence[Span], colours: Mapping[str, str]) -> str:
    if not spans:
        return ""
    rows = ([f"{_swatch(colours[s.job])} {_e(s.job)}", _e(s.chip_type), _n(s.chips),
             _e(", ".join(f"{rack} ×{n}" for rack, n in s.allocations)),
             _n(s.start_h, 2), _n(s.end_h, 2), _n(s.power_kw, 1), _n(s.energy_kwh), _usd(s.cost_usd)]
            for s in spans)
    table = _table(["job", "chip type", "chips", "racks", "start h", "end h", "power kW", "energy kWh", "cost"],
                   rows, numeric=(2, 4, 5, 6, 7, 8), whole=(0,))
    return (f'<section><h2>Placements ({len(spans)})</h2>'
            + _folded(f"{len(spans)} jobs: chips, racks, times, energy and cost", table, len(spans)) + "</section>")
