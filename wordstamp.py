"""The `wordstamp` command: the trainer's and the daemon's subcommands in one typer app.

TensorFlow is imported only inside the commands that train or export, so `wordstamp daemon` starts without it.
"""

from __future__ import annotations

import typer

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="wordstamp: record, split, build, train, evaluate and serve a spoken-word recognizer.")


def _register() -> None:
    from trainer import cli_data, cli_model
    from daemon import cli as daemon_cli

    for module in (cli_data, cli_model, daemon_cli):
        module.register(app)


def main() -> None:
    _register()
    app()


if __name__ == "__main__":
    main()
