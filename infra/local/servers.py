"""The HTTP server class every local server of the project runs on (the faults proxy, the
labelling page, the dashboard).

``request_queue_size``: socketserver's listen backlog is 5. The function opens up to its I/O
pool's width of connections at once (a batch of 10 frames on a fresh container) and a browser
about 6; past the backlog, Linux drops the SYN and the client retransmits it after 1 s.
Measured through the faults proxy: 16 concurrent first calls, the slowest 1.01 s with a backlog
of 5 in 2 of 5 trials, 0.03 s with 128 (the perf stage's batch-10 means had one such second).
"""

from __future__ import annotations

from http.server import ThreadingHTTPServer


class LocalHTTPServer(ThreadingHTTPServer):
    daemon_threads = True  # a hung client never keeps the process alive
    request_queue_size = 128
