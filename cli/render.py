"""Shared rich output helpers for the commands."""

from rich.console import Console
from rich.table import Table

console = Console()
err_console = Console(stderr=True)


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

from hrm_mlx.animate import ARC_PALETTE  # noqa: E402

CHANGED = " reverse"  # the style added to cells that changed at the step shown


def sudoku_grid(givens, answer=None, changed=frozenset()) -> Text:
    """Givens in bold white, digits the model filled in cyan; a wrong or missing digit in red; cells in
    ``changed`` ((row, column) pairs) reversed."""
    text = Text()
    for r in range(9):
        if r and r % 3 == 0:
            text.append("------+-------+------\n", style="dim")
        for c in range(9):
            if c and c % 3 == 0:
                text.append("| ", style="dim")
            given = int(givens[r, c])
            value = given if answer is None or given else int(answer[r, c])
            style = "bold" if given else ("cyan" if value else "red")
            text.append(f"{value if value else '.'}", style=style + (CHANGED if (r, c) in changed else ""))
            text.append(" ")
        text.append("\n")
    return text


MAZE_STYLES = {1: ("#", "dim"), 2: (" ", ""), 3: ("S", "bold green"), 4: ("G", "bold red"), 5: ("o", "bold yellow")}


def maze_grid(grid, changed=frozenset()) -> Text:
    text = Text()
    for r, row in enumerate(grid):
        for c, code in enumerate(row):
            symbol, style = MAZE_STYLES.get(int(code), ("?", "red"))
            text.append(symbol * 2 if symbol != "#" else "██", style=style + (CHANGED if (r, c) in changed else ""))
        text.append("\n")
    return text


def arc_grid(grid, changed=frozenset()) -> Text:
    text = Text()
    for r, row in enumerate(grid):
        for c, colour in enumerate(row):
            text.append("<>" if (r, c) in changed else "  ", style=f"white on {ARC_PALETTE[int(colour)]}")
        text.append("\n")
    return text


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


def thinking(task: str, puzzle, step) -> Group:
    """One ACT step of a trace (hrm_mlx.trace.TraceStep): the answer so far, its changed cells marked, and a
    caption with the step, halt confidence and the checker's verdict (what ``solve --watch`` redraws)."""
    from hrm_mlx.animate import caption

    changed = set(step.changed)
    if task == "sudoku":
        grid = sudoku_grid(puzzle.grid, step.answer, changed)
    elif task == "maze":
        grid = maze_grid(step.answer, changed)
    else:
        grid = arc_grid(step.answer, changed)
    return Group(grid, Text(caption(step), style={True: "green", False: "red"}.get(step.solved, "dim")))
