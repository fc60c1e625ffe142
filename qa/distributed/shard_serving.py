"""`qa serve --ray ADDRESS` over a sharded index: one Ray Serve deployment per shard, and a router in front.

Each shard deployment (``ShardReplica``) opens its shard's index on its own node and answers the router's calls
in the shard's own ids (qa.distributed.shards.ShardServer); it needs no model. The router deployment is the ordinary
HTTP app (``qa.api.app.create_app``: /search, /documents, /health, the web page, MCP) over
``qa.distributed.shard_router.ShardedService``,
reaching the shards through their deployment handles; it holds the model and embeds each question once. One
question costs a fixed number of calls per shard (about eight in hybrid mode), all shards asked at once.

A shard that fails, or does not answer within the timeout, fails the question with a 503 naming it
(``ShardUnavailable``): the router never answers from the shards that happen to be up.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from qa.config import Settings
from qa.distributed.ray_indexing import ray_session, require_ray
from qa.distributed.shard_router import Answer, unpacked
from qa.distributed.shards import ShardServer, read_layout
from qa.errors import QAError, ShardUnavailable

# The name of the Serve application and of its router deployment (the shards' are their directory names).
APP_NAME = "qa"
ROUTER_NAME = "router"
# A shard replica's share of a CPU: it looks postings, vectors and rows up for the router, which embeds the
# question and runs the rest of the search (one CPU each replica), so two shards and a router fit on two CPUs.
SHARD_CPUS = 0.5
# How long the router waits for one call to a shard before the question fails: a search's calls take
# milliseconds, so this only bounds the wait for a shard that died or hangs.
SHARD_TIMEOUT = 30.0


class ShardReplica:
    """A replica of one shard's deployment: the shard's index, opened from its directory on this node."""

    def __init__(self, index_dir: str, name: str) -> None:
        """Raises: IndexNotFound, IndexIncompatible, IndexCorrupt: the index cannot be opened (Serve retries)."""
        self.server = ShardServer(Path(index_dir), name)
        self.server.refresh()  # a replica that cannot open its shard fails now, not on its first question

    def describe(self) -> dict:
        """``ShardServer.describe``."""
        return self.server.describe()

    def generation(self) -> str:
        """``ShardServer.generation``."""
        return self.server.generation()

    def call(self, generation: str, method: str, args: tuple) -> tuple:
        """``ShardServer.call``."""
        return self.server.call(generation, method, args)


class _RayPending:
    """A call under way to a shard deployment."""

    def __init__(self, shard: "RayShard", response) -> None:
        self.shard, self.response = shard, response

    def result(self) -> Answer:
        return unpacked(self.shard.name, self.shard.wait(self.response))


class RayShard:
    """A shard deployment reached through its Ray Serve handle (qa.distributed.shard_router.ShardClient)."""

    def __init__(self, handle, name: str, timeout: float = SHARD_TIMEOUT) -> None:
        self.handle, self.name, self.timeout = handle, name, timeout

    def describe(self) -> dict:
        """The shard's ``describe``."""
        return self.wait(self.handle.describe.remote())

    def generation(self) -> str:
        """The shard's current build."""
        return self.wait(self.handle.generation.remote())

    def submit(self, generation: str, method: str, args: tuple) -> _RayPending:
        """Start a call; its result is read with ``result()``."""
        return _RayPending(self, self.handle.call.remote(generation, method, args))

    def wait(self, response) -> Answer:
        """A response's value.

        Raises:
            ShardUnavailable: the shard's replica died, failed or did not answer in time.
        """
        try:
            if _in_event_loop():
                # The app is built (and the shards first described) on the replica's event loop, where Serve
                # refuses a blocking wait; waiting on another thread is allowed (Serve's own loop runs apart).
                with ThreadPoolExecutor(1) as waiter:
                    return waiter.submit(response.result, timeout_s=self.timeout).result()
            return response.result(timeout_s=self.timeout)
        except QAError as exc:  # raised in the replica: an index it cannot open
            raise ShardUnavailable(f"shard {self.name} failed: {exc.message}") from exc
        except TimeoutError as exc:
            raise ShardUnavailable(
                f"shard {self.name} did not answer within {self.timeout:g} s; no answer is given rather than one "
                "without its documents"
            ) from exc
        except Exception as exc:  # Ray's errors: the replica died, or the deployment is gone
            text = str(exc).strip().splitlines()
            raise ShardUnavailable(
                f"shard {self.name} is not answering ({type(exc).__name__}: {text[0] if text else ''}); no answer "
                "is given rather than one without its documents"
            ) from exc


def _in_event_loop() -> bool:
    """Whether this thread is running an asyncio event loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def router_builder(
    environment: dict[str, str], names: list[str], app_name: str, timeout: float
) -> Callable[[], object]:
    """A function that builds the router's app in its replica: the `qa serve` app over the shard deployments."""

    def build():
        from ray import serve

        from qa.api.app import create_app

        clients = [RayShard(serve.get_deployment_handle(name, app_name=app_name), name, timeout) for name in names]
        return create_app(Settings.from_env(environment), shards=clients)

    return build


def sharded_deployment(
    settings: Settings,
    *,
    replicas: int = 1,
    router_cpus: float = 1.0,
    shard_cpus: float = SHARD_CPUS,
    timeout: float = SHARD_TIMEOUT,
    app_name: str = APP_NAME,
):
    """The Ray Serve application for the sharded index at ``settings.index_dir``: a deployment of ``replicas``
    replicas per shard (``shard_cpus`` each), and ``replicas`` routers (``router_cpus`` each).

    Raises:
        ClusterError: Ray (with Serve) is not installed.
        IndexNotFound, IndexCorrupt: no readable ``shards.json`` there.
    """
    require_ray()
    from ray import serve

    layout = read_layout(Path(settings.index_dir).absolute())
    shards = [
        # Options first, then the class: the form Ray's annotations describe (passing the class with the options
        # returns the same Deployment, but is annotated as returning the decorator).
        serve.deployment(name=name, num_replicas=replicas, ray_actor_options={"num_cpus": shard_cpus})(
            ShardReplica
        ).bind(str(path), name)
        for name, path in zip(layout.names, layout.dirs)
    ]
    environment = {**settings.environment(), "QA_INDEX_DIR": str(layout.root)}
    ingress = serve.ingress(router_builder(environment, list(layout.names), app_name, timeout))()
    router = serve.deployment(name=ROUTER_NAME, num_replicas=replicas, ray_actor_options={"num_cpus": router_cpus})(
        ingress
    )
    # The shards are bound as arguments so Serve deploys them with the router; it reaches them by name.
    return router.bind(*shards)


def serve_sharded_on_ray(settings: Settings, *, address: str, replicas: int, blocking: bool = True) -> None:
    """Serve the sharded index at ``settings.index_dir`` on the Ray cluster at ``address``, Serve's proxy
    listening on ``settings.host:settings.port``, until interrupted (``blocking``).

    Raises:
        ClusterError: Ray is missing or the cluster cannot be reached.
    """
    with ray_session(address):
        from ray import serve

        serve.start(http_options={"host": settings.host, "port": settings.port})
        serve.run(sharded_deployment(settings, replicas=replicas), name=APP_NAME, route_prefix="/", blocking=blocking)
