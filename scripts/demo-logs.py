#!/usr/bin/env python3
"""Writes a few demo containers' worth of realistic Docker json-file logs under a directory,
laid out like /var/lib/docker/containers, so the log-viewer has something to show at once.

Usage: scripts/demo-logs.py DIR [--append N]
  DIR          created if missing; existing demo logs are kept (so restarts resume)
  --append N   append N more lines to each container and exit (handy to watch the live tail):
               20 ms apart, ending now, and always after the container's last line
"""
import datetime
import json
import os
import random
import sys

CONTAINERS = {
    "3f9a1c2b7d4e": "shop_web_1",
    "8b2e4d6f1a3c": "shop_worker_1",
    "c1d2e3f4a5b6": "shop_db_1",
    "a9b8c7d6e5f4": "shop_proxy_1",
}


def web_lines(rng, now):
    path = rng.choice(["/", "/cart", "/api/products", "/api/orders", "/login", "/health"])
    status = rng.choices([200, 201, 302, 404, 500], [70, 5, 10, 10, 5])[0]
    ms = rng.randint(2, 900)
    yield "stdout", f'INFO:     172.18.0.5:{rng.randint(30000, 60000)} - "GET {path} HTTP/1.1" {status} ({ms} ms)'
    if status == 500:
        yield "stderr", "ERROR:    Exception in ASGI application"
        yield "stderr", "Traceback (most recent call last):"
        yield "stderr", '  File "/app/shop/views.py", line 88, in checkout'
        yield "stderr", "    order = Order.create(cart, user)"
        yield "stderr", '  File "/app/shop/models.py", line 142, in create'
        yield "stderr", "    raise PaymentError(f\"card declined for order {cart.id}\")"
        yield "stderr", f"shop.errors.PaymentError: card declined for order {rng.randint(1000, 9999)}"
    elif ms > 700:
        yield "stdout", f"WARNING:  slow request {path} took {ms} ms"


def worker_lines(rng, now):
    job = rng.choice(["send_email", "resize_image", "sync_inventory", "charge_card"])
    level = rng.choices(["info", "warn", "error", "debug"], [70, 15, 5, 10])[0]
    record = {"level": level, "time": now.isoformat(), "job": job, "msg": f"{job} {'done' if level != 'error' else 'failed'}",
              "duration_ms": rng.randint(5, 4000)}
    if level == "error":
        record["err"] = "connection refused at redis:6379"
    yield "stdout", json.dumps(record)


def db_lines(rng, now):
    stamp = now.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + " UTC"
    kind = rng.choices(["checkpoint", "slow", "error", "conn"], [30, 20, 5, 45])[0]
    if kind == "checkpoint":
        yield "stderr", f"{stamp} [1] LOG:  checkpoint complete: wrote {rng.randint(10, 900)} buffers"
    elif kind == "slow":
        yield "stderr", f"{stamp} [77] LOG:  duration: {rng.randint(500, 5000)}.123 ms  statement: SELECT * FROM orders WHERE user_id = $1"
    elif kind == "error":
        yield "stderr", f'{stamp} [81] ERROR:  duplicate key value violates unique constraint "orders_pkey"'
        key = rng.randint(1, 99999)
        yield "stderr", f"{stamp} [81] DETAIL:  Key (id)=({key}) already exists."
        yield "stderr", f"{stamp} [81] STATEMENT:  INSERT INTO orders (id, user_id, total) VALUES ({key}, 7, 19.90)"
    else:
        yield "stderr", f"{stamp} [90] LOG:  connection authorized: user=shop database=shop"


def proxy_lines(rng, now):
    ip = f"203.0.113.{rng.randint(1, 254)}"
    status = rng.choices([200, 304, 404, 502], [80, 10, 8, 2])[0]
    stamp = now.strftime("%d/%b/%Y:%H:%M:%S +0000")
    yield "stdout", f'{ip} - - [{stamp}] "GET /static/app.{rng.randint(1, 9)}.js HTTP/2.0" {status} {rng.randint(200, 90000)} "-" "Mozilla/5.0"'
    if status == 502:
        yield "stderr", f"{now.strftime('%Y/%m/%d %H:%M:%S')} [error] 29#29: *{rng.randint(1, 9999)} upstream prematurely closed connection"


GENERATORS = {"shop_web_1": web_lines, "shop_worker_1": worker_lines, "shop_db_1": db_lines, "shop_proxy_1": proxy_lines}


def last_time(path):
    """The time of the last record in a json-file log, or None."""
    try:
        with open(path, "rb") as f:
            f.seek(max(0, os.path.getsize(path) - 65536))
            tail = f.read().decode("utf-8", "replace").splitlines()
    except OSError:
        return None
    for line in reversed(tail):
        try:
            stamp = json.loads(line)["time"]
        except (ValueError, KeyError, TypeError):
            continue
        return datetime.datetime.strptime(stamp[:26], "%Y-%m-%dT%H:%M:%S.%f").replace(tzinfo=datetime.timezone.utc)
    return None


def write(directory, lines_per_container, spread_hours):
    """Writes lines_per_container entries per container, spread_hours back to now at even
    steps (with no spread: 20 ms apart, ending now, after the container's last line); every
    record has its own time, one microsecond after the previous one at least."""
    rng = random.Random()
    now = datetime.datetime.now(datetime.timezone.utc)
    for cid, name in CONTAINERS.items():
        full_id = (cid * 6)[:64]
        folder = os.path.join(directory, full_id)
        os.makedirs(folder, exist_ok=True)
        with open(os.path.join(folder, "config.v2.json"), "w") as f:
            json.dump({"ID": full_id, "Name": "/" + name}, f)
        path = os.path.join(folder, f"{full_id}-json.log")
        if spread_hours:
            start = now - datetime.timedelta(hours=spread_hours)
            step = (now - start) / max(lines_per_container, 1)
        else:
            step = datetime.timedelta(milliseconds=20)
            start = now - step * (lines_per_container - 1)
            previous = last_time(path)
            if previous is not None and start <= previous:
                start = previous + step
        tick = datetime.timedelta(microseconds=1)
        with open(path, "a") as log:
            for i in range(lines_per_container):
                at = start + step * i
                for k, (stream, text) in enumerate(GENERATORS[name](rng, at)):
                    stamp = (at + tick * k).strftime("%Y-%m-%dT%H:%M:%S.%f") + "000Z"
                    log.write(json.dumps({"log": text + "\n", "stream": stream, "time": stamp}) + "\n")


def main():
    if len(sys.argv) < 2:
        print(__doc__)
        sys.exit(2)
    directory = sys.argv[1]
    if "--append" in sys.argv:
        write(directory, int(sys.argv[sys.argv.index("--append") + 1]), 0)
        return
    if os.path.isdir(directory) and os.listdir(directory):
        return  # keep existing demo logs
    write(directory, 400, 24)
    print(f"demo logs written under {directory}")


if __name__ == "__main__":
    main()
