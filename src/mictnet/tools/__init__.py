"""Command front-ends and everyday tools: model table, data, experiments, benchmark, predict,
export. Each module's ``register(subparsers)`` adds its ``mict`` sub-commands."""
