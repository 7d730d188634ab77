class HrmMlxError(Exception):
    """An error the user can cause (bad input, missing file, mismatched model). The message is one line;
    the CLI prints it and exits with code 2. Bugs stay ordinary exceptions with tracebacks."""
