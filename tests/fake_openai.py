"""A fake OpenAI API on 127.0.0.1 for tests: a real HTTP server (ThreadingHTTPServer in a
thread) that the real openai client talks to. It speaks the subset adaptune uses:

  GET  /v1/models, /v1/models/{id}       served models, with shutdown dates
  POST /v1/files, DELETE /v1/files/{id}  multipart upload (purpose fine-tune), deletion
  POST /v1/fine_tuning/jobs              create a job
  GET  /v1/fine_tuning/jobs              list jobs (newest first; metadata[k]=v filters)
  GET  /v1/fine_tuning/jobs/{id}         retrieve; each call moves the job one status on
  GET  /v1/fine_tuning/jobs/{id}/events  its events
  POST /v1/completions, /v1/chat/completions   answers from `answer(model, text)`

and it can be scripted: `fail_next(n, status)` answers the next n requests with an error
(429, 500, ...); `drop_after_create(n)` creates the next n jobs and then drops the connection
without an answer; `outcomes[model]` makes a base model's jobs fail, fail moderation in
validating_files, or hang; `missing` and `shutdown_dates` say what GET /v1/models/{id} answers;
`refuse_finetune[model]` refuses jobs.create for that model with (status, code, message);
`finetuning_forbidden` answers 403 to the job list, and `filters_metadata = False` a 400 to a
metadata filter; `refuse_requests[model]` refuses its completions; `answer` decides what a model
says, `snapshots` which model id answers, `logprobs` turns log-probabilities off. It records
every request, so tests can count created jobs, and it checks the bearer key when `key` is set.
"""

from __future__ import annotations

import email.parser
import itertools
import email.policy
import json
import re
import urllib.parse
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

STATUSES = ["validating_files", "queued", "running", "running", "succeeded"]


@dataclass
class Request:
    method: str
    path: str
    body: dict | None
    authorization: str | None


@dataclass
class Job:
    data: dict
    steps: list[str] = field(default_factory=lambda: list(STATUSES))
    outcome: str = "succeeded"  # succeeded | failed | moderation | hang


def default_answer(model: str, text: str) -> str:
    """Answer with the label word the prompt's tweet contains, else 'neutral' (tests write tweets
    that contain their label, so a fake model can be right or wrong on purpose)."""
    tweet = text.rsplit("Tweet:", 1)[-1]
    for label in ("hate", "offensive"):
        if label in tweet:
            return label
    return "neutral"


