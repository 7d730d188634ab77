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
