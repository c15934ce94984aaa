"""Starts the host ROUNDS times per mode and prints start time and memory (see run)."""
import json
import os
import re
import subprocess
import sys
import time
import urllib.request

host, config, precompiled, rounds = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
FIELDS = ("VmRSS", "RssAnon", "RssFile", "VmHWM")


def memory(pid):
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in FIELDS:
                out[key] = int(value.split()[0]) / 1024
    return out


def one(extra):
    started = time.monotonic()
    proc = subprocess.Popen(
        [host, "serve", "--config", config, "--tee", "none", *extra],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "CLOISTER_LOG": "info", "NO_COLOR": "1"},
    )
    line = proc.stdout.readline()
    listening = time.monotonic() - started
    if "http://" not in line:
        proc.kill()
        sys.exit(f"the host did not start: {line!r} {proc.stderr.read()}")
    addr = line.split("http://")[1].split()[0]
    time.sleep(1.0)
    idle = memory(proc.pid)
    body = json.dumps({"text": "We was hoping to ship on friday, but its not ready yet.",
                       "target_tone": "formal"}).encode()
    req = urllib.request.Request(f"http://{addr}/v1/features/writing-help", data=body,
                                 headers={"content-type": "application/json"})
    status = urllib.request.urlopen(req, timeout=60).status
    served = memory(proc.pid)
    proc.terminate()
    _, err = proc.communicate()
    err = re.sub(r"\x1b\[[0-9;]*m", "", err)
    m = re.search(r"load_ms=(\d+)", err)
    return listening, int(m.group(1)) if m else -1, idle, served, status


rows = []
for r in range(rounds):
    for mode, extra in (("compiled at start", []), ("precompiled", ["--precompiled", precompiled])):
        rows.append((mode, *one(extra)))

print(f"{'mode':<18} {'listening s':>11} {'load_ms':>7}  idle MiB (RSS/anon/file/HWM)   after a writing-help request")
for mode, listening, load_ms, idle, served, status in rows:
    fmt = lambda m: "/".join(f"{m[k]:.0f}" for k in FIELDS)
    print(f"{mode:<18} {listening:>11.2f} {load_ms:>7}  {fmt(idle):<30}  {fmt(served)} (HTTP {status})")
