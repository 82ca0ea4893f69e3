"""Exit → `die` event delivery latency under concurrent runs.

    python3 bench/event_latency.py unix:///path/to.sock 100

Subscribes to /events (die only), starts N `busybox sh -c 'sleep 1'` containers at once,
and for each container measures the time from its State.FinishedAt to the moment this client
received its die event. Prints "median | p95 | max" in milliseconds."""

import datetime
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import docker


def parse(ts: str) -> float:
    # RFC 3339 with nanoseconds: keep microseconds for datetime.
    base, _, frac = ts.rstrip("Z").partition(".")
    frac = (frac + "000000")[:6]
    dt = datetime.datetime.strptime(f"{base}.{frac}", "%Y-%m-%dT%H:%M:%S.%f")
    return dt.replace(tzinfo=datetime.timezone.utc).timestamp()


def main() -> None:
    host, n = sys.argv[1], int(sys.argv[2])
    client = docker.DockerClient(base_url=host, timeout=300)
    received: dict[str, float] = {}
    done = threading.Event()
    events = client.events(decode=True, filters={"event": ["die"], "type": ["container"]})

    def listen():
        for e in events:
            received[e["Actor"]["ID"]] = time.time()
            if len(received) >= n:
                done.set()
                return

    threading.Thread(target=listen, daemon=True).start()
    time.sleep(0.5)
    with ThreadPoolExecutor(16) as ex:
        ids = list(ex.map(lambda _: client.containers.run(
            "busybox", ["sh", "-c", "sleep 1"], detach=True, network_mode="none").id, range(n)))
    done.wait(300)
    events.close()
    lat = []
    for cid in ids:
        fin = parse(client.api.inspect_container(cid)["State"]["FinishedAt"])
        if cid in received:
            lat.append((received[cid] - fin) * 1000)
    lat.sort()
    p95 = lat[int(len(lat) * 0.95) - 1] if lat else float("nan")
    print(f"{statistics.median(lat):.1f} | {p95:.1f} | {lat[-1]:.1f}")


if __name__ == "__main__":
    main()
