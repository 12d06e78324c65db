"""A small, fast in-memory S3-compatible server for the benchmarks (path-style, no auth).

Only what the benchmark clients and the emulator use: ListBuckets, CreateBucket, HeadBucket,
GetBucketLocation, PutObject, GetObject, HeadObject and ListObjectsV2, with S3 XML errors
(``NoSuchKey``, ``NoSuchBucket``, 404 without a body for HEAD). It counts requests by operation
(the emulator's own reads of inputs and writes of results apart) and records the time each
object was written, for detection latency. Control endpoints live
under ``/_bench/`` (not a valid bucket name): ``stats``, ``reset``, ``puts?prefix=`` and
``put_many`` (POST: many objects written at once, as the service writes results).

Run: ``python benchmarks/s3server.py --port 0`` prints ``READY <url>`` on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import hashlib
import itertools
import resource
import signal
import sys
import time
from collections import Counter
from dataclasses import dataclass
from email.utils import formatdate
from xml.sax.saxutils import escape

from aiohttp import web

XML = "application/xml"


@dataclass(slots=True)
class StoredObject:
    """One object: body, content type, ETag and when it was written (epoch seconds)."""

    body: bytes
    content_type: str
    etag: str
    written: float


class Store:
    """Buckets of objects, request counters and the written-times of objects."""

    def __init__(self) -> None:
        self.buckets: dict[str, dict[str, StoredObject]] = {}
        self.sorted_keys: dict[str, list[str]] = {}
        """Each bucket's keys in order, kept up to date: a LIST costs O(page), not O(bucket)."""
        self.counts: Counter[str] = Counter()
        self.backend_counts: Counter[str] = Counter()
        self.result_prefixes: tuple[str, ...] = ("outputs/", "failures/")
        self.created = time.time()

    def reset(self) -> None:
        """Forget objects (keep buckets) and zero the counters."""
        for objects in self.buckets.values():
            objects.clear()
        for ordered in self.sorted_keys.values():
            ordered.clear()
        self.counts.clear()
        self.backend_counts.clear()

    def count_object_request(self, operation: str, key: str) -> None:
        """Count one object request, separately when it is the emulator's own.

        The emulator reads inputs and writes results; clients write inputs and read results.
        """
        self.counts[operation] += 1
        is_result = key.startswith(self.result_prefixes)
        if (operation == "PutObject" and is_result) or (operation == "GetObject" and not is_result):
            self.backend_counts[operation] += 1


def _error(status: int, code: str, message: str, resource_: str = "") -> web.Response:
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{code}</Code><Message>{escape(message)}</Message>"
        f"<Resource>{escape(resource_)}</Resource><RequestId>bench</RequestId></Error>"
    )
    return web.Response(status=status, text=body, content_type=XML)


def _decode_aws_chunked(data: bytes) -> bytes:
    """Strip ``aws-chunked`` framing (``size[;ext]\\r\\n data \\r\\n ... 0\\r\\n trailers``)."""
    out = bytearray()
    pos = 0
    while True:
        end = data.index(b"\r\n", pos)
        size = int(data[pos:end].split(b";", 1)[0], 16)
        pos = end + 2
        if size == 0:
            return bytes(out)
        out += data[pos : pos + size]
        pos += size + 2


def _object_headers(obj: StoredObject) -> dict[str, str]:
    return {
        "ETag": obj.etag,
        "Content-Type": obj.content_type,
        "Last-Modified": formatdate(obj.written, usegmt=True),
        "Accept-Ranges": "bytes",
    }


