from n8n_deploy.cli import main

if __name__ == "__main__":
    try:
        main()
    finally:
        # Run as `python -m n8n_deploy`, Python remembers a KeyboardInterrupt that passed
        # through an evaluated string (typer evaluates the commands' annotations) even once
        # the program handled it, and then ends the process by SIGINT instead of with the
        # status main() gave (130 after an interrupt, said on stderr). Evaluating a string
        # forgets it; signals are ignored by now. The installed script is not affected.
        exec("")  # noqa: S102 - a constant empty string
