"""The one user-facing error type.

Anything the user can cause (bad file, bad value, missing extra) raises `EmsyncError` with a
one-line message naming the problem; the CLI prints it without a traceback and exits non-zero,
and the daemon turns it into an error status and keeps serving.
"""


class EmsyncError(Exception):
    """A problem the user can fix; the message is one clear line."""


def one_line(text: str) -> str:
    """`text` as one printable line: control characters (a newline or CR in a user's argument,
    echoed back in a message) are shown escaped, as Python writes them."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(text))
