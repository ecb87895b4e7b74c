"""A worker on one runner watches a worker on another, over Redis, then asks it for a job.

``@worker_ready`` fires when the watched worker is ready, whichever runner it runs on; jobs cross
runners the same way. Run ``runnerconf up examples/watch-across.yaml --runner back`` and
``--runner front`` (two processes, or two machines sharing REDIS_URL).
"""

from runnerconf.pipeline.job_context import JobParams
from runnerconf.pipeline.job_decorator import job
from runnerconf.pipeline.worker_ready_decorator import worker_ready
from runnerconf.workers.base_worker import BaseWorker


class Store(BaseWorker):
    """Answers ``lookup`` jobs from a small table."""

    def __init__(self, name=None, *, table=None):
        super().__init__(name)
        self._table = table or {}

    @job(name="lookup")
    async def lookup(self, message):
        key = message.payload["key"]
        await self.send_job_response(message.job_id, {"key": key, "value": self._table.get(key), "runner": self.worker_runner.name})


class Monitor(BaseWorker):
    """Waits for ``store`` (on the other runner), looks a key up there, and ends the session."""

    @worker_ready(name="store")
    async def on_store_ready(self, data):
        print(f"monitor@{self.worker_runner.name}: store is ready on runner {data.runner}", flush=True)
        self.create_task(self._ask(), "ask")

    async def _ask(self):
        async with self.job("store", params=JobParams(name="lookup", payload={"key": "answer"}, timeout=10)) as j:
            pass
        print(f"monitor: store@{j.response['runner']} says {j.response['key']} = {j.response['value']}", flush=True)
        await self.end(reason="looked it up")  # ends every runner of the session
