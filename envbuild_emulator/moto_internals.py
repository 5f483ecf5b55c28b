"""The one door to moto's internals: every patched or relied-upon attribute is looked up here.

moto's internals are not a public API.  If a release moves one of them, ``lookup`` raises
``MotoInternalsChanged`` naming the attribute, instead of the emulator silently modelling nothing.
``PATCH_POINTS`` lists every attribute ``World.install`` replaces and ``INTERNALS`` every other
internal the models read or call; the tests check that all of them exist.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "ADDED_POINTS",
    "INTERNALS",
    "INTERPRETER_PATCH_POINTS",
    "PATCH_POINTS",
    "MotoInternalsChanged",
    "Patcher",
    "Ref",
    "lookup",
]


class MotoInternalsChanged(RuntimeError):
    """A moto internal the emulator patches or uses is gone or moved (moto was upgraded?)."""


@dataclass(frozen=True)
class Ref:
    """``module`` + dotted ``attr`` path inside it, e.g. ``moto.ecs.models`` + ``Task``."""

    module: str
    attr: str

    def __str__(self) -> str:
        return f"{self.module}.{self.attr}"


def _resolve_owner(ref: Ref) -> tuple[object, str]:
    try:
        owner: object = importlib.import_module(ref.module)
    except ImportError as exc:
        raise MotoInternalsChanged(
            f"envbuild emulator: cannot import {ref.module!r} (needed for {ref}); "
            f"moto's layout changed - the emulator was written for moto 5.2.5"
        ) from exc
    *parents, name = ref.attr.split(".")
    for part in parents:
        try:
            owner = getattr(owner, part)
        except AttributeError as exc:
            raise MotoInternalsChanged(
                f"envbuild emulator: moto internal {ref} is missing ({part!r} not found); "
                f"moto's layout changed - the emulator was written for moto 5.2.5"
            ) from exc
    if not hasattr(owner, name):
        raise MotoInternalsChanged(
            f"envbuild emulator: moto internal {ref} is missing; moto's layout changed - "
            f"the emulator was written for moto 5.2.5"
        )
    return owner, name


def lookup(module: str, attr: str) -> Any:
    """The current value of ``module.attr`` (dotted), or a loud ``MotoInternalsChanged``."""
    owner, name = _resolve_owner(Ref(module, attr))
    return getattr(owner, name)


@dataclass
class _Saved:
    owner: object
    name: str
    original: object
    own: bool  # the attribute lived in owner's own __dict__ (else it was inherited)


@dataclass
class Patcher:
    """Plain attribute assignments on moto classes/modules, undone in reverse order."""

    _saved: list[_Saved] = field(default_factory=list)

    def replace(self, module: str, attr: str, make: Callable[[Any], object]) -> None:
        """Set ``module.attr`` to ``make(original)``."""
        owner, name = _resolve_owner(Ref(module, attr))
        own = name in vars(owner)
        original = vars(owner)[name] if own else getattr(owner, name)
        self._saved.append(_Saved(owner, name, original, own))
        setattr(owner, name, make(getattr(owner, name)))

    def add(self, module: str, attr: str, value: Any) -> None:
        """Set ``module.attr``, an attribute moto lacks (the handler of an action it does not
        implement); ``restore`` removes it again (or puts back an earlier Patcher's addition).
        MotoInternalsChanged if moto has it now."""
        parent, _, name = attr.rpartition(".")
        owner = lookup(module, parent) if parent else importlib.import_module(module)
        existing = getattr(owner, name, None)
        if existing is not None and not getattr(existing, ADDED_MARK, False):
            raise MotoInternalsChanged(
                f"envbuild emulator: moto now has {module}.{attr}; the emulator adds its own"
                " (written for moto 5.2.5): check whether the model is still needed"
            )
        own = name in vars(owner)
        self._saved.append(_Saved(owner, name, vars(owner).get(name), own))
        setattr(value, ADDED_MARK, True)
        setattr(owner, name, value)

    def restore(self) -> None:
        while self._saved:
            saved = self._saved.pop()
            if saved.own:
                setattr(saved.owner, saved.name, saved.original)
            else:
                delattr(saved.owner, saved.name)

    @property
    def active(self) -> bool:
        return bool(self._saved)


#: Set on what ``Patcher.add`` adds (another Patcher may add it again over it).
ADDED_MARK = "_envbuild_added"

_SD = "moto.servicediscovery.models"
_SD_RESPONSES = "moto.servicediscovery.responses"
_ECS = "moto.ecs.models"

#: Every attribute ``World.install`` replaces.
PATCH_POINTS: tuple[Ref, ...] = (
    # the choke point: every request of every service passes here (in-process and server mode)
    Ref("moto.core.responses", "BaseResponse.call_action"),
    # Cloud Map
    Ref(_SD, "ServiceDiscoveryBackend.create_private_dns_namespace"),
    Ref(_SD, "ServiceDiscoveryBackend.create_public_dns_namespace"),
    Ref(_SD, "ServiceDiscoveryBackend.create_http_namespace"),
    Ref(_SD, "ServiceDiscoveryBackend.delete_namespace"),
    Ref(_SD, "ServiceDiscoveryBackend.create_service"),
    Ref(_SD, "ServiceDiscoveryBackend.delete_service"),
    Ref(_SD, "ServiceDiscoveryBackend.register_instance"),
    Ref(_SD, "ServiceDiscoveryBackend.deregister_instance"),
    Ref(_SD, "ServiceDiscoveryBackend._create_operation"),
    Ref(_SD, "ServiceDiscoveryBackend.list_operations"),
    Ref(_SD, "ServiceDiscoveryBackend.discover_instances"),
    Ref(_SD_RESPONSES, "ServiceDiscoveryResponse.list_namespaces"),
    Ref(_SD_RESPONSES, "ServiceDiscoveryResponse.list_services"),
    Ref(_SD_RESPONSES, "ServiceDiscoveryResponse.list_operations"),
    # ECS
    Ref(_ECS, "EC2ContainerServiceBackend.create_service"),
    Ref(_ECS, "EC2ContainerServiceBackend.update_service"),
    Ref(_ECS, "EC2ContainerServiceBackend.delete_service"),
    Ref(_ECS, "EC2ContainerServiceBackend.stop_task"),
    Ref(_ECS, "EC2ContainerServiceBackend.list_tasks"),
    # CreateService's deploymentConfiguration (the backend's create_service does not receive it)
    Ref("moto.ecs.responses", "EC2ContainerServiceResponse.create_service"),
    # Application Auto Scaling: deregistering a scalable target deletes its scaling policies
    Ref(
        "moto.applicationautoscaling.models",
        "ApplicationAutoscalingBackend.deregister_scalable_target",
    ),
)

#: Attributes ``World.install`` adds: handlers of actions moto does not implement (the tests
#: check moto still lacks them).
ADDED_POINTS: tuple[Ref, ...] = (
    # IAM SimulatePrincipalPolicy (envbuild_emulator.models.iam)
    Ref("moto.iam.responses", "IamResponse.simulate_principal_policy"),
)

#: What the emulator core replaces: Lambda Tasks dispatched in-process, Wait states and retry
#: back-off on the emulator's Clock (envbuild_emulator.interpreter), and EventBridge targets that
#: are state machines (envbuild_emulator.events).
INTERPRETER_PATCH_POINTS: tuple[Ref, ...] = (
    Ref(
        "moto.stepfunctions.parser.asl.component.state.exec.state_task.lambda_eval_utils",
        "_invoke_lambda_function",
    ),
    Ref(
        "moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function",
        "WaitFunction._wait_interval",
    ),
    Ref("moto.stepfunctions.parser.asl.component.common.retry.retrier_decl", "time"),
    Ref(
        "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_sfn",
        "StateTaskServiceSfn._normalise_parameters",
    ),
    Ref(
        "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_sfn",
        "StateTaskServiceSfn._normalise_response",
    ),
    Ref("moto.stepfunctions.parser.asl.component.common.timeouts.timeout", "TimeoutSeconds.eval"),
    # history events stamped with emulated time at scale 0 (envbuild_emulator.interpreter)
    Ref(
        "moto.stepfunctions.parser.asl.eval.event.event_manager",
        "EventManager._get_current_timestamp",
    ),
    # the ASL parse (a parse tree kept per definition, envbuild_emulator.interpreter)
    Ref("moto.stepfunctions.parser.asl.parse.asl_parser", "AmazonStateLanguageParser.parse"),
    Ref("moto.events.models", "Rule.send_to_targets"),
    # StartExecution's name and input limits (envbuild_emulator.sfn_limits)
    Ref("moto.stepfunctions.parser.models", "StepFunctionsParserBackend.start_execution"),
    Ref("moto.dynamodb.models", "DynamoDBBackend.put_item"),
    Ref("moto.dynamodb.models", "DynamoDBBackend.update_item"),
    Ref("moto.dynamodb.models", "DynamoDBBackend.delete_item"),
    Ref("moto.ecs.responses", "EC2ContainerServiceResponse.create_service"),
    # the in-VPC DNS probe task (envbuild_emulator.models.ecs.EcsModel.run_probe)
    Ref(_ECS, "EC2ContainerServiceBackend.run_task"),
    # wrapped again, outside the World's wrapper, by envbuild_emulator.aws_faults
    Ref("moto.core.responses", "BaseResponse.call_action"),
    # not moto: the SDK's retry back-off (botocore.endpoint calls time.sleep) on the clock
    Ref("botocore.endpoint", "time"),
    # the threads of an execution, a Parallel branch and a Map iteration (own timelines)
    Ref("moto.stepfunctions.parser.asl.component.program.program", "threading"),
    Ref(
        "moto.stepfunctions.parser.asl.component.state.exec.state_parallel.branch_worker",
        "threading",
    ),
    Ref(
        "moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.inline_iteration_component",
        "threading",
    ),
    # a state's evaluation thread (on its state's timeline)
    Ref("moto.stepfunctions.parser.asl.component.state.exec.execute_state", "Thread"),
)

#: Other moto internals the models read or call (not replaced).
INTERNALS: tuple[Ref, ...] = (
    Ref(_SD, "servicediscovery_backends"),
    Ref(_SD, "Namespace"),
    Ref(_SD, "ServiceInstance"),
    Ref(_SD, "InstanceNotFound"),
    Ref(_SD, "ServiceDiscoveryBackend.list_namespaces"),
    Ref("moto.servicediscovery.responses", "ServiceDiscoveryResponse.servicediscovery_backend"),
    Ref(_ECS, "ecs_backends"),
    Ref(_ECS, "Task"),
    Ref(_ECS, "EC2ContainerServiceBackend.describe_task_definition"),
    Ref(_ECS, "EC2ContainerServiceBackend._calculate_task_resource_requirements"),
    Ref(_ECS, "EC2ContainerServiceBackend._get_cluster"),
    Ref("moto.ecs.exceptions", "InvalidParameterException"),
    Ref("moto.ecs.responses", "EC2ContainerServiceResponse.ecs_backend"),
    Ref("moto.logs.models", "logs_backends"),
    Ref("moto.route53.models", "route53_backends"),
    Ref("moto.route53.models", "Route53Backend.create_hosted_zone"),
    Ref("moto.route53.models", "Route53Backend.get_hosted_zone"),
    Ref("moto.route53.models", "Route53Backend.delete_hosted_zone"),
    Ref("moto.route53.models", "FakeZone.add_rrset"),
    # dns.py journals Cloud Map's records in FakeZone.rr_changes (a ChangeList) for DELETE
    Ref("moto.route53.models", "ChangeList.has_insert_or_update"),
    Ref("moto.ec2.models", "ec2_backends"),
    Ref("moto.ec2.models.subnets", "Subnet.request_ip"),
    Ref("moto.ec2.models.subnets", "Subnet.available_ip_address_count"),
    Ref("moto.ec2.models.subnets", "Subnet.del_subnet_ip"),
    Ref("moto.ec2.models", "EC2Backend.create_network_interface"),
    Ref("moto.ec2.models", "EC2Backend.delete_network_interface"),
    Ref("moto.ec2.models", "EC2Backend.get_subnet"),
    Ref("moto.moto_api._internal.managed_state_model", "ManagedState.status"),
    Ref("moto.core.base_backend", "BaseBackend.reset"),
    Ref("moto.core.exceptions", "JsonRESTError"),
    Ref("moto.stepfunctions.responses", "get_backend"),
    Ref("moto.stepfunctions.exceptions", "InvalidName"),
    Ref("moto.stepfunctions.exceptions", "InvalidExecutionInput"),
    Ref("moto.core.responses", "ActionResult"),
    Ref("moto.ecs.exceptions", "InvalidParameterException"),
    Ref("moto.stepfunctions.parser.asl.parse.preprocessor", "Preprocessor"),
    Ref("moto.iam.responses", "IamResponse"),
    Ref("moto.iam.exceptions", "NoSuchEntity"),
    Ref("moto.iam.exceptions", "InvalidInput"),
)
