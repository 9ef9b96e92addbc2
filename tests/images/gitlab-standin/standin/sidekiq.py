"""A process that stands for sidekiq: it runs until it is told to stop."""

import signal

from standin.common import event

event("sidekiq", "running")
signal.signal(signal.SIGTERM, lambda *_: (event("sidekiq", "exiting"), exit(0)))
while True:
    signal.pause()
