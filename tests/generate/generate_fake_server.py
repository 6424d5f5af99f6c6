"""A fake OpenAI-compatible chat server on loopback that injects faults (test helper, not a test file).

Each call is answered, with probability ``fault_rate``, by one fault drawn uniformly from
``FAULTS``: HTTP 500, HTTP 429 with ``Retry-After``, a response slower than the client's
timeout, a malformed (non-JSON) body, an answer whose content is not JSON, or an answer cut
short with ``finish_reason="length"``. Otherwise it answers with passages matching the request's
JSON schema; each passage contains the query text (taken from the ``Query:`` line of the
prompt) so tests can check that every stored passage belongs to its row.
"""

from __future__ import annotations

import json
import math
import random
import re
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

FAULTS = ("http500", "http429", "timeout", "malformed_body", "malformed_content", "truncated")
#: Faults a test asks for by name (``faults=(...)``); not in the default random mix.
EXTRA_FAULTS = ("echo_auth", "trickle", "content_number", "content_list", "usage_string", "empty_passage")
WORDS = ("river", "copper", "lantern", "orbit", "meadow", "violin", "glacier", "harbor", "pepper", "canyon",
         "marble", "falcon", "thunder", "quartz", "willow", "saddle", "comet", "ember", "lagoon", "tundra")


