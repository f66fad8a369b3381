from lakehouse_phi.cli import main

raise SystemExit(main())
