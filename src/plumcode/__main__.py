from plumcode.cli import main

raise SystemExit(main())
