"""terraform/: every file parses, every variable and output is described, and the
module keeps the properties vaultops relies on (checked on the parsed HCL)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from terraform_helpers import (DATA, EXAMPLE, MODULE, TERRAFORM, blocks, data_sources, load, resources,
                               tf_files, unquote)

MODULE_DIRS = [MODULE, EXAMPLE]


def test_module_and_example_exist() -> None:
    assert (MODULE / "README.md").is_file()
    assert {p.parent for p in tf_files()} >= {MODULE, EXAMPLE}


@pytest.mark.parametrize("path", tf_files(), ids=lambda p: str(p.relative_to(TERRAFORM)))
def test_every_tf_file_parses(path: Path) -> None:
    parsed = load(path)
    assert parsed, f"{path} parsed to nothing"


@pytest.mark.parametrize("kind", ["variable", "output"])
@pytest.mark.parametrize("directory", MODULE_DIRS, ids=lambda p: p.name)
def test_every_variable_and_output_has_a_description(directory: Path, kind: str) -> None:
    found = blocks(directory, kind)
    assert found, f"no {kind} blocks in {directory}"
    missing = [name for name, body in found.items()
               if len(str(unquote(body.get("description", ""))).strip()) < 10]
    assert not missing, f"{kind}s without a real description in {directory.name}: {missing}"


def test_example_passes_every_required_module_variable() -> None:
    required = {name for name, body in blocks(MODULE, "variable").items() if "default" not in body}
    calls = blocks(EXAMPLE, "module")
    assert unquote(calls["vault"]["source"]) == "../../modules/vault-cluster"
    assert required <= set(calls["vault"]), f"example misses {sorted(required - set(calls['vault']))}"
    passed = set(calls["vault"]) - {"source", "__is_block__", "__comments__"}
    assert passed <= set(blocks(MODULE, "variable")), "example passes an argument the module does not declare"


def test_node_count_defaults_to_three_and_must_be_odd() -> None:
    var = blocks(MODULE, "variable")["node_count"]
    assert var["default"] == 3
    assert "% 2 == 1" in var["validation"][0]["condition"]


def test_nlb_passes_tcp_through_and_health_checks_select_the_active_node() -> None:
    lb = resources(MODULE, "aws_lb")["api"]
    assert unquote(lb["load_balancer_type"]) == "network"
    assert lb["enable_cross_zone_load_balancing"] is True
    listener = resources(MODULE, "aws_lb_listener")["api"]
    assert unquote(listener["protocol"]) == "TCP"
    tg = resources(MODULE, "aws_lb_target_group")["api"]
    assert unquote(tg["protocol"]) == "TCP"
    check = tg["health_check"][0]
    assert (unquote(check["protocol"]), unquote(check["path"]), unquote(check["matcher"])) == \
        ("HTTPS", "/v1/sys/health", "200")


def test_nodes_have_encrypted_raft_volumes_imdsv2_and_own_dns_names() -> None:
    volume = resources(MODULE, "aws_ebs_volume")["raft"]
    assert volume["encrypted"] is True
    node = resources(MODULE, "aws_instance")["node"]
    assert node["root_block_device"][0]["encrypted"] is True
    assert unquote(node["metadata_options"][0]["http_tokens"]) == "required"
    assert node["associate_public_ip_address"] is False
    record = resources(MODULE, "aws_route53_record")["node"]
    assert record["for_each"] == "${local.nodes}"


def test_server_config_template_joins_every_peer_over_tls() -> None:
    template = (MODULE / "templates" / "server.hcl.tftpl").read_text()
    assert 'storage "raft"' in template
    assert re.search(r"%\{ for peer in peers ~\}\s*retry_join \{", template)
    assert 'leader_tls_servername = "${peer}"' in template
    assert 'tls_cert_file   = "${tls_dir}/tls.crt"' in template


def test_vaultops_route53_rights_are_limited_to_acme_txt_records() -> None:
    policy = data_sources(MODULE, "aws_iam_policy_document")["vaultops"]
    change = [s for s in policy["statement"] if "route53:ChangeResourceRecordSets" in str(s["actions"])]
    assert len(change) == 1
    conditions = {unquote(c["variable"]): c for c in change[0]["condition"]}
    assert set(conditions) == {"route53:ChangeResourceRecordSetsNormalizedRecordNames",
                               "route53:ChangeResourceRecordSetsRecordTypes",
                               "route53:ChangeResourceRecordSetsActions"}
    assert conditions["route53:ChangeResourceRecordSetsRecordTypes"]["values"] == ['"TXT"']
    assert "_acme-challenge." in (MODULE / "iam.tf").read_text()
    s3 = [s for s in policy["statement"] if "s3:PutObject" in str(s["actions"])]
    assert s3[0]["resources"] == ["${local.backup_objects_arn}"]


def test_backup_bucket_is_versioned_encrypted_private_and_expires_only_pruned_versions() -> None:
    assert unquote(resources(MODULE, "aws_s3_bucket_versioning")["backup"]
                   ["versioning_configuration"][0]["status"]) == "Enabled"
    sse = resources(MODULE, "aws_s3_bucket_server_side_encryption_configuration")["backup"]
    assert unquote(sse["rule"][0]["apply_server_side_encryption_by_default"][0]["sse_algorithm"]) == "aws:kms"
    pab = resources(MODULE, "aws_s3_bucket_public_access_block")["backup"]
    assert all(pab[k] is True for k in ("block_public_acls", "block_public_policy", "ignore_public_acls",
                                        "restrict_public_buckets"))
    rules = resources(MODULE, "aws_s3_bucket_lifecycle_configuration")["backup"]["rule"]
    snapshots = next(r for r in rules if unquote(r["id"]) == "vaultops-snapshots")
    assert "noncurrent_version_expiration" in snapshots
    # Current snapshots expire only through the optional hard cap, never by default.
    assert "expiration" not in snapshots and "dynamic" in snapshots
    assert "aws_s3_bucket_object_lock_configuration" in (MODULE / "backup_bucket.tf").read_text()


def test_kms_key_rotates() -> None:
    key = resources(MODULE, "aws_kms_key")["this"]
    assert key["enable_key_rotation"] is True


def _object_keys(hcl_object: dict) -> set[str]:
    return {k for k in hcl_object if not k.startswith("__")}


def test_sample_output_matches_the_module_output() -> None:
    """The sample file the importer is tested on has exactly the module's keys."""
    declared = blocks(MODULE, "output")["vaultops"]["value"]
    sample = json.loads((DATA / "terraform-output.json").read_text())["vaultops"]["value"]
    assert set(sample) == _object_keys(declared)
    for section in ("backup", "dns", "tls"):
        assert set(sample[section]) == _object_keys(declared[section]), section
    node_keys = set(re.findall(r"(\w+) = ", declared["nodes"]))
    assert all(set(node) == node_keys for node in sample["nodes"])
    assert blocks(EXAMPLE, "output")["vaultops"]["value"] == "${module.vault.vaultops}"


