from sipcore.cli.server import main

main()
