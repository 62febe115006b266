#!/usr/bin/env python3
"""Claims to be a Tars server but never sends a heartbeat: stuck in Activating."""

import time

while True:
    time.sleep(1)
