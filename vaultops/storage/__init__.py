"""Backup sinks (local directory, S3) behind one Protocol; chosen by name with get_sink()."""

from vaultops.storage.base import CHUNK, CommitResult, ObjectInfo, Sink, SinkError, Upload, get_sink

__all__ = ["CHUNK", "CommitResult", "ObjectInfo", "Sink", "SinkError", "Upload", "get_sink"]
