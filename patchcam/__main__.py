from patchcam.cli import main

raise SystemExit(main())
