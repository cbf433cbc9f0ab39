"""The recovery runbooks' actions: every one runs on a RecoveryContext (mypy checks each entry)."""

from __future__ import annotations

from vaultops.runbook.actions import confirm
from vaultops.runbook.registry import Registry
from vaultops.services.recovery import backup_steps, node_steps, quorum_steps
from vaultops.services.recovery.context import RecoveryContext

RECOVERY_ACTIONS: Registry[RecoveryContext] = Registry({
    # one node (node-remove, node-replace; re-joins in the other runbooks)
    "stop_node": node_steps.stop_node, "set_aside_data": node_steps.set_aside_data,
    "start_node": node_steps.start_node, "unseal_node": node_steps.unseal_node,
    "wait_member": node_steps.wait_member, "remove_peer": node_steps.remove_peer,
    # recover-quorum
    "assess_quorum": quorum_steps.assess_quorum, "choose_survivor": quorum_steps.choose_survivor,
    "write_peers": quorum_steps.write_peers, "start_chosen": quorum_steps.start_chosen,
    "unseal_chosen": quorum_steps.unseal_chosen, "verify_leader": quorum_steps.verify_leader,
    "rejoin_aside": quorum_steps.rejoin_aside, "rejoin_start": quorum_steps.rejoin_start,
    "rejoin_unseal": quorum_steps.rejoin_unseal, "rejoin_back": quorum_steps.rejoin_back,
    "offer_replace": quorum_steps.offer_replace,
    # recover-from-backup
    "assess_all_lost": backup_steps.assess_all_lost, "pick_backup": backup_steps.pick_backup,
    "init_throwaway": backup_steps.init_throwaway, "unseal_restored": backup_steps.unseal_restored, "restore_backup": backup_steps.restore_backup,
    "wait_restored": backup_steps.wait_restored, "verify_sentinels": backup_steps.verify_sentinels,
    "report_recovery": backup_steps.report_recovery,
    "confirm": confirm,
})
