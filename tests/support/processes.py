"""Waiting for the processes the tests start."""
import subprocess
import time
import urllib.request


def wait_http(url: str, proc: subprocess.Popen, timeout: float = 240) -> None:
    """Until url answers 200, or fail if the process exits first."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[:3]} exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except Exception:
            time.sleep(0.5)
    raise TimeoutError(url)
