from typing_extensions import Buffer

OPENSSL_VERSION: str

class HmacSha256:
    def __init__(self, key: Buffer) -> None: ...
    def hex(self, data: Buffer, offsets: Buffer, start: int, count: int, wide: bool, /) -> bytes: ...
