"""A custom container's model server of the tests' own: the standard library's ``http.server``,
told its port and routes by Vertex's variables (``AIP_*``), and its container spec."""

SERVER_PY = """
import json, os, sys, time, uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

port = int(sys.argv[sys.argv.index("--port") + 1])
time.sleep(float(os.environ.get("SLEEP_BEFORE_BIND", "0")))
me = uuid.uuid4().hex  # a pid is 2 in every sandbox
state = {"healthy": os.environ.get("NEVER_HEALTHY") is None, "alive": True}


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == os.environ["AIP_HEALTH_ROUTE"]:
            self.answer(200 if state["healthy"] else 500, {"healthy": state["healthy"]})
        elif self.path == "/alive":
            self.answer(200 if state["alive"] else 500, {"alive": state["alive"]})
        elif self.path.startswith("/echo"):
            self.answer(200, {"method": "GET", "path": self.path})
        else:
            self.answer(404, {"error": "no route " + self.path})

    def do_POST(self):
        raw = self.rfile.read(int(self.headers["content-length"]))
        if self.path.startswith("/echo"):
            self.answer(200, {"method": "POST", "path": self.path, "body": raw.decode()})
            return
        body = json.loads(raw)
        if self.path != os.environ["AIP_PREDICT_ROUTE"]:
            self.answer(404, {"error": "no route " + self.path})
            return
        for flip in body.get("parameters", {}).get("flip", []):
            state[flip] = False
        sums = [sum(row) for row in body["instances"]]
        version = os.environ.get("VERSION")
        payload = {"predictions": sums, "deployedModelId": me, "version": version, "port": port}
        self.answer(200, payload)

    def answer(self, status, payload):
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


ThreadingHTTPServer(("127.0.0.1", port), Handler).serve_forever()
"""
SPEC = {
    "command": ["python", "server.py"],
    "args": ["--port", "$(AIP_HTTP_PORT)"],
    "predict_route": "/predict",
    "health_route": "/health",
}
