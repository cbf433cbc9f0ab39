"""vaultops: guided, safe operations for HashiCorp Vault and OpenBao clusters."""

__version__ = "0.1.0"
