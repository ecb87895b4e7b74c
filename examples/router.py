"""A router that delegates work to two helpers with jobs, one at a time and as a group.

Written the way a pipecat bot developer writes workers: only the imports say ``runnerconf``
instead of ``pipecat``. Run it with ``runnerconf up examples/router.yaml``.
"""

from runnerconf.pipeline.job_context import JobEvent, JobGroupParams, JobParams
from runnerconf.pipeline.job_decorator import job
from runnerconf.workers.base_worker import BaseWorker


class Translator(BaseWorker):
    """Answers ``translate`` jobs: reports progress once, then the translated text."""

    def __init__(self, name=None, *, language="fr", words=None):
        super().__init__(name)
        self._language = language
        self._words = words or {}

    @job(name="translate")
    async def on_translate(self, message):
        text = message.payload["text"]
        await self.send_job_update(message.job_id, {"progress": 0.5})
        translated = " ".join(self._words.get(w, w) for w in text.split())
        await self.send_job_response(message.job_id, {"text": translated, "language": self._language})


class Router(BaseWorker):
    """Sends each text to a helper in turn, then one text to every helper, then ends the session."""

    def __init__(self, name=None, *, helpers, texts):
        super().__init__(name)
        self._helpers = list(helpers)
        self._texts = list(texts)

    async def main(self):
        for i, text in enumerate(self._texts):
            helper = self._helpers[i % len(self._helpers)]
            async with self.job(helper, params=JobParams(name="translate", payload={"text": text}, timeout=5)) as j:
                async for event in j:
                    if event.type == JobEvent.UPDATE:
                        print(f"{helper}: {int(event.data['progress'] * 100)}% of {text!r}", flush=True)
            print(f"{helper}: {text!r} -> {j.response['text']!r}", flush=True)
        params = JobGroupParams(name="translate", payload={"text": "good morning"}, timeout=5)
        async with self.job_group(*self._helpers, params=params) as group:
            pass
        for name, response in sorted(group.responses.items()):
            print(f"group {name} ({response['language']}): {response['text']!r}", flush=True)
        await self.end(reason="every job answered")
