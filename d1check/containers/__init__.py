"""The real D1 engine (workerd, driven by the miniflare that wrangler bundles) in a container.

`D1EngineContainer` serves the D1 REST API subset d1check uses on 127.0.0.1; every statement
runs on a D1 binding of the pinned workerd. Time Travel (bookmark, restore) keeps real
snapshots in the server's memory, and export follows D1's polling protocol (see
docs/engine-container.md). `d1_engine` is a session-scoped pytest fixture over it, and
`run_engine_forever` backs `d1check engine`.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

import httpx
import pytest

from d1check.errors import D1CheckError
from d1check.filelock import exclusive

DEFAULT_WRANGLER_VERSION = "4.164.0"
IMAGE_NAME = "d1check-engine"
LABEL = "d1check.engine"
PACKAGE_DIR = Path(__file__).resolve().parent
IMAGE_FILES = ("Dockerfile", "versions.mjs", "split.mjs", "worker.mjs", "server.mjs")
START_TIMEOUT = 60.0

try:
    from testcontainers.core.container import DockerContainer
except ImportError:  # pragma: no cover - the optional extra is missing
    DockerContainer = object  # type: ignore[assignment,misc]


class EngineUnavailable(D1CheckError):
    """No Docker engine is reachable, or the engine image cannot be built or started."""


@dataclass(frozen=True)
class EngineVersions:
    """What the container runs, as recorded at image build from the installed packages."""

    wrangler: str
    miniflare: str
    workerd: str
    sqlite: str
    sqlite_source_id: str | None


def image_tag(wrangler_version: str = DEFAULT_WRANGLER_VERSION) -> str:
    """The image tag: a hash of the shipped Dockerfile and server files and the wrangler version."""
    digest = hashlib.sha256(wrangler_version.encode())
    for name in IMAGE_FILES:
        digest.update(name.encode() + b"\0" + (PACKAGE_DIR / name).read_bytes())
    return f"{IMAGE_NAME}:{wrangler_version}-{digest.hexdigest()[:12]}"


def docker_client() -> Any:
    """A connected docker SDK client, or EngineUnavailable saying why there is none."""
    try:
        from testcontainers.core.docker_client import DockerClient

        client = DockerClient().client
        client.ping()
    except Exception as error:
        raise EngineUnavailable(
            f"no Docker engine is reachable ({type(error).__name__}: {error}); "
            "start dockerd or set DOCKER_HOST to run the real D1 engine in a container"
        ) from error
    return client


def ensure_image(wrangler_version: str = DEFAULT_WRANGLER_VERSION) -> str:
    """Builds the engine image once (host network) and returns its tag; later calls reuse it."""
    tag = image_tag(wrangler_version)
    client = docker_client()
    lock_path = Path(tempfile.gettempdir()) / f"{tag.replace(':', '-')}.lock"
    with exclusive(lock_path):
        if not client.images.list(name=tag):
            _build(client, tag, wrangler_version)
    return tag


def _build(client: Any, tag: str, wrangler_version: str) -> None:
    try:
        client.images.build(
            path=str(PACKAGE_DIR),
            tag=tag,
            network_mode="host",
            buildargs={"WRANGLER_VERSION": wrangler_version},
            rm=True,
            forcerm=True,
        )
    except Exception as error:
        raise EngineUnavailable(
            f"building {tag} from {PACKAGE_DIR / 'Dockerfile'} failed: {error}; "
            "the build needs the npm registry to install wrangler"
        ) from error


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class _Environment(dict[str, str]):
    """The container's own environment (testcontainers keeps it in `env`); called, it answers
    the client environment, so that `container.env()` reads as documented."""

    def __init__(self, client_env: Callable[[], dict[str, str]]) -> None:
        super().__init__()
        self._client_env = client_env

    def __call__(self) -> dict[str, str]:
        return self._client_env()


class D1EngineContainer(DockerContainer):
    """The D1 REST API on the real engine, in a container on the host network (127.0.0.1)."""

    def __init__(
        self,
        wrangler_version: str = DEFAULT_WRANGLER_VERSION,
        token: str | None = None,
        account_id: str | None = None,
        port: int | None = None,
    ) -> None:
        self.wrangler_version = wrangler_version
        self.token = token or secrets.token_urlsafe(24)
        self.account_id = account_id or secrets.token_hex(16)
        self.port = port or free_port()
        self.container_name = f"{IMAGE_NAME}-{self.port}-{secrets.token_hex(4)}"
        super().__init__(image_tag(wrangler_version), name=self.container_name)
        self.env: _Environment = _Environment(self.client_env)
        self.with_kwargs(network_mode="host", labels={LABEL: "1"})
        self.with_env("D1_ENGINE_HOST", "127.0.0.1")
        self.with_env("D1_ENGINE_PORT", str(self.port))
        self.with_env("D1_ENGINE_ACCOUNT_ID", self.account_id)
        self.with_env("D1_ENGINE_TOKEN", self.token)

    def __repr__(self) -> str:
        return f"D1EngineContainer(api_base={self.api_base!r}, account_id={self.account_id!r})"

    @property
    def api_base(self) -> str:
        """The base URL that replaces `https://api.cloudflare.com/client/v4`."""
        return f"http://127.0.0.1:{self.port}/client/v4"

    def client_env(self) -> dict[str, str]:
        """The environment that points d1check at this engine; `env()` answers the same."""
        return {
            "D1CHECK_API_BASE": self.api_base,
            "CLOUDFLARE_ACCOUNT_ID": self.account_id,
            "CLOUDFLARE_API_TOKEN": self.token,
        }

    def start(self) -> D1EngineContainer:
        """Builds the image if needed, starts the container and waits until the API answers."""
        ensure_image(self.wrangler_version)
        super().start()
        self._wait_until_ready()
        return self

    def remove(self) -> None:
        """Removes the container, also one whose start was interrupted before it was tracked."""
        with contextlib.suppress(Exception):
            self.stop()
        with contextlib.suppress(Exception):
            docker_client().containers.get(self.container_name).remove(force=True)

    def versions(self) -> EngineVersions:
        """The wrangler, miniflare, workerd and SQLite versions the container runs."""
        data = httpx.get(f"http://127.0.0.1:{self.port}/_engine/versions", timeout=10).json()
        return EngineVersions(
            wrangler=data["wrangler"],
            miniflare=data["miniflare"],
            workerd=data["workerd"],
            sqlite=data["sqlite"],
            sqlite_source_id=data.get("sqlite_source_id"),
        )

    def _wait_until_ready(self) -> None:
        url = f"{self.api_base}/accounts/{self.account_id}/d1/database"
        headers = {"Authorization": f"Bearer {self.token}"}
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(url, headers=headers, timeout=2).status_code == 200:
                    return
            self._raise_if_exited()
            time.sleep(0.05)
        self._fail(f"did not answer on {self.api_base} within {START_TIMEOUT:.0f} s")

    def _raise_if_exited(self) -> None:
        container = self.get_wrapped_container()
        container.reload()
        if container.status in ("exited", "dead"):
            self._fail(f"exited ({container.attrs['State'].get('ExitCode')})")

    def _fail(self, what: str) -> None:
        logs = self.get_wrapped_container().logs().decode(errors="replace").strip()
        self.remove()
        raise EngineUnavailable(f"the D1 engine container {what}; its output:\n{logs}")


def engine_containers() -> list[str]:
    """Ids of the engine containers that exist right now (running or not)."""
    client = docker_client()
    return [c.id for c in client.containers.list(all=True, filters={"label": LABEL})]


@contextlib.contextmanager
def running_engine(wrangler_version: str = DEFAULT_WRANGLER_VERSION) -> Iterator[D1EngineContainer]:
    """A started engine container, removed when the block ends."""
    container = D1EngineContainer(wrangler_version)
    try:
        container.start()
        yield container
    finally:
        container.remove()


@pytest.fixture(scope="session")
def d1_engine() -> Iterator[D1EngineContainer]:
    """The real D1 engine behind the REST API, one per test session (per xdist worker)."""
    yield from engine_for_session()


def engine_for_session() -> Iterator[D1EngineContainer]:
    """A running engine for the `d1_engine` fixture (skips the test when Docker is missing)."""
    try:
        docker_client()
    except EngineUnavailable as error:
        if os.environ.get("D1CHECK_REQUIRE_ENGINES"):
            pytest.fail(f"D1CHECK_REQUIRE_ENGINES is set, but {error}")
        pytest.skip(str(error))
    with running_engine() as container:
        yield container


def export_lines(container: D1EngineContainer) -> list[str]:
    """The shell lines that point d1check at the container."""
    return [f"export {name}={value}" for name, value in container.client_env().items()]


class _Stop(Exception):
    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    raise _Stop(signum)


def run_engine_forever(
    wrangler_version: str = DEFAULT_WRANGLER_VERSION, out: TextIO = sys.stdout
) -> None:
    """Starts an engine, prints its `export` lines, and removes it on SIGINT or SIGTERM."""
    signal.signal(signal.SIGINT, _raise_stop)
    signal.signal(signal.SIGTERM, _raise_stop)
    container = D1EngineContainer(wrangler_version)
    try:
        container.start()
        for line in export_lines(container):
            print(line, file=out, flush=True)
        versions = container.versions()
        print(
            f"# D1 engine: workerd {versions.workerd} (SQLite {versions.sqlite}), "
            f"wrangler {versions.wrangler}; Ctrl-C or SIGTERM removes it",
            file=out,
            flush=True,
        )
        while True:
            signal.pause()
    except _Stop as stop:
        print(f"# D1 engine removed ({stop})", file=out, flush=True)
    finally:
        container.remove()
