"""The one exception type that ktt shows to users as a single line."""


class KttError(Exception):
    """A problem with the user's input, config or files.

    The message is one line that names what is wrong and what would be right.
    The CLI prints it as ``ktt: error: <message>`` and exits with status 2;
    it never prints a traceback for it.
    """
