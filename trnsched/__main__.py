from trnsched.cli import main

main()
