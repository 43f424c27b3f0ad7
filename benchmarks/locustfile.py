"""Locust users for the Pastiche stack: gateway REST, Triton gRPC and Triton HTTP.

Run by ``pastiche bench`` (see ``benchmarks/README.md``), or by hand, e.g.::

    locust -f benchmarks/locustfile.py --headless -u 4 -t 30s --host 127.0.0.1:8001 \
        --model watercolor TritonGrpcUser

Options added to Locust's own command line (forwarded to ``--processes`` workers):
``--model`` (Triton users) / ``--styles`` (gateway), ``--image-sides``, ``--rate`` (open loop:
total arrivals per second, spread over the users), ``--cache-bust``, ``--api-key``, ``--pacing-file``.
"""

from __future__ import annotations

import itertools
import json
import random
import time
import uuid
from pathlib import Path

import grpc.experimental.gevent as grpc_gevent

# grpcio blocks the whole process unless it cooperates with gevent, which Locust runs on.
grpc_gevent.init_gevent()

import numpy as np  # noqa: E402
import tritonclient.grpc as grpcclient  # noqa: E402
import tritonclient.http as httpclient  # noqa: E402
from locust import FastHttpUser, User, events, task  # noqa: E402
from locust.runners import MasterRunner, WorkerRunner  # noqa: E402
from PIL import Image  # noqa: E402
from tritonclient.utils import InferenceServerException  # noqa: E402

from benchmarks.pacing import OpenLoopPacer, PacingCounts  # noqa: E402
from benchmarks.photos import Photo, load_photos, perturb  # noqa: E402
from pastiche.contract import INPUT_NAME, OUTPUT_NAME  # noqa: E402

PROCESS_PACING = PacingCounts()
"""Pacing counts of every user in this process (a worker reports them to the master)."""
WORKER_PACING: dict[str, dict[str, int]] = {}
TEST_START: list[float] = []


@events.init_command_line_parser.add_listener
def add_arguments(parser) -> None:  # noqa: ANN001 - Locust's configargparse parser
    parser.add_argument("--model", default="watercolor", include_in_web_ui=False, help="Triton model (Triton users)")
    parser.add_argument("--styles", default="watercolor", include_in_web_ui=False, help="comma-separated styles (gateway user)")
    parser.add_argument("--image-sides", default="256", include_in_web_ui=False, help="comma-separated square image sides")
    parser.add_argument("--rate", type=float, default=0.0, include_in_web_ui=False, help="open loop: total requests/s (0: closed loop)")
    parser.add_argument("--cache-bust", action="store_true", default=False, include_in_web_ui=False, help="perturb one pixel per request")
    parser.add_argument("--api-key", default="", include_in_web_ui=False, help="gateway API key (Authorization: Bearer)")
    parser.add_argument("--pacing-file", default="", include_in_web_ui=False, help="write the test start time and open-loop pacing counts here")


@events.report_to_master.add_listener
def send_pacing(client_id: str, data: dict) -> None:
    data["pastiche_pacing"] = PROCESS_PACING.as_dict()


@events.worker_report.add_listener
def receive_pacing(client_id: str, data: dict) -> None:
    if "pastiche_pacing" in data:
        WORKER_PACING[client_id] = data["pastiche_pacing"]


@events.test_start.add_listener
def remember_start(environment, **_: object) -> None:  # noqa: ANN001
    if not isinstance(environment.runner, WorkerRunner) and not TEST_START:
        TEST_START.append(time.time())


@events.quitting.add_listener
def write_pacing(environment, **_: object) -> None:  # noqa: ANN001
    path = environment.parsed_options.pacing_file if environment.parsed_options else ""
    if not path or isinstance(environment.runner, WorkerRunner):
        return
    total = PacingCounts()
    if isinstance(environment.runner, MasterRunner):
        for counts in WORKER_PACING.values():
            total.add(PacingCounts(**counts))
    else:
        total = PROCESS_PACING
    Path(path).write_text(json.dumps({**total.as_dict(), "test_start": TEST_START[0] if TEST_START else None}))


def multipart_body(fields: dict[str, str], file_field: str, filename: str, content: bytes, content_type: str) -> tuple[bytes, str]:
    """A ``multipart/form-data`` body and its Content-Type header."""
    boundary = uuid.uuid4().hex
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in fields.items()
    ]
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="{file_field}"; filename="{filename}"\r\n'
        f"Content-Type: {content_type}\r\n\r\n".encode() + content + b"\r\n"
    )
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


