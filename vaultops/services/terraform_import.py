"""vaultops.yaml from `terraform output -json` of terraform/modules/vault-cluster.

The module exports one object output, `vaultops` (schema 1), that the root
module re-exports. Both forms are read:

    terraform output -json          > tf.json   # {"vaultops": {"value": {...}, ...}, ...}
    terraform output -json vaultops > tf.json   # just the object

What the output holds and where it lands in vaultops.yaml:

    cluster_name, storage, load_balancer  -> cluster.name / storage / load_balancer
    nodes[].name, fqdn, api_port          -> nodes[]: address https://FQDN:PORT,
                                             driver {type: ssh, host: FQDN, user: ssh_user}
    backup.bucket, prefix, region, kms    -> backup.sinks[0] {type: s3, ..., sse: aws:kms}
    dns.hosted_zone_id, region            -> tls.dns_provider {type: route53, ...}
    tls.cert_file, key_file, extra_names  -> tls.nodes.NODE {cert_file, key_file, names}
    tls.owner, group (when present)       -> tls.owner, tls.group
    tls.acme_directory                    -> tls.acme.directory
    server_config_file (optional)         -> nodes[].driver.config_file (the upgrade preflight reads
                                             each node's seal and plugin "kms" stanzas there)
    seal (optional)                       -> a header comment: type, form, plugin and its directory
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vaultops.errors import ConfigError, SecurityError

OUTPUT_NAME = "vaultops"
SCHEMA = 1
_REGENERATE = "run `terraform output -json > tf.json` in the root module that calls modules/vault-cluster"


@dataclass(frozen=True)
class ImportResult:
    """What was written, for the CLI to report."""

    path: Path | None
    text: str
    cluster_name: str
    node_names: tuple[str, ...]
    backup_url: str
    hosted_zone_id: str


def load_output(path: Path, *, name: str = OUTPUT_NAME) -> dict[str, Any]:
    """The module's output object from a `terraform output -json` file."""
    from vaultops.files.loader import CONFIG_CAP, parse_json, read_bytes

    data = parse_json(read_bytes(path, cap=CONFIG_CAP, what="terraform output", missing=_REGENERATE),
                      source=str(path))
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a JSON object", hint=_REGENERATE)
    if "schema" in data and "nodes" in data:  # `terraform output -json vaultops`
        return data
    if name not in data:
        found = ", ".join(sorted(data)) or "none"
        raise ConfigError(f"{path}: no output named {name!r} (outputs: {found})",
                          hint=f'add `output "{name}" {{ value = module.<name>.vaultops }}` to the root '
                               "module, apply, and export again")
    entry = data[name]
    if not isinstance(entry, dict) or not isinstance(entry.get("value"), dict):
        raise ConfigError(f"{path}: output {name!r} has no object value", hint=_REGENERATE)
    return entry["value"]


def build_config(out: dict[str, Any]) -> dict[str, Any]:
    """The vaultops.yaml mapping for one cluster output (schema 1)."""
    reader = _Reader(out, "vaultops")
    schema = reader.integer("schema")
    if schema != SCHEMA:
        raise ConfigError(f"output schema {schema} is not supported (this vaultops reads {SCHEMA})",
                          hint="use the vaultops release that matches the Terraform module version")
    port = reader.integer("api_port")
    ssh_user = reader.string("ssh_user")
    config_file = reader.optional_string("server_config_file")   # absent from outputs before issue #18
    nodes = [_node(_Reader(item, f"vaultops.nodes[{i}]"), port=port, ssh_user=ssh_user, config_file=config_file)
             for i, item in enumerate(reader.items("nodes"))]
    return {
        "cluster": {
            "name": reader.string("cluster_name"),
            "storage": reader.string("storage"),
            "load_balancer": reader.string("load_balancer"),
        },
        "nodes": nodes,
        "backup": {"sinks": [_sink(reader.child("backup"))]},
        "tls": _tls(reader, nodes),
    }


def render(config: dict[str, Any], *, source: Path, out: dict[str, Any]) -> str:
    import yaml

    role = out.get("vaultops_role_arn")
    retention = (out.get("backup") or {}).get("retention_days")
    header = [
        f"# Written by `vaultops config from-terraform {source.name}`. Edit freely; to regenerate,",
        "# export the outputs again and pass --force.",
    ]
    if role:
        header.append(f"# AWS credentials: assume {role} (never stored here).")
    if retention:
        header.append(f"# The backup bucket's lifecycle assumes snapshots are kept {retention} days.")
    if (seal := seal_comment(out)) is not None:
        header.append(seal)
    body = yaml.safe_dump(config, sort_keys=False, default_flow_style=False)
    return "\n".join(header) + "\n" + body


