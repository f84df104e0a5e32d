#!/usr/bin/env python3
"""The hostile-tenant reproductions of issue 22, run against one `plotq` binary.

Starts `plotq standalone --no-demo` (tokens on, loopback) for each binary given, runs
each probe as an ordinary tenant would, and prints one JSON line per binary with what it
saw, so two builds can be compared side by side in one run:

    bench/tenant_probes.py target/release/plotq /tmp/plotq-28363b9/target/release/plotq

Probes (numbers are what a hostile tenant gets, not timings):
  views      16 streams x 32 never-rendered views opened with a read-only token, 3 rounds
             held 1 s each: streams refused, and view renders the refresher queued
             (plotq_view_refreshes_total)
  caddy_csrf POST /api/v1/ingest/caddy as text/plain with a foreign Origin (the
             attack a page on another site can make): status
  link       a signed link hammered 200 times without credentials, then the minter's
             own POST /api/v1/plots: statuses
  rotation   a ticket of token "team" used after "team" got a new secret (restart for
             builds that cannot reload tokens): status
  spread     one 10,000-sample batch over 10,000 minutes: status
  rebind     GET /api/v1/services with Host: evil.example (open mode): status
  ticket_ttl PLOTQ_TICKET_TTL_SECS=31536000 accepted at start?
  health     /api/v1/health as a read-only tenant: whether it holds every caller's
             request statistics
  headers    X-Content-Type-Options on an answer; CSP on the dashboard page
Stdlib only.
"""
import json, os, socket, subprocess, sys, threading, time, urllib.request, urllib.error, hashlib, secrets

def tok():
    return "pq_" + secrets.token_urlsafe(32)

def sha(t):
    return hashlib.sha256(t.encode()).hexdigest()

class Plotq:
    def __init__(self, binary, tokens, extra_env=None, tokens_file=None, open_mode=False):
        self.port = free_port()
        env = dict(os.environ, PLOTQ_HTTP_ADDR=f"127.0.0.1:{self.port}", RUST_LOG="error",
                   PLOTQ_TICKET_SECRET="0123456789abcdef0123456789abcdef")
        if not open_mode:
            if tokens_file:
                env["PLOTQ_TOKENS_FILE"] = tokens_file
            else:
                env["PLOTQ_TOKENS"] = tokens
        env.update(extra_env or {})
        self.proc = subprocess.Popen([binary, "standalone", "--no-demo"], env=env,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.base = f"http://127.0.0.1:{self.port}"
        for _ in range(200):
            if self.proc.poll() is not None:
                self.started = False
                return
            try:
                urllib.request.urlopen(self.base + "/healthz", timeout=1)
                self.started = True
                return
            except Exception:
                time.sleep(0.05)
        self.started = False

    def stop(self):
        self.proc.kill()
        self.proc.wait()

    def call(self, method, path, token=None, body=None, headers=None, ctype="application/json", timeout=15):
        h = dict(headers or {})
        if token:
            h["authorization"] = f"Bearer {token}"
        data = None
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            h.setdefault("content-type", ctype)
        req = urllib.request.Request(self.base + path, data=data, headers=h, method=method)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.status, dict(r.headers), r.read()
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), e.read()

    def metric(self, name, token=None):
        _, _, text = self.call("GET", "/metrics", token)
        total = 0.0
        for line in text.decode().splitlines():
            if line.startswith(name) and not line.startswith("#"):
                total += float(line.rsplit(" ", 1)[1])
        return total

def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p

def ingest(p, token, service, n=500):
    now = int(time.time() * 1000)
    body = [{"service": service, "metric": "latency_ms", "value": 5 + i % 50, "timestamp": now - 60_000 + i * 100} for i in range(n)]
    return p.call("POST", "/api/v1/metrics", token, body)[0]

def probe_views(binary):
    reader, writer, admin = tok(), tok(), tok()
    p = Plotq(binary, f"sha256:{sha(reader)} scopes=read name=reader; sha256:{sha(writer)} scopes=ingest,read name=writer; "
                      f"sha256:{sha(admin)} scopes=read,admin name=admin")
    ingest(p, writer, "v")
    refused, opened = 0, 0
    for rnd in range(3):
        threads, results = [], []
        def open_stream(i):
            views = ",".join(f"v/histogram/15m/light/{200 + rnd * 100 + i}x{150 + j}" for j in range(32))
            req = urllib.request.Request(f"{p.base}/api/v1/events?views={views}", headers={"authorization": f"Bearer {reader}"})
            try:
                with urllib.request.urlopen(req, timeout=5) as r:
                    results.append(r.status)
                    time.sleep(1.0)  # held open for a second, as the reproduction did
            except urllib.error.HTTPError as e:
                results.append(e.code)
            except Exception:
                results.append(0)
        for i in range(16):
            t = threading.Thread(target=open_stream, args=(i,)); t.start(); threads.append(t)
        for t in threads:
            t.join()
        opened += sum(1 for s in results if s == 200)
        refused += sum(1 for s in results if s == 429)
    time.sleep(1.5)  # the refresher's passes (500 ms) see the last round's leases
    queued = p.metric("plotq_view_refreshes_total", admin)
    p.stop()
    return {"streams_opened": opened, "streams_refused_429": refused, "view_renders_queued": queued}

