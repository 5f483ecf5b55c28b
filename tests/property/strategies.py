"""Hypothesis strategies: valid environment specs, and bad specs made from them by mutations.

A bad spec is a valid spec with one or more ``Mutation``s applied. Each mutation knows the path of
the field it breaks, written as ``parse_spec`` reports it (``services[2].port``,
``namespace.vpcId``, ``services[0].desiredcount``), so a test can check that the error names every
injected bad field and nothing else. Mutations of one spec never overlap: no mutation's path is a
prefix of another's (pydantic does not run a model's own checks, the Fargate pair or unique service
names, once one of its fields failed, so overlapping mutations would hide each other).

Injected strings never contain ``;``: the spec error joins its problems with ``"; "``.
"""

from __future__ import annotations

import copy
import string
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from hypothesis import strategies as st

from envbuild_lambda.spec import FARGATE_MEMORY, MAX_SERVICES

Path = tuple[str | int, ...]

DELETE = object()  # a change that removes the key

HEX = "0123456789abcdef"
MAX_DNS_TTL = 2147483647

#: Every valid (cpu, memory) pair of the Fargate table, and every invalid pair made of its values.
VALID_PAIRS = sorted(
    (cpu, memory) for cpu, memories in FARGATE_MEMORY.items() for memory in memories
)
ALL_MEMORIES = sorted({memory for memories in FARGATE_MEMORY.values() for memory in memories})
INVALID_PAIRS = [
    (cpu, memory)
    for cpu in FARGATE_MEMORY
    for memory in [*ALL_MEMORIES, 0, 1, 128, 256, 511, 513, 1023, 122882, 131072]
    if memory not in FARGATE_MEMORY[cpu]
]
#: cpu values that are whole numbers but not a Fargate size.
NON_FARGATE_CPUS = [0, 1, 128, 255, 257, 300, 768, 1000, 3072, 32768, 65536]

#: The fields of each object of the spec, as the model names them.
TOP_FIELDS = (
    "environment",
    "namespace",
    "cluster",
    "network",
    "executionRoleArn",
    "taskRoleArn",
    "services",
    "onFailure",
    "prune",
    "plan",
    "verify",
    "tags",
    "logRetentionDays",
)
NAMESPACE_FIELDS = ("name", "vpcId", "description")
NETWORK_FIELDS = ("subnets", "securityGroups", "assignPublicIp")
SERVICE_FIELDS = (
    "name", "image", "port", "desiredCount", "cpu", "memory", "environment", "dnsTtl",
    "instances", "command", "entryPoint", "secrets", "healthCheck", "sidecars", "dependsOn",
    "cpuArchitecture", "capacityProviders", "enableExecuteCommand", "dnsRecords", "deployment",
    "tags", "logRetentionDays", "platformVersion", "network", "autoscaling", "overrides",
)  # fmt: skip
#: Issue 17's fields of a service, each with the kind of JSON value it takes (for wrong types).
NEW_SERVICE_FIELDS = {
    "command": "list", "entryPoint": "list", "secrets": "object", "healthCheck": "optional_object",
    "sidecars": "list", "dependsOn": "list", "cpuArchitecture": "string",
    "capacityProviders": "optional_list", "enableExecuteCommand": "bool", "dnsRecords": "list",
    "deployment": "optional_object", "tags": "object", "logRetentionDays": "optional_int",
    "platformVersion": "string", "network": "optional_object", "autoscaling": "optional_object",
    "overrides": "object",
}  # fmt: skip
from envbuild_lambda.spec import LOG_RETENTION_DAYS  # noqa: E402

#: Near-miss typos users make, per object (besides the generated ones).
KNOWN_TYPOS = {
    (): ("enviroment", "Environment", "namespaces", "clusterName", "executionRole", "taskRole",
         "service", "desiredcount", "vpcid"),
    ("namespace",): ("vpcid", "VpcId", "vpc_id", "vpc", "Name", "descripton"),
    ("network",): ("securitygroups", "subnet", "security_groups", "assignPublicIP", "SecurityGroups"),
    "service": ("desiredcount", "desired_count", "DesiredCount", "dnsTTL", "dnsttl", "ttl", "Port",
                "images", "env", "environmentVariables", "cpus", "mem"),
}  # fmt: skip


