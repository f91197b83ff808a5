"""Flowdesk's benchmarks: ``python -m bench [scenario ...] [--quick]``.

Benchmarks are not tests. Each scenario provisions its own world (a fresh PostgreSQL database, a
Redis broker, gunicorn and a Celery worker as real subprocesses), measures one thing next to a
baseline taken in the same run on the same stack, and tears the world down. Results are printed
as a table and written to ``bench/results/<timestamp>-<scenario>.json``.

The harness itself never imports Django: it drives the processes it starts from the outside,
over HTTP, the broker and SQL, as a client would.
"""
