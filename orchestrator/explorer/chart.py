"""The accuracy-per-checkpoint chart as inline SVG, drawn on the server: no script, nothing fetched.

Each checkpoint is a vertical stroke from its accuracy before (the model's best at the backup point)
to its accuracy after, ending in a filled dot when it settled (the gain was paid for) and a hollow one
when it rolled back; a grey line follows the best accuracy so far, the only thing that ever got paid.
"""
import math
from collections.abc import Mapping, Sequence
from html import escape

WIDTH, HEIGHT = 760, 260
LEFT, RIGHT, TOP, BOTTOM = 58, 16, 14, 38
COLOURS = {"settled": "#1a7f37", "rolled_back": "#cf222e", "open": "#9a6700", "billed": "#9a6700"}
MAX_X_LABELS = 12


def _percent(ppm: int) -> float:
    return ppm / 10_000


def _label(percent: float) -> str:
    return f"{percent:.2f}".rstrip("0").rstrip(".") + " %"


def _y_range(values: Sequence[float]) -> tuple[float, float, float]:
    """Axis bounds on round numbers and the tick step, with some room above and below the data."""
    lo, hi = min(values), max(values)
    span = max(hi - lo, 1.0)
    step = next(s for s in (0.1, 0.2, 0.25, 0.5, 1, 2, 2.5, 5, 10, 20, 25) if span / s <= 5)
    # One step of room on each side, so no point sits on the frame.
    bottom = (math.ceil(round(lo / step, 6)) - 1) * step
    top = (math.floor(round(hi / step, 6)) + 1) * step
    return max(0.0, round(bottom, 6)), min(100.0, round(top, 6)), step


def _ticks(lo: float, hi: float, step: float) -> list[float]:
    return [round(lo + i * step, 6) for i in range(round((hi - lo) / step) + 1)]


def accuracy_chart(series: Sequence[Mapping], baseline_ppm: int) -> str:
    """SVG markup for `series` (checkpoint_id, seq, state, accuracy_before, accuracy_after; oldest first)."""
    if not series:
        return (f'<svg class="chart" role="img" aria-label="no checkpoints yet" viewBox="0 0 {WIDTH} 60" '
                f'width="{WIDTH}" height="60"><text x="{LEFT}" y="34" class="chart-empty">no checkpoints yet</text>'
                '</svg>')
    values = [_percent(baseline_ppm)]
    for point in series:
        values.append(_percent(point["accuracy_before"]))
        if point["accuracy_after"] is not None:
            values.append(_percent(point["accuracy_after"]))
    lo, hi, step = _y_range(values)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(i: int) -> float:
        return LEFT + (i + 0.5) * plot_w / len(series)

    def y(percent: float) -> float:
        return TOP + (hi - percent) / (hi - lo) * plot_h if hi > lo else TOP + plot_h / 2

    parts = [f'<svg class="chart" role="img" aria-label="accuracy per checkpoint" viewBox="0 0 {WIDTH} {HEIGHT}" '
             f'width="{WIDTH}" height="{HEIGHT}" xmlns="http://www.w3.org/2000/svg">']
    for tick in _ticks(lo, hi, step):
        parts.append(f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" class="grid"/>'
                     f'<text x="{LEFT - 6}" y="{y(tick) + 4:.1f}" text-anchor="end" class="axis">{_label(tick)}</text>')
    # The best accuracy so far is a step: flat across each checkpoint (its accuracy before is the best at
    # its backup point), rising only where one settled.
    half = plot_w / len(series) / 2
    best = []
    for i, point in enumerate(series):
        level = y(_percent(point["accuracy_before"]))
        best += [f"{x(i) - half:.1f},{level:.1f}", f"{x(i) + half:.1f},{level:.1f}"]
    last = series[-1]
    if last["state"] == "settled":
        best.append(f"{x(len(series) - 1) + half:.1f},{y(_percent(last['accuracy_after'])):.1f}")
    parts.append(f'<polyline points="{" ".join(best)}" class="best"/>')
    radius = max(1.5, min(5.0, plot_w / len(series) / 3))
    every = max(1, -(-len(series) // MAX_X_LABELS))
    for i, point in enumerate(series):
        state, before, after = point["state"], point["accuracy_before"], point["accuracy_after"]
        colour = COLOURS.get(state, "#57606a")
        title = (f"checkpoint {point['checkpoint_id']} (#{point['seq']} of the model): {_label(_percent(before))}"
                 f" → {_label(_percent(after)) if after is not None else '…'}, {state.replace('_', ' ')}")
        parts.append(f'<g class="point {escape(state)}" data-checkpoint="{point["checkpoint_id"]}" '
                     f'data-state="{escape(state)}" data-accuracy-after="{after if after is not None else ""}">'
                     f'<title>{escape(title)}</title>')
        if after is not None:
            fill = colour if state == "settled" else "white"
            parts.append(f'<line x1="{x(i):.1f}" x2="{x(i):.1f}" y1="{y(_percent(before)):.1f}" '
                         f'y2="{y(_percent(after)):.1f}" stroke="{colour}" stroke-width="2"/>'
                         f'<circle cx="{x(i):.1f}" cy="{y(_percent(after)):.1f}" r="{radius:.1f}" fill="{fill}" '
                         f'stroke="{colour}" stroke-width="2"/>')
        else:
            parts.append(f'<circle cx="{x(i):.1f}" cy="{y(_percent(before)):.1f}" r="{radius:.1f}" fill="{colour}"/>')
        parts.append("</g>")
        if i % every == 0:
            parts.append(f'<text x="{x(i):.1f}" y="{HEIGHT - BOTTOM + 16}" text-anchor="middle" class="axis">'
                         f'{point["checkpoint_id"]}</text>')
    parts.append(f'<text x="{LEFT + plot_w / 2:.1f}" y="{HEIGHT - 6}" text-anchor="middle" class="axis">'
                 f'checkpoint id</text></svg>')
    return "".join(parts)
