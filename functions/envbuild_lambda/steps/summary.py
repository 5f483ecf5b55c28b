"""The build's summary, as Verify DNS hands it on with the spec, and its size at its widest.

``service_summary`` is the one shape of a service's entry: Verify DNS fills it with what it
verified, ``largest_state`` with the widest values AWS can return, so that Validate Spec can
refuse, before anything is created, a spec whose build would outgrow Step Functions' 256 KiB
per state (``check_state_size``)."""

from __future__ import annotations

import json
from typing import Any

from envbuild_lambda.errors import InvalidSpec
from envbuild_lambda.spec import EnvironmentSpec, state_form
from envbuild_lambda.steps.outputs import outputs

#: Step Functions' limit on a state's input or output (and on an execution's input).
STATE_LIMIT_BYTES = 256 * 1024
#: Kept free in the largest state for the failure path: Error and Cause (twice: $.error and the
#: description of the failure), the rollback's outcome, the probe's messages; and for what the
#: spec cannot tell: the fixed part of the earlier states (lock, namespace state, polls: about
#: 4 KiB), the ECS services left from an earlier spec (the summary's notInSpec).
FAILURE_PATH_RESERVE_BYTES = 32 * 1024
#: The bytes the build output's change rows may take (converge.change_report; the rest are
#: counted, not listed).
CHANGE_ROWS_BYTES = 16 * 1024
#: The largest values AWS gives what the summary holds (an IPv4 address, a task definition
#: revision, Cloud Map namespace and service ids).
_WIDEST_IP = "255.255.255.255"
_WIDEST_REVISION = 9_999_999
_WIDEST_NAMESPACE_ID = "ns-" + "x" * 17
_WIDEST_REGISTRY_ID = "srv-" + "x" * 16


def service_summary(
    name: str,
    dns_name: str,
    ips: list[str],
    task_definition: str,
    static_instances: list[dict[str, Any]],
) -> dict[str, Any]:
    """A service's entry in the summary: names only (its registry id is in ``outputs``, its ECS
    service is <name>-service), the IPs its DNS name answers, and its static instances if any."""
    entry: dict[str, Any] = {
        "name": name,
        "dnsName": dns_name,
        "ips": ips,
        "taskDefinition": task_definition,
    }
    if static_instances:
        entry["staticInstances"] = static_instances
    return entry


def largest_state(spec: EnvironmentSpec) -> dict[str, Any]:
    """The part of the build's states that grows with the spec, at its widest, as Verify DNS
    hands it on: the spec's state form and the summary, with the widest id, revision and IP AWS
    can return, one IP per task and static instance, and the probe's answers when the probe is
    on. For a large environment it is the largest state (for a few services the fixed part of
    Check Services' state weighs more; FAILURE_PATH_RESERVE_BYTES covers it). A test compares
    its shape and size with a 60-service build's."""
    services = []
    answers: dict[str, list[str]] = {}
    for service in spec.services:
        dns_name = service.dns_name(spec.namespace.name)
        ips = [_WIDEST_IP] * (service.desiredCount + len(service.instances))
        static = [
            {
                "id": i.id,
                "ipv4": _WIDEST_IP,
                "attributes": {**i.attributes, "AWS_INSTANCE_IPV4": _WIDEST_IP},
            }
            for i in service.instances
        ]
        task_definition = f"{service.family(spec.environment)}:{_WIDEST_REVISION}"
        services.append(service_summary(service.name, dns_name, ips, task_definition, static))
        if spec.verify.probe:
            answers[dns_name] = ips
    summary: dict[str, Any] = {
        "services": services,
        "outputs": outputs(
            _WIDEST_NAMESPACE_ID, {s.name: _WIDEST_REGISTRY_ID for s in spec.services}
        ),
    }
    if answers:
        summary["probe"] = {"answers": answers}
    # What the build changed: rows up to their budget, and a count per action.
    summary["changes"] = [
        {"kind": "taskDefinition", "name": "", "action": "update", "fields": {}, "note": "x" * n}
        for n in [CHANGE_ROWS_BYTES - 80]
    ]
    summary["counts"] = dict.fromkeys(
        ("create", "update", "replace", "adopt", "unchanged", "remove", "keep"), _WIDEST_REVISION
    )
    return {"spec": state_form(spec), "summary": summary}


def check_state_size(spec: EnvironmentSpec) -> None:
    """InvalidSpec when the build's largest state could exceed Step Functions' 256 KiB per state
    (less the failure path's reserve): a build would otherwise fail with
    States.DataLimitExceeded, which no Catch handles, after creating the environment. Names the
    services that weigh most and what makes them heavy."""
    budget = STATE_LIMIT_BYTES - FAILURE_PATH_RESERVE_BYTES

    def size(value: Any) -> int:
        # the Lambda runtime serialises results with json.dumps' default separators
        return len(json.dumps(value).encode())

    state = largest_state(spec)
    total = size(state)
    if total <= budget:
        return
    weights = sorted(
        (
            (size(raw) + size(entry), index)
            for index, (raw, entry) in enumerate(
                zip(state["spec"]["services"], state["summary"]["services"], strict=True)
            )
        ),
        reverse=True,
    )[:3]
    heaviest = ", ".join(
        f"services[{index}] ({spec.services[index].name}: {weight / 1024:.1f} KiB,"
        f" environment {size(spec.services[index].environment) / 1024:.1f} KiB,"
        f" {spec.services[index].desiredCount} task(s))"
        for weight, index in weights
    )
    raise InvalidSpec(
        f"services: {len(spec.services)} service(s) make the build's largest state (the spec and"
        f" its summary, handed on by Verify DNS) up to {total / 1024:.0f} KiB, over the"
        f" {budget // 1024} KiB envbuild allows (Step Functions takes {STATE_LIMIT_BYTES // 1024}"
        f" KiB per state; {FAILURE_PATH_RESERVE_BYTES // 1024} KiB are kept for the failure path);"
        f" heaviest: {heaviest}. Split the services into several environments, or lower"
        " desiredCount or services[].environment"
    )
