from fastlaunch.cli.entry import main

main()
