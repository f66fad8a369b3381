"""Key providers. Key material is standard base64 of the raw key bytes; its value never reaches a message,
a log or a repr: only the key's name, provider and reference do."""

from lakehouse_phi.keys.providers import KeyRing, SecretKey, load_key, load_keys

__all__ = ["KeyRing", "SecretKey", "load_key", "load_keys"]
