#!/usr/bin/env python3
"""A FAKE inference server for tests (standard library only): it imitates the HTTP surface of vLLM's
development endpoints and SGLang's weight updates that BAMBO's ManagedServerBackend drives, without any
model. A "model directory" here holds `weights.txt`; the fake "serves" its text, and the golden request's
log-probabilities are derived from it, so a swap that loaded the wrong weights is visible.

FAKE_STALE_RELOAD=1 imitates the known bug where a reload keeps the old weights.
Arguments: --model DIR (vLLM style) or --model-path DIR (SGLang style), --port P; others are ignored.
"""
import json
import os
import sys
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def argument(name):
    return sys.argv[sys.argv.index(name) + 1] if name in sys.argv else None


MODEL = argument("--model") or argument("--model-path")
PORT = int(argument("--port"))
STALE = os.environ.get("FAKE_STALE_RELOAD") == "1"


def read_weights(path):
    with open(os.path.join(os.path.realpath(path), "weights.txt")) as f:
        return f.read().strip()


state = {"weights": read_weights(MODEL)}
print(f"fake server: serving {os.path.realpath(MODEL)} ({state['weights']})", flush=True)


class Handler(BaseHTTPRequestHandler):
    def reply(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        self.reply(200 if self.path == "/health" else 404, {})

    def do_POST(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        path = self.path.split("?")[0]
        if path in ("/sleep", "/wake_up", "/reset_prefix_cache", "/flush_cache"):
            self.reply(200, {})
        elif path == "/collective_rpc" and body.get("method") == "reload_weights":
            if not STALE:
                state["weights"] = read_weights(MODEL)
            self.reply(200, {"results": [None]})
        elif path == "/update_weights_from_disk":
            if not STALE:
                state["weights"] = read_weights(body["model_path"])
            self.reply(200, {"success": True, "message": "updated"})
        elif path == "/v1/chat/completions":
            weights = state["weights"]
            logprob = -(zlib.crc32(weights.encode()) % 1000) / 100.0
            self.reply(200, {
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": f"weights {weights}"},
                             "logprobs": {"content": [{"token": weights, "logprob": logprob}]}}],
                "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
            })
        else:
            self.reply(404, {"error": {"message": f"no route {path}"}})

    def log_message(self, *args):
        print("fake server: " + (args[0] % args[1:]), flush=True)


ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
