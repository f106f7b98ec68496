"""RPyC classic side of the rshell-bench workloads (run by the harness with
Debian's /usr/bin/python3 and its python3-rpyc; one JSON object on stdout).

Each workload mirrors the Go client's in bench/cmd/rshell-bench/client.go.
"""
import argparse
import json
import sys
import time

import rpyc
from rpyc.utils.classic import obtain

FIB_SRC = "def fib(n):\n    return n if n < 2 else fib(n - 1) + fib(n - 2)\n"
FIB_DEFINE_EXECUTE = FIB_SRC + "fib(15)\n"

ns = time.perf_counter_ns


def time_n(warm, n, f):
    for _ in range(warm):
        f()
    out = []
    for _ in range(n):
        t0 = ns()
        f()
        out.append(ns() - t0)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--workload", required=True)
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--dur", type=float, default=1.0)
    ap.add_argument("--ssl-ca", help="connect over RPyC's TLS, verifying the server against this certificate")
    a = ap.parse_args()
    if a.ssl_ca:
        # As RPyC documents it: a new ssl.SSLContext per connection.
        connect = lambda: rpyc.classic.ssl_connect(a.host, a.port, ca_certs=a.ssl_ca)
    else:
        connect = lambda: rpyc.classic.connect(a.host, a.port)
    r = {}

    if a.workload == "connect":
        def one():
            c = connect()
            v = c.eval("1+1")
            c.close()
            assert v == 2
        r["samples_ns"] = time_n(1, a.n, one)
    elif a.workload == "idle":
        conns = []
        for _ in range(a.n):
            conns.append(connect())
        print("ready %d" % len(conns), flush=True)
        sys.stdin.readline()
        for c in conns:
            c.close()
        return
    else:
        c = connect()
        if a.workload == "eval_rtt":
            r["samples_ns"] = time_n(200, a.n, lambda: c.eval("1+1"))
        elif a.workload == "fib_define_execute":
            r["samples_ns"] = time_n(3, a.n, lambda: c.execute(FIB_DEFINE_EXECUTE))
        elif a.workload == "fib30_eval_repr":
            c.execute(FIB_SRC)
            def f():
                r["repr"] = repr(c.eval("fib(30)"))
            r["samples_ns"] = time_n(0, a.n, f)
        elif a.workload == "replicate":
            c.execute("d = {'k%%d' %% i: [i, i + 1, i + 2] for i in range(%d)}\n" % a.n)
            def f():
                d = obtain(c.eval("d"))
                assert type(d) is dict and len(d) == a.n
            r["samples_ns"] = time_n(1 if a.reps > 1 else 0, a.reps, f)
        elif a.workload == "replicate_netref":
            # The copy an RPyC user gets without pickle: walk the netref.
            c.execute("d = {'k%%d' %% i: [i, i + 1, i + 2] for i in range(%d)}\n" % a.n)
            def f():
                d = {k: list(v) for k, v in c.eval("d").items()}
                assert len(d) == a.n
            r["samples_ns"] = time_n(0, 3, f)
        elif a.workload == "throughput":
            for _ in range(50):
                c.eval("1+1")
            print("ready", flush=True)
            sys.stdin.readline()
            ops = 0
            cpu0 = time.process_time_ns()
            t0 = time.perf_counter()
            end = t0 + a.dur
            while time.perf_counter() < end:
                c.eval("1+1")
                ops += 1
            r["ops"] = ops
            r["seconds"] = time.perf_counter() - t0
            r["cpu_ns"] = time.process_time_ns() - cpu0
        else:
            raise SystemExit("unknown workload %r" % a.workload)
        c.close()
    json.dump(r, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
