"""``python -m opsloop.server [--host H] [--port P]``: the same as ``opsloop server``."""

import sys

from opsloop.server.launch import main

if __name__ == "__main__":
    sys.exit(main())
