from fastlaunch.cli import main

main()
