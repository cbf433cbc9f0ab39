"""vaultops config from-terraform OUTPUT.json [--out vaultops.yaml] [--force]."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from vaultops.cli import command_parser

if TYPE_CHECKING:
    from vaultops.session import Session


def register(sub: argparse._SubParsersAction) -> None:
    p = command_parser(sub, "config", help="write or inspect vaultops.yaml")
    csub = p.add_subparsers(dest="config_command", metavar="ACTION", required=True)
    tf = command_parser(csub, "from-terraform",
                        help="write vaultops.yaml from `terraform output -json` of modules/vault-cluster")
    tf.add_argument("output", metavar="OUTPUT.json", help="file written by `terraform output -json`")
    tf.add_argument("--out", metavar="FILE", default="vaultops.yaml",
                    help="where to write (default: ./vaultops.yaml; '-' prints to stdout)")
    tf.add_argument("--force", action="store_true", help="replace FILE if it exists")
    tf.add_argument("--output-name", metavar="NAME", default="vaultops",
                    help="name of the root module's output that re-exports the module's vaultops output")
    tf.add_argument("--format", choices=("table", "json"), default="table", help="how to report what was written")
    tf.set_defaults(handler=cmd_from_terraform)


def cmd_from_terraform(session: Session, args: argparse.Namespace) -> int:
    from vaultops.services.terraform_import import import_terraform

    dest = None if args.out == "-" else Path(args.out)
    result = import_terraform(Path(args.output), dest=dest, force=args.force, name=args.output_name)
    if dest is None:
        sys.stdout.write(result.text)
        return 0
    if args.format == "json":
        print(json.dumps({"path": str(result.path), "cluster": result.cluster_name,
                          "nodes": list(result.node_names), "backup": result.backup_url,
                          "hosted_zone_id": result.hosted_zone_id}, indent=2))
        return 0
    print(f"wrote {result.path}: cluster {result.cluster_name}, nodes {', '.join(result.node_names)}, "
          f"backups {result.backup_url}, Route53 zone {result.hosted_zone_id}")
    return 0
