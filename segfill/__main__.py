from segfill.cli import main

raise SystemExit(main())
