from gowa_py.cli import main

main()
