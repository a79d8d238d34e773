"""The one user-facing error type.

Anything the user can cause (bad file, bad value, missing extra) raises `EmsyncError` with a
one-line message naming the problem; the CLI prints it without a traceback and exits non-zero,
and the daemon turns it into an error status and keeps serving.
"""


class EmsyncError(Exception):
    """A problem the user can fix; the message is one clear line."""
