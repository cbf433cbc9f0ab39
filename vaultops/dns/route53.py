"""Amazon Route 53 through boto3.

    dns_provider:
      type: route53
      hosted_zone_id: Z123...     # optional: found from the name otherwise
      private_zone: false         # which zone to pick when a name has both
      region: us-east-1
      profile: ops                # optional AWS profile; credentials never in vaultops.yaml
      endpoint_url: http://127.0.0.1:5000   # optional (moto, LocalStack)
      insync_timeout: 300
      max_attempts: 8             # tries per API call under throttling (botocore standard retry mode)

Only this renewal's own value is ever added or removed: a change replaces
the record set with DELETE(old exact set) + UPSERT(old values + ours) in one
batch, so if another renewal changed the set in between, Route 53 rejects the
batch (InvalidChangeBatch) and we read again. Throttling and
PriorRequestNotComplete are retried by botocore's standard retry mode
(jittered exponential backoff, a client-wide retry quota) for up to
`max_attempts` tries (default 8: Route 53 allows five requests a second per
account, and renewals of many nodes share that).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from vaultops.dns.base import DNSProvider, normalise
from vaultops.errors import DNSError
from vaultops.retry import TimedOut, poll, retry

log = logging.getLogger("vaultops.dns.route53")

THROTTLE_CODES = frozenset({"Throttling", "ThrottlingException", "PriorRequestNotComplete",
                            "RequestLimitExceeded", "TooManyRequestsException"})
# Real Route 53 answers InvalidChangeBatch to a stale DELETE; moto answers InvalidInput.
CONFLICT_CODES = frozenset({"InvalidChangeBatch", "InvalidInput"})
MAX_ATTEMPTS = 8        # botocore's total_max_attempts for throttling and transient errors
MAX_CONFLICTS = 6


class Route53Provider(DNSProvider):
    kind = "route53"

    def __init__(self, settings: Mapping[str, Any], *, client: Any = None, **kwargs: Any) -> None:
        super().__init__(settings, **kwargs)
        self.client = client or self._make_client()
        self.insync_timeout = float(self.settings.get("insync_timeout", 300))
        self._zone_ids: dict[str, str] = {}

    def _make_client(self) -> Any:
        import boto3
        from botocore.config import Config as BotoConfig

        session = boto3.session.Session(profile_name=self.settings.get("profile"),
                                        region_name=self.settings.get("region", "us-east-1"))
        attempts = int(self.settings.get("max_attempts", MAX_ATTEMPTS))
        return session.client("route53", endpoint_url=self.settings.get("endpoint_url"),
                              config=BotoConfig(retries={"total_max_attempts": attempts, "mode": "standard"}))

    # -- the two primitives ---------------------------------------------------
    def _add_txt(self, name: str, value: str) -> None:
        self._change(name, lambda values: values | {value} if value not in values else None)

    def _remove_txt(self, name: str, value: str) -> None:
        self._change(name, lambda values: values - {value} if value in values else None)

    # -- read-modify-write with optimistic concurrency -----------------------
    def _change(self, name: str, edit: Callable[[set[str]], set[str] | None]) -> None:
        zone_id = self.hosted_zone_id(name)
        try:
            retry(lambda: self._change_once(zone_id, name, edit), on=(_Conflict,), attempts=MAX_CONFLICTS,
                  first=0.1, cap=0.3, give_up=lambda c: isinstance(c, _Conflict) and c.final,
                  clock=self._clock, sleep=self._sleep)
        except _Conflict as conflict:
            if conflict.final:
                raise conflict.error from None  # the set did not move: a real refusal
            raise DNSError(f"route53: TXT set at {name} kept changing underneath us",
                           hint="too many concurrent renewals for one name; run again") from None

    def _change_once(self, zone_id: str, name: str, edit: Callable[[set[str]], set[str] | None]) -> None:
        current = self._current(zone_id, name)
        values = {_unquote(r["Value"]) for r in current["ResourceRecords"]} if current else set()
        wanted = edit(values)
        if wanted is None:
            return  # already as wanted
        changes = []
        if current:
            changes.append({"Action": "DELETE", "ResourceRecordSet": current})
        if wanted:
            # DELETE(old) guards against a concurrent change; the new set goes in with CREATE when
            # there was none (fails if someone created it meanwhile) and UPSERT after the DELETE
            # (moto wrongly rejects a CREATE it has journalled before, even after a DELETE).
            changes.append({"Action": "UPSERT" if current else "CREATE", "ResourceRecordSet": {
                "Name": normalise(name) + ".", "Type": "TXT", "TTL": self.ttl,
                "ResourceRecords": [{"Value": f'"{v}"'} for v in sorted(wanted)]}})
        try:
            resp = self._call("change_resource_record_sets", HostedZoneId=zone_id,
                              ChangeBatch={"Comment": "vaultops acme dns-01", "Changes": changes})
        except _Conflict as conflict:
            conflict.final = self._current(zone_id, name) == current
            if not conflict.final:
                log.debug("route53 %s changed underneath us; reading again", name)
            raise
        self.wait_insync(resp["ChangeInfo"]["Id"])

    def _current(self, zone_id: str, name: str) -> dict[str, Any] | None:
        resp = self._call("list_resource_record_sets", HostedZoneId=zone_id,
                          StartRecordName=normalise(name) + ".", StartRecordType="TXT", MaxItems="1")
        for rrset in resp.get("ResourceRecordSets", []):
            if normalise(rrset["Name"]) == normalise(name) and rrset["Type"] == "TXT":
                return {k: rrset[k] for k in ("Name", "Type", "TTL", "ResourceRecords") if k in rrset}
        return None

    def wait_insync(self, change_id: str) -> None:
        """Poll GetChange until INSYNC (moto says INSYNC at once; real Route 53 says PENDING first)."""
        status = ""

        def insync() -> bool | None:
            nonlocal status
            status = self._call("get_change", Id=change_id)["ChangeInfo"]["Status"]
            return True if status == "INSYNC" else None
        try:
            poll(insync, timeout=self.insync_timeout, interval=0.5, backoff=1.5, cap=5.0, what="route53 change",
                 tolerate=(), clock=self._clock, sleep=self._sleep)
        except TimedOut:
            raise DNSError(f"route53 change {change_id} still {status} after {self.insync_timeout:g}s",
                           hint="Route 53 is slow right now; run the renewal again later") from None

    def hosted_zone_id(self, name: str) -> str:
        configured = self.settings.get("hosted_zone_id")
        if configured:
            return str(configured).rsplit("/", 1)[-1]
        labels = normalise(name).split(".")
        for i in range(len(labels) - 1):
            candidate = ".".join(labels[i:])
            if candidate in self._zone_ids:
                return self._zone_ids[candidate]
            zone_id = self._zone_named(candidate)
            if zone_id:
                self._zone_ids[candidate] = zone_id
                return zone_id
        raise DNSError(f"route53: no hosted zone holds {name}",
                       hint="set tls.dns_provider.hosted_zone_id or check the AWS account")

    def _zone_named(self, candidate: str) -> str | None:
        private = bool(self.settings.get("private_zone", False))
        resp = self._call("list_hosted_zones_by_name", DNSName=candidate + ".", MaxItems="10")
        for zone in resp.get("HostedZones", []):
            if normalise(zone["Name"]) != candidate:
                continue
            if bool(zone.get("Config", {}).get("PrivateZone", False)) == private:
                return str(zone["Id"]).rsplit("/", 1)[-1]
        return None

    # -- one place that turns botocore failures into ours ---------------------
    def _call(self, op: str, **kwargs: Any) -> Any:
        """One API call (botocore retries throttling itself), its failures turned into DNSError."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return getattr(self.client, op)(**kwargs)
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            error = DNSError(f"route53 {op}: {code}: {exc.response.get('Error', {}).get('Message', '')}",
                             hint=_hint(code))
            if code in CONFLICT_CODES and op == "change_resource_record_sets":
                raise _Conflict(error) from exc
            raise error from exc
        except BotoCoreError as exc:
            raise DNSError(f"route53 {op}: {exc}", hint="check AWS credentials, region and endpoint_url") from exc


class _Conflict(Exception):
    """The change batch was refused: maybe the set changed between our read and our change."""

    def __init__(self, error: DNSError) -> None:
        super().__init__(str(error))
        self.error = error
        self.final = False   # the set did not move between our read and the refusal: a real refusal


def _unquote(value: str) -> str:
    return "".join(part for part in value.strip().split('"') if part.strip())


def _hint(code: str) -> str:
    if code in THROTTLE_CODES:
        return "Route 53 kept throttling; run again later or spread renewals out"
    if code in ("AccessDenied", "AccessDeniedException"):
        return "the AWS identity needs route53:ChangeResourceRecordSets, ListResourceRecordSets, GetChange"
    return "see the Route 53 error above"
