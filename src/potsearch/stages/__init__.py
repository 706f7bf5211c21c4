"""One module per stage of the pipeline (fit, diagnose, evolve, polish, attribute, show, report): a
frozen options dataclass, a result object and ``run()``; the command line and the API are shells over them."""
