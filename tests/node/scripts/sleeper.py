#!/usr/bin/env python3
"""A server that runs until told to stop (SIGTERM), printing its environment's MARK."""

import os
import signal
import sys
import time

signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
print(f"MARK={os.environ.get('MARK', '')} cwd={os.getcwd()}", flush=True)
while True:
    time.sleep(1)
