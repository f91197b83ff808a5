"""The file-system broker (the default when no broker server is named): a consumer, a publisher
in another process for instance, never reads a message or an exchange table before it is whole.

Each test stops the writer half way, lets the other side look, then lets the writer finish: the
interleaving a busy machine produces now and then, made to happen every time.
"""

import builtins
import fcntl
from queue import Empty

import kombu
import pytest
from kombu.transport import filesystem

from config import broker
from config.celery import app as celery_app


def channel(folder):
    connection = kombu.Connection(
        "filesystem://",
        transport=broker.Transport,
        transport_options={
            "data_folder_in": str(folder),
            "data_folder_out": str(folder),
            "control_folder": str(folder / "control"),
        },
    )
    return connection.default_channel


class LookingHalfWay:
    """A file that lets ``look()`` run when half of what is written has reached the disk."""

    def __init__(self, file, look):
        self._file, self._look = file, look

    def write(self, data: bytes) -> int:
        half = len(data) // 2
        self._file.write(data[:half])
        self._file.flush()
        self._look()
        return half + self._file.write(data[half:])

    def __enter__(self):
        return self

    def __exit__(self, *exc_info) -> None:
        self._file.close()

    def __getattr__(self, name):
        return getattr(self._file, name)


def test_a_consumer_never_reads_a_message_half_written(tmp_path, monkeypatch):
    producer, consumer = channel(tmp_path), channel(tmp_path)
    payload = {"body": "x" * 10_000, "headers": {"id": "1"}}
    seen_half_way: list[object] = []

    def look() -> None:
        try:
            seen_half_way.append(consumer._get("celery"))
        except Exception as exc:  # noqa: BLE001 - what the consumer met is the finding
            seen_half_way.append(exc)

    def opening_looking_half_way(path, mode="r", *args, **kwargs):
        file = builtins.open(path, mode, *args, **kwargs)  # noqa: SIM115 - the writer closes it
        return LookingHalfWay(file, look) if "w" in mode else file

    monkeypatch.setattr(broker, "open", opening_looking_half_way, raising=False)
    producer._put("celery", payload)
    monkeypatch.undo()

    (half_way,) = seen_half_way  # the consumer did look while the message was being written
    assert isinstance(half_way, Empty), half_way
    assert consumer._get("celery") == payload
    with pytest.raises(Empty):
        consumer._get("celery")
    assert list(tmp_path.glob("*.msg")) == []
    assert [p.name for p in tmp_path.iterdir() if p.is_file()] == []  # no part left behind


def test_a_publisher_never_reads_an_exchange_table_half_made(tmp_path, monkeypatch):
    binder, publisher = channel(tmp_path), channel(tmp_path)
    lock = filesystem.lock
    tables: list[object] = []

    def publisher_looks_first(file, flags) -> None:
        # The binder is about to lock the table to write it; the publisher gets there first.
        if flags == fcntl.LOCK_EX and not tables:
            try:
                tables.append(publisher.get_table("celery"))
            except Exception as exc:  # noqa: BLE001 - what the publisher met is the finding
                tables.append(exc)
        lock(file, flags)

    monkeypatch.setattr(filesystem, "lock", publisher_looks_first)
    binder._queue_bind("celery", "celery", None, "celery")
    monkeypatch.undo()

    assert tables == [[]]
    assert publisher.get_table("celery") == [("celery", "", "celery")]


@pytest.mark.skipif(
    celery_app.conf.broker_url != "filesystem://", reason="a broker server is configured"
)
def test_the_apps_file_system_broker_writes_whole_messages():
    with celery_app.connection_for_write() as connection:
        assert isinstance(connection.transport, broker.Transport)
