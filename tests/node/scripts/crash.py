#!/usr/bin/env python3
"""A server that dies right after starting, every time."""

import sys
import time

time.sleep(0.2)
print("crashing", flush=True)
sys.exit(3)
