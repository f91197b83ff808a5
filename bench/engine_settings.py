"""Settings of the engine when a scenario runs it as a server of its own (``bench/stack.py``).

Flowdesk's own settings, with one change: the engine's Celery tasks go to a queue named
``engine`` on the same broker, consumed only by the engine's worker. Flowdesk's workers (run
with the engine switched off) know no engine task and must never be handed one.
"""

from config.settings import *  # noqa: F403

CELERY_TASK_DEFAULT_QUEUE = "engine"
