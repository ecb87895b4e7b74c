"""A small Language Server Protocol client over stdio, to test the schema in a real editor server."""

from __future__ import annotations

import json
import os
import queue
import subprocess
import threading
import time
from collections.abc import Callable
from typing import IO, Any

Message = dict[str, Any]


class LanguageServer:
    """One language server process: requests wait for their answer, notifications are queued,
    and the server's own requests (``workspace/configuration``...) are answered."""

    def __init__(self, command: list[str], settings: dict[str, Any]) -> None:
        self.settings = settings
        self._proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        self._inbox: queue.Queue[Message] = queue.Queue()
        self._next_id = 0
        self._stash: list[Message] = []
        assert self._proc.stdout is not None
        threading.Thread(target=self._read, args=(self._proc.stdout,), daemon=True).start()

    def _read(self, stream: IO[bytes]) -> None:
        while True:
            headers: dict[str, str] = {}
            while True:
                line = stream.readline()
                if not line:
                    return
                text = line.decode("ascii").strip()
                if not text:
                    break
                key, _, value = text.partition(":")
                headers[key.lower()] = value.strip()
            self._inbox.put(json.loads(stream.read(int(headers["content-length"]))))

    def _send(self, message: Message) -> None:
        data = json.dumps({"jsonrpc": "2.0", **message}).encode()
        assert self._proc.stdin is not None
        self._proc.stdin.write(b"Content-Length: %d\r\n\r\n%s" % (len(data), data))
        self._proc.stdin.flush()

    def start(self, root_uri: str) -> Message:
        result = self.request(
            "initialize",
            {
                "processId": os.getpid(),
                "rootUri": root_uri,
                "capabilities": {"workspace": {"configuration": True}, "textDocument": {"hover": {"contentFormat": ["markdown"]}}},
            },
        )
        self.notify("initialized", {})
        self.notify("workspace/didChangeConfiguration", {"settings": {"yaml": self.settings}})
        return result

    def request(self, method: str, params: Any, timeout: float = 30) -> Any:
        self._next_id += 1
        rid = self._next_id
        self._send({"id": rid, "method": method, "params": params})
        answer = self.wait(lambda m: m.get("id") == rid and "method" not in m, timeout)
        if "error" in answer:
            raise RuntimeError(f"{method}: {answer['error']}")
        return answer.get("result")

    def notify(self, method: str, params: Any) -> None:
        self._send({"method": method, "params": params})

    def wait(self, matches: Callable[[Message], bool], timeout: float = 30) -> Message:
        """The first message (kept or new) that ``matches``; others are kept for later waits."""
        for i, m in enumerate(self._stash):
            if matches(m):
                return self._stash.pop(i)
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no such message from the language server")
            try:
                m = self._inbox.get(timeout=left)
            except queue.Empty:
                continue
            if "method" in m and "id" in m:  # the server asks something: answer it
                self._send({"id": m["id"], "result": self._answer(m)})
                continue
            if matches(m):
                return m
            self._stash.append(m)

    def _answer(self, request: Message) -> Any:
        if request["method"] == "workspace/configuration":
            return [self.settings if item.get("section") == "yaml" else None for item in request["params"]["items"]]
        return None

    def open(self, uri: str, text: str) -> None:
        self.notify("textDocument/didOpen", {"textDocument": {"uri": uri, "languageId": "yaml", "version": 1, "text": text}})

    def diagnostics(self, uris: list[str], *, settle: float = 1.0) -> dict[str, list[Message]]:
        """The diagnostics published for each of ``uris``: the latest list once a first one came
        for every URI and nothing new came for ``settle`` seconds."""

        def published(m: Message) -> bool:
            return m.get("method") == "textDocument/publishDiagnostics" and m["params"]["uri"] in uris

        latest: dict[str, list[Message]] = {}
        while len(latest) < len(uris):
            m = self.wait(published)
            latest[m["params"]["uri"]] = m["params"]["diagnostics"]
        while True:
            try:
                m = self.wait(published, settle)
            except TimeoutError:
                return latest
            latest[m["params"]["uri"]] = m["params"]["diagnostics"]

    def close(self) -> None:
        try:
            self.request("shutdown", None, timeout=5)
            self.notify("exit", None)
            self._proc.wait(timeout=5)
        except Exception:
            self._proc.kill()
            self._proc.wait()
        finally:
            for stream in (self._proc.stdin, self._proc.stdout):
                if stream is not None:
                    stream.close()
