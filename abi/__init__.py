"""The proxy-wasm ABI as pure Python: enums, signatures per version, version detection, codecs.

Nothing here imports an engine or touches I/O, so any Python proxy-wasm host can use it.
"""

from .enums import *  # noqa: F403
from .enums import __all__ as _enums_all
from .pairs import PAIRS_MAX_BYTES, PAIRS_MAX_COUNT, PairsError, decode_pairs, decode_pairs_strict, encode_pairs
from .properties import UInt64, decode_path, decode_value, encode_path, encode_value
from .roles import Param
from .signatures import (
    ABI_VERSIONS,
    ALLOCATOR_IMPORTS,
    CALLBACKS,
    HOST_FUNCTIONS,
    PHASES,
    START_IMPORTS,
    WASI_FUNCTIONS,
    WASI_MODULES,
    Signature,
    allowed_imports_text,
    callbacks_for,
    fault_statuses,
    host_functions_for,
    import_table,
)
from .versions import AbiInfo, detect_abi, marker_name

__all__ = [
    *_enums_all,
    "ABI_VERSIONS",
    "ALLOCATOR_IMPORTS",
    "CALLBACKS",
    "HOST_FUNCTIONS",
    "PAIRS_MAX_BYTES",
    "PAIRS_MAX_COUNT",
    "PHASES",
    "START_IMPORTS",
    "WASI_FUNCTIONS",
    "WASI_MODULES",
    "AbiInfo",
    "PairsError",
    "Param",
    "Signature",
    "UInt64",
    "allowed_imports_text",
    "callbacks_for",
    "decode_pairs",
    "decode_pairs_strict",
    "decode_path",
    "decode_value",
    "detect_abi",
    "encode_pairs",
    "encode_path",
    "encode_value",
    "fault_statuses",
    "host_functions_for",
    "import_table",
    "marker_name",
]
