"""The one exception type for problems the user can fix (bad input, missing files, bad options).

The CLI prints its message as a single line and exits with code 2; anything else is a bug.
"""


class UserError(Exception):
    """A problem with the user's input or options, reported as one line without a traceback."""