def fmt(path: Path) -> str:
    """A path as the spec error writes it: ``services[2].port``."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else part)
    return text


def overlaps(a: Path, b: Path) -> bool:
    shorter = min(len(a), len(b))
    return a[:shorter] == b[:shorter]


@dataclass(frozen=True)
class Mutation:
    """One injected fault: ``changes`` applied to a valid spec make the field at ``path`` invalid.

    ``exact``: the error is reported at ``path`` itself (else at ``path`` or below it, e.g. the
    offending item of a list). ``fragment``: text the problem reported for it must contain.
    """

    kind: str
    path: Path
    changes: tuple[tuple[Path, Any], ...]
    exact: bool = True
    fragment: str = ""

    @property
    def where(self) -> str:
        return fmt(self.path)

    @property
    def footprint(self) -> tuple[Path, ...]:
        """Where it reports and what it changes: two mutations may share none of it."""
        return (self.path, *(where for where, _ in self.changes))

    def overlaps(self, other: Mutation) -> bool:
        return any(overlaps(a, b) for a in self.footprint for b in other.footprint)

    def __repr__(self) -> str:
        shown = []
        for where, value in self.changes:
            text = "<delete>" if value is DELETE else repr(value)
            shown.append(f"{fmt(where)}={text[:120]}{'...' if len(text) > 120 else ''}")
        return f"Mutation({self.kind} @ {self.where}: {', '.join(shown)})"


@dataclass
class BadSpec:
    spec: dict[str, Any]
    mutations: list[Mutation] = field(default_factory=list)

    def __repr__(self) -> str:
        return f"BadSpec(mutations={self.mutations!r}, spec={_short(self.spec)})"


def _short(value: Any, limit: int = 2000) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} chars)"


def apply(spec: dict[str, Any], mutations: list[Mutation]) -> dict[str, Any]:
    result = copy.deepcopy(spec)
    for mutation in mutations:
        for where, value in mutation.changes:
            parent: Any = result
            for part in where[:-1]:
                parent = parent[part]
            if value is DELETE:
                del parent[where[-1]]
            else:
                parent[where[-1]] = value
    return result


# --------------------------------------------------------------------------------------------
# Valid specs

# Building a strategy costs more than drawing from it: the ones that depend on a drawn value are
# made once per distinct value (cache), the others once (module constants).


def one(options: list[Any] | tuple[Any, ...]) -> st.SearchStrategy[Any]:
    return _sampled(tuple(options))


@cache
def _sampled(options: tuple[Any, ...]) -> st.SearchStrategy[Any]:
    return st.sampled_from(options)


@cache
def ints(min_value: int | None = None, max_value: int | None = None) -> st.SearchStrategy[int]:
    return st.integers(min_value, max_value)


@cache
def hex_id(prefix: str) -> st.SearchStrategy[str]:
    digits = st.text(HEX, min_size=8, max_size=8) | st.text(HEX, min_size=17, max_size=17)
    return digits.map(lambda h: f"{prefix}-{h}")


ALNUM = string.ascii_lowercase + string.digits


def label_strategy(max_length: int, min_length: int = 1) -> st.SearchStrategy[str]:
    """Lower-case DNS labels of min_length..max_length characters (text, not from_regex: faster)."""
    inner = st.text(ALNUM + "-", max_size=max_length - 2)
    return st.builds(
        lambda first, middle, last, short: first if short else first + middle + last,
        st.sampled_from(ALNUM),
        inner,
        st.sampled_from(ALNUM),
        st.booleans(),
    ).filter(lambda label: min_length <= len(label) <= max_length)


dns_labels = label_strategy(63)
short_labels = label_strategy(16)
environment_names = label_strategy(40)
namespace_names = st.lists(short_labels, min_size=1, max_size=4).map(".".join)
safe_text = st.text(
    st.characters(codec="utf-8", exclude_characters=";", exclude_categories=["Cs"]), max_size=30
)
env_var_names = st.builds(
    str.__add__,
    st.sampled_from(string.ascii_letters + "_"),
    st.text(string.ascii_letters + string.digits + "_", max_size=20),
)
accounts = st.text(string.digits, min_size=12, max_size=12)
role_names = st.text(string.ascii_letters + string.digits + "_+=,.@-", min_size=1, max_size=64)
partitions = one(["aws", "aws-cn", "aws-us-gov"])
role_arns = st.builds(
    lambda partition, account, path, name: f"arn:{partition}:iam::{account}:role/{path}{name}",
    partitions,
    accounts,
    one(["", "service-role/", "ecs/tasks/"]),
    role_names,
)
cluster_names = st.text(string.ascii_letters + string.digits + "_-", min_size=1, max_size=60)
clusters = st.one_of(
    cluster_names,
    st.builds(
        lambda partition, region, account, name: (
            f"arn:{partition}:ecs:{region}:{account}:cluster/{name}"
        ),
        partitions,
        one(["us-east-1", "eu-west-3", "ap-southeast-2"]),
        accounts,
        cluster_names,
    ),
)


IMAGES = one(["nginx:latest", "httpd:2.4", "redis:alpine"]) | safe_text.map(lambda t: t or "i")
ENVIRONMENTS = st.dictionaries(env_var_names, safe_text, max_size=4)
SUBNET_LISTS = st.lists(hex_id("subnet"), min_size=1, max_size=4, unique=True)
SG_LISTS = st.lists(hex_id("sg"), min_size=1, max_size=3, unique=True)


@st.composite
def services(draw: st.DrawFn) -> dict[str, Any]:
    service: dict[str, Any] = {
        "name": "",
        "image": draw(IMAGES),
        "port": draw(ints(1, 65535)),
    }  # fmt: skip
    if draw(st.booleans()):
        service["desiredCount"] = draw(ints(0, 1000))
    if draw(st.booleans()):
        cpu, memory = draw(st.sampled_from(VALID_PAIRS))
        service["cpu"], service["memory"] = str(cpu), str(memory)
    if draw(st.booleans()):
        service["environment"] = draw(ENVIRONMENTS)
    if draw(st.booleans()):
        service["dnsTtl"] = draw(ints(0, MAX_DNS_TTL))
    if draw(ints(0, 2)) == 0:
        service.update(draw(NEW_FIELDS))
    return service


SECRET_ARNS = one(
    [
        "arn:aws:secretsmanager:us-east-1:111122223333:secret:db-AbCdEf",
        "arn:aws:secretsmanager:eu-west-3:111122223333:secret:app/db-AbCdEf:password::",
        "arn:aws:ssm:us-east-1:111122223333:parameter/app/token",
    ]
)
TAGS = st.dictionaries(
    st.text(string.ascii_letters + string.digits + " _.:/=+-@", min_size=1, max_size=20).filter(
        lambda k: not k.lower().startswith(("aws:", "envbuild:"))
    ),
    st.text(string.ascii_letters + string.digits + " _.:/=+-@", max_size=20),
    max_size=5,
)
COMMANDS = st.lists(safe_text, max_size=3)


@st.composite
def new_fields(draw: st.DrawFn) -> dict[str, Any]:
    """Valid values of issue 17's fields (a service's port is 1..65535, its task 256/512)."""
    fields: dict[str, Any] = {}
    if draw(st.booleans()):
        fields["command"] = draw(COMMANDS)
    if draw(st.booleans()):
        fields["entryPoint"] = draw(COMMANDS)
    if draw(st.booleans()):
        fields["secrets"] = draw(st.dictionaries(env_var_names.map(lambda n: "S_" + n), SECRET_ARNS, max_size=2))  # fmt: skip
    if draw(st.booleans()):
        fields["healthCheck"] = {
            "command": ["CMD-SHELL", "curl -f http://localhost/ || exit 1"],
            "interval": draw(ints(5, 300)),
            "timeout": draw(ints(2, 60)),
            "retries": draw(ints(1, 10)),
            "startPeriod": draw(ints(0, 300)),
        }
    if draw(st.booleans()):
        fields["sidecars"] = [
            {"name": "side-car_1", "image": draw(IMAGES), "essential": False,
             "command": draw(COMMANDS), "environment": draw(ENVIRONMENTS)}
        ]  # fmt: skip
        fields["dependsOn"] = [{"container": "side-car_1", "condition": draw(one(["START", "COMPLETE", "SUCCESS"]))}]  # fmt: skip
    arm = draw(st.booleans())
    fields["cpuArchitecture"] = "ARM64" if arm else "X86_64"
    if draw(st.booleans()):
        providers = ["FARGATE"] if arm else draw(st.sampled_from([["FARGATE"], ["FARGATE_SPOT"], ["FARGATE", "FARGATE_SPOT"]]))  # fmt: skip
        fields["capacityProviders"] = [
            {"capacityProvider": p, "weight": draw(ints(1, 1000)), "base": draw(ints(0, 100000)) if k == 0 else 0}
            for k, p in enumerate(providers)
        ]  # fmt: skip
    fields["enableExecuteCommand"] = draw(st.booleans())
    fields["dnsRecords"] = draw(st.sampled_from([["A"], ["A", "SRV"], ["SRV", "A"]]))
    if draw(st.booleans()):
        low = draw(ints(0, 100))
        fields["deployment"] = {"minimumHealthyPercent": low, "maximumPercent": draw(ints(max(100, low + 1), 200))}  # fmt: skip
    if draw(st.booleans()):
        fields["tags"] = draw(TAGS)
    if draw(st.booleans()):
        fields["logRetentionDays"] = draw(one([None, *LOG_RETENTION_DAYS]))
    if draw(st.booleans()):
        fields["platformVersion"] = draw(one(["LATEST", "1.4.0"]))
    if draw(st.booleans()):
        fields["network"] = {"subnets": draw(SUBNET_LISTS), "securityGroups": draw(SG_LISTS)}
    if draw(st.booleans()):
        fields["overrides"] = draw(
            st.sampled_from(
                [
                    {"container": {"stopTimeout": 30}},
                    {"taskDefinition": {"ephemeralStorage": {"sizeInGiB": 30}}},
                    {"service": {"healthCheckGracePeriodSeconds": 10}},
                    {"container": {"user": "1000", "ulimits": [{"name": "nofile", "softLimit": 1024, "hardLimit": 4096}]}},
                ]
            )
        )  # fmt: skip
    return fields


NEW_FIELDS = new_fields()


SERVICES = services()


@st.composite
def valid_specs(draw: st.DrawFn, max_services: int = 8) -> dict[str, Any]:
    """A valid spec: any DNS names, any number of services (1..max_services) with any valid names."""
    names = draw(st.lists(dns_labels, min_size=1, max_size=max_services, unique=True))
    spec: dict[str, Any] = {
        "environment": draw(environment_names),
        "namespace": {"name": draw(namespace_names), "vpcId": draw(hex_id("vpc"))},
        "cluster": draw(clusters),
        "network": {
            "subnets": draw(SUBNET_LISTS),
            "securityGroups": draw(SG_LISTS),
        },
        "services": [{**draw(SERVICES), "name": name} for name in names],
    }
    if draw(st.booleans()):
        spec["namespace"]["description"] = draw(safe_text)
    if draw(st.booleans()):
        spec["network"]["assignPublicIp"] = draw(one(["ENABLED", "DISABLED"]))
    if draw(ints(0, 3)) == 0:
        spec["tags"] = draw(TAGS)
    if draw(ints(0, 3)) == 0:
        spec["logRetentionDays"] = draw(one([None, *LOG_RETENTION_DAYS]))
    for role in ("executionRoleArn", "taskRoleArn"):
        choice = draw(one(["absent", "null", "arn"]))
        if choice != "absent":
            spec[role] = None if choice == "null" else draw(role_arns)
    return spec


# --------------------------------------------------------------------------------------------
# Bad values, per kind of field

#: JSON values of each type, to put where another type is expected.
JSON_OF_TYPE: dict[str, st.SearchStrategy[Any]] = {
    "string": one(["x", "2", "256", "", "true", "null"]),
    "int": ints(-(10**6), 10**6),
    "float": one([2.5, 80.0, -1.5, 1e300, 0.1]),
    "bool": st.booleans(),
    "null": st.none(),
    "list": st.lists(ints(0, 9) | one(["web", "x"]), max_size=2),
    "object": st.dictionaries(one(["a", "name", "value"]), ints(0, 9), max_size=2),
}
NOT_A = {
    "string": ("int", "float", "bool", "null", "list", "object"),
    "optional_string": ("int", "float", "bool", "list", "object"),  # null is the default there
    "int": ("string", "float", "bool", "null", "list", "object"),
    "units": ("float", "bool", "null", "list", "object"),  # "256" and 256 are both accepted
    "object": ("string", "int", "float", "bool", "null", "list"),
    "list": ("string", "int", "float", "bool", "null", "object"),
    "optional_object": ("string", "int", "float", "bool", "list"),
    "optional_list": ("string", "int", "float", "bool", "object"),
    "optional_int": ("string", "float", "bool", "list", "object"),
    "bool": ("string", "int", "float", "null", "list", "object"),
}


@cache
def wrong_type(of: str) -> st.SearchStrategy[Any]:
    return st.one_of(*(JSON_OF_TYPE[t] for t in NOT_A[of]))


ANY_JSON = st.one_of(*JSON_OF_TYPE.values())


unicode_letters = st.characters(
    min_codepoint=0x80, exclude_characters=";", exclude_categories=["Cs", "Cc", "Zl", "Zp"]
)


@st.composite
def bad_labels(draw: st.DrawFn, max_length: int = 63) -> str:
    """A string that is not a lower-case DNS label of at most max_length characters."""
    label = draw(dns_labels)
    at = draw(ints(0, len(label)))
    kind = draw(
        one(["upper", "underscore", "leading-hyphen", "trailing-hyphen", "too-long", "empty",
             "unicode", "dot", "space", "trailing-newline", "only-hyphen"]
        )
    )  # fmt: skip
    if kind == "upper":
        return label[:at] + draw(one(string.ascii_uppercase)) + label[at:]
    if kind == "underscore":
        return label[:at] + "_" + label[at:]
    if kind == "leading-hyphen":
        return "-" + label
    if kind == "trailing-hyphen":
        return label + "-"
    if kind == "too-long":
        return draw(st.text(ALNUM, min_size=max_length + 1, max_size=max_length + 40))
    if kind == "empty":
        return ""
    if kind == "unicode":
        return label[:at] + draw(unicode_letters) + label[at:]
    if kind == "dot":
        return label[:at] + "." + label[at:] if 0 < at < len(label) else label + ".x"
    if kind == "space":
        return label[:at] + " " + label[at:]
    if kind == "trailing-newline":
        return label + "\n"
    return "-"


BAD_LABELS = bad_labels()


@st.composite
def bad_namespace_names(draw: st.DrawFn) -> str:
    """Not a DNS name."""
    labels = draw(st.lists(short_labels, min_size=1, max_size=4))
    kind = draw(
        one(["empty", "empty-label", "leading-dot", "too-long", "label-too-long",
             "trailing-newline", "bad-label", "only-dots"]
        )
    )  # fmt: skip
    if kind == "empty":
        return ""
    if kind == "empty-label":
        at = draw(ints(0, len(labels) - 1))
        dots = draw(one(["..", "..."]))
        return ".".join(labels[: at + 1]) + dots + ".".join(labels[at + 1 :])
    if kind == "leading-dot":
        return "." + ".".join(labels)
    if kind == "too-long":  # valid labels, more than 253 characters in all
        label = draw(st.text(ALNUM, min_size=40, max_size=63))
        count = 253 // (len(label) + 1) + 1 + draw(ints(0, 2))
        return ".".join([label] * count)
    if kind == "label-too-long":
        labels[draw(ints(0, len(labels) - 1))] = draw(st.text(ALNUM, min_size=64, max_size=100))
        return ".".join(labels)
    if kind == "trailing-newline":
        return ".".join(labels) + "\n"
    if kind == "bad-label":
        labels[draw(ints(0, len(labels) - 1))] = draw(
            BAD_LABELS.filter(lambda s: s and "." not in s and s != "\n")
        )
        return ".".join(labels)
    return draw(one([".", "..", "..."]))


BAD_NAMESPACE_NAMES = bad_namespace_names()


@cache
def bad_ids(prefix: str) -> st.SearchStrategy[str]:
    """Not an AWS id of this prefix (ids are prefix-, then 8 or 17 lower-case hex digits)."""
    return st.one_of(
        st.text(HEX, min_size=1, max_size=7).map(lambda h: f"{prefix}-{h}"),  # too short
        st.text(HEX, min_size=18, max_size=30).map(lambda h: f"{prefix}-{h}"),  # too long
        st.text(HEX.upper(), min_size=8, max_size=8)
        .filter(lambda h: h != h.lower())
        .map(lambda h: f"{prefix}-{h}"),  # upper case
        st.text("ghijklmnxyz", min_size=8, max_size=8).map(lambda h: f"{prefix}-{h}"),  # not hex
        st.text(HEX, min_size=17, max_size=17).map(lambda h: f"{prefix}{h}"),  # no hyphen
        one(["vpc", "subnet", "sg", "igw", "eni"])
        .filter(lambda p: p != prefix)
        .map(lambda p: f"{p}-0123456789abcdef0"),  # another resource
        st.just(""),
        st.just(f" {prefix}-0123456789abcdef0"),
        st.just(f"{prefix}-0123456789abcdef0\n"),
    )


bad_role_arns = st.one_of(
    st.just(""),
    st.just("ecsTaskRole"),  # a name, not an ARN
    st.just("arn:aws:iam::12345678901:role/ecsTaskRole"),  # 11-digit account
    st.just("arn:aws:iam::1234567890123:role/ecsTaskRole"),  # 13-digit account
    st.just("arn:aws:iam::123456789012:user/ecsTaskRole"),  # a user
    st.just("arn:aws:iam::123456789012:role/"),  # no name
    st.just("arn:aws:iam::123456789012:role/ecs task role"),  # space
    st.just("arn:aws:sts::123456789012:assumed-role/ecsTaskRole/x"),
    st.just("arn:aws:s3:::bucket"),
    st.just("ARN:AWS:IAM::123456789012:ROLE/ecsTaskRole"),
    st.just("arn:azure:iam::123456789012:role/ecsTaskRole"),
    role_arns.map(lambda arn: arn + "\n"),
)
bad_clusters = st.one_of(
    st.just(""),
    st.just("workshop cluster"),
    st.just("workshop.cluster"),
    st.just("a" * 256),
    st.just("arn:aws:ecs:us-east-1:123456789012:service/workshop-cluster"),
    st.just("arn:aws:ecs:us-east-1:12345:cluster/workshop-cluster"),
    st.just("arn:aws:ecs:us-east-1:123456789012:cluster/"),
    cluster_names.map(lambda name: name + "\n"),
    cluster_names.map(lambda name: name + "/x"),
)


@cache
def _typos(known: tuple[str, ...], extra: tuple[str, ...]) -> st.SearchStrategy[str]:
    """Near misses of the known field names (and other names): never a known name."""

    @st.composite
    def typo(draw: st.DrawFn) -> str:
        word = draw(one(known))
        kind = draw(one(["lower", "upper", "drop", "double", "swap", "snake", "plural"]))
        at = draw(ints(0, len(word) - 2))
        if kind == "lower":
            return word.lower()
        if kind == "upper":
            return word[0].upper() + word[1:]
        if kind == "drop":
            return word[:at] + word[at + 1 :]
        if kind == "double":
            return word[: at + 1] + word[at:]
        if kind == "swap":
            return word[:at] + word[at + 1] + word[at] + word[at + 2 :]
        if kind == "snake":
            return "".join(f"_{c.lower()}" if c.isupper() else c for c in word)
        return word + "s"

    return (
        st.one_of(typo(), one(extra), env_var_names)
        .filter(lambda name: name not in known)
    )  # fmt: skip


# --------------------------------------------------------------------------------------------
# Mutations


def _set(kind: str, path: Path, value: Any, *, exact: bool = True, fragment: str = "") -> Mutation:
    return Mutation(kind, path, ((path, value),), exact=exact, fragment=fragment)


@st.composite
def mutations(draw: st.DrawFn, spec: dict[str, Any]) -> Mutation:
    """One mutation of the valid spec ``spec``."""
    n = len(spec["services"])
    i = draw(ints(0, n - 1))
    svc: Path = ("services", i)
    service = spec["services"][i]
    kind = draw(one(MUTATION_KINDS))

    if kind == "wrong-type":
        path, of = draw(
            one(
                [
                    (("environment",), "string"),
                    (("namespace",), "object"),
                    (("namespace", "name"), "string"),
                    (("namespace", "vpcId"), "string"),
                    (("namespace", "description"), "string"),
                    (("cluster",), "string"),
                    (("network",), "object"),
                    (("network", "subnets"), "list"),
                    (("network", "securityGroups"), "list"),
                    (("network", "subnets", 0), "string"),
                    (("network", "securityGroups", 0), "string"),
                    (("network", "assignPublicIp"), "string"),
                    (("executionRoleArn",), "optional_string"),
                    (("taskRoleArn",), "optional_string"),
                    (("services",), "list"),
                    (svc, "object"),
                    ((*svc, "name"), "string"),
                    ((*svc, "image"), "string"),
                    ((*svc, "port"), "int"),
                    ((*svc, "desiredCount"), "int"),
                    ((*svc, "dnsTtl"), "int"),
                    ((*svc, "cpu"), "units"),
                    ((*svc, "memory"), "units"),
                    ((*svc, "environment"), "object"),
                ]
            )
        )
        value = draw(wrong_type(of))
        if path[-1] == "environment" and len(path) > 1 and isinstance(value, dict):
            value = "x"  # a dict is the right type for a service's environment
        return _set("wrong-type", path, value)

    if kind == "env-value-type":
        key = draw(env_var_names)
        value = draw(wrong_type("string"))
        env = {**service.get("environment", {}), key: value}
        return Mutation("wrong-type", (*svc, "environment", key), (((*svc, "environment"), env),))

    if kind == "missing":
        path = draw(
            one(
                [
                    ("environment",),
                    ("namespace",),
                    ("namespace", "name"),
                    ("namespace", "vpcId"),
                    ("cluster",),
                    ("network",),
                    ("network", "subnets"),
                    ("network", "securityGroups"),
                    ("services",),
                    (*svc, "name"),
                    (*svc, "image"),
                    (*svc, "port"),
                ]
            )
        )
        return _set("missing", path, DELETE, fragment="required field is missing")

    if kind == "unknown-field":
        parent, known, extra = draw(
            one(
                [
                    ((), TOP_FIELDS, KNOWN_TYPOS[()]),
                    (("namespace",), NAMESPACE_FIELDS, KNOWN_TYPOS[("namespace",)]),
                    (("network",), NETWORK_FIELDS, KNOWN_TYPOS[("network",)]),
                    (svc, SERVICE_FIELDS, KNOWN_TYPOS["service"]),
                ]
            )
        )
        name = draw(_typos(known, extra))
        value = draw(ANY_JSON)
        return _set("unknown-field", (*parent, name), value, fragment="unknown field")

    if kind == "environment-name":
        label = draw(bad_labels() | environment_names.filter(bool).map(lambda s: s.ljust(41, "x")))
        return _set("dns-label", ("environment",), label)

    if kind == "service-name":
        return _set("dns-label", (*svc, "name"), draw(BAD_LABELS))

    if kind == "namespace-name":
        return _set("namespace-name", ("namespace", "name"), draw(BAD_NAMESPACE_NAMES))

    if kind == "duplicate-service-name":
        if n >= 2 and draw(st.booleans()):
            j = draw(ints(0, n - 1).filter(lambda j: j != i))
            name = spec["services"][j]["name"]
            changes: tuple[tuple[Path, Any], ...] = (((*svc, "name"), name),)
        else:
            name = service["name"]
            extra = copy.deepcopy(service)
            at = draw(ints(0, n))
            changes = ((("services",), [*spec["services"][:at], extra, *spec["services"][at:]]),)
        return Mutation(
            "duplicate-service-name", ("services",), changes, fragment=f"repeated: {name}"
        )

    if kind == "duplicate-network-entry":
        key = draw(one(["subnets", "securityGroups"]))
        items = spec["network"][key]
        repeated = draw(one(items))
        at = draw(ints(0, len(items)))
        value = [*items[:at], repeated, *items[at:]]
        return _set("duplicate-network-entry", ("network", key), value, fragment=repeated)

    if kind == "port":
        port = draw(one([0, 65536, -1, 10**12]) | ints(max_value=0) | ints(min_value=65536))  # fmt: skip
        return _set("out-of-range", (*svc, "port"), port)

    if kind == "desired-count":
        count = draw(one([-1, 1001, 2.5, "2", True, False]) | ints(max_value=-1) | ints(min_value=1001))  # fmt: skip
        return _set("out-of-range", (*svc, "desiredCount"), count)

    if kind == "dns-ttl":
        ttl = draw(one([-1, MAX_DNS_TTL + 1, 2**63]) | ints(max_value=-1) | ints(min_value=MAX_DNS_TTL + 1))  # fmt: skip
        return _set("out-of-range", (*svc, "dnsTtl"), ttl)

    if kind == "fargate-pair":
        if draw(ints(0, 4)) == 0:
            cpu = draw(one(NON_FARGATE_CPUS))
            memory = draw(one(ALL_MEMORIES))
            fragment = f"cpu {cpu} is not a Fargate size"
        else:
            cpu, memory = draw(one(INVALID_PAIRS))
            fragment = f"memory {memory} is not valid with cpu {cpu}"
        as_text = draw(st.booleans())
        return Mutation(
            "fargate-pair",
            svc,
            (
                ((*svc, "cpu"), str(cpu) if as_text else cpu),
                ((*svc, "memory"), str(memory) if as_text else memory),
            ),
            fragment=fragment,
        )

    if kind == "units-format":
        which = draw(one(["cpu", "memory"]))
        value = draw(one(["", "abc", "2.5", "-256", " 256", "256 ", "0x100", "1e3", "٢٥٦", "256MiB", "-1"]))  # fmt: skip
        return _set("units-format", (*svc, which), value, fragment=which)

    if kind == "oversized":
        what = draw(
            one(["services", "env-vars", "env-value", "env-name", "subnets", "security-groups",
                 "description", "image"]
            )
        )  # fmt: skip
        if what == "services":
            count = MAX_SERVICES + 1 + draw(ints(0, 20))
            many = [{"name": f"svc-{k}", "image": "nginx", "port": 80} for k in range(count)]
            return _set("oversized", ("services",), many, fragment="at most 500")
        if what == "env-vars":
            count = 201 + draw(ints(0, 60))
            env = {f"VAR_{k}": "v" for k in range(count)}
            return _set("oversized", (*svc, "environment"), env, fragment="at most 200")
        if what == "env-value":
            key = draw(env_var_names)
            value = "x" * draw(ints(32769, 40000))
            env = {**service.get("environment", {}), key: value}
            return Mutation("oversized", (*svc, "environment", key), (((*svc, "environment"), env),))  # fmt: skip
        if what == "env-name":
            key = "V" * draw(ints(256, 300))
            env = {**service.get("environment", {}), key: "v"}
            return Mutation("oversized", (*svc, "environment", key), (((*svc, "environment"), env),), exact=False)  # fmt: skip
        if what in ("subnets", "security-groups"):
            key, prefix, limit = ("subnets", "subnet", 16) if what == "subnets" else ("securityGroups", "sg", 5)  # fmt: skip
            items = [f"{prefix}-{k:017x}" for k in range(limit + 1 + draw(ints(0, 5)))]
            return _set("oversized", ("network", key), items, fragment=f"at most {limit}")
        if what == "description":
            return _set("oversized", ("namespace", "description"), "d" * draw(ints(1025, 3000)))  # fmt: skip
        return _set("oversized", (*svc, "image"), "i" * draw(ints(2049, 5000)))

    if kind == "new-field-type":
        if draw(ints(0, 5)) == 0:
            path, of = draw(one([(("tags",), "object"), (("logRetentionDays",), "optional_int")]))
        else:
            name, of = draw(one(sorted(NEW_SERVICE_FIELDS.items())))
            path = (*svc, name)
        value = draw(wrong_type(of))
        if of == "list" and isinstance(value, str) and path[-1] in ("command", "entryPoint"):
            value = 1
        return _set("wrong-type", path, value, exact=False)

    if kind == "new-field-value":
        if draw(ints(0, 5)) == 0:
            which = draw(one(["tags", "logRetentionDays"]))
            path = (which,)
            value = draw(st.sampled_from(BAD_TAGS if which == "tags" else BAD_RETENTIONS))
            return _set("new-field-value", path, value, exact=False)
        name = draw(one(sorted(BAD_NEW_VALUES)))
        value = copy.deepcopy(draw(st.sampled_from(BAD_NEW_VALUES[name])))
        return _set("new-field-value", (*svc, name), value, exact=False)

    if kind == "new-field-combination":
        fields, fragment = draw(one(BAD_COMBINATIONS))
        fields = fields(service)
        changes = tuple(((*svc, key), value) for key, value in fields.items())
        return Mutation("new-field-combination", svc, changes, exact=False, fragment=fragment)

    if kind == "empty-list":
        path = draw(one([("services",), ("network", "subnets"), ("network", "securityGroups")]))  # fmt: skip
        return _set("empty-list", path, [], fragment="at least 1")

    if kind == "env-var-name":
        key = draw(one(["1ABC", "A-B", "A B", "", "É", "A.B", "9"]))
        env = {**service.get("environment", {}), key: "v"}
        return Mutation("env-var-name", (*svc, "environment", key), (((*svc, "environment"), env),), exact=False)  # fmt: skip

    if kind == "bad-id":
        which = draw(one(["vpc", "subnet", "sg"]))
        if which == "vpc":
            return _set("bad-id", ("namespace", "vpcId"), draw(bad_ids("vpc")), fragment="VPC id")
        key = "subnets" if which == "subnet" else "securityGroups"
        items = list(spec["network"][key])
        j = draw(ints(0, len(items) - 1))
        items[j] = draw(bad_ids(which))
        return Mutation("bad-id", ("network", key, j), ((("network", key), items),))

    if kind == "bad-arn":
        which = draw(one(["executionRoleArn", "taskRoleArn", "cluster"]))
        value = draw(bad_clusters if which == "cluster" else bad_role_arns)
        return _set("bad-arn", (which,), value)

    assert kind == "assign-public-ip", kind
    value = draw(one(["disabled", "enabled", "Enabled", "TRUE", "", "ENABLED ", "YES"]))
    return _set("bad-enum", ("network", "assignPublicIp"), value)


MUTATION_KINDS = (
    "wrong-type",
    "env-value-type",
    "missing",
    "unknown-field",
    "environment-name",
    "service-name",
    "namespace-name",
    "duplicate-service-name",
    "duplicate-network-entry",
    "port",
    "desired-count",
    "dns-ttl",
    "fargate-pair",
    "units-format",
    "oversized",
    "empty-list",
    "env-var-name",
    "bad-id",
    "bad-arn",
    "assign-public-ip",
    "new-field-type",
    "new-field-value",
    "new-field-combination",
)

_SECRET = "arn:aws:secretsmanager:us-east-1:111122223333:secret:db-AbCdEf"
_HEALTH = {"command": ["CMD-SHELL", "true"]}
BAD_TAGS: list[Any] = [
    {"aws:created": "x"},
    {"envbuild:environment": "x"},
    {"AWS:team": "x"},
    {"team*": "x"},
    {"team": "a#b"},
    {"": "x"},
    {"k" * 129: "x"},
    {"k": "v" * 257},
    {f"t{k}": "v" for k in range(48)},
]
BAD_RETENTIONS: list[Any] = [0, 2, 15, 31, 366, 4000, -1, 3654]
#: Bad values of each of issue 17's fields of a service, alone.
BAD_NEW_VALUES: dict[str, list[Any]] = {
    "command": [[1], ["x" * 8193], [None]],
    "entryPoint": [[2], [["sh"]]],
    "secrets": [
        {"DB": "arn:aws:s3:::bucket"},
        {"DB": "db-password"},
        {"1DB": _SECRET},
        {"DB": "arn:aws:secretsmanager:us-east-1:12345:secret:db"},
        {"DB": "arn:aws:ssm:us-east-1:111122223333:parameter"},
    ],
    "healthCheck": [
        {"command": ["ls"]},
        {"command": ["RUN", "ls"]},
        {"command": ["CMD", "ls"], "interval": 4},
        {"command": ["CMD", "ls"], "interval": 301},
        {"command": ["CMD", "ls"], "timeout": 1},
        {"command": ["CMD", "ls"], "timeout": 61},
        {"command": ["CMD", "ls"], "retries": 0},
        {"command": ["CMD", "ls"], "retries": 11},
        {"command": ["CMD", "ls"], "startPeriod": -1},
        {"command": ["CMD", "ls"], "startPeriod": 301},
        {"interval": 30},
        {"command": ["CMD", "ls"], "intervall": 30},
    ],
    "sidecars": [
        [{"name": "bad name", "image": "x"}],
        [{"image": "x"}],
        [{"name": "s", "image": ""}],
        [{"name": "s", "image": "x", "port": 0}],
        [{"name": "s", "image": "x", "memory": 5}],
        [{"name": "s", "image": "x", "essential": "yes"}],
        [{"name": "s", "image": "x", "dependsOn": [{"container": "web", "condition": "READY"}]}],
        [{"name": "s", "image": "x"}, {"name": "s", "image": "y"}],
        [{"name": "s", "image": "x", "environment": {"A": "1"}, "secrets": {"A": _SECRET}}],
        [{"name": f"s{k}", "image": "x"} for k in range(10)],
    ],
    "dependsOn": [
        [{"container": "x", "condition": "READY"}],
        [{"container": "bad name", "condition": "START"}],
        [{"container": "x"}],
    ],
    "cpuArchitecture": ["arm64", "AMD64", "x86", "ARM"],
    "capacityProviders": [
        [],
        [{"capacityProvider": "EC2"}],
        [{"capacityProvider": "FARGATE", "weight": -1}],
        [{"capacityProvider": "FARGATE", "weight": 1001}],
        [{"capacityProvider": "FARGATE", "base": 100001}],
        [{"capacityProvider": "FARGATE"}, {"capacityProvider": "FARGATE"}],
        [{"capacityProvider": "FARGATE", "weight": 0}],
        [{"capacityProvider": "FARGATE", "base": 1}, {"capacityProvider": "FARGATE_SPOT", "base": 2}],
    ],
    "dnsRecords": [["SRV"], ["A", "A"], ["AAAA"], [], ["A", "SRV", "A"]],
    "deployment": [
        {"minimumHealthyPercent": 101},
        {"maximumPercent": 99},
        {"maximumPercent": 201},
        {"minimumHealthyPercent": 100, "maximumPercent": 100},
        {"minimumHealthyPercent": -1},
    ],
    "tags": BAD_TAGS,
    "logRetentionDays": BAD_RETENTIONS,
    "platformVersion": ["latest", "1.4", "v1.4.0", ""],
    "network": [{"subnets": []}, {"subnets": ["subnet-x"], "securityGroups": ["sg-01234567"]}],
    "autoscaling": [
        {"minCount": 3, "maxCount": 2, "targetCpuPercent": 50},
        {"minCount": 1, "maxCount": 2, "targetCpuPercent": 0},
        {"minCount": 1, "maxCount": 2, "targetCpuPercent": 101},
        {"minCount": 1, "maxCount": 2},
        {"minCount": 1, "maxCount": 2, "targetCpuPercent": 50, "targetMemoryPercent": 0},
    ],
    "overrides": [
        {"container": {"image": "x"}},
        {"container": {"bogus": 1}},
        {"container": {"stopTimeout": "30"}},
        {"container": {"ulimits": [{"name": "nofile"}]}},
        {"service": {"launchType": "EC2"}},
        {"service": {"serviceRegistries": []}},
        {"service": {"healthCheckGracePeriodSeconds": "10"}},
        {"taskDefinition": {"pidMode": 3}},
        {"taskDefinition": {"family": "x"}},
        {"cluster": {}},
    ],
}  # fmt: skip


def _combination(fields: dict[str, Any]) -> Any:
    return lambda service: fields


#: Values valid alone, invalid together (checked once a service's fields are each valid).
BAD_COMBINATIONS: list[tuple[Any, str]] = [
    (_combination({"cpuArchitecture": "ARM64", "capacityProviders": [{"capacityProvider": "FARGATE_SPOT"}]}), "FARGATE_SPOT"),
    (_combination({"cpuArchitecture": "ARM64", "platformVersion": "1.3.0"}), "1.4.0"),
    (_combination({"sidecars": [], "dependsOn": [{"container": "nobody", "condition": "START"}]}), "no container nobody"),
    (lambda s: {"dependsOn": [{"container": s["name"], "condition": "START"}]}, "itself"),
    (_combination({"sidecars": [{"name": "s", "image": "x"}], "dependsOn": [{"container": "s", "condition": "SUCCESS"}]}), "essential"),
    (_combination({"healthCheck": None, "sidecars": [{"name": "s", "image": "x", "essential": False, "dependsOn": []}], "dependsOn": [{"container": "s", "condition": "HEALTHY"}]}), "HEALTHY needs"),
    (lambda s: {"sidecars": [{"name": s["name"], "image": "x"}], "dependsOn": []}, "own container name"),
    (lambda s: {"sidecars": [{"name": "s", "image": "x", "port": s["port"]}], "dependsOn": []}, "already the port"),
    (lambda s: {"environment": {"DB": "x"}, "secrets": {"DB": _SECRET}}, "both"),
    (lambda s: {"cpu": "256", "memory": "512", "sidecars": [{"name": "s", "image": "x", "memory": 512}], "dependsOn": []}, "MiB"),
    (lambda s: {"cpu": "256", "memory": "512", "sidecars": [{"name": "s", "image": "x", "cpu": 257}], "dependsOn": []}, "CPU units"),
    (lambda s: {"desiredCount": 9, "autoscaling": {"minCount": 1, "maxCount": 3, "targetCpuPercent": 50}}, "autoscaling"),
]  # fmt: skip


@st.composite
def bad_specs(draw: st.DrawFn, max_mutations: int = 4, max_services: int = 8) -> BadSpec:
    """A valid spec with 1..max_mutations non-overlapping mutations applied."""
    spec = draw(valid_specs(max_services=max_services))
    wanted = draw(ints(1, max_mutations))
    chosen: list[Mutation] = []
    for _ in range(wanted * 3):
        if len(chosen) == wanted:
            break
        mutation = draw(mutations(spec))
        if not any(mutation.overlaps(other) for other in chosen):
            chosen.append(mutation)
    return BadSpec(apply(spec, chosen), chosen)
