"""kombu's file-system broker, with every file a reader may open written whole before it is seen.

kombu 5.7's file-system transport creates a message file under its final name and only then
writes the message into it. A consumer lists the folder, moves that file away and reads it at
any moment in between, so on a busy machine it reads an empty or half-written message and the
worker dies on a ``JSONDecodeError`` (celery/kombu#1551). The exchange table in the control
folder has the same gap when it is first created. Here a message is written under a name no
consumer looks at and renamed into place within the same folder: a rename is atomic, so a
consumer sees the whole message or nothing. Settings select this transport for
``filesystem://`` (``CELERY_BROKER_TRANSPORT``); the URL and the folders stay as they were.
"""

import contextlib
import os
import uuid
from time import monotonic
from typing import Any

from kombu.exceptions import ChannelError
from kombu.transport import filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps

# A name the consumer's filter ("<stamp>_<uuid>.<queue>.msg") never matches, whatever the
# queue is called: it starts with a dot and ends in something other than ".msg".
_PART_PREFIX = "."
_PART_SUFFIX = ".part"


class Channel(filesystem.Channel):
    # (The stubs of kombu's own _put ignore the same mismatch with the abstract channel.)
    def _put(self, queue: str, payload: dict[str, Any], **kwargs: Any) -> None:  # type: ignore[override]
        """Put ``payload`` onto ``queue``: named, sorted and found as kombu's own."""
        filename = f"{round(monotonic() * 1000)}_{uuid.uuid4()}.{queue}.msg"
        path = os.path.join(self.data_folder_out, filename)
        part = os.path.join(self.data_folder_out, f"{_PART_PREFIX}{filename}{_PART_SUFFIX}")
        try:
            with open(part, "wb") as f:
                f.write(str_to_bytes(dumps(payload)))
            os.replace(part, path)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.unlink(part)
            raise ChannelError(f"Cannot add file {path!r} to directory") from exc

    def _queue_bind(self, exchange, routing_key, pattern, queue):
        # kombu creates a missing table by truncating it open and writing it under its lock, but
        # a publisher reads it under a shared lock it may take first, and reads nothing. Make
        # the table exist, whole, before kombu edits it (in place and locked, which is safe).
        file = self._exchange_file(exchange)  # type: ignore[attr-defined]  # stubs predate it
        if not file.exists():
            self.control_folder.mkdir(exist_ok=True)
            empty = file.with_name(f"{_PART_PREFIX}{file.name}.{uuid.uuid4()}{_PART_SUFFIX}")
            try:
                empty.write_bytes(str_to_bytes(dumps([])))
                # link(), unlike a rename, never replaces a table another process made meanwhile.
                with contextlib.suppress(FileExistsError):
                    os.link(empty, file)
            except OSError as exc:
                raise ChannelError(f"Cannot open {file}") from exc
            finally:
                with contextlib.suppress(OSError):
                    empty.unlink()
        super()._queue_bind(exchange, routing_key, pattern, queue)


class Transport(filesystem.Transport):
    Channel = Channel
