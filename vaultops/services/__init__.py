"""The operations themselves; no presentation code here."""
