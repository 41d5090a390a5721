"""``python tests/kill_inside.py WRITE STEP [overrides...]``: replay-run, SIGKILLed from inside one of
its writes (results, wandb, checkpoint) while step STEP is recorded (see test_interruptions.py)."""

import os
import signal
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

if __name__ == "__main__":
    from replay_cli.cli import main
    from tests.test_interruptions import arm

    write, step, overrides = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
    for owner, name, wrapper in arm(write, step, lambda: os.kill(os.getpid(), signal.SIGKILL)):
        setattr(owner, name, wrapper)
    sys.argv = ["replay-run", *overrides]
    main()
