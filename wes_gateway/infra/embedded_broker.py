"""The broker of the embedded default: kombu's filesystem transport, made safe to share.

kombu's own transport creates a message file in the queue folder and only then writes
it, so a worker that lists the folder in between takes an empty file, fails to decode it
and stops. Here a message is written under a name no queue matches and renamed into
place when complete (a rename within a folder is atomic), and a file that cannot be
decoded all the same is set aside instead of stopping the worker.
"""

from __future__ import annotations

import json
import logging
import os
import uuid
from time import monotonic

from kombu.transport import TRANSPORT_ALIASES, filesystem
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps

log = logging.getLogger(__name__)
SCHEME = "wesfs"


class Channel(filesystem.Channel):
    def _put(self, queue, payload, **kwargs):
        name = f"{int(round(monotonic() * 1000))}_{uuid.uuid4()}.{queue}.msg"
        final = os.path.join(self.data_folder_out, name)
        partial = os.path.join(self.data_folder_out, f".{name}.partial")
        try:
            with open(partial, "wb") as file:
                file.write(str_to_bytes(dumps(payload)))
                file.flush()
                os.fsync(file.fileno())
            os.rename(partial, final)
        except OSError as exc:
            raise filesystem.ChannelError(f"Cannot add file {final!r} to directory") from exc

    def _get(self, queue):
        while True:
            try:
                return super()._get(queue)
            except json.JSONDecodeError:
                # A message file from a writer that did not finish (a process killed
                # mid-write with kombu's own transport): nothing to deliver.
                log.warning("skipped an unreadable message file on queue %s", queue)


class Transport(filesystem.Transport):
    Channel = Channel


TRANSPORT_ALIASES[SCHEME] = f"{__name__}:Transport"
