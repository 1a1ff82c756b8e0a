#!/usr/bin/env python3
# pty_choose.py SERIAL CMD...: runs CMD on a new pseudo-terminal (its
# stdin, stdout, stderr and controlling terminal), waits for mica's
# "which certificate was lost?" prompt, answers with the number of the
# listed line that shows SERIAL, and copies everything CMD printed to
# stdout.  Exits with CMD's exit status; 97 when the prompt or the serial
# never came (CMD is killed), 98 on a timeout (60 s, not a measurement:
# only a hung CMD reaches it).
import os
import pty
import re
import select
import signal
import sys
import time

serial = sys.argv[1]
pid, fd = pty.fork()
if pid == 0:
    os.execvp(sys.argv[2], sys.argv[2:])
out = b""
answered = False
deadline = time.monotonic() + 60
rc = None
while True:
    left = deadline - time.monotonic()
    if left <= 0:
        os.kill(pid, signal.SIGKILL)
        rc = 98
        break
    r, _, _ = select.select([fd], [], [], left)
    if not r:
        continue
    try:
        data = os.read(fd, 4096)
    except OSError:
        data = b""
    if not data:
        break
    out += data
    if not answered and b"which certificate was lost?" in out:
        m = re.search(rb"^\s*(\d+)\) serial " + re.escape(serial.encode()) +
                      rb" ", out, re.M)
        if m is None:
            os.kill(pid, signal.SIGKILL)
            rc = 97
            break
        os.write(fd, m.group(1) + b"\n")
        answered = True
_, status = os.waitpid(pid, 0)
sys.stdout.write(out.decode(errors="replace"))
if rc is None:
    rc = os.waitstatus_to_exitcode(status)
    if rc < 0:
        rc = 128 - rc
sys.exit(rc)
