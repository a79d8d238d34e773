"""Long work off the UI thread: one `Task` (a QThread) per analysis, thumbnail grab or generation.

The work itself is a library call that takes a progress callback (`score_video`,
`analyze_video`, `grab_frames`); Cancel sets a flag that the callback turns into
`score.Cancelled`, so the library stops at its next progress report and cleans up after itself.
"""

from __future__ import annotations

import logging
import threading
import traceback
from typing import Callable

from PyQt6.QtCore import QThread, pyqtSignal

from emsync_bridge.errors import EmsyncError
from emsync_bridge.score import Cancelled

log = logging.getLogger(__name__)


class Task(QThread):
    """Runs `fn(progress)` in its own thread; `progress(stage, done, total)` may be called from it.

    Signals (delivered on the UI thread): progressed(stage, done, total), succeeded(result),
    failed(message), cancelled(). Exactly one of the last three is emitted.
    """

    progressed = pyqtSignal(str, float, float)
    succeeded = pyqtSignal(object)
    failed = pyqtSignal(str)
    cancelled = pyqtSignal()

    def __init__(self, name: str, fn: Callable, parent=None):
        super().__init__(parent)
        self.name = name
        self.fn = fn
        self._cancel = threading.Event()

    def cancel(self) -> None:
        self._cancel.set()

    def is_cancelling(self) -> bool:
        return self._cancel.is_set()

    def _progress(self, stage: str, done: float, total: float) -> None:
        if self._cancel.is_set():
            raise Cancelled(stage)
        self.progressed.emit(stage, float(done), float(total))

    def run(self) -> None:  # runs in the worker thread
        try:
            result = self.fn(self._progress)
        except Cancelled:
            self.cancelled.emit()
        except EmsyncError as exc:
            self.failed.emit(str(exc))
        except Exception as exc:  # a bug must reach the user as a message, not kill the thread silently
            log.error("%s failed:\n%s", self.name, traceback.format_exc())
            self.failed.emit(f"{self.name} failed: {type(exc).__name__}: {exc}")
        else:
            if self._cancel.is_set():
                self.cancelled.emit()
            else:
                self.succeeded.emit(result)