def probe_caddy(binary):
    t = tok()
    p = Plotq(binary, f"sha256:{sha(t)} scopes=ingest,read name=t", open_mode=True)
    line = json.dumps({"level": "info", "ts": time.time(), "logger": "http.log.access", "msg": "handled request",
                       "request": {"host": "a.example.com", "method": "GET", "uri": "/"}, "duration": 0.01, "status": 200}).encode()
    s, _, _ = p.call("POST", "/api/v1/ingest/caddy?service=edge", body=line, ctype="text/plain",
                     headers={"origin": "https://evil.example.net"})
    s2, _, _ = p.call("POST", "/api/v1/metrics", body={"service": "a", "metric": "m", "value": 1},
                      headers={"origin": "https://evil.example.net"})
    p.stop()
    return {"caddy_text_plain_foreign_origin": s, "metrics_json_foreign_origin": s2}

def probe_link(binary):
    t = tok()
    p = Plotq(binary, f"sha256:{sha(t)} scopes=ingest,read name=minter")
    ingest(p, t, "l")
    s, _, b = p.call("POST", "/api/v1/render/grants", t, {"query": "kind=histogram&service=l&window=15m"})
    url = json.loads(b)["url"]
    statuses = {}
    def hit():
        st, _, _ = p.call("GET", url, timeout=20)
        statuses[st] = statuses.get(st, 0) + 1
    threads = [threading.Thread(target=hit) for _ in range(200)]
    for th in threads: th.start()
    for th in threads: th.join()
    own = {}
    for i in range(5):
        st, _, _ = p.call("POST", "/api/v1/plots", t, {"kind": "cdf", "service": "l", "title": f"own {i}"})
        own[st] = own.get(st, 0) + 1
    p.stop()
    return {"link_statuses": statuses, "minters_own_plots": own}

def probe_rotation(binary):
    old, new = tok(), tok()
    path = f"/tmp/tenant-probe-tokens-{os.getpid()}"
    with open(path, "w") as f:
        f.write(f"sha256:{sha(old)} scopes=read name=team\n")
    p = Plotq(binary, None, tokens_file=path, extra_env={"PLOTQ_TOKENS_RELOAD_SECS": "1"})
    _, _, b = p.call("POST", "/api/v1/tickets", old)
    ticket = json.loads(b)["ticket"]
    with open(path, "w") as f:
        f.write(f"sha256:{sha(new)} scopes=read name=team\n")
    time.sleep(2.5)
    live, _, _ = p.call("GET", f"/api/v1/services?ticket={ticket}")
    p.stop()
    # Builds that cannot reload: the rotation is a restart with the new entry.
    p = Plotq(binary, None, tokens_file=path)
    restarted, _, _ = p.call("GET", f"/api/v1/services?ticket={ticket}")
    p.stop()
    os.unlink(path)
    return {"old_ticket_after_rotation_live": live, "old_ticket_after_rotation_restart": restarted}

def probe_spread(binary):
    t = tok()
    p = Plotq(binary, f"sha256:{sha(t)} scopes=ingest,read name=t")
    now = int(time.time() * 1000)
    body = [{"service": "s", "metric": "m", "value": 1, "timestamp": now - i * 60_000} for i in range(10_000)]
    started = time.time()
    s, _, _ = p.call("POST", "/api/v1/metrics", t, body, timeout=120)
    took = round(time.time() - started, 2)
    p.stop()
    return {"status": s, "seconds": took}

def probe_misc(binary):
    out = {}
    p = Plotq(binary, None, open_mode=True)
    out["rebind_host_status"] = p.call("GET", "/api/v1/services", headers={"host": "evil.example:8080"})[0]
    s, h, _ = p.call("GET", "/api/v1/services")
    out["nosniff"] = h.get("x-content-type-options") or h.get("X-Content-Type-Options")
    s, h, _ = p.call("GET", "/")
    out["dashboard_csp"] = bool(h.get("content-security-policy") or h.get("Content-Security-Policy"))
    out["dashboard_x_frame_options"] = h.get("x-frame-options") or h.get("X-Frame-Options")
    p.stop()
    p = Plotq(binary, None, open_mode=True, extra_env={"PLOTQ_TICKET_TTL_SECS": "31536000"})
    out["ticket_ttl_one_year_starts"] = p.started
    p.stop()
    r = tok()
    p = Plotq(binary, f"sha256:{sha(r)} scopes=read services=team-a-* name=r")
    _, _, b = p.call("GET", "/api/v1/health", r)
    out["health_requests_for_read_tenant"] = "requests" in json.loads(b)
    p.stop()
    return out

def main():
    for binary in sys.argv[1:]:
        result = {"binary": binary}
        for name, probe in [("views", probe_views), ("caddy_csrf", probe_caddy), ("link", probe_link),
                            ("rotation", probe_rotation), ("spread", probe_spread), ("misc", probe_misc)]:
            try:
                result[name] = probe(binary)
            except Exception as e:
                result[name] = {"error": repr(e)}
        print(json.dumps(result), flush=True)

if __name__ == "__main__":
    main()
