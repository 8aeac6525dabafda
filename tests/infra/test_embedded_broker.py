"""The embedded default's broker: message files written whole before any worker sees
them, so a busy folder never hands a worker a half-written message."""

from __future__ import annotations

import multiprocessing

import pytest
from kombu import Connection

from wes_gateway.infra import embedded_broker

pytestmark = pytest.mark.backing_independent  # the embedded broker alone


def _connection(folder) -> Connection:
    options = {
        "data_folder_in": str(folder),
        "data_folder_out": str(folder),
        "control_folder": str(folder / "control"),
        "polling_interval": 0.01,
    }
    (folder / "control").mkdir(exist_ok=True)
    return Connection(f"{embedded_broker.SCHEME}://", transport_options=options)


def _write(folder, count: int) -> None:
    with _connection(folder) as producer:
        queue = producer.SimpleQueue("race")
        for number in range(count):
            # Large enough that encoding it takes a while: kombu's own transport has
            # the file in the queue folder, empty, for all that time.
            queue.put({"number": number, "padding": "x" * 2_000_000})
        queue.close()


def test_every_message_arrives_whole_while_another_process_writes(tmp_path):
    count = 60
    received: list[int] = []
    writer = multiprocessing.get_context("spawn").Process(target=_write, args=(tmp_path, count))
    with _connection(tmp_path) as connection:
        queue = connection.SimpleQueue("race")
        writer.start()
        try:
            while len(received) < count:
                message = queue.get(timeout=30)
                received.append(message.payload["number"])
                message.ack()
        finally:
            writer.join(timeout=30)
            queue.close()
    assert sorted(received) == list(range(count))


def test_a_message_file_left_half_written_is_skipped(tmp_path):
    with _connection(tmp_path) as connection:
        queue = connection.SimpleQueue("jobs")
        (tmp_path / "0_broken.jobs.msg").write_bytes(b"")  # a writer killed mid-write
        queue.put({"ok": True})
        assert queue.get(timeout=5).payload == {"ok": True}
        queue.close()
