"""A Jupyter kernel client that cannot miss a message: what the notebook runner executes notebooks with.

nbclient (under papermill) waits for a cell's reply and outputs with ``get_msg(timeout=None)`` on
pyzmq's asyncio sockets, which sleep until the socket's file descriptor signals. That signal can be
lost: notebook 7's widget cell (about twenty widget comm messages at once) left ``dvc repro`` waiting
for good, with the kernel idle and the cell finished (its input was in the kernel's history, and a
second client got answers from it), and the reply unread in the runner's socket; nbclient issue 312
describes the same hang with ipywidgets. A poll with a timeout looks at the socket itself when the
timeout fires, so these channels wait in slices of :data:`REPOLL_SECONDS`: a lost signal costs at most
that long, and a message that is there is always read.
"""
from __future__ import annotations

import time
from queue import Empty
from typing import Any

from jupyter_client import AsyncKernelManager
from jupyter_client.asynchronous.client import AsyncKernelClient
from jupyter_client.channels import AsyncZMQSocketChannel
from traitlets import DottedObjectName, Type

REPOLL_SECONDS: float = 1.0


class RepollingChannel(AsyncZMQSocketChannel):
    """An asyncio ZMQ channel whose ``get_msg`` polls the socket again at least every :data:`REPOLL_SECONDS`."""

    async def get_msg(self, timeout: float | None = None) -> dict[str, Any]:  # type: ignore[override]
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            remaining = REPOLL_SECONDS if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                return await super().get_msg(timeout=min(REPOLL_SECONDS, remaining))
            except Empty:
                if deadline is not None and time.monotonic() >= deadline:
                    raise


class RepollingKernelClient(AsyncKernelClient):
    """The asyncio kernel client nbclient uses, with :class:`RepollingChannel` for shell and IOPub."""

    shell_channel_class = Type(RepollingChannel)  # type: ignore[assignment]
    iopub_channel_class = Type(RepollingChannel)  # type: ignore[assignment]


class RepollingKernelManager(AsyncKernelManager):
    """nbclient's default kernel manager, handing out :class:`RepollingKernelClient` s
    (``papermill.execute_notebook(..., kernel_manager_class=RepollingKernelManager)``)."""

    client_class = DottedObjectName("vizecg.study.kernel_client.RepollingKernelClient")
    client_factory = Type(RepollingKernelClient)  # AsyncKernelManager fixes its own; both must name ours
