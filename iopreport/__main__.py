from iopreport.cli import main

raise SystemExit(main())
