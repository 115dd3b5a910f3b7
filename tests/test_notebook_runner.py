"""The notebook runner (every DVC stage) reads kernel messages with channels that cannot miss one."""
from __future__ import annotations

import asyncio
import time
from queue import Empty

import nbformat
import pytest
from jupyter_client.channels import AsyncZMQSocketChannel

from vizecg.study import kernel_client
from vizecg.study.kernel_client import REPOLL_SECONDS, RepollingChannel


def _channel_with_lost_signal(monkeypatch, ready_after_calls: int) -> list:
    """Stand in for pyzmq's asyncio poll whose wake-up was lost: a wait without a timeout never returns,
    a wait with one sees the message once ``ready_after_calls`` waits have passed."""
    calls: list = []

    async def poll(self, timeout=None):
        calls.append(timeout)
        if timeout is None:
            await asyncio.sleep(3600)  # the hang: nothing ever wakes this
        if len(calls) > ready_after_calls:
            return {"header": {"msg_type": "execute_reply"}}
        await asyncio.sleep(min(timeout, 0.01))
        raise Empty

    monkeypatch.setattr(AsyncZMQSocketChannel, "get_msg", poll)
    monkeypatch.setattr(kernel_client, "REPOLL_SECONDS", 0.01)
    return calls


def test_a_wait_without_timeout_polls_in_slices_and_reads_the_message(monkeypatch) -> None:
    calls = _channel_with_lost_signal(monkeypatch, ready_after_calls=3)
    channel = RepollingChannel.__new__(RepollingChannel)
    msg = asyncio.run(asyncio.wait_for(channel.get_msg(timeout=None), timeout=10))
    assert msg["header"]["msg_type"] == "execute_reply"
    assert len(calls) == 4 and None not in calls and max(calls) <= 0.01


def test_a_wait_with_timeout_still_ends_empty_at_its_deadline(monkeypatch) -> None:
    calls = _channel_with_lost_signal(monkeypatch, ready_after_calls=10**6)
    channel = RepollingChannel.__new__(RepollingChannel)
    start = time.monotonic()
    with pytest.raises(Empty):
        asyncio.run(channel.get_msg(timeout=0.1))
    assert 0.1 <= time.monotonic() - start < 5
    assert None not in calls and len(calls) >= 2
    with pytest.raises(Empty):  # timeout 0: one look, no wait
        asyncio.run(channel.get_msg(timeout=0))
    assert REPOLL_SECONDS == 1.0  # the module's own slice (patched above only for this test)


def test_run_notebook_executes_widgets_through_the_repolling_client(tmp_path, monkeypatch) -> None:
    """A notebook that creates widgets (what hung notebook 7) runs through run_notebook, and its kernel
    messages are read by RepollingChannel."""
    from vizecg.study.notebook_runner import run_notebook

    reads = []
    original = RepollingChannel.get_msg

    async def counting(self, timeout=None):
        reads.append(timeout)
        return await original(self, timeout)

    monkeypatch.setattr(RepollingChannel, "get_msg", counting)
    notebook = nbformat.v4.new_notebook(metadata={"kernelspec": {"name": "python3", "language": "python",
                                                                "display_name": "Python 3"}})
    notebook.cells = [
        nbformat.v4.new_code_cell("value = 1", metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell("import ipywidgets as widgets\nout = widgets.Output()\n"
                                  "box = widgets.VBox([widgets.Dropdown(options=['a', 'b']) for _ in range(8)] + [out])\n"
                                  "display(box)\nwith out:\n    out.clear_output(wait=True)\n    print('drawn', value)"),
    ]
    source = tmp_path / "widgets.ipynb"
    nbformat.write(notebook, source)
    html = run_notebook(source, tmp_path / "widgets.html", {"value": 7}, executed=tmp_path / "executed.ipynb")
    assert html.exists() and "drawn" in (tmp_path / "executed.ipynb").read_text()
    assert reads, "the runner's kernel client did not read through RepollingChannel"
