"""Disaster recovery: a dead node replaced, lost quorum recovered, a whole cluster rebuilt from a backup.

    detect.py        conditions `status` and the console name (quorum lost, degraded, node dead) + the command
    lastseen.py      the raft high-water mark `status` records while the cluster has a leader
    settings.py      the recovery: section of vaultops.yaml
    layout.py        where a node keeps its raft data, its raft id and cluster address
    boltdb.py        a read-only bbolt reader;  raftlog.py  a stopped node's last log index/term from it
    peers.py         raft/peers.json, written through the node's driver
    membership.py    who is in the raft configuration; what removing a node does to failure tolerance
    quorum.py        has quorum been lost, who survived, which survivor's log is the most recent
    context.py       RecoveryContext: what every step gets (steps share facts through the run state)
    node_steps.py, quorum_steps.py, backup_steps.py, actions.py   the runbook actions and their table
    service.py       start/resume runs of runbooks/node-*.yaml and runbooks/recover-*.yaml
    rehearse.py      `recover from-backup --rehearse` on a throwaway sandbox
"""
