"""A process that stands for sidekiq: it runs the batched background migrations until it
is told to stop."""

import signal
import time

from standin import upgrade
from standin.common import event

event("sidekiq", "running")
signal.signal(signal.SIGTERM, lambda *_: (event("sidekiq", "exiting"), exit(0)))
while True:
    upgrade.advance()
    time.sleep(0.5)
