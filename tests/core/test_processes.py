import os
import signal
import subprocess
import sys
import time

import psutil
import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl is Linux's")

# a parent (as DVC) whose child (as the stage) asks to end with it, then sleeps
PARENT = """
import subprocess, sys
child = subprocess.Popen([sys.executable, "-c",
    "import time; from stages.core.processes import end_with_parent; "
    "assert end_with_parent(); print('ready', flush=True); time.sleep(60)"])
print(child.pid, flush=True)
child.wait()
"""


def test_a_stage_ends_when_the_process_that_ran_it_is_killed():
    parent = subprocess.Popen([sys.executable, "-c", PARENT], stdout=subprocess.PIPE, text=True)
    child = psutil.Process(int(parent.stdout.readline()))
    assert parent.stdout.readline().strip() == "ready"
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()
    started = time.monotonic()
    child.wait(timeout=10)
    assert time.monotonic() - started < 10
