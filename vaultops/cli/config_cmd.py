"""vaultops config check | example [SECTION] | reference | from-terraform OUTPUT.json: vaultops.yaml."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from vaultops.cli import add_format, command_parser

if TYPE_CHECKING:
    from vaultops.session import Session


# The top-level keys of vaultops.yaml, spelt out so that `--help` needs no schema import
# (tests/unit/test_config_reference.py holds them equal to vaultops.schema.ConfigFile's).
SECTIONS = ("cluster", "nodes", "journal", "keyholders", "backup", "tls", "upgrade", "sandbox", "recovery", "auth")


def register(sub: argparse._SubParsersAction) -> None:
    p = command_parser(sub, "config", help="check, explain or write vaultops.yaml",
                       description="Every key of vaultops.yaml: `vaultops config reference` (docs/configuration.md).")
    csub = p.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    chk = command_parser(csub, "check", help="validate vaultops.yaml: one line OK, or the one error (exit 2)",
                         description="Validates the file --config, $VAULTOPS_CONFIG or the search path finds: "
                                     "YAML, the schema of every section, and what each section's owner checks "
                                     "(backup, tls, journal anchors, node drivers). Connects to nothing.")
    add_format(chk)
    chk.set_defaults(handler=cmd_check)
    ex = command_parser(csub, "example", help="print a commented example of vaultops.yaml (or of one section)")
    ex.add_argument("section", nargs="?", choices=SECTIONS, metavar="SECTION",
                    help=f"only this section (with the nodes it needs): {', '.join(SECTIONS)}")
    ex.set_defaults(handler=cmd_example)
    ref = command_parser(csub, "reference", help="print the reference of every section and key (Markdown)")
    ref.set_defaults(handler=cmd_reference)
    tf = command_parser(csub, "from-terraform",
                        help="write vaultops.yaml from `terraform output -json` of modules/vault-cluster")
    tf.add_argument("output", metavar="OUTPUT.json", help="file written by `terraform output -json`")
    tf.add_argument("--out", metavar="FILE", default="vaultops.yaml",
                    help="where to write (default: ./vaultops.yaml; '-' prints to stdout)")
    tf.add_argument("--force", action="store_true", help="replace FILE if it exists")
    tf.add_argument("--output-name", metavar="NAME", default="vaultops",
                    help="name of the root module's output that re-exports the module's vaultops output")
    add_format(tf, help="how to report what was written: table (default) or json (with --out -, the file is in "
                        "\"yaml\")")
    tf.set_defaults(handler=cmd_from_terraform)


def cmd_from_terraform(session: Session, args: argparse.Namespace) -> int:
    from vaultops.services.terraform_import import import_terraform

    dest = None if args.out == "-" else Path(args.out)
    result = import_terraform(Path(args.output), dest=dest, force=args.force, name=args.output_name)
    if dest is None and args.format != "json":
        sys.stdout.write(result.text)
        return 0
    if args.format == "json":  # with --out -, the file's text is in "yaml"
        print(json.dumps({"path": str(result.path) if dest else None, "cluster": result.cluster_name,
                          "nodes": list(result.node_names), "backup": result.backup_url,
                          "hosted_zone_id": result.hosted_zone_id, **({"yaml": result.text} if dest is None else {})},
                         indent=2))
        return 0
    print(f"wrote {result.path}: cluster {result.cluster_name}, nodes {', '.join(result.node_names)}, "
          f"backups {result.backup_url}, Route53 zone {result.hosted_zone_id}")
    return 0


def cmd_check(session: Session, args: argparse.Namespace) -> int:
    from vaultops.config import find_config_file
    from vaultops.errors import ConfigError, VaultOpsError

    path = find_config_file(session.config_path)
    if path is None:
        raise ConfigError("no vaultops.yaml to check",
                          hint="pass --config FILE (searched $VAULTOPS_CONFIG, ./vaultops.yaml, ~/.config/vaultops/)")
    cfg = session.config
    try:
        _check_sections(session, cfg)
    except ConfigError:
        raise
    except VaultOpsError as exc:  # a section's owner refused it: still a configuration error (exit 2)
        raise ConfigError(exc.message, hint=exc.hint) from None
    from vaultops.files.loader import read_yaml

    sections = list(read_yaml(path, what="config file"))  # the file's own top-level keys, in its order
    if args.format == "json":
        print(json.dumps({"ok": True, "file": str(path), "nodes": [n.name for n in cfg.nodes],
                          "sections": sections}, indent=2))
    else:
        print(f"{path}: OK ({len(cfg.nodes)} nodes; sections: {', '.join(sections)})")
    return 0


def _check_sections(session: Session, cfg: Any) -> None:
    """What the loader's schema leaves to each section's owner (free-form mappings, cross-checks)."""
    from vaultops.services.journal_anchor import anchor_settings
    from vaultops.services.upgrade.settings import upgrade_section

    session.drivers()
    anchor_settings(cfg)
    upgrade_section(cfg)
    if cfg.section("recovery"):
        from vaultops.services.recovery.settings import recovery_section

        recovery_section(cfg)
    if cfg.section("backup"):
        session.backup_settings
    if cfg.section("tls"):
        session.tls_settings


def cmd_example(session: Session, args: argparse.Namespace) -> int:
    from vaultops.cli.config_example import example

    print(example(args.section), end="")
    return 0


def cmd_reference(session: Session, args: argparse.Namespace) -> int:
    from vaultops.cli.config_ref import markdown

    print(markdown(), end="")
    return 0
