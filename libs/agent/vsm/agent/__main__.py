"""`python -m vsm.agent run my_package.agents`: the agent host of the operations package
(`vsm-agent`), which must be installed beside the SDK."""

import sys

try:
    from vsm.operations.hosting import main
except ImportError:  # pragma: no cover - the SDK alone, without a host
    print("vsm.agent: an agent host needs the vsm-operations package", file=sys.stderr)
    raise SystemExit(2) from None

if __name__ == "__main__":
    main()
