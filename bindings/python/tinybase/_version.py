"""The package's version: also the version of the tinybase library it loads (``tb_version()``).

setup.py refuses to build when the crate's Cargo.toml says otherwise, and ``tinybase._native``
refuses a library reporting another version.
"""

__version__ = "0.1.0"
