from hrm_mlx.cli.main import main

main()
