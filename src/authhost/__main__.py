from authhost.cli.entry import main

main()
