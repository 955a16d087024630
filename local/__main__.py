import sys

try:
    from .cli import main
except ImportError as missing:  # another Python than the project's: one line, not a traceback
    print(
        f"error: nodepool-sync's local tools need {missing.name or 'their dependencies'} (requests, jsonschema, "
        "pyyaml): run make install and use .venv/bin/nodepool-sync, or pip install -r requirements-dev.txt",
        file=sys.stderr,
    )
    sys.exit(2)

sys.exit(main())
