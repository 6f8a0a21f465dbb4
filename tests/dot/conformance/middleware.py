"""Counts requests by path, so that a test can assert how many token requests a client sent."""

import threading
from collections import Counter

_lock = threading.Lock()
_counts = Counter()


def counts():
    with _lock:
        return dict(_counts)


def count_requests(get_response):
    def middleware(request):
        with _lock:
            _counts[f"{request.method} {request.path}"] += 1
        return get_response(request)

    return middleware