class PasticheUser:
    """Shared behaviour: photo rotation, closed/open loop pacing, options."""

    def setup_pastiche(self) -> None:
        options = self.environment.parsed_options
        sides = tuple(int(s) for s in str(options.image_sides).split(",") if s.strip())
        self.rng = np.random.default_rng(random.randrange(2**32))
        photos = list(load_photos(sides))
        self.rng.shuffle(photos)
        self.photos = itertools.cycle(photos)
        self.cache_bust = bool(options.cache_bust)
        self.pacer = None
        if options.rate > 0:
            # Every user (in every worker process) takes an equal share of the total rate.
            users = max(1, int(options.num_users or 1))
            interval = users / options.rate
            self.pacer = OpenLoopPacer(interval, offset_s=random.uniform(0, interval), counts=PROCESS_PACING)
            # The first send is a scheduled slot too (Locust only waits between tasks).
            time.sleep(self.pacer.wait_seconds())

    def pastiche_wait(self) -> float:
        return self.pacer.wait_seconds() if self.pacer is not None else 0.0

    def next_photo(self) -> Photo:
        return next(self.photos)

    def fire(self, request_type: str, name: str, start: float, length: int, exception: Exception | None) -> None:
        self.environment.events.request.fire(
            request_type=request_type,
            name=name,
            response_time=(time.perf_counter() - start) * 1000,
            response_length=length,
            exception=exception,
            context={},
        )


class GatewayUser(PasticheUser, FastHttpUser):
    """``POST /v1/stylize`` with a JPEG upload (PNG when cache-busting, so the change survives)."""

    def wait_time(self) -> float:
        return self.pastiche_wait()

    def on_start(self) -> None:
        self.setup_pastiche()
        options = self.environment.parsed_options
        self.styles = [s.strip() for s in str(options.styles).split(",") if s.strip()]
        self.headers = {"Authorization": f"Bearer {options.api_key}"} if options.api_key else {}

    def upload(self, photo: Photo) -> tuple[str, bytes, str]:
        if not self.cache_bust:
            return "photo.jpg", photo.jpeg, "image/jpeg"
        import io

        buffer = io.BytesIO()
        Image.fromarray(perturb(photo.pixels, self.rng)).save(buffer, format="PNG", compress_level=1)
        return "photo.png", buffer.getvalue(), "image/png"

    @task
    def stylize(self) -> None:
        photo = self.next_photo()
        style = self.styles[int(self.rng.integers(len(self.styles)))]
        filename, content, content_type = self.upload(photo)
        body, content_type_header = multipart_body({"style": style}, "image", filename, content, content_type)
        side = photo.pixels.shape[0]
        self.client.post(
            "/v1/stylize",
            data=body,
            headers={**self.headers, "Content-Type": content_type_header},
            name=f"stylize {style} {side}px",
        )


class TritonUser(PasticheUser, User):
    """KServe v2 inference on Triton; subclasses choose the protocol. ``--host`` is ``host:port``."""

    abstract = True
    protocol = ""

    def wait_time(self) -> float:
        return self.pastiche_wait()

    def on_start(self) -> None:
        self.setup_pastiche()
        self.model = self.environment.parsed_options.model
        self.client = self.connect(str(self.host).split("://", 1)[-1])

    def on_stop(self) -> None:
        self.client.close()

    def connect(self, url: str):  # noqa: ANN201 - a tritonclient client of the subclass's protocol
        raise NotImplementedError

    def send(self, batch: np.ndarray) -> int:
        """Infer ``batch`` and return the output's size in bytes."""
        raise NotImplementedError

    @task
    def infer(self) -> None:
        photo = self.next_photo()
        pixels = perturb(photo.pixels, self.rng) if self.cache_bust else photo.pixels
        start = time.perf_counter()
        length, error = 0, None
        try:
            length = self.send(pixels[np.newaxis])
        except InferenceServerException as exc:
            error = exc
        self.fire(self.protocol, f"{self.model} {pixels.shape[0]}px", start, length, error)


class TritonGrpcUser(TritonUser):
    """Triton over gRPC with tritonclient."""

    protocol = "grpc"

    def connect(self, url: str) -> grpcclient.InferenceServerClient:
        return grpcclient.InferenceServerClient(url=url)

    def send(self, batch: np.ndarray) -> int:
        tensor = grpcclient.InferInput(INPUT_NAME, list(batch.shape), "UINT8")
        tensor.set_data_from_numpy(batch)
        result = self.client.infer(self.model, [tensor], outputs=[grpcclient.InferRequestedOutput(OUTPUT_NAME)])
        return result.as_numpy(OUTPUT_NAME).nbytes


class TritonHttpUser(TritonUser):
    """Triton over HTTP/REST with binary tensor data; ``--host`` is ``http://host:port``."""

    protocol = "http"

    def connect(self, url: str) -> httpclient.InferenceServerClient:
        return httpclient.InferenceServerClient(url=url, connection_timeout=120, network_timeout=120)

    def send(self, batch: np.ndarray) -> int:
        tensor = httpclient.InferInput(INPUT_NAME, list(batch.shape), "UINT8")
        tensor.set_data_from_numpy(batch, binary_data=True)
        result = self.client.infer(
            self.model, [tensor], outputs=[httpclient.InferRequestedOutput(OUTPUT_NAME, binary_data=True)]
        )
        return result.as_numpy(OUTPUT_NAME).nbytes