def build_app(store: Store) -> web.Application:
    """The aiohttp application serving ``store``."""

    async def control(request: web.Request) -> web.Response:
        action = request.match_info["action"]
        if action == "stats":
            usage = resource.getrusage(resource.RUSAGE_SELF)
            return web.json_response(
                {
                    "counts": dict(store.counts),
                    "client_counts": dict(store.counts - store.backend_counts),
                    "backend_counts": dict(store.backend_counts),
                    "cpu_seconds": usage.ru_utime + usage.ru_stime,
                    "objects": sum(len(b) for b in store.buckets.values()),
                }
            )
        if action == "reset":
            store.reset()
            return web.json_response({"ok": True})
        if action == "puts":
            prefix = request.query.get("prefix", "")
            bucket = request.query.get("bucket", "")
            objects = store.buckets.get(bucket, {})
            return web.json_response(
                {k: o.written for k, o in objects.items() if k.startswith(prefix)}
            )
        if action == "put_many":  # the service's side writing results, without S3 clients
            body = await request.json()
            objects = store.buckets[body["bucket"]]
            for key, text, content_type in body["objects"]:
                data = text.encode()
                if key not in objects:
                    bisect.insort(store.sorted_keys[body["bucket"]], key)
                etag = f'"{hashlib.md5(data, usedforsecurity=False).hexdigest()}"'
                objects[key] = StoredObject(data, content_type, etag, time.time())
            store.counts["PutObject"] += len(body["objects"])
            store.backend_counts["PutObject"] += len(body["objects"])
            return web.json_response({"ok": True})
        return _error(404, "NotFound", f"unknown control action {action}")

    async def service(request: web.Request) -> web.Response:
        if request.method != "GET":
            return _error(405, "MethodNotAllowed", "only ListBuckets is served at /")
        store.counts["ListBuckets"] += 1
        items = "".join(
            f"<Bucket><Name>{escape(name)}</Name>"
            f"<CreationDate>2026-01-01T00:00:00.000Z</CreationDate></Bucket>"
            for name in store.buckets
        )
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n<ListAllMyBucketsResult>'
            "<Owner><ID>bench</ID><DisplayName>bench</DisplayName></Owner>"
            f"<Buckets>{items}</Buckets></ListAllMyBucketsResult>"
        )
        return web.Response(text=body, content_type=XML)

    async def bucket(request: web.Request) -> web.Response:
        name = request.match_info["bucket"]
        method = request.method
        if method == "PUT":
            store.counts["CreateBucket"] += 1
            await request.read()
            if name in store.buckets:
                return _error(409, "BucketAlreadyOwnedByYou", "bucket exists", f"/{name}")
            store.buckets[name] = {}
            store.sorted_keys[name] = []
            return web.Response(headers={"Location": f"/{name}"})
        objects = store.buckets.get(name)
        if method == "HEAD":
            store.counts["HeadBucket"] += 1
            return web.Response(status=200 if objects is not None else 404)
        if method != "GET":
            return _error(405, "MethodNotAllowed", f"{method} on a bucket is not served")
        if "location" in request.query:
            store.counts["GetBucketLocation"] += 1
            if objects is None:
                return _error(404, "NoSuchBucket", "no such bucket", f"/{name}")
            return web.Response(
                text='<?xml version="1.0" encoding="UTF-8"?>\n<LocationConstraint/>',
                content_type=XML,
            )
        store.counts["ListObjectsV2"] += 1
        if objects is None:
            return _error(404, "NoSuchBucket", "no such bucket", f"/{name}")
        prefix = request.query.get("prefix", "")
        after = request.query.get("start-after", "")
        token = request.query.get("continuation-token", "")
        after = max(after, token)
        limit = min(int(request.query.get("max-keys", "1000")), 1000)
        ordered = store.sorted_keys[name]
        start = max(bisect.bisect_left(ordered, prefix), bisect.bisect_right(ordered, after))
        page: list[str] = []
        more = False
        for key in itertools.islice(ordered, start, None):
            if not key.startswith(prefix):
                break
            if len(page) == limit:
                more = True
                break
            page.append(key)
        contents = "".join(
            f"<Contents><Key>{escape(k)}</Key><ETag>{escape(objects[k].etag)}</ETag>"
            f"<Size>{len(objects[k].body)}</Size><StorageClass>STANDARD</StorageClass>"
            "<LastModified>2026-01-01T00:00:00.000Z</LastModified></Contents>"
            for k in page
        )
        next_token = (
            f"<NextContinuationToken>{escape(page[-1])}</NextContinuationToken>" if page else ""
        )
        body = (
            '<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult>'
            f"<Name>{escape(name)}</Name><Prefix>{escape(prefix)}</Prefix>"
            f"<KeyCount>{len(page)}</KeyCount><MaxKeys>{limit}</MaxKeys>"
            f"<IsTruncated>{'true' if more else 'false'}</IsTruncated>"
            f"{next_token if more else ''}{contents}</ListBucketResult>"
        )
        return web.Response(text=body, content_type=XML)

    async def obj(request: web.Request) -> web.StreamResponse:
        name, key = request.match_info["bucket"], request.match_info["key"]
        method = request.method
        objects = store.buckets.get(name)
        if method == "PUT":
            store.count_object_request("PutObject", key)
            data = await request.read()
            if objects is None:
                return _error(404, "NoSuchBucket", "no such bucket", f"/{name}")
            if "aws-chunked" in request.headers.get("Content-Encoding", ""):
                data = _decode_aws_chunked(data)
            etag = f'"{hashlib.md5(data, usedforsecurity=False).hexdigest()}"'
            content_type = request.headers.get("Content-Type", "application/octet-stream")
            if key not in objects:
                bisect.insort(store.sorted_keys[name], key)
            objects[key] = StoredObject(data, content_type, etag, time.time())
            return web.Response(headers={"ETag": etag})
        if method == "HEAD":
            store.count_object_request("HeadObject", key)
            found = None if objects is None else objects.get(key)
            if found is None:
                return web.Response(status=404)
            headers = _object_headers(found)
            headers["Content-Length"] = str(len(found.body))
            return web.Response(headers=headers)
        if method == "GET":
            store.count_object_request("GetObject", key)
            if objects is None:
                return _error(404, "NoSuchBucket", "no such bucket", f"/{name}")
            found = objects.get(key)
            if found is None:
                return _error(404, "NoSuchKey", "The specified key does not exist.", f"/{key}")
            return web.Response(body=found.body, headers=_object_headers(found))
        if method == "DELETE":
            store.count_object_request("DeleteObject", key)
            if objects is not None and objects.pop(key, None) is not None:
                ordered = store.sorted_keys[name]
                del ordered[bisect.bisect_left(ordered, key)]
            return web.Response(status=204)
        store.counts[f"unsupported {method}"] += 1
        return _error(501, "NotImplemented", f"{method} on an object is not served")

    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_route("*", "/_bench/{action}", control)
    app.router.add_route("*", "/", service)
    app.router.add_route("*", "/{bucket}", bucket)
    app.router.add_route("*", "/{bucket}/", bucket)
    app.router.add_route("*", "/{bucket}/{key:.+}", obj)
    return app


async def serve(host: str, port: int) -> None:
    """Serve until SIGTERM/SIGINT; print ``READY <url>`` once listening."""
    runner = web.AppRunner(build_app(Store()), access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port, backlog=4096, reuse_address=True)
    await site.start()
    server = site._server  # the bound port of port=0
    assert server is not None
    bound = server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
    sys.stdout.write(f"READY http://{host}:{bound}\n")
    sys.stdout.flush()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()


def main() -> None:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    asyncio.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
