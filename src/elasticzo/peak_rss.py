"""Peak resident memory of this process: /proc/self/status VmHWM on Linux, getrusage's ru_maxrss elsewhere."""

import resource
import sys


def peak_rss_bytes() -> int:
    """The most physical memory this process has held at once, in bytes (Python, libraries, data, buffers).

    Linux's VmHWM belongs to the process's own address space. ru_maxrss is not used there: exec keeps the larger
    of its value and the parent's before exec, so a command started from a big process (a test runner) would
    report the parent's peak.
    """
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024  # the kernel writes kB (KiB)
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # macOS counts bytes, Linux and the BSDs KiB
