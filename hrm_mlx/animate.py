"""Pictures of a model thinking: one frame per ACT step of a trace (``hrm_mlx.trace``), written as an animated GIF
(Pillow, the ``animate`` extra) or as an HTML page with the frames as inline SVG and a slider (works offline,
needs nothing).

A frame is a grid of cells and a caption (step, halt confidence, the checker's verdict); the task draws the cells
(``Task.frame``: e.g. Sudoku's givens on grey, the maze's path growing with its changed cells framed). ``frames``
builds them from a trace, ``image`` and ``svg`` draw one, ``write`` saves all.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from pathlib import Path

from hrm_mlx.errors import HrmMlxError

UNKNOWN = "#bbbbbb"  # a token that is no symbol of the task
GIVEN, FILLED, CHANGED = "#dddddd", "#ffffff", "#ffd966"  # the cells of a grid of digits (Sudoku)
DIGIT, GIVEN_DIGIT = "#1f5fbf", "#000000"
FRAME_MS, LAST_FRAME_MS = 500, 2000
FORMATS = (".gif", ".html")


@dataclass
class Cell:
    fill: str
    text: str = ""
    ink: str = "#000000"
    outline: str | None = None  # a frame around a changed cell (where the fill cannot show the change)


@dataclass
class Frame:
    cells: list[list[Cell]]
    caption: str
    block: tuple[int, int] | None = None  # thicker lines every (rows, columns) cells: Sudoku boxes


def caption(step, total: int | None = None) -> str:
    """A frame's caption: the step (of ``total``), the halt confidence and the checker's verdict."""
    verdict = {True: "solved", False: "not solved", None: "nothing to check"}[step.solved]
    return f"step {step.step}{f'/{total}' if total else ''}   halt {step.halt_confidence:.2f}   {verdict}"


def frames(task, puzzle, trace: list) -> list[Frame]:
    """One frame per step of ``trace`` (TraceSteps of ``puzzle``); ``task`` (a Task or its name) draws the cells."""
    from hrm_mlx import tasks

    task = tasks.get(task) if isinstance(task, str) else task
    out = []
    for step in trace:
        cells, block = task.frame(puzzle, step.answer, set(step.changed))
        out.append(Frame(cells, caption(step, len(trace)), block))
    return out


def _cell_size(frame: Frame) -> int:
    """Pixels per cell: large grids get smaller cells so a frame stays about 400 pixels wide."""
    return max(8, min(40, 400 // max(len(frame.cells[0]), 1)))


CAPTION_HEIGHT = 24


def image(frame: Frame, cell: int | None = None):
    """The frame as a PIL image (RGB)."""
    try:
        from PIL import Image, ImageDraw, ImageFont
    except ImportError:
        raise HrmMlxError("drawing frames needs Pillow: pip install 'hrm-mlx[animate]' (or write .html)") from None
    cell = cell or _cell_size(frame)
    rows, cols = len(frame.cells), len(frame.cells[0])
    width = max(cols * cell, 260)
    picture = Image.new("RGB", (width, rows * cell + CAPTION_HEIGHT), "#ffffff")
    draw = ImageDraw.Draw(picture)
    digits = ImageFont.load_default(size=int(cell * 0.6))
    for r, row in enumerate(frame.cells):
        for c, spec in enumerate(row):
            x, y = c * cell, r * cell
            draw.rectangle([x, y, x + cell - 1, y + cell - 1], fill=spec.fill, outline="#999999" if frame.block
                           else None)
            if spec.outline:
                width_px = max(2, cell // 8)
                draw.rectangle([x, y, x + cell - 1, y + cell - 1], outline=spec.outline, width=width_px)
            if spec.text:
                draw.text((x + cell / 2, y + cell / 2), spec.text, fill=spec.ink, font=digits, anchor="mm")
    if frame.block:
        for r in range(0, rows + 1, frame.block[0]):
            draw.line([0, r * cell, cols * cell, r * cell], fill="#000000", width=2)
        for c in range(0, cols + 1, frame.block[1]):
            draw.line([c * cell, 0, c * cell, rows * cell], fill="#000000", width=2)
    draw.text((4, rows * cell + CAPTION_HEIGHT / 2), frame.caption, fill="#000000",
              font=ImageFont.load_default(size=14), anchor="lm")
    return picture


def svg(frame: Frame, cell: int | None = None) -> str:
    """The frame as an SVG document (the same picture as ``image``)."""
    cell = cell or _cell_size(frame)
    rows, cols = len(frame.cells), len(frame.cells[0])
    width, height = max(cols * cell, 260), rows * cell + CAPTION_HEIGHT
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}"><rect width="{width}" height="{height}" fill="#ffffff"/>']
    for r, row in enumerate(frame.cells):
        for c, spec in enumerate(row):
            x, y = c * cell, r * cell
            stroke = ' stroke="#999999"' if frame.block else ""
            parts.append(f'<rect x="{x}" y="{y}" width="{cell}" height="{cell}" fill="{spec.fill}"{stroke}/>')
            if spec.outline:
                w = max(2, cell // 8)
                parts.append(f'<rect x="{x + w / 2}" y="{y + w / 2}" width="{cell - w}" height="{cell - w}" '
                             f'fill="none" stroke="{spec.outline}" stroke-width="{w}"/>')
            if spec.text:
                parts.append(f'<text x="{x + cell / 2}" y="{y + cell / 2}" fill="{spec.ink}" font-size="{cell * 0.6}"'
                             f' font-family="sans-serif" text-anchor="middle" dominant-baseline="central">'
                             f'{html.escape(spec.text)}</text>')
    if frame.block:
        for r in range(0, rows + 1, frame.block[0]):
            parts.append(f'<line x1="0" y1="{r * cell}" x2="{cols * cell}" y2="{r * cell}" stroke="#000000" '
                         'stroke-width="2"/>')
        for c in range(0, cols + 1, frame.block[1]):
            parts.append(f'<line x1="{c * cell}" y1="0" x2="{c * cell}" y2="{rows * cell}" stroke="#000000" '
                         'stroke-width="2"/>')
    parts.append(f'<text x="4" y="{rows * cell + CAPTION_HEIGHT / 2}" font-size="14" font-family="sans-serif" '
                 f'dominant-baseline="central" xml:space="preserve">{html.escape(frame.caption)}</text></svg>')
    return "".join(parts)


_PAGE = """<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>{title}</title>
<style>body{{font-family:sans-serif;margin:1em}} .frame{{display:none}} .frame.on{{display:block}}</style></head>
<body><h3>{title}</h3>
{frames}
<p><button id="play">play</button> <input id="step" type="range" min="0" max="{last}" value="{last}"
 style="width:300px"> <span id="label"></span></p>
