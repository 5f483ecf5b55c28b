"""Convergence as a property (issue 16): for random pairs of valid specs (A, B) on the emulator,

- build A, plan B: the plan's changing rows are exactly the build of B's changing rows;
- build B: the account equals a fresh build of B in another account (ids and revision numbers
  aside: what each ECS service runs, its count and network, its registry's TTL and instances);
- build B again: no mutating call on the environment, and its plan changes nothing;
- the plan of B on A shows no change row exactly when A's and B's accounts are the same.

ENVBUILD_PAIRS sets the number of pairs (default 6, so that the suite stays short); the closing
note of issue 16 reports a longer run.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from envbuild_emulator.aws_faults import is_mutating
from tests.conftest import RECORDING, REPO, fill

PAIRS = int(os.environ.get("ENVBUILD_PAIRS", "6"))
MACHINERY = ("dynamodb", "events", "stepfunctions")
#: What each pair found: "same" (A = B's account), "changed" (rows planned and applied).
FOUND: Counter[str] = Counter()

SERVICES = ("web", "api", "db")
PAIRS_OF_UNITS = [("256", "512"), ("256", "1024"), ("512", "1024")]


@st.composite
def specs(draw: st.DrawFn) -> dict[str, Any]:
    """A spec in placeholders (${PRIVATE_SUBNET_1} ...): 1-3 of the workshop's services with
    random image, count, size, environment, TTL and static instances, and optionally issue 17's
    fields (autoscaling, overrides, tags); random network and top-level tags."""
    base = json.loads((REPO / "events" / "workshop.json").read_text())
    names = draw(st.lists(st.sampled_from(SERVICES), min_size=1, max_size=3, unique=True))
    services = []
    for service in base["services"]:
        if service["name"] not in names:
            continue
        cpu, memory = draw(st.sampled_from(PAIRS_OF_UNITS))
        instances = draw(
            st.lists(st.sampled_from(["legacy-1", "legacy-2"]), unique=True, max_size=2)
        )
        services.append(
            {
                **service,
                "image": draw(st.sampled_from([service["image"], "nginx:1.27"])),
                "desiredCount": draw(st.integers(0, 2)),
                "cpu": cpu,
                "memory": memory,
                "environment": draw(
                    st.dictionaries(st.sampled_from(["A", "B"]), st.sampled_from(["1", "2"]))
                ),
                "dnsTtl": draw(st.sampled_from([10, 60])),
                "instances": [
                    {"id": i, "ipv4": draw(st.sampled_from(["10.0.1.201", "10.0.2.202"]))}
                    for i in sorted(instances)
                ],
                # real services' fields (issue 17), present or not
                **draw(
                    st.fixed_dictionaries(
                        {},
                        optional={
                            "command": st.sampled_from([["serve"], ["serve", "--fast"]]),
                            "deployment": st.sampled_from(
                                [{"minimumHealthyPercent": 50, "maximumPercent": 200}]
                            ),
                            "enableExecuteCommand": st.booleans(),
                            # issue 17's remaining gaps: autoscaling (added, changed,
                            # removed), overrides (removed: the record's keys) and tags
                            "autoscaling": st.sampled_from(
                                [
                                    {"minCount": 0, "maxCount": 2, "targetCpuPercent": 60},
                                    {
                                        "minCount": 0,
                                        "maxCount": 3,
                                        "targetCpuPercent": 50,
                                        "targetMemoryPercent": 70,
                                    },
                                ]
                            ),
                            "overrides": st.sampled_from(
                                [
                                    {"container": {"stopTimeout": 30}},
                                    {"service": {"healthCheckGracePeriodSeconds": 30}},
                                    {
                                        "taskDefinition": {"ephemeralStorage": {"sizeInGiB": 30}},
                                        "service": {"healthCheckGracePeriodSeconds": 10},
                                    },
                                ]
                            ),
                            "tags": st.sampled_from([{"team": "a"}, {"cost": "b"}]),
                        },
                    )
                ),
            }
        )
    network = {
        "subnets": draw(
            st.sampled_from(
                [
                    ["${PRIVATE_SUBNET_1}", "${PRIVATE_SUBNET_2}"],
                    ["${PRIVATE_SUBNET_1}"],
                    ["${PRIVATE_SUBNET_2}"],
                ]
            )
        ),
        "securityGroups": ["${ECS_SG}"],
        "assignPublicIp": draw(st.sampled_from(["DISABLED", "ENABLED"])),
    }
    tags = draw(st.sampled_from([{}, {"team": "x"}, {"team": "y", "env": "dev"}]))
    return {**base, "services": services, "network": network, "prune": True, "tags": tags}


def filled(spec: dict[str, Any], emulator: Any) -> dict[str, Any]:
    return dict(json.loads(fill(json.dumps(spec), emulator.prerequisites)))


def build(emulator: Any, spec: dict[str, Any], **extra: Any) -> dict[str, Any]:
    arn = emulator.start_build({**filled(spec, emulator), **extra})
    described = emulator.wait(arn)
    assert described["status"] == "SUCCEEDED", described.get("cause")
    return dict(json.loads(described["output"]))


def account(emulator: Any) -> dict[str, Any]:
    """The environment as the AWS APIs describe it, without ids, ARNs or revision numbers (the
    prerequisites' ids are replaced by their names)."""
    names = {value: f"${{{key}}}" for key, value in emulator.prerequisites.items()}
    ecs, sd = emulator.client("ecs"), emulator.client("servicediscovery")
    scaling = emulator.client("application-autoscaling")
    cluster = emulator.prerequisites["CLUSTER_NAME"]
    arns = ecs.list_services(cluster=cluster)["serviceArns"]
    described = (
        ecs.describe_services(cluster=cluster, services=arns, include=["TAGS"])["services"]
        if arns
        else []
    )
    targets = {
        t["ResourceId"].rsplit("/", 1)[-1]: (t["MinCapacity"], t["MaxCapacity"])
        for t in scaling.describe_scalable_targets(ServiceNamespace="ecs")["ScalableTargets"]
    }
    policies = sorted(
        (p["PolicyName"], p["TargetTrackingScalingPolicyConfiguration"]["TargetValue"])
        for p in scaling.describe_scaling_policies(ServiceNamespace="ecs")["ScalingPolicies"]
    )

    def own(tags: list[dict[str, str]], key: str = "key", value: str = "value") -> dict[str, str]:
        return {t[key]: t[value] for t in tags if not t[key].startswith(("envbuild:", "aws:"))}

    services = {}
    for service in described:
        if service["status"] != "ACTIVE":
            continue
        response = ecs.describe_task_definition(
            taskDefinition=service["taskDefinition"], include=["TAGS"]
        )
        definition = response["taskDefinition"]
        container = definition["containerDefinitions"][0]
        vpc = service["networkConfiguration"]["awsvpcConfiguration"]
        name = service["serviceName"]
        services[name] = {
            # the scaler owns the count of a service with a scalable target
            "desiredCount": None if name in targets else service["desiredCount"],
            "scalableTarget": targets.get(name),
            "tags": own(service.get("tags", [])),
            "taskDefinitionTags": own(response.get("tags", [])),
            "stopTimeout": container.get("stopTimeout"),
            "ephemeralStorage": definition.get("ephemeralStorage"),
            "healthCheckGracePeriodSeconds": service.get("healthCheckGracePeriodSeconds") or 0,
            "subnets": sorted(names.get(s, s) for s in vpc["subnets"]),
            "securityGroups": sorted(names.get(s, s) for s in vpc["securityGroups"]),
            "assignPublicIp": vpc.get("assignPublicIp"),
            "image": container["image"],
            "port": container["portMappings"][0]["containerPort"],
            "environment": sorted((e["name"], e["value"]) for e in container["environment"]),
            "command": container.get("command"),
            "deployment": {
                k: service["deploymentConfiguration"].get(k)
                for k in ("minimumHealthyPercent", "maximumPercent")
            },
            "enableExecuteCommand": service.get("enableExecuteCommand", False),
            "cpu": definition["cpu"],
            "memory": definition["memory"],
        }
    registries = {}
    for registry in sd.list_services()["Services"]:
        full = sd.get_service(Id=registry["Id"])["Service"]
        static = sorted(
            (i["Id"], i["Attributes"]["AWS_INSTANCE_IPV4"])
            for i in sd.list_instances(ServiceId=registry["Id"])["Instances"]
            if "ECS_SERVICE_NAME" not in i.get("Attributes", {})
        )
        registries[full["Name"]] = {
            "ttl": full["DnsConfig"]["DnsRecords"][0]["TTL"],
            "static": static,
            "tags": own(sd.list_tags_for_resource(ResourceARN=full["Arn"])["Tags"], "Key", "Value"),
        }
    (namespace,) = sd.list_namespaces()["Namespaces"]
    namespace_tags = own(
        sd.list_tags_for_resource(ResourceARN=namespace["Arn"])["Tags"], "Key", "Value"
    )
    return {
        "services": services,
        "registries": registries,
        "scalingPolicies": policies,
        "namespaceTags": namespace_tags,
    }


def changing(rows: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    """(kind, name, action) of the rows that change something: the plan and the build name
    every row alike (a revision to be registered by its family)."""
    return sorted(
        (r["kind"], r["name"], r["action"])
        for r in rows
        if r["action"] in ("create", "update", "replace", "remove")
    )


def environment_mutations(emulator: Any) -> Counter[tuple[str, str]]:
    return Counter(
        {
            key: n
            for key, n in emulator.aws_faults.calls.items()
            if n and is_mutating(key[1]) and key[0] not in MACHINERY
        }
    )


def record(request: pytest.FixtureRequest, emulator: Any) -> None:
    """The calls of these accounts count for the IAM proof, as the ``emulator`` fixture's do."""
    recording = request.config.stash.get(RECORDING, None)
    if recording is not None:
        recording.calls.merge(emulator.aws_faults.function_calls)


@settings(
    max_examples=PAIRS,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(first=specs(), second=specs())
def test_any_edit_converges_and_the_plan_lists_exactly_what_the_build_changes(
    first: dict[str, Any], second: dict[str, Any], request: pytest.FixtureRequest
) -> None:
    from envbuild_emulator.emulator import Emulator

    with Emulator(time_scale=0.0) as fresh:
        build(fresh, second)
        wanted = account(fresh)
        record(request, fresh)

    with Emulator(time_scale=0.0) as emulator:
        build(emulator, first)
        before = account(emulator)
        plan = build(emulator, second, plan=True)
        output = build(emulator, second)
        applied = changing(output.get("changes", []))
        # What the build of B changed is what the plan listed (prune: removals included).
        planned_rows = changing(plan["changes"])
        assert planned_rows == applied, (planned_rows, applied)
        assert account(emulator) == wanted
        # No change row exactly when there was nothing to change (the place is the same).
        assert (planned_rows == []) == (before == wanted), (planned_rows, before, wanted)
        FOUND["same" if before == wanted else "changed"] += 1

        emulator.aws_faults.calls.clear()
        build(emulator, second)
        assert environment_mutations(emulator) == Counter()
        assert changing(build(emulator, second, plan=True)["changes"]) == []
        record(request, emulator)


def test_pairs_ran() -> None:
    """Runs after the property (file order): the pairs it checked, for the closing note."""
    if FOUND:
        print(f"convergence pairs: {sum(FOUND.values())} ({dict(FOUND)})")
