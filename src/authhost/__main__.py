from authhost.cli.app import main

main()
