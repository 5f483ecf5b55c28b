"""Issue 15 item 4: the DNS probe's shell script, run for real: busybox's sh, nslookup, awk,
sort and tr (the probe image is busybox) against a DNS server this test serves on 127.0.0.1.

busybox's nslookup takes the server as its second argument, "host:port" included; the script
passes ``$ENVBUILD_PROBE_RESOLVER`` there (unset in the task: the VPC resolver).
"""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from dnslib import QTYPE, RCODE, RR, A
from dnslib.server import BaseResolver, DNSServer

from envbuild_lambda.steps.probe import NAMES_VARIABLE, RESOLVER_VARIABLE, SCRIPT, parse_log

BUSYBOX = shutil.which("busybox")
APPLETS = ("sh", "nslookup", "awk", "sort", "tr")
ANSWERS = {"web.workshop.local.": ["10.0.3.4", "10.0.4.4"], "db.workshop.local.": ["10.0.3.6"]}
SLOW = "slow.workshop.local."


class Zone(BaseResolver):  # type: ignore[misc]
    """A answers for ANSWERS, no answer (a timeout) for SLOW, NXDOMAIN for any other name."""

    def resolve(self, request: Any, handler: Any) -> Any:
        reply = request.reply()
        name = str(request.q.qname)
        if name == SLOW:
            time.sleep(12)  # longer than busybox nslookup waits (about 5 s with its retry)
        elif name in ANSWERS:
            for ip in ANSWERS[name]:
                reply.add_answer(RR(request.q.qname, QTYPE.A, rdata=A(ip), ttl=60))
        else:
            reply.header.rcode = RCODE.NXDOMAIN
        return reply


@pytest.fixture(scope="module")
def resolver() -> Iterator[str]:
    server = DNSServer(Zone(), port=0, address="127.0.0.1", logger=_Quiet())
    server.start_thread()
    try:
        yield f"127.0.0.1:{server.server.server_address[1]}"
    finally:
        server.stop()


class _Quiet:
    def __getattr__(self, name: str) -> Any:
        return lambda *args, **kwargs: None


@pytest.fixture(scope="module")
def applets(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A PATH holding only busybox's applets (as in the busybox image)."""
    assert BUSYBOX is not None, "busybox is required: `make system-deps`"
    directory = tmp_path_factory.mktemp("busybox")
    for applet in APPLETS:
        (directory / applet).symlink_to(BUSYBOX)
    return directory


def run_probe(applets: Path, resolver: str, names: list[str]) -> tuple[int, list[str]]:
    """The task's command: entryPoint ["sh", "-c"], command [SCRIPT]."""
    done = subprocess.run(  # noqa: S603 - our own script, busybox from PATH lookup above
        [str(applets / "sh"), "-c", SCRIPT],
        env={"PATH": str(applets), NAMES_VARIABLE: " ".join(names), RESOLVER_VARIABLE: resolver},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return done.returncode, done.stdout.splitlines()


def test_a_name_that_resolves_is_ok_with_each_answer(applets: Path, resolver: str) -> None:
    code, lines = run_probe(applets, resolver, ["web.workshop.local", "db.workshop.local"])
    assert lines == [
        "PROBE web.workshop.local OK 10.0.3.4 10.0.4.4 ",
        "PROBE db.workshop.local OK 10.0.3.6 ",
    ]
    assert code == 0
    assert parse_log(lines) == {
        "web.workshop.local": ["10.0.3.4", "10.0.4.4"],
        "db.workshop.local": ["10.0.3.6"],
    }


def test_an_nxdomain_fails_and_the_resolver_is_not_taken_for_an_answer(
    applets: Path, resolver: str
) -> None:
    code, lines = run_probe(applets, resolver, ["web.workshop.local", "gone.workshop.local"])
    assert lines == [
        "PROBE web.workshop.local OK 10.0.3.4 10.0.4.4 ",
        "PROBE gone.workshop.local FAIL",
    ]
    assert code == 1
    assert parse_log(lines)["gone.workshop.local"] is None


def test_a_timeout_fails(applets: Path, resolver: str) -> None:
    code, lines = run_probe(applets, resolver, [SLOW.rstrip(".")])
    assert lines == ["PROBE slow.workshop.local FAIL"]
    assert code == 1
