"""Reusable column types for the models."""
from typing import Annotated, NewType

from sqlalchemy import BigInteger, LargeBinary, String
from sqlalchemy.orm import mapped_column

# An address in the recorded process (user space, < 2**47: fits a signed 64-bit column).
TargetAddr = NewType("TargetAddr", int)

rec_addr = Annotated[int, mapped_column(BigInteger)]
blob = Annotated[bytes, mapped_column(LargeBinary)]
# sha256 of a page's uncompressed 4096 bytes
page_digest = Annotated[bytes, mapped_column(LargeBinary(32), unique=True)]
short_text = Annotated[str, mapped_column(String(64))]
