"""`qa serve --ray ADDRESS --replicas N`: the HTTP service as a Ray Serve deployment of N replicas of the app.

Each replica builds the very app `qa serve` runs (``qa.api.app.create_app``) from the same settings, opens the
index itself and reloads it when it is rebuilt; Ray Serve's proxy spreads requests over the replicas. Every
replica must see the index directory at the same path (a copy on each node, or a shared read-only mount): an
index is immutable once swapped in, so copies answer identically (tests/test_distributed_replicas.py).
"""

from __future__ import annotations

from collections.abc import Callable

from qa.config import Settings
from qa.distributed.ray_indexing import ray_session, require_ray

# The name of the Serve application and of its one deployment.
APP_NAME = "qa"


def app_builder(environment: dict[str, str]) -> Callable[[], object]:
    """A function that builds the `qa serve` app from settings given as ``QA_*`` variables, run in each replica."""

    def build():
        from qa.api.app import create_app

        return create_app(Settings.from_env(environment))

    return build


def deployment(settings: Settings, replicas: int, *, cpus_per_replica: float = 1.0):
    """The Ray Serve application: ``replicas`` copies of the app over ``settings.index_dir``.

    Raises:
        ClusterError: Ray (with Serve) is not installed.
    """
    require_ray()
    from ray import serve

    ingress = serve.ingress(app_builder(settings.environment()))()
    # Options first, then the class: the form Ray's annotations describe (see qa.distributed.shard_serving).
    return serve.deployment(name=APP_NAME, num_replicas=replicas, ray_actor_options={"num_cpus": cpus_per_replica})(
        ingress
    ).bind()


def serve_on_ray(settings: Settings, *, address: str, replicas: int, blocking: bool = True) -> None:
    """Run ``replicas`` replicas of the service on the Ray cluster at ``address``, Serve's proxy listening on
    ``settings.host:settings.port``, until interrupted (``blocking``).

    Raises:
        ClusterError: Ray is missing or the cluster cannot be reached.
    """
    with ray_session(address):
        from ray import serve

        serve.start(http_options={"host": settings.host, "port": settings.port})
        serve.run(deployment(settings, replicas), name=APP_NAME, route_prefix="/", blocking=blocking)
