# vaultops backup identity: take Raft snapshots, nothing else.
# Attach to an AppRole (token_ttl=15m, secret_id_num_uses=0, token_num_uses=0) or an AWS IAM role.
# sys/health, used to find the active node, needs no token.
path "sys/storage/raft/snapshot" {
  capabilities = ["read"]
}
