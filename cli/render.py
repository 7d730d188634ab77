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

from rich.text import Text  # noqa: E402

ARC_PALETTE = ["#000000", "#0074D9", "#FF4136", "#2ECC40", "#FFDC00", "#AAAAAA", "#F012BE", "#FF851B", "#7FDBFF",
               "#870C25"]


def sudoku_grid(givens, answer=None) -> Text:
    """Givens in bold white, digits the model filled in cyan; a wrong or missing digit in red."""
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
            text.append(f"{value if value else '.'} ", style=style)
        text.append("\n")
    return text


MAZE_STYLES = {1: ("#", "dim"), 2: (" ", ""), 3: ("S", "bold green"), 4: ("G", "bold red"), 5: ("o", "bold yellow")}


def maze_grid(grid) -> Text:
    text = Text()
    for row in grid:
        for code in row:
            symbol, style = MAZE_STYLES.get(int(code), ("?", "red"))
            text.append(symbol * 2 if symbol != "#" else "██", style=style)
        text.append("\n")
    return text


def arc_grid(grid) -> Text:
    text = Text()
    for row in grid:
        for colour in row:
            text.append("  ", style=f"on {ARC_PALETTE[int(colour)]}")
        text.append("\n")
    return text
