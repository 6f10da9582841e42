from pretrainlab.cli import main

main()
