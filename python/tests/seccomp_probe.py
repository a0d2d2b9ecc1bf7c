"""What the worker's seccomp filter lets through (crates/ibert-oracle/tests/oracle.rs).

Installs the filter, then tries each forbidden operation: through Python, through raw system
calls the allow-list never sees (io_uring, openat2, mknodat, the x32 ABI), and from a thread that
was started before the filter. Prints `name:blocked` or `name:allowed` for each, then whether
reading a file still works. Usage: seccomp_probe.py PATH (a file that must not appear).
"""

import ctypes
import errno
import os
import socket
import sys
import threading

from ibert_worker import sandbox

path = sys.argv[1]
X32 = 0x40000000
results = []


def attempt(name, action):
    """`blocked` only for EPERM, the filter's answer: a call refused for another reason (bad
    arguments, a kernel without the call) says so, so the probe cannot pass by accident."""
    try:
        outcome = action()
    except OSError as error:
        results.append(f"{name}:{'blocked' if error.errno == errno.EPERM else errno.errorcode.get(error.errno)}")
        return
    if outcome is not None and outcome < 0:
        code = ctypes.get_errno()
        results.append(f"{name}:{'blocked' if code == errno.EPERM else errno.errorcode.get(code)}")
    else:
        results.append(f"{name}:allowed")


libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
started = threading.Event()
checked = threading.Event()


def early_thread():
    started.wait()
    attempt("thread-write", lambda: open(path, "w") and None)
    checked.set()


threading.Thread(target=early_thread).start()
assert sandbox.install_seccomp() == "on"
started.set()
checked.wait()
attempt("write", lambda: open(path, "w") and None)
attempt("fork", os.fork)
attempt("socket", lambda: socket.socket() and None)
attempt("mkdir", lambda: os.mkdir(path + ".d"))
raw = path.encode()
io_uring_params = ctypes.create_string_buffer(120)
# struct open_how {flags, mode, resolve}: create for writing.
open_how = (ctypes.c_uint64 * 3)(0o101, 0o644, 0)
attempt("io_uring_setup", lambda: libc.syscall(425, 1, io_uring_params))
attempt("openat2", lambda: libc.syscall(437, -100, raw, open_how, ctypes.sizeof(open_how)))
attempt("mknodat", lambda: libc.syscall(259, -100, raw, 0o100644, 0))
attempt("x32-openat", lambda: libc.syscall(X32 + 257, -100, raw, 0o101, 0o644))
print(" ".join(results))
print("read ok" if open("/etc/hostname").read() != "" else "read failed")
