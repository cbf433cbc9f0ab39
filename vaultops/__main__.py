from vaultops.cli import run

run()
