#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Neutron monitor benchmark: ROUTERS HA routers, each with its namespace,
its HA veth and its `neutron-keepalived-state-change` (a symlink to
kanotify) started as the L3 agent starts it (outside the namespace,
`--flag value` form), all notifying one listener built like the agent's
(socketserver.ThreadingUnixStreamServer: listen backlog 5, one recv(4096),
neutron's reply).

Measured:
- memory per monitor from /proc/PID/smaps_rollup once every router has
  reported its initial state: RSS, PSS and USS (Private_Clean +
  Private_Dirty);
- latency from the VIP's `addr add`/`addr del` (written to a long-running
  `ip -n NS -batch -` per router, so ip's own start-up is not counted) to
  the agent's receipt of the notification, and to the state file holding
  the new word (polled every 0.2 ms): serially (one router at a time,
  SERIAL changes), then all routers at once (ROUNDS rounds of add-all,
  del-all);
- lost notifications: every router's last state at the agent must be the
  last state it was given.

Root only. Cleans up its namespaces and processes.

  scripts/bench/monitor.py
  KANOTIFY=build/release/notify/kanotify ROUTERS=100 SERIAL=200 ROUNDS=5 scripts/bench/monitor.py
"""
import os
import re
import signal
import socketserver
import statistics
import subprocess
import sys
import tempfile
import threading
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
KANOTIFY = os.environ.get("KANOTIFY", os.path.join(REPO, "build/release/notify/kanotify"))
ROUTERS = int(os.environ.get("ROUTERS", "100"))
SERIAL = int(os.environ.get("SERIAL", "200"))
ROUNDS = int(os.environ.get("ROUNDS", "5"))
VIP = "169.254.0.1/24"

REPLY = (b"HTTP/1.1 200 OK\nContent-Type: text/plain; charset=UTF-8\n"
         b"Connection: close\nContent-Location': http://127.0.0.1/")

received = []  # (time, router, state)
received_lock = threading.Lock()


class Handler(socketserver.StreamRequestHandler):
    def handle(self):
        request = self.request.recv(4096)
        now = time.monotonic()
        text = request.decode("ascii", "replace")
        router = re.search(r"\r\nX-Neutron-Router-Id: ([^\r]*)", text)
        state = re.search(r"\r\nX-Neutron-State: ([^\r]*)", text)
        with received_lock:
            received.append((now, router.group(1) if router else None, state.group(1) if state else None))
        self.wfile.write(REPLY)


def percentile(values, p):
    values = sorted(values)
    k = max(0, min(len(values) - 1, int(round(p / 100.0 * (len(values) - 1)))))
    return values[k]


def summary(name, values_ms):
    return (f"{name}: n={len(values_ms)} median={statistics.median(values_ms):.3f} ms "
            f"p90={percentile(values_ms, 90):.3f} ms p99={percentile(values_ms, 99):.3f} ms "
            f"max={max(values_ms):.3f} ms")


def smaps(pid):
    fields = {}
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 3 and parts[2] == "kB":
                fields[parts[0].rstrip(":")] = int(parts[1])
    return fields["Rss"], fields["Pss"], fields["Private_Clean"] + fields["Private_Dirty"]


def wait_for(predicate, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.001)
    return predicate()


def last_states():
    out = {}
    with received_lock:
        for _, router, state in received:
            out[router] = state
    return out


def main():
    if os.geteuid() != 0:
        sys.exit("monitor.py: needs root (network namespaces)")
    if not os.access(KANOTIFY, os.X_OK):
        sys.exit(f"monitor.py: {KANOTIFY} is not built (cmake --preset release && cmake --build --preset release)")
    work = tempfile.mkdtemp(prefix="kanotify-bench-monitor.", dir=os.environ.get("BENCH_TMP", "/var/tmp"))
    link = os.path.join(work, "neutron-keepalived-state-change")
    os.symlink(os.path.realpath(KANOTIFY), link)
    server = socketserver.ThreadingUnixStreamServer(os.path.join(work, "keepalived-state-change"), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    prefix = f"kntbench-{os.getpid()}-"
    namespaces, monitors, batches = [], [], []
    try:
        for i in range(ROUTERS):
            ns = f"{prefix}{i}"
            subprocess.run(["ip", "netns", "add", ns], check=True)
            namespaces.append(ns)
            subprocess.run(["ip", "-n", ns, "link", "add", "ha-r", "type", "veth", "peer", "name", "ha-p"], check=True)
            subprocess.run(["ip", "-n", ns, "link", "set", "ha-r", "up"], check=True)
            batches.append(subprocess.Popen(["ip", "-n", ns, "-force", "-batch", "-"], stdin=subprocess.PIPE,
                                            stdout=subprocess.DEVNULL, text=True, bufsize=1))
        t_start = time.monotonic()
        for i in range(ROUTERS):
            router = f"bench-router-{i:04d}"
            conf = os.path.join(work, router)
            os.mkdir(conf)
            argv = [link, "--router_id", router, "--namespace", namespaces[i], "--conf_dir", conf,
                    "--log-file", os.path.join(conf, "neutron-keepalived-state-change.log"),
                    "--monitor_interface", "ha-r", "--monitor_cidr", VIP,
                    "--pid_file", os.path.join(conf, "monitor.pid"), "--state_path", work,
                    "--user", str(os.geteuid()), "--group", str(os.getegid())]
            monitors.append((router, conf, subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)))
        if not wait_for(lambda: len(last_states()) == ROUTERS, 60):
            sys.exit(f"monitor.py: only {len(last_states())} of {ROUTERS} initial states arrived")
        print(f"{ROUTERS} monitors started, every initial state at the agent after "
              f"{(time.monotonic() - t_start) * 1000:.0f} ms")
        time.sleep(1)
        rss, pss, uss = zip(*(smaps(p.pid) for _, _, p in monitors))
        print(f"memory per monitor (KiB): RSS median {statistics.median(rss)} max {max(rss)}; "
              f"PSS median {statistics.median(pss)} max {max(pss)}; "
              f"USS median {statistics.median(uss)} max {max(uss)}; "
              f"total PSS of {ROUTERS} monitors {sum(pss)} KiB")

        def state_file(conf):
            try:
                with open(os.path.join(conf, "state")) as f:
                    return f.read()
            except OSError:
                return ""

        # Serial: one change at a time, round robin over the routers.
        to_agent, to_file = [], []
        for n in range(SERIAL):
            i = n % ROUTERS
            router, conf, _ = monitors[i]
            adding = state_file(conf) != "primary"
            want = "primary" if adding else "backup"
            with received_lock:
                before = len(received)
            t0 = time.monotonic()
            batches[i].stdin.write(f"addr {'add' if adding else 'del'} {VIP} dev ha-r\n")
            t_file = None
            while time.monotonic() - t0 < 5:
                if t_file is None and state_file(conf) == want:
                    t_file = time.monotonic()
                with received_lock:
                    got = [r for r in received[before:] if r[1] == router and r[2] == want]
                if got and t_file is not None:
                    break
                time.sleep(0.0002)
            if not got or t_file is None:
                sys.exit(f"monitor.py: serial change {n} of {router} to {want} not seen within 5 s")
            to_agent.append((got[0][0] - t0) * 1000)
            to_file.append((t_file - t0) * 1000)
        print(summary("serial, addr change -> agent", to_agent))
        print(summary("serial, addr change -> state file", to_file))

        # All at once: every router's VIP added (then deleted) together.
        at_agent, at_file, lost = [], [], 0
        for r in range(ROUNDS * 2):
            want = "primary" if r % 2 == 0 else "backup"
            verb = "add" if want == "primary" else "del"
            with received_lock:
                before = len(received)
            t0 = time.monotonic()
            for b in batches:
                b.stdin.write(f"addr {verb} {VIP} dev ha-r\n")
            seen_file = {}
            def done():
                for router, conf, _ in monitors:
                    if router not in seen_file and state_file(conf) == want:
                        seen_file[router] = time.monotonic()
                with received_lock:
                    arrived = {x[1] for x in received[before:] if x[2] == want}
                return len(seen_file) == ROUTERS and len(arrived) == ROUTERS
            wait_for(done, 30)
            with received_lock:
                first = {}
                for t, router, state in received[before:]:
                    if state == want and router not in first:
                        first[router] = t
            lost += ROUTERS - len(first)
            at_agent += [(t - t0) * 1000 for t in first.values()]
            at_file += [(t - t0) * 1000 for t in seen_file.values()]
        finals = last_states()
        wrong = [router for router, _, _ in monitors if finals.get(router) != "backup"]
        print(summary(f"all {ROUTERS} at once ({ROUNDS} rounds of add and del), addr change -> agent", at_agent))
        print(summary(f"all {ROUTERS} at once, addr change -> state file (polled)", at_file))
        print(f"lost notifications: {lost} (routers whose final state at the agent is wrong: {len(wrong)})")
    finally:
        for _, _, p in monitors:
            p.send_signal(signal.SIGTERM)
        t_stop = time.monotonic()
        for _, _, p in monitors:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        if monitors:
            print(f"SIGTERM to all {len(monitors)}: all exited after {(time.monotonic() - t_stop) * 1000:.0f} ms")
        for b in batches:
            b.stdin.close()
            b.wait()
        for ns in namespaces:
            subprocess.run(["ip", "netns", "del", ns])
        server.shutdown()
        subprocess.run(["rm", "-rf", work])


if __name__ == "__main__":
    main()
