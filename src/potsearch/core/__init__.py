"""Core: what every layer may use — errors, the atomic writer, the YAML and config loaders, shipped
folders, stage options, text made safe for terminals and CSV files, progress, joining a Ray cluster.
Imports nothing else of potsearch."""
