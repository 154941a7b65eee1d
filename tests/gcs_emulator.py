"""A local GCS for tests: gcp-storage-emulator, behind a small proxy that adds the generation headers it omits.

tensorstore (under orbax) reads an object's generation from the ``x-goog-generation`` header of a media
download; gcp-storage-emulator sends the generation only in the object's JSON metadata, so every read fails with
"Malformed StorageGeneration". The proxy forwards every request unchanged and, on media downloads, copies the
generation from the metadata into the headers. Everything else is the emulator's own behaviour.
"""

import contextlib
import http.server
import json
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request


def free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def _wait_for(port: int, seconds: float = 30) -> None:
  deadline = time.time() + seconds
  while time.time() < deadline:
    try:
      socket.create_connection(("127.0.0.1", port), timeout=1).close()
      return
    except OSError:
      time.sleep(0.1)
  raise TimeoutError(f"nothing listens on 127.0.0.1:{port}")


def _handler(upstream: str):
  class Proxy(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
      del args

    def _forward(self):
      body = self.rfile.read(int(self.headers.get("Content-Length", 0) or 0))
      headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")}
      request = urllib.request.Request(upstream + self.path, data=body or None, headers=headers, method=self.command)
      try:
        response = urllib.request.urlopen(request, timeout=60)
        status, reply_headers, payload = response.status, dict(response.headers), response.read()
      except urllib.error.HTTPError as error:
        status, reply_headers, payload = error.code, dict(error.headers), error.read()
      if self.command in ("GET", "HEAD") and "alt=media" in self.path and status in (200, 206):
        reply_headers.update(self._generation_headers())
      self.send_response(status)
      for key, value in reply_headers.items():
        if key.lower() not in ("content-length", "transfer-encoding", "connection", "server", "date"):
          self.send_header(key, value)
      self.send_header("Content-Length", str(len(payload)))
      self.end_headers()
      if self.command != "HEAD":
        self.wfile.write(payload)

    def _generation_headers(self) -> dict:
      url = urllib.parse.urlsplit(self.path)
      path = url.path.replace("/download/storage/v1/", "/storage/v1/", 1)
      try:
        metadata = json.loads(urllib.request.urlopen(upstream + path, timeout=60).read())
      except (urllib.error.URLError, ValueError):
        return {}
      return {
        "x-goog-generation": str(metadata["generation"]),
        "x-goog-metageneration": str(metadata.get("metageneration", 1)),
      }

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = _forward

  return Proxy


class _Server(http.server.ThreadingHTTPServer):
  daemon_threads = True

  def handle_error(self, request, client_address):
    if not isinstance(sys.exc_info()[1], ConnectionError):  # A client hanging up on a kept-alive connection.
      super().handle_error(request, client_address)


@contextlib.contextmanager
def serve(bucket: str):
  """Yields the URL of a local GCS with ``bucket`` in it (for STORAGE_EMULATOR_HOST and tensorstore)."""
  emulator_port = free_port()
  emulator = subprocess.Popen(
    [
      sys.executable,
      "-m",
      "gcp_storage_emulator",
      "start",
      "--host=127.0.0.1",
      f"--port={emulator_port}",
      "--in-memory",
      f"--default-bucket={bucket}",
      "--quiet",
    ],
    stdout=subprocess.DEVNULL,
    stderr=subprocess.DEVNULL,
  )
  server = _Server(("127.0.0.1", 0), _handler(f"http://127.0.0.1:{emulator_port}"))
  thread = threading.Thread(target=server.serve_forever, daemon=True)
  try:
    _wait_for(emulator_port)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
  finally:
    server.shutdown()
    emulator.kill()
    emulator.wait()
