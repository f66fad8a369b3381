"""Optional native loop for ``lakehouse_phi``: HMAC-SHA256 over every value of an Arrow string/binary array.

``lakehouse_phi`` runs without it (the same outputs, one OpenSSL call per value from Python); with it installed,
the ``hmac`` strategy and the row fingerprint hash a batch in one C loop over the Arrow buffers, about four times
faster per value. The hash itself is OpenSSL's libcrypto; only the loop is here.
"""

from lakehouse_phi_native._hmac import OPENSSL_VERSION, HmacSha256

__all__ = ["OPENSSL_VERSION", "HmacSha256"]
__version__ = "0.1.0"
