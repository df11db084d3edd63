from ghostroll.cli import main

raise SystemExit(main())
