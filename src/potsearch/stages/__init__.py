"""One module per stage of the pipeline (collect, importing, fit, diagnose, evolve, polish, attribute,
show, report): a frozen options dataclass (defaults and checks once), a result object and ``run()``, the
only code that sequences the stage, takes the run's writer lock, writes the stage's folder and records
it. ``cli/commands/<command>.py`` parses into the options and prints the result; ``api.py`` builds the
options from keywords and returns the result (tests/test_cli_api_parity.py)."""
