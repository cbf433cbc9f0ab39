"""Rolling upgrades of Active-Standby clusters (raft or external storage) as resumable runbooks."""