def _render(template: str, values: dict) -> str:
    """Just enough of Terraform's templatefile for server.hcl.tftpl: if/endif and for/endfor on their
    own lines, ${name} interpolation (Terraform itself is not installed here)."""
    out, keep, loops = [], [True], []
    for line in template.splitlines():
        directive = re.match(r"\s*%\{\s*(if|endif|for|endfor)\s*(.*?)\s*~?\}\s*$", line)
        if directive is None:
            if all(keep) and not loops:
                out.append(re.sub(r"\$\{(\w+)\}", lambda m: str(values[m.group(1)]), line))
            continue
        word, rest = directive.groups()
        if word == "if":
            keep.append(bool(values[rest.strip()]))
        elif word == "endif":
            keep.pop()
        elif word == "for":
            loops.append(rest)          # peers render nothing here: the seal stanzas are what is checked
        else:
            loops.pop()
    return "\n".join(out) + "\n"


def _server_config(*, plugin: bool) -> str:
    values = {"cluster_name": "vault", "node_name": "vault-1", "fqdn": "vault-1.example.com", "api_port": 8200,
              "cluster_port": 8201, "data_dir": "/opt/openbao/data", "tls_dir": "/opt/openbao/tls",
              "tls_ca_bundle": "/etc/ca.pem", "peers": [], "auto_unseal": True, "kms_key_arn": "arn:k",
              "region": "eu-west-1", "kms_plugin_form": plugin, "plugin_dir": "/opt/openbao/plugins",
              "kms_plugin_name": "awskms", "kms_plugin_command": "openbao-plugin-kms-aws",
              "kms_plugin_sha256": "0" * 64}
    return _render((MODULE / "templates" / "server.hcl.tftpl").read_text(), values)


def test_openbao_2_7_auto_unseal_is_written_in_the_kms_plugin_form() -> None:
    """The rendered 2.7 config passes vaultops' own seal-move check; the built-in form is refused."""
    from vaultops.services.upgrade.config_checks import parse_server_config

    cfg = parse_server_config(_server_config(plugin=True))
    assert cfg.seals == ("awskms",) and cfg.plugin_directory == "/opt/openbao/plugins"
    assert cfg.kms_plugins["awskms"] == {"command": "openbao-plugin-kms-aws", "sha256sum": "0" * 64}
    builtin = parse_server_config(_server_config(plugin=False))
    assert builtin.seals == ("awskms",) and builtin.kms_plugins == {} and builtin.plugin_directory is None
    main = load(MODULE / "main.tf")["locals"]
    form = next(loc["kms_plugin_form"] for loc in main if "kms_plugin_form" in loc)
    assert "var.auto_unseal" in form and 'var.product == "openbao"' in form and ">= 7" in form


def test_the_plugin_form_needs_its_checksum_and_cloud_init_verifies_the_binary() -> None:
    nodes = (MODULE / "nodes.tf").read_text()
    assert "!local.kms_plugin_form || var.kms_plugin_sha256 != null" in nodes
    user_data = (MODULE / "templates" / "user_data.sh.tftpl").read_text()
    assert "%{ if kms_plugin_form ~}" in user_data and "sha256sum -c" in user_data
    assert user_data.index("sha256sum -c") < user_data.index("systemctl enable --now")
    seal = blocks(MODULE, "output")["vaultops"]["value"]["seal"]
    assert {"type", "form", "server_version", "plugin_command", "plugin_directory"} <= set(seal)
