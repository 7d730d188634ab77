"""Shared rich output helpers for the commands."""

from rich.console import Console
from rich.table import Table

# No automatic highlighting: numbers inside paths and sources are not coloured; styles come from the code only.
console = Console(highlight=False)
err_console = Console(stderr=True, highlight=False)


def key_value_table(title: str, rows: dict) -> Table:
    table = Table(title=title, show_header=False, title_justify="left")
    table.add_column(style="bold")
    table.add_column()
    for key, value in rows.items():
        table.add_row(str(key), str(value))
    return table


# -- puzzle grids -------------------------------------------------------------------------------------------------

from rich.console import Group  # noqa: E402
from rich.text import Text  # noqa: E402

def picture(drawing) -> Text:
    """A task's drawing (hrm_mlx.tasks.Picture: rows of (text, style) cells) as rich text."""
    text = Text()
    if drawing.caption:
        text.append(drawing.caption + "\n")
    for row in drawing.rows:
        for cell, style in row:
            text.append(cell, style=style or None)
        text.append("\n")
    return text


def thinking(task, puzzle, step) -> Group:
    """One ACT step of a trace (hrm_mlx.trace.TraceStep): the answer so far, its changed cells marked, and a
    caption with the step, halt confidence and the checker's verdict (what ``solve --watch`` redraws)."""
    from hrm_mlx.animate import caption

    grid = picture(task.grid_picture(puzzle, step.answer, set(step.changed)))
    return Group(grid, Text(caption(step), style={True: "green", False: "red"}.get(step.solved, "dim")))
