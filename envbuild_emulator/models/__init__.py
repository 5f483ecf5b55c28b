"""AWS behaviour moto 5.2.5 lacks (Cloud Map operations, Route 53 zones and records, ECS tasks).

Public API::

    from envbuild_emulator.clock import Clock
    from envbuild_emulator.models import World, Latencies

    world = World(Clock(), Latencies(namespace_operation_seconds=60))
    world.install()              # or: with world: ...
    world.faults.fail_namespace_operation("example.local")
    world.faults.tasks_fail_to_start("web-service")
    world.tick()                 # normally automatic before each servicediscovery/ecs/route53 call
    world.uninstall()
"""

from envbuild_emulator.moto_internals import (
    INTERNALS,
    PATCH_POINTS,
    MotoInternalsChanged,
    Ref,
    lookup,
)

from .faults import Faults, OperationFailure
from .world import Latencies, World

__all__ = [
    "INTERNALS",
    "PATCH_POINTS",
    "Faults",
    "Latencies",
    "MotoInternalsChanged",
    "OperationFailure",
    "Ref",
    "World",
    "lookup",
]
