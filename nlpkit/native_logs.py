"""Keeps TensorFlow's and LiteRT's C++ log lines off a command's stderr unless asked for.

TensorFlow 2.21 logs through Abseil, which writes every message to stderr until
``absl::InitializeLog()`` is called, and TensorFlow never calls it: ``TF_CPP_MIN_LOG_LEVEL``
no longer silences the start-up lines (``oneDNN custom operations are on``, ``Could not find
cuda drivers``, ``failed call to cuInit``). They come from C++ straight to file descriptor 2,
so no Python logging setting reaches them. `filter_native_logs` puts a pipe in front of that
descriptor and passes on every line except those in Abseil's and TensorFlow's log format.
"""

import atexit
import os
import re
import sys
import threading

# "I0000 00:00:1796646921.078021   12186 port.cc:153] ..." (Abseil) and the notice Abseil prints
# once before its first message; "YYYY-MM-DD hh:mm:ss.ffffff: I tensorflow/..." (older TF).
NATIVE_LOG_LINE = re.compile(
    rb"^(?:[IWEF]\d{4} \d\d:\d\d:\d+\.\d+\s+\d+ [^\]]+:\d+\] "
    rb"|WARNING: All log messages before absl::InitializeLog\(\) is called are written to STDERR"
    rb"|\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: [IWE] \S+:\d+\] "
    rb"|INFO: )"  # LiteRT's informational lines ("INFO: Created TensorFlow Lite XNNPACK delegate")
)


def filter_native_logs():
    """Routes this process's stderr through a filter that drops native log lines.

    Python's own writes to ``sys.stderr`` (error messages, warnings) pass through unchanged
    and in order. The filter lasts until the process exits; at exit the pipe is drained so
    no line is lost. Call it before TensorFlow is imported; calling it again does nothing.

    Example:
        >>> filter_native_logs()
        >>> import tensorflow as tf  # prints nothing on stderr
    """
    global _installed
    if _installed:
        return
    _installed = True
    sys.stderr.flush()
    original = os.dup(2)
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)

    def forward():
        with os.fdopen(read_end, "rb") as source:
            for line in source:
                if not NATIVE_LOG_LINE.match(line):
                    os.write(original, line)

    thread = threading.Thread(target=forward, name="nlpkit-native-logs", daemon=True)
    thread.start()

    def drain():
        # Closing descriptor 2 (the pipe's last writer) ends the forwarding loop.
        try:
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
        os.dup2(original, 2)
        thread.join(timeout=5)

    atexit.register(drain)


_installed = False