<script>
const frames = document.querySelectorAll('.frame'), slider = document.getElementById('step');
const label = document.getElementById('label'); let timer = null;
function show(i) {{ frames.forEach((f, k) => f.classList.toggle('on', k == i)); slider.value = i;
  label.textContent = 'frame ' + (+i + 1) + ' of ' + frames.length; }}
slider.oninput = () => show(slider.value);
document.getElementById('play').onclick = () => {{
  if (timer) {{ clearInterval(timer); timer = null; return; }}
  let i = 0; show(0);
  timer = setInterval(() => {{ i += 1; if (i >= frames.length) {{ clearInterval(timer); timer = null; }}
    else show(i); }}, {ms}); }};
show({last});
</script></body></html>
"""


def write(path: str | Path, all_frames: list[Frame], title: str = "hrm-mlx: thinking step by step") -> Path:
    """Save the frames as an animated GIF (.gif) or an offline HTML page with a slider (.html), atomically."""
    from hrm_mlx import atomic

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise HrmMlxError(f"{path}: an animation is written as {' or '.join(FORMATS)}")
    if not all_frames:
        raise HrmMlxError(f"{path}: no steps to draw")
    if suffix == ".html":
        body = "\n".join(f'<div class="frame">{svg(f)}</div>' for f in all_frames)
        page = _PAGE.format(title=html.escape(title), frames=body, last=len(all_frames) - 1, ms=FRAME_MS)
        return atomic.write_file(path, page)
    pictures = [image(f) for f in all_frames]
    durations = [FRAME_MS] * (len(pictures) - 1) + [LAST_FRAME_MS]
    return atomic.write_file(path, lambda tmp: pictures[0].save(
        tmp, format="GIF", save_all=True, append_images=pictures[1:], duration=durations, loop=0, optimize=True))
