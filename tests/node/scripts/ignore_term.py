#!/usr/bin/env python3
"""A server that ignores SIGTERM: the node has to kill it."""

import signal
import time

signal.signal(signal.SIGTERM, signal.SIG_IGN)
print("ignoring SIGTERM", flush=True)
while True:
    time.sleep(1)
