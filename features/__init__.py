# Before any kernel module imports numba: it reads NUMBA_CACHE_DIR once, when first imported.
from features import numba_cache as numba_cache
