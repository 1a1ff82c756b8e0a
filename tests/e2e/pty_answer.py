#!/usr/bin/env python3
# pty_answer.py PROMPT::ANSWER... -- CMD...: runs CMD on a new
# pseudo-terminal (stdin, stdout, stderr and controlling terminal) and
# types each ANSWER (plus a newline) once its PROMPT has appeared in the
# output after the previous answer, in order.  Prints everything CMD
# wrote (the terminal's transcript, so an echoed answer would show).
# Exits with CMD's status; 97 if CMD ended before all prompts came, 98
# on a 60 s timeout (only a hung CMD reaches it; not a measurement).
import os
import pty
import select
import signal
import sys
import time

sep = sys.argv.index("--")
pairs = [a.split("::", 1) for a in sys.argv[1:sep]]
cmd = sys.argv[sep + 1:]
pid, fd = pty.fork()
if pid == 0:
    os.execvp(cmd[0], cmd)
out = b""
pos = 0
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
    while pairs:
        i = out.find(pairs[0][0].encode(), pos)
        if i < 0:
            break
        pos = i + len(pairs[0][0])
        os.write(fd, pairs[0][1].encode() + b"\n")
        pairs.pop(0)
_, status = os.waitpid(pid, 0)
sys.stdout.write(out.decode(errors="replace"))
if rc is None:
    rc = os.waitstatus_to_exitcode(status)
    if rc < 0:
        rc = 128 - rc
    if pairs:
        rc = 97
sys.exit(rc)
