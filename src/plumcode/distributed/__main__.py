from plumcode.distributed.cli import main

raise SystemExit(main())
