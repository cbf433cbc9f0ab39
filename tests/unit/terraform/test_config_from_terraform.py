"""`vaultops config from-terraform` on a realistic `terraform output -json` file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from terraform_helpers import DATA

from vaultops.cli import main
from vaultops.config import parse_config_file

SAMPLE = DATA / "terraform-output.json"


def _sample() -> dict:
    return json.loads(SAMPLE.read_text())


def _write(tmp_path: Path, data: object, name: str = "tf.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return path


def test_writes_a_config_that_vaultops_loads(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "vaultops.yaml"
    assert main(["config", "from-terraform", str(SAMPLE), "--out", str(out)]) == 0
    assert "nodes vault-1, vault-2, vault-3" in capsys.readouterr().out
    cfg = parse_config_file(out)
    assert (cfg.cluster_name, cfg.storage, cfg.load_balancer) == ("vault", "raft", "vault.prod.example.com")
    assert [(n.name, n.address) for n in cfg.nodes] == [
        (f"vault-{i}", f"https://vault-{i}.prod.example.com:8200") for i in (1, 2, 3)]
    assert cfg.node("vault-2").driver == {"type": "ssh", "host": "vault-2.prod.example.com", "user": "ec2-user",
                                          "config_file": "/etc/openbao/openbao.hcl"}
    # the seal facts the upgrade preflight checks: the driver reads config_file, the header says what it holds
    assert ("# Seal: awskms (plugin form: KMS plugin openbao-plugin-kms-aws in /opt/openbao/plugins, "
            "server 2.7.2)") in out.read_text()
    from vaultops.drivers import get_driver
    assert getattr(get_driver("vault-2", cfg.node("vault-2").driver), "config_file") == "/etc/openbao/openbao.hcl"
    assert cfg.section("backup")["sinks"] == [{
        "type": "s3", "bucket": "vault-snapshots-123456789012-eu-west-1", "prefix": "snapshots/",
        "region": "eu-west-1", "sse": "aws:kms",
        "kms_key_id": "arn:aws:kms:eu-west-1:123456789012:key/4f2b9c1e-7a3d-4e8f-b615-2d9c0e7a1f34"}]
    tls = cfg.section("tls")
    assert tls["dns_provider"] == {"type": "route53", "hosted_zone_id": "Z04517273V9QY1EXAMPLE",
                                   "region": "eu-west-1"}
    assert tls["nodes"]["vault-3"]["names"] == ["vault-3.prod.example.com"]
    assert oct(out.stat().st_mode & 0o777) == "0o644"


def test_sections_are_accepted_by_the_tls_and_backup_code(tmp_path: Path) -> None:
    from vaultops.services.tls.settings import load_tls_settings
    from vaultops.storage.base import get_sink

    out = tmp_path / "vaultops.yaml"
    assert main(["config", "from-terraform", str(SAMPLE), "--out", str(out)]) == 0
    cfg = parse_config_file(out)
    tls = load_tls_settings(cfg)
    node = tls.node("vault-1")
    # The load balancer's name joins each node's own name on its certificate.
    assert node.names == ("vault-1.prod.example.com", "vault.prod.example.com")
    assert (node.cert_file, node.key_file) == ("/opt/openbao/tls/tls.crt", "/opt/openbao/tls/tls.key")
    assert tls.acme.directory.startswith("https://acme-v02.")
    sink = get_sink(cfg.section("backup")["sinks"][0])
    assert sink.name == "s3://vault-snapshots-123456789012-eu-west-1/snapshots"


def test_refuses_to_overwrite_without_force(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "vaultops.yaml"
    out.write_text("cluster: {name: hand-written}\n")
    assert main(["config", "from-terraform", str(SAMPLE), "--out", str(out)]) == 3
    assert "--force" in capsys.readouterr().err
    assert out.read_text() == "cluster: {name: hand-written}\n"
    assert main(["config", "from-terraform", str(SAMPLE), "--out", str(out), "--force"]) == 0
    assert parse_config_file(out).cluster_name == "vault"
    assert [p.name for p in tmp_path.iterdir()] == ["vaultops.yaml"]  # no temp file left behind


def test_default_out_is_vaultops_yaml_in_the_current_folder(no_config_dir: Path) -> None:
    assert main(["config", "from-terraform", str(SAMPLE)]) == 0
    assert parse_config_file(no_config_dir / "vaultops.yaml").nodes[0].name == "vault-1"


def test_reads_the_single_output_form_and_prints_to_stdout(tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    single = _write(tmp_path, _sample()["vaultops"]["value"])  # terraform output -json vaultops
    assert main(["config", "from-terraform", str(single), "--out", "-"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("# Written by `vaultops config from-terraform tf.json`")
    assert "assume arn:aws:iam::123456789012:role/" in text
    assert not (tmp_path / "vaultops.yaml").exists()


def test_json_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "v.yaml"
    assert main(["config", "from-terraform", str(SAMPLE), "--out", str(out), "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report == {"path": str(out), "cluster": "vault", "nodes": ["vault-1", "vault-2", "vault-3"],
                      "backup": "s3://vault-snapshots-123456789012-eu-west-1/snapshots/",
                      "hosted_zone_id": "Z04517273V9QY1EXAMPLE"}


def test_without_a_kms_key_the_sink_uses_the_bucket_default(tmp_path: Path) -> None:
    data = _sample()
    data["vaultops"]["value"]["backup"]["kms_key_id"] = None
    out = tmp_path / "vaultops.yaml"
    assert main(["config", "from-terraform", str(_write(tmp_path, data)), "--out", str(out)]) == 0
    assert parse_config_file(out).section("backup")["sinks"][0]["sse"] == "aws:kms"
    assert "kms_key_id" not in parse_config_file(out).section("backup")["sinks"][0]


def test_renamed_root_output(tmp_path: Path) -> None:
    data = _sample()
    data = {"vault_cluster": data["vaultops"], "api_address": data["api_address"]}
    path = _write(tmp_path, data)
    out = tmp_path / "vaultops.yaml"
    assert main(["config", "from-terraform", str(path), "--out", str(out)]) == 2
    assert not out.exists()
    assert main(["config", "from-terraform", str(path), "--out", str(out), "--output-name", "vault_cluster"]) == 0


def _broken(mutate) -> dict:  # type: ignore[no-untyped-def]
    data = _sample()
    mutate(data["vaultops"]["value"])
    return data


@pytest.mark.parametrize(("data", "message"), [
    ("{not json", "not valid JSON"),
    ([], "expected a JSON object"),
    ({}, "no output named 'vaultops' (outputs: none)"),
    ({"vaultops": {"sensitive": False, "value": "x"}}, "has no object value"),
    (_broken(lambda v: v.update(schema=2)), "output schema 2 is not supported"),
    (_broken(lambda v: v.pop("nodes")), "vaultops.nodes is missing"),
    (_broken(lambda v: v.update(nodes=[])), "vaultops.nodes should be a non-empty list"),
    (_broken(lambda v: v["nodes"][1].pop("fqdn")), "vaultops.nodes[1].fqdn is missing"),
    (_broken(lambda v: v.update(api_port="8200")), "vaultops.api_port should be a whole number"),
    (_broken(lambda v: v["backup"].update(bucket="")), "vaultops.backup.bucket should be a non-empty string"),
    (_broken(lambda v: v["nodes"][2].update(name="vault-1")), "'vault-1' is used twice"),
    (_broken(lambda v: v["dns"].update(provider="cloudflare")), "vaultops.dns.provider is 'cloudflare'"),
])
def test_bad_input_is_a_config_error_and_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                        data: object, message: str) -> None:
    path = tmp_path / "tf.json"
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    out = tmp_path / "vaultops.yaml"
    assert main(["config", "from-terraform", str(path), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "(" in err and err.rstrip().endswith(")"), "every error carries a hint"
    assert not out.exists()


def test_missing_input_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "from-terraform", str(tmp_path / "nope.json"), "--out", str(tmp_path / "v.yaml")]) == 2
    assert "terraform output not found" in capsys.readouterr().err


def test_unwritable_destination_is_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    assert main(["config", "from-terraform", str(SAMPLE), "--out", str(blocker / "vaultops.yaml")]) == 2
    assert "cannot write" in capsys.readouterr().err


def test_key_and_chain_owner_come_from_the_module(tmp_path: Path) -> None:
    from vaultops.services.tls.settings import load_tls_settings

    out = tmp_path / "vaultops.yaml"
    assert main(["config", "from-terraform", str(SAMPLE), "--out", str(out)]) == 0
    node = load_tls_settings(parse_config_file(out)).node("vault-2")
    assert (node.owner, node.group) == ("openbao", "openbao")
    older = _sample()
    for key in ("owner", "group"):
        del older["vaultops"]["value"]["tls"][key]
    out2 = tmp_path / "older.yaml"
    assert main(["config", "from-terraform", str(_write(tmp_path, older)), "--out", str(out2)]) == 0
    node = load_tls_settings(parse_config_file(out2)).node("vault-2")
    assert (node.owner, node.group) == (None, None)  # an older module's output: ownership left alone


def test_an_output_without_the_seal_facts_still_imports(tmp_path: Path) -> None:
    """Outputs of the module before issue #18 have no server_config_file or seal: no config_file, no comment."""
    data = _sample()
    for key in ("server_config_file", "seal"):
        del data["vaultops"]["value"][key]
    out = tmp_path / "vaultops.yaml"
    assert main(["config", "from-terraform", str(_write(tmp_path, data)), "--out", str(out)]) == 0
    assert "config_file" not in parse_config_file(out).node("vault-1").driver
    assert "# Seal:" not in out.read_text()
