"""Load on `ibert serve` (or any OpenAI-compatible server) over loopback: requests/s, latency
percentiles and, for completions, generated tokens/s (from each answer's `usage`) of one
endpoint at several numbers of concurrent clients, each client sending its next request when the
last is answered. Usage: serve_load.py BASE_URL ENDPOINT BODY_JSON SECONDS CLIENTS...
Each `{n}` in BODY_JSON becomes a number counting the requests, so that requests can differ
(other literals: nothing cached for one request serves the next).

Standard library only (threads and http.client with keep-alive), so it runs with any python3.
"""

import http.client
import json
import statistics
import sys
import threading
import time
from urllib.parse import urlparse


def client(base, path, body, deadline, latencies, statuses, tokens, lock, counter):
    url = urlparse(base)
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=600)
    headers = {"content-type": "application/json"}
    while time.monotonic() < deadline:
        with lock:
            counter[0] += 1
            number = counter[0]
        started = time.monotonic()
        connection.request("POST", path, body.replace("{n}", str(number)), headers)
        response = connection.getresponse()
        text = response.read()
        elapsed = time.monotonic() - started
        try:
            generated = json.loads(text).get("usage", {}).get("completion_tokens", 0)
        except (ValueError, AttributeError):
            generated = 0
        with lock:
            latencies.append(elapsed)
            statuses[response.status] = statuses.get(response.status, 0) + 1
            tokens.append(generated)


def run(base, path, body, seconds, clients):
    latencies, statuses, tokens, lock, counter = [], {}, [], threading.Lock(), [0]
    deadline = time.monotonic() + seconds
    threads = [threading.Thread(target=client, args=(base, path, body, deadline, latencies, statuses, tokens, lock, counter)) for _ in range(clients)]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.monotonic() - started
    latencies.sort()
    pick = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000
    return {
        "endpoint": path, "clients": clients, "requests": len(latencies), "rps": round(len(latencies) / wall, 1),
        "p50_ms": round(pick(0.50), 1), "p99_ms": round(pick(0.99), 1), "statuses": statuses,
        "mean_ms": round(statistics.mean(latencies) * 1000, 1),
        "generated_tokens_per_s": round(sum(tokens) / wall, 1),
    }


if __name__ == "__main__":
    base, path, body, seconds = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
    for clients in map(int, sys.argv[5:]):
        print(json.dumps(run(base, path, body, seconds, clients)), flush=True)
