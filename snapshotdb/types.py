"""Reusable column types for the models."""

from typing import Annotated

from sqlalchemy import BigInteger, LargeBinary
from sqlalchemy.orm import mapped_column

# An address in the recorded process (user space, < 2**47: fits a signed 64-bit column).
rec_addr = Annotated[int, mapped_column(BigInteger)]
blob = Annotated[bytes, mapped_column(LargeBinary)]
# sha256 of a page's uncompressed 4096 bytes
page_digest = Annotated[bytes, mapped_column(LargeBinary(32), unique=True)]