class FakeOpenAI:
    """Start with ``with FakeOpenAI(...) as server: server.base_url``.

    Args:
        fault_rate: share of calls answered with a fault.
        retry_after: value of the Retry-After header on 429 (string, seconds).
        hang_s: how long a "timeout" fault sleeps (should exceed the client's timeout).
        delay_s: base service time of a normal answer; ``token_delay_s`` adds per completion token.
        capacity: max requests served at once (others wait), to model a saturated endpoint.
        api_key: when set, requests without ``Authorization: Bearer <api_key>`` get 401.
        max_faults: stop injecting faults after this many (None: no limit).
    """

    def __init__(self, fault_rate: float = 0.0, seed: int = 0, retry_after: str = "0", hang_s: float = 1.0,
                 delay_s: float = 0.0, token_delay_s: float = 0.0, capacity: int = 1000, api_key: str | None = None,
                 faults: tuple[str, ...] = FAULTS, passage_words: int = 30, max_faults: int | None = None):
        self.fault_rate, self.retry_after, self.hang_s = fault_rate, retry_after, hang_s
        self.delay_s, self.token_delay_s, self.api_key, self.faults = delay_s, token_delay_s, api_key, faults
        self.passage_words, self.max_faults = passage_words, max_faults
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.slots = threading.Semaphore(capacity)
        self.calls = 0
        self.counts: Counter = Counter()
        self.auth_seen: list[str] = []
        self.requests: list[dict] = []  # every request body received, in order
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def __enter__(self) -> "FakeOpenAI":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def fault_share(self) -> float:
        return sum(self.counts[f] for f in FAULTS + EXTRA_FAULTS) / max(1, self.calls)

    def answer(self, request: dict) -> tuple[str, int]:
        """Content answering ``request`` per its schema, and its token count."""
        user = request["messages"][-1]["content"]
        match = re.search(r"^Query: (.*)$", user, re.M)
        query = match.group(1).strip() if match else "unknown"
        schema = request.get("response_format", {}).get("json_schema", {}).get("schema", {})
        props = schema.get("properties") or {"passages": {"minItems": 1}}
        body = {}
        if "grade" in props or request.get("logprobs"):  # an LLM judge: grade by the query words the passage shares
            passage = re.search(r"^Passage: (.*)$", user, re.M)
            shared = len(set(query.lower().split()) & set((passage.group(1) if passage else "").lower().split()))
            grades = (props.get("grade") or {}).get("enum") or [0, 1, 2, 3]
            grade = max(g for g in grades if g <= min(shared, max(grades)))
            content = str(grade) if request.get("logprobs") else json.dumps({"grade": grade})
            return content, len(content.split())
        with self.lock:
            for key, spec in props.items():
                body[key] = [f"Fake text {self.calls}-{key}-{i} on {query}: " + " ".join(self.rng.choice(WORDS) for _ in range(self.passage_words))
                             for i in range(spec.get("minItems", 1))]
        content = json.dumps(body)
        return content, len(content.split())

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def _send(self, status: int, body: bytes, headers: dict | None = None) -> None:
                try:
                    self.send_response(status)
                    for k, v in (headers or {}).items():
                        self.send_header(k, v)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def do_POST(self):
                length = int(self.headers.get("Content-Length", 0))
                request = json.loads(self.rfile.read(length))
                with fake.lock:
                    fake.calls += 1
                    fake.auth_seen.append(self.headers.get("Authorization", ""))
                    fake.requests.append(request)
                    budget_left = fake.max_faults is None or sum(fake.counts[f] for f in FAULTS + EXTRA_FAULTS) < fake.max_faults
                    fault = fake.rng.choice(fake.faults) if budget_left and fake.rng.random() < fake.fault_rate else None
                    fake.counts[fault or "ok"] += 1
                if fake.api_key and self.headers.get("Authorization") != f"Bearer {fake.api_key}":
                    return self._send(401, b'{"error": "bad key"}')
                if fault == "http500":
                    return self._send(500, b'{"error": "boom"}')
                if fault == "http429":
                    return self._send(429, b'{"error": "slow down"}', {"Retry-After": fake.retry_after})
                if fault == "timeout":
                    time.sleep(fake.hang_s)
                    return self._send(500, b'{"error": "too late"}')
                if fault == "echo_auth":  # a careless server that echoes the credentials it was sent
                    echoed = json.dumps({"error": f"bad request; you sent Authorization: {self.headers.get('Authorization')}"})
                    return self._send(400, echoed.encode())
                if fault == "trickle":  # a valid answer, one byte every trickle_s
                    content, tokens = fake.answer(request)
                    payload = json.dumps({"choices": [{"finish_reason": "stop", "message": {"content": content}}]}).encode()
                    try:
                        self.send_response(200)
                        self.send_header("Content-Length", str(len(payload)))
                        self.end_headers()
                        for i in range(len(payload)):
                            self.wfile.write(payload[i:i + 1])
                            self.wfile.flush()
                            time.sleep(fake.hang_s / len(payload))
                    except (BrokenPipeError, ConnectionResetError):
                        pass
                    return None
                if fault == "malformed_body":
                    return self._send(200, b'{"choices": [{"message": {"content": "oops"', {"Content-Type": "application/json"})
                with fake.slots:
                    content, tokens = fake.answer(request)
                    time.sleep(fake.delay_s + fake.token_delay_s * tokens)
                finish = "stop"
                if fault == "malformed_content":
                    content = "Sure! Here are the passages: " + content.replace('"', "'")
                elif fault == "truncated":
                    content, finish = content[: len(content) // 2], "length"
                elif fault == "empty_passage":
                    content = json.dumps({k: ["   "] * len(v) for k, v in json.loads(content).items()})
                usage = {"prompt_tokens": 50, "completion_tokens": tokens, "total_tokens": 50 + tokens}
                message = {"role": "assistant", "content": content}
                if fault == "content_number":
                    message["content"] = 42
                elif fault == "content_list":
                    message["content"] = [{"type": "text", "text": content}]
                elif fault == "usage_string":
                    usage = {"prompt_tokens": "fifty", "completion_tokens": 1.5}
                payload = {"id": "x", "object": "chat.completion", "model": request.get("model"),
                           "choices": [{"index": 0, "finish_reason": finish, "message": message}], "usage": usage}
                if request.get("logprobs"):  # the answer token 0.6, the next grade down (or up) 0.3, a word 0.1
                    grade = int(content)
                    other = grade - 1 if grade > 0 else grade + 1
                    top = [{"token": str(grade), "logprob": math.log(0.6)}, {"token": f" {other}", "logprob": math.log(0.3)},
                           {"token": "The", "logprob": math.log(0.1)}][: request.get("top_logprobs", 3)]
                    payload["choices"][0]["logprobs"] = {"content": [{"token": str(grade), "logprob": math.log(0.6),
                                                                      "top_logprobs": top}]}
                self._send(200, json.dumps(payload).encode(), {"Content-Type": "application/json"})

        return Handler


TEST_PROMPT = """kind: per-level
[system]
Test prompt.
[user]
Query: ${query}
Write ${n} passage(s) at level ${level}: ${level_definition}
"""


def write_test_prompt(folder) -> str:
    """A per-level prompt file that shows the query for every level (the built-in ones hide it at level 0)."""
    from pathlib import Path

    path = Path(folder) / "test-per-level.txt"
    path.write_text(TEST_PROMPT)
    return str(path)
