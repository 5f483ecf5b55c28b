"""Route 53 side of Cloud Map: the hosted zone of a DNS namespace and the records of instances."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from envbuild_emulator.moto_internals import lookup

if TYPE_CHECKING:
    from moto.route53.models import FakeZone, Route53Backend

__all__ = ["InstanceRecord", "Route53"]

# Instance attribute that carries the value of each record type Cloud Map maintains.
# https://docs.aws.amazon.com/cloud-map/latest/api/API_RegisterInstance.html#cloudmap-RegisterInstance-request-Attributes
_VALUE_ATTRIBUTE = {"A": "AWS_INSTANCE_IPV4", "AAAA": "AWS_INSTANCE_IPV6"}


@dataclass(frozen=True)
class InstanceRecord:
    """One record set Cloud Map made for one instance (so it can be removed again)."""

    zone_id: str
    name: str
    type: str
    set_identifier: str


def fqdn(name: str) -> str:
    return name if name.endswith(".") else f"{name}."


class Route53:
    """Thin, typed access to moto's Route 53 backend of one account."""

    def __init__(self, account_id: str, partition: str) -> None:
        backends = lookup("moto.route53.models", "route53_backends")
        self.backend: Route53Backend = backends[account_id][partition]

    def private_zone_in_vpc(self, name: str, vpc_id: str) -> FakeZone | None:
        """A private hosted zone called ``name`` already associated with ``vpc_id``."""
        wanted = fqdn(name)
        for zone in self.backend.zones.values():
            if (
                zone.private_zone
                and fqdn(zone.name) == wanted
                and any(vpc.get("vpc_id") == vpc_id for vpc in zone.vpcs)
            ):
                return zone
        return None

    def create_zone(
        self,
        name: str,
        *,
        private: bool,
        vpc_id: str | None,
        vpc_region: str | None,
        comment: str,
        caller_reference: str,
    ) -> FakeZone:
        return self.backend.create_hosted_zone(
            fqdn(name),
            private_zone=private,
            caller_reference=caller_reference,
            vpcid=vpc_id if private else None,
            vpcregion=vpc_region if private else None,
            comment=comment,
        )

    def delete_zone(self, zone_id: str) -> None:
        zone = self.backend.zones.get(zone_id.replace("/hostedzone/", ""))
        if zone is None:
            return
        # Cloud Map removes its own records before it deletes the zone.
        zone.rrsets = [rrset for rrset in zone.rrsets if rrset.type in ("NS", "SOA")]
        self.backend.delete_hosted_zone(zone.id)

    def put_instance_records(
        self,
        zone_id: str,
        record_name: str,
        dns_config: dict[str, Any],
        instance_id: str,
        attributes: dict[str, str],
    ) -> list[InstanceRecord]:
        """Create (or replace) the record sets of one instance, as Cloud Map does.

        One record set per instance and record type, SetIdentifier = instance id; MULTIVALUE
        routing sets MultiValueAnswer, WEIGHTED sets Weight 1.
        https://docs.aws.amazon.com/cloud-map/latest/api/API_DnsConfig.html
        """
        zone = self.backend.zones.get(zone_id.replace("/hostedzone/", ""))
        if zone is None:
            return []
        routing = dns_config.get("RoutingPolicy") or "MULTIVALUE"
        made: list[InstanceRecord] = []
        for record in dns_config.get("DnsRecords") or []:
            rtype = str(record.get("Type"))
            value = attributes.get(_VALUE_ATTRIBUTE.get(rtype, ""))
            if rtype == "SRV" and "AWS_INSTANCE_PORT" in attributes:
                # priority weight port service-hostname: the hostname is the instance id
                # prefixed to the service's name (API_DnsRecord, Type SRV).
                port = attributes["AWS_INSTANCE_PORT"]
                value = f"1 1 {port} {fqdn(f'{instance_id}.{record_name}')}"
            if value is None:
                continue
            name = fqdn(record_name)
            self._remove(zone, name, rtype, instance_id)
            rrset: dict[str, Any] = {
                "Name": name,
                "Type": rtype,
                "TTL": record.get("TTL", 60),
                "ResourceRecords": [value],
                "SetIdentifier": instance_id,
            }
            if routing == "WEIGHTED":
                rrset["Weight"] = 1
            else:
                rrset["MultiValueAnswer"] = True
            zone.add_rrset(rrset)
            # moto accepts a DELETE only of a record set its change journal holds: journal the
            # record as a CREATE request would, so that deleting it through the Route 53 API works
            # as on AWS (someone deleting Cloud Map's record by hand, as a test of verification).
            journal = {**rrset, "ResourceRecords": [{"Value": value}]}
            zone.rr_changes.append({"Action": "CREATE", "ResourceRecordSet": journal})
            made.append(InstanceRecord(zone.id, name, rtype, instance_id))
        return made

    def resolve_a(self, name: str, vpc_id: str) -> list[str] | None:
        """What the VPC resolver (AmazonProvidedDNS) answers for an A query of ``name`` from
        ``vpc_id``, from the private hosted zones associated with that VPC: the most specific
        zone that contains the name decides; None = NXDOMAIN / no private zone. A multivalue
        answer holds at most eight records.
        https://docs.aws.amazon.com/Route53/latest/DeveloperGuide/hosted-zone-private-considerations.html
        https://docs.aws.amazon.com/Route53/latest/DeveloperGuide/routing-policy-multivalue.html"""
        wanted = fqdn(name.lower())
        zones = [
            zone
            for zone in self.backend.zones.values()
            if zone.private_zone
            and any(vpc.get("vpc_id") == vpc_id for vpc in zone.vpcs)
            and (wanted == fqdn(zone.name) or wanted.endswith("." + fqdn(zone.name)))
        ]
        if not zones:
            return None
        zone = max(zones, key=lambda z: len(fqdn(z.name)))
        values = [
            str(value)
            for rrset in zone.rrsets
            if rrset.type == "A" and fqdn(str(rrset.name).lower()) == wanted
            for value in rrset.records
        ]
        return sorted(values)[:8] or None

    def remove_records(self, records: list[InstanceRecord]) -> None:
        for record in records:
            zone = self.backend.zones.get(record.zone_id.replace("/hostedzone/", ""))
            if zone is not None:
                self._remove(zone, record.name, record.type, record.set_identifier)

    @staticmethod
    def _remove(zone: FakeZone, name: str, rtype: str, set_identifier: str) -> None:
        zone.rrsets = [
            rrset
            for rrset in zone.rrsets
            if not (
                rrset.name == name
                and rrset.type == rtype
                and rrset.set_identifier == set_identifier
            )
        ]