class FakeOpenAI:
    """Start with `with FakeOpenAI(key=...) as server:`; `server.base_url` ends in /v1."""

    def __init__(self, key: str | None = None) -> None:
        self.key = key
        self.requests: list[Request] = []
        self.files: dict[str, dict] = {}
        self.jobs: dict[str, Job] = {}
        self.outcomes: dict[str, str] = {}  # base model -> succeeded | failed | moderation | hang
        self.missing: set[str] = set()  # models GET /v1/models/{id} does not know
        self.shutdown_dates: dict[str, str] = {}  # model -> "YYYY-MM-DD"
        self.refuse_finetune: dict[
            str, tuple[int, str, str]
        ] = {}  # model -> (status, code, message)
        self.finetuning_forbidden = False
        self.filters_metadata = True  # False: a job list with a metadata filter is a 400
        self.refuse_requests: dict[str, tuple[int, str, str]] = {}
        self.snapshots: dict[str, str] = {}  # requested model -> the model id that answers
        self.deleted_files: list[str] = []
        self._drops = 0
        self._file_ids = itertools.count(
            1
        )  # a deleted file's id is never given again, as at OpenAI
        self.answer: Callable[[str, str], str] = default_answer
        self.logprobs = True
        self._failures: list[tuple[int, re.Pattern]] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    # --- control ------------------------------------------------------------------------------
    def __enter__(self) -> "FakeOpenAI":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def fail_next(
        self, n: int, status: int, path: str = ".*", method: str = "GET|POST|DELETE"
    ) -> None:
        """Answer the next n requests whose path and method match with HTTP `status`."""
        with self._lock:
            self._failures += [(status, re.compile(path), re.compile(method))] * n

    def drop_after_create(self, n: int = 1) -> None:
        """Create each of the next n jobs, then close the connection without answering."""
        with self._lock:
            self._drops += n

    def count(self, method: str, path: str) -> int:
        """Requests that reached the API (not answered with a scripted failure)."""
        return sum(1 for r in self.requests if r.method == method and r.path == path)

    def finish(self, job_id: str, outcome: str = "succeeded") -> None:
        """Let a hanging job end at its next retrieve."""
        with self._lock:
            job = self.jobs[job_id]
            job.outcome, job.steps = (
                outcome,
                ["running", outcome if outcome != "hang" else "running"],
            )

    # --- the API ------------------------------------------------------------------------------
    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in separate writes: with Nagle's algorithm on, a kept-alive
            # connection waits for the client's delayed ACK between them (tens of ms a request).
            disable_nagle_algorithm = True

            def log_message(self, *args) -> None:  # keep test output quiet
                pass

            def do_GET(self) -> None:
                self._serve("GET")

            def do_POST(self) -> None:
                self._serve("POST")

            def do_DELETE(self) -> None:
                self._serve("DELETE")

            def _serve(self, method: str) -> None:
                length = int(self.headers.get("content-length") or 0)
                raw = self.rfile.read(length) if length else b""
                path, _, query = self.path.partition("?")
                status, payload = server._dispatch(method, path, self.headers, raw, query)
                if status is None:  # the job exists, the answer is lost
                    self.close_connection = True
                    return
                body = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                if status in (429, 500, 502, 503):
                    self.send_header("retry-after-ms", "10")  # keep retries fast in tests
                self.end_headers()
                self.wfile.write(body)

        return Handler

    def _dispatch(self, method: str, path: str, headers, raw: bytes, query: str = ""):
        with self._lock:
            for index, (status, pattern, methods) in enumerate(self._failures):
                if pattern.fullmatch(path) and methods.fullmatch(method):
                    del self._failures[index]
                    return status, _error(f"scripted failure {status}", "server_error")
        authorization = headers.get("authorization")
        if self.key is not None and authorization != f"Bearer {self.key}":
            return 401, _error("Incorrect API key provided", "invalid_api_key")
        body = None
        if raw and headers.get("content-type", "").startswith("application/json"):
            body = json.loads(raw)
        with self._lock:
            self.requests.append(Request(method, path, body, authorization))
        routes = [
            ("GET", r"/v1/models", self._list_models),
            ("GET", r"/v1/models/(.+)", lambda model: self._model(urllib.parse.unquote(model))),
            ("POST", r"/v1/files", lambda: self._upload(headers, raw)),
            ("DELETE", r"/v1/files/([^/]+)", lambda file_id: self._delete_file(file_id)),
            ("POST", r"/v1/fine_tuning/jobs", lambda: self._create_job(body)),
            ("GET", r"/v1/fine_tuning/jobs", lambda: self._list_jobs(query)),
            ("GET", r"/v1/fine_tuning/jobs/([^/]+)", lambda job_id: self._retrieve(job_id)),
            ("GET", r"/v1/fine_tuning/jobs/([^/]+)/events", lambda job_id: self._events(job_id)),
            ("POST", r"/v1/completions", lambda: self._complete(body, chat=False)),
            ("POST", r"/v1/chat/completions", lambda: self._complete(body, chat=True)),
        ]
        for route_method, pattern, handle in routes:
            match = re.fullmatch(pattern, path)
            if match and method == route_method:
                return handle(*match.groups())
        return 404, _error(f"no route {method} {path}", "not_found")

    def _upload(self, headers, raw: bytes):
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            b"content-type: " + headers["content-type"].encode() + b"\r\n\r\n" + raw
        )
        parts = {p.get_param("name", header="content-disposition"): p for p in message.iter_parts()}
        content = parts["file"].get_payload(decode=True)
        lines = [json.loads(line) for line in content.decode().splitlines() if line.strip()]
        with self._lock:
            file_id = f"file-{next(self._file_ids):04d}"
            self.files[file_id] = {
                "lines": lines,
                "purpose": parts["purpose"].get_content().strip(),
            }
        return 200, {
            "id": file_id,
            "object": "file",
            "bytes": len(content),
            "created_at": int(time.time()),
            "filename": parts["file"].get_filename(),
            "purpose": "fine-tune",
            "status": "processed",
        }

    def _models(self) -> list[dict]:
        served = {j.data["model"] for j in self.jobs.values()} | set(self.shutdown_dates)
        served |= {
            j.data["fine_tuned_model"] for j in self.jobs.values() if j.data["fine_tuned_model"]
        }
        return [self._model_data(m) for m in sorted(served - self.missing)]

    def _model_data(self, model: str) -> dict:
        return {
            "id": model,
            "object": "model",
            "created": 1700000000,
            "owned_by": "system",
            "shutdown_date": self.shutdown_dates.get(model),
        }

    def _list_models(self):
        return 200, {"object": "list", "data": self._models()}

    def _model(self, model: str):
        if model in self.missing:
            return 404, _error(f"The model '{model}' does not exist", "model_not_found")
        return 200, self._model_data(model)

    def _delete_file(self, file_id: str):
        with self._lock:
            if self.files.pop(file_id, None) is None:
                return 404, _error(f"No such File object: {file_id}", "not_found")
            self.deleted_files.append(file_id)
        return 200, {"id": file_id, "object": "file", "deleted": True}

    def _create_job(self, body: dict):
        if body["model"] in self.refuse_finetune:
            status, code, message = self.refuse_finetune[body["model"]]
            return status, _error(message, code)
        if body.get("training_file") not in self.files:
            return 400, _error(
                f"training file {body.get('training_file')} not found", "invalid_request_error"
            )
        with self._lock:
            job_id = f"ftjob-{len(self.jobs) + 1:04d}"  # jobs are never deleted
            epochs = (
                body.get("method", {})
                .get("supervised", {})
                .get("hyperparameters", {})
                .get("n_epochs")
            )
            data = {
                "id": job_id,
                "object": "fine_tuning.job",
                "created_at": int(time.time()) + len(self.jobs),
                "model": body["model"],
                "training_file": body["training_file"],
                "validation_file": body.get("validation_file"),
                "status": "validating_files",
                "hyperparameters": {"n_epochs": epochs},
                "error": None,
                "fine_tuned_model": None,
                "finished_at": None,
                "organization_id": "org-test",
                "result_files": [],
                "seed": body.get("seed", 0),
                "trained_tokens": None,
                "metadata": body.get("metadata"),
            }
            self.jobs[job_id] = Job(data, outcome=self.outcomes.get(body["model"], "succeeded"))
            if self._drops:
                self._drops -= 1
                return None, None
        return 200, data

    def _list_jobs(self, query: str = ""):
        if self.finetuning_forbidden:
            return 403, _error(
                "You are not allowed to create fine-tuning jobs", "permission_denied"
            )
        wanted = {
            match.group(1): value
            for key, value in urllib.parse.parse_qsl(query)
            if (match := re.fullmatch(r"metadata\[(.+)\]", key))
        }
        if wanted and not self.filters_metadata:
            return 400, _error(
                "Unrecognized request argument supplied: metadata", "invalid_request_error"
            )
        jobs = sorted(self.jobs.values(), key=lambda j: j.data["created_at"], reverse=True)
        jobs = [
            j
            for j in jobs
            if all((j.data["metadata"] or {}).get(k) == v for k, v in wanted.items())
        ]
        return 200, {"object": "list", "data": [j.data for j in jobs], "has_more": False}

    def _retrieve(self, job_id: str):
        with self._lock:
            job = self.jobs.get(job_id)
            if job is None:
                return 404, _error(f"job {job_id} not found", "not_found")
            if job.data["status"] in ("succeeded", "failed", "cancelled"):
                return 200, job.data
            status = job.steps.pop(0) if job.steps else "running"
            if status == "succeeded" and job.outcome == "failed":
                status = "failed"
            if job.outcome == "moderation":  # screened out while its files are validated
                status = "failed"
                job.data["error"] = {
                    "code": "invalid_training_file",
                    "param": "training_file",
                    "message": "The job failed due to an invalid training file. This training "
                    "file was blocked by our moderation system because it contains too many "
                    "examples that violate OpenAI's usage policies.",
                }
            if job.outcome == "hang" and status in ("succeeded", "failed"):
                status, job.steps = "running", []
            job.data["status"] = status
            if status == "succeeded":
                lines = self.files[job.data["training_file"]]["lines"]
                job.data["trained_tokens"] = sum(len(json.dumps(line)) // 4 for line in lines) * (
                    job.data["hyperparameters"]["n_epochs"] or 1
                )
                job.data["fine_tuned_model"] = (
                    f"ft:{job.data['model']}:org-test:adaptune:{job_id[-4:]}"
                )
                job.data["finished_at"] = int(time.time())
            elif status == "failed" and job.data["error"] is None:
                job.data["error"] = {
                    "code": "invalid_training_file",
                    "message": "The training file has too few examples",
                    "param": None,
                }
                job.data["finished_at"] = int(time.time())
            return 200, job.data

    def _events(self, job_id: str):
        job = self.jobs.get(job_id)
        if job is None:
            return 404, _error(f"job {job_id} not found", "not_found")
        events = [
            {
                "id": f"ftevent-{job_id}-0",
                "object": "fine_tuning.job.event",
                "created_at": job.data["created_at"],
                "level": "info",
                "message": "Created fine-tuning job",
                "type": "message",
            }
        ]
        if job.data["status"] != "validating_files":
            events.append(
                {
                    "id": f"ftevent-{job_id}-1",
                    "object": "fine_tuning.job.event",
                    "created_at": job.data["created_at"] + 1,
                    "level": "info",
                    "message": f"Job is {job.data['status']}",
                    "type": "message",
                }
            )
        return 200, {"object": "list", "data": list(reversed(events)), "has_more": False}

    def _complete(self, body: dict, chat: bool):
        if body["model"] in self.refuse_requests or body["model"] in self.missing:
            status, code, message = self.refuse_requests.get(
                body["model"],
                (404, "model_not_found", f"The model '{body['model']}' does not exist"),
            )
            return status, _error(message, code)
        if chat:
            text = body["messages"][-1]["content"]
        else:
            text = body["prompt"].rsplit("\n\n", 1)[-1]
        answer = self.answer(body["model"], text)
        first = answer.split()[0] if answer.split() else answer
        token = first if chat else " " + first
        # The answer's first token is the most likely; the labels follow, less likely.
        top = {token: -0.05}
        for other in ("hate", "offensive", "neutral"):
            other_token = other if chat else " " + other
            top.setdefault(other_token, -4.0 - len(top))
        top = dict(list(top.items())[:5])
        base = {
            "id": f"cmpl-{len(self.requests)}",
            "created": int(time.time()),
            "model": self.snapshots.get(body["model"], body["model"]),
            "usage": {"prompt_tokens": 10, "completion_tokens": 1, "total_tokens": 11},
        }
        if chat:
            logprobs = None
            if self.logprobs and body.get("logprobs"):
                logprobs = {
                    "content": [
                        {
                            "token": token,
                            "logprob": -0.05,
                            "bytes": None,
                            "top_logprobs": [
                                {"token": t, "logprob": lp, "bytes": None} for t, lp in top.items()
                            ],
                        }
                    ]
                }
            choice = {
                "index": 0,
                "finish_reason": "stop",
                "logprobs": logprobs,
                "message": {"role": "assistant", "content": answer},
            }
            return 200, {**base, "object": "chat.completion", "choices": [choice]}
        logprobs = None
        if self.logprobs and body.get("logprobs"):
            logprobs = {
                "tokens": [token],
                "token_logprobs": [-0.05],
                "top_logprobs": [top],
                "text_offset": [0],
            }
        choice = {"index": 0, "finish_reason": "stop", "logprobs": logprobs, "text": " " + answer}
        return 200, {**base, "object": "text_completion", "choices": [choice]}


def _error(message: str, code: str) -> dict:
    return {"error": {"message": message, "type": code, "param": None, "code": code}}
