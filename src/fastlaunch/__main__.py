from fastlaunch.entry import main

main()