def import_terraform(source: Path, *, dest: Path | None, force: bool = False,
                     name: str = OUTPUT_NAME) -> ImportResult:
    """Read SOURCE, check the result loads as a config, write it to DEST (None: only return it)."""
    from vaultops.config import parse_config
    from vaultops.files.atomic import atomic_write_text

    out = load_output(source, name=name)
    config = build_config(out)
    parse_config(config, path=dest)  # never write a file vaultops itself would reject
    text = render(config, source=source, out=out)
    if dest is not None:
        if dest.exists() and not force:
            raise SecurityError(f"{dest} already exists; not overwriting it",
                                hint="pass --force to replace it, or --out OTHER.yaml to compare first")
        try:
            atomic_write_text(dest, text, mode=0o644)
        except OSError as exc:
            raise ConfigError(f"cannot write {dest} ({exc.strerror})",
                              hint="choose another --out or fix that folder's permissions") from None
    sink = config["backup"]["sinks"][0]
    return ImportResult(path=dest, text=text, cluster_name=config["cluster"]["name"],
                        node_names=tuple(n["name"] for n in config["nodes"]),
                        backup_url=f"s3://{sink['bucket']}/{sink['prefix']}",
                        hosted_zone_id=config["tls"]["dns_provider"]["hosted_zone_id"])


def _node(node: _Reader, *, port: int, ssh_user: str, config_file: str | None) -> dict[str, Any]:
    fqdn = node.string("fqdn")
    driver = {"type": "ssh", "host": fqdn, "user": ssh_user}
    if config_file:
        driver["config_file"] = config_file
    return {"name": node.string("name"), "address": f"https://{fqdn}:{port}", "driver": driver}


def seal_comment(out: dict[str, Any]) -> str | None:
    """One header line with the module's seal facts (what the upgrade preflight will find on the nodes)."""
    seal = out.get("seal")
    if not isinstance(seal, dict) or not seal.get("type"):
        return None
    line = f"# Seal: {seal['type']} ({seal.get('form') or '?'} form"
    if seal.get("form") == "plugin":
        line += f": KMS plugin {seal.get('plugin_command')} in {seal.get('plugin_directory')}"
    line += f", server {seal.get('server_version') or '?'}); the upgrade preflight checks each node's config_file."
    return line


def _sink(backup: _Reader) -> dict[str, Any]:
    sink: dict[str, Any] = {"type": "s3", "bucket": backup.string("bucket"), "prefix": backup.string("prefix"),
                            "region": backup.string("region"), "sse": "aws:kms"}
    kms = backup.optional_string("kms_key_id")
    if kms:  # else the bucket's default: the AWS-managed aws/s3 key
        sink["kms_key_id"] = kms
    return sink


def _tls(reader: _Reader, nodes: list[dict[str, Any]]) -> dict[str, Any]:
    dns, tls = reader.child("dns"), reader.child("tls")
    provider = dns.string("provider")
    if provider != "route53":
        raise ConfigError(f"vaultops.dns.provider is {provider!r}", hint="this importer knows route53 only")
    extra = tls.strings("extra_names")
    owner = {k: v for k in ("owner", "group") if (v := tls.optional_string(k)) is not None}
    return {
        **owner,
        "dns_provider": {"type": "route53", "hosted_zone_id": dns.string("hosted_zone_id"),
                         "region": reader.string("region")},
        "acme": {"directory": tls.string("acme_directory")},
        "nodes": {n["name"]: {"cert_file": tls.string("cert_file"), "key_file": tls.string("key_file"),
                              "names": [n["driver"]["host"], *extra]} for n in nodes},
    }


class _Reader:
    """Typed access to one JSON object, with errors that name the key path."""

    def __init__(self, data: Any, where: str) -> None:
        if not isinstance(data, dict):
            raise ConfigError(f"{where} is not an object", hint=_REGENERATE)
        self.data, self.where = data, where

    def _get(self, key: str) -> Any:
        if key not in self.data:
            raise ConfigError(f"{self.where}.{key} is missing from the Terraform output",
                              hint="the module and vaultops versions differ; " + _REGENERATE)
        return self.data[key]

    def _fail(self, key: str, want: str) -> ConfigError:
        return ConfigError(f"{self.where}.{key} should be {want}, got {self.data.get(key)!r}", hint=_REGENERATE)

    def string(self, key: str) -> str:
        value = self._get(key)
        if not isinstance(value, str) or not value:
            raise self._fail(key, "a non-empty string")
        return value

    def optional_string(self, key: str) -> str | None:
        return self.string(key) if self.data.get(key) not in (None, "") else None

    def integer(self, key: str) -> int:
        value = self._get(key)
        # JSON numbers from Terraform may arrive as 8200.0; bools are not numbers here.
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value):
            raise self._fail(key, "a whole number")
        return int(value)

    def strings(self, key: str) -> list[str]:
        value = self._get(key)
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise self._fail(key, "a list of names")
        return list(value)

    def items(self, key: str) -> list[Any]:
        value = self._get(key)
        if not isinstance(value, list) or not value:
            raise self._fail(key, "a non-empty list")
        return value

    def child(self, key: str) -> _Reader:
        return _Reader(self._get(key), f"{self.where}.{key}")
